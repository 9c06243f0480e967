"""JSON from outside (config uploads, URL values, comparison files, weight headers), read with bounded cost.

One rule for every number that arrives as text:

- an integer literal longer than :data:`MAX_NUMBER_CHARS` characters is not converted at all
  (Python refuses to turn more than 4,300 digits into an int, and converting fewer still costs
  time that grows with the square of the length); it becomes a :class:`TooLong` marker, so the
  schema that reads the document refuses it *naming the field*, like any other wrong value;
- a float literal that overflows (``1e999``) or the constants ``NaN`` / ``Infinity`` become
  non-finite floats, which every schema here refuses (pydantic ``allow_inf_nan=False``);
- a document nested deeper than Python's recursion limit is an error, not a crash.

:func:`loads` raises :class:`JSONInputError` (a ``ValueError``) for text that is not JSON, with
the position; never any other exception. :func:`parse_number` applies the same rule to command-line
numbers (``--epochs``, ``--seed``, ...); the CLI wraps it, so a bad number exits 2 naming the option.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_NUMBER_CHARS = 40  # no real setting needs more; 2**63 has 19 digits, a float's repr at most 24 chars


class JSONInputError(ValueError):
    """Text that could not be read as JSON."""


class TooLong:
    """A number literal too long to convert; shown in messages by its length, never in full."""

    __slots__ = ("chars",)

    def __init__(self, text: str):
        self.chars = len(text)

    def __repr__(self) -> str:
        return f"<a number of {self.chars:,} characters>"

    __str__ = __repr__


def too_long_message(value: TooLong) -> str:
    return f"a number of {value.chars:,} characters is too long (at most {MAX_NUMBER_CHARS})"


def _int(text: str) -> int | TooLong:
    return TooLong(text) if len(text) > MAX_NUMBER_CHARS else int(text)


def _float(text: str) -> float | TooLong:
    return TooLong(text) if len(text) > MAX_NUMBER_CHARS else float(text)  # 1e999 -> inf, refused later


def _constant(text: str) -> float:
    return float(text)  # NaN, Infinity, -Infinity: non-finite, refused by the schema naming the field


def loads(raw: str | bytes | bytearray, what: str = "the text") -> Any:
    """``json.loads`` with the number rule above; JSONInputError says what is wrong and where."""
    try:
        return json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise JSONInputError(f"{what} is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise JSONInputError(f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # defensive: any conversion json itself still makes
        raise JSONInputError(f"{what} could not be read: {str(exc)[:200]}") from None


def parse_number(text: str, kind: type, low: float | None = None) -> float | int:
    """A whole number (``int``) or a finite float from command-line text, bounded in length and value,
    so ``--epochs 99...9`` (thousands of digits) or ``--seconds 1e999`` are refused with a short
    message; raises ValueError (the CLI turns it into a usage error naming the option)."""
    shown = text if len(text) <= MAX_NUMBER_CHARS else text[:MAX_NUMBER_CHARS] + f"... ({len(text):,} characters)"
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"{shown!r} is too long for a number")
    try:
        value = kind(text)
    except ValueError:
        what = "whole number" if kind is int else "number"
        raise ValueError(f"{shown!r} is not a {what}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{shown!r} is not a finite number")
    if low is not None and value < low:
        raise ValueError(f"{shown!r} must be at least {low:g}")
    return value
