"""Handing memory that a finished training freed back to the operating system.

A server whose pages and trainings run on many threads otherwise keeps the high-water mark of
every training as resident memory (see :func:`release_free_memory`).
"""

from __future__ import annotations

import ctypes
from typing import Callable


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
        return None


_MALLOC_TRIM = _load_malloc_trim()


def release_free_memory() -> None:
    """Hand memory that Python and torch freed back to the operating system (glibc only).

    glibc keeps freed blocks in per-thread arenas; a server whose pages and trainings run on
    many threads otherwise keeps the high-water mark of every training as resident memory.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
