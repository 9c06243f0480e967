"""Class labels of an uploaded dataset: text or whole numbers in, class indices and names out."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from bigmodel_core.limits import current_limits

from .errors import UploadedDataError, shown

MAX_CLASS_NAME_CHARS = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DIGITS = re.compile(r"(\d+)")


def _order_key(name: str) -> tuple:
    """Numbers by value when every name is one; otherwise natural order (2 before 10), case-folded."""
    # split() with a group alternates text and digit runs, so the types line up position by position
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(_DIGITS.split(name)))


def _number(name: str) -> float | None:
    try:
        value = float(name)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def class_names_of(names: Sequence[str], label: str, what: str = "label") -> tuple[str, ...]:
    """The distinct class names in ``names``, in their order, after the checks every class set meets.

    At least 2 classes, at most ``max_upload_classes``, at least 2 samples each (one to train on, one
    to validate); names are printable and at most 64 characters.
    """
    counts = Counter(names)
    limit = current_limits().max_upload_classes
    if len(counts) > limit:
        raise UploadedDataError(f"{label} has {len(counts):,} different {what}s; the limit is {limit:,} classes"
                                + (" (for numbers to predict, ask for regression)" if what == "label" else ""))
    for name in counts:
        if not name:
            raise UploadedDataError(f"{label}: a {what} is empty; every sample needs a class")
        if len(name) > MAX_CLASS_NAME_CHARS:
            raise UploadedDataError(f"{label}: the {what} {shown(name)} is longer than {MAX_CLASS_NAME_CHARS} "
                                    "characters")
        if _CONTROL.search(name):
            raise UploadedDataError(f"{label}: the {what} {shown(name)} has a control character in it")
    if len(counts) < 2:
        only = next(iter(counts), "")
        raise UploadedDataError(f"{label} has a single class ({shown(only)}); a classifier needs at least 2 classes")
    small = sorted(n for n, c in counts.items() if c < 2)
    if small:
        raise UploadedDataError(f"{label}: class {shown(small[0])} has only {counts[small[0]]} sample; every class "
                                "needs at least 2 (one to train on, one to validate)")
    numbers = {n: _number(n) for n in counts}
    if all(v is not None for v in numbers.values()):
        return tuple(sorted(counts, key=lambda n: (numbers[n], n)))
    return tuple(sorted(counts, key=lambda n: (_order_key(n), n)))


def encode(names: Sequence[str], class_names: tuple[str, ...]) -> np.ndarray:
    """int64 class indices of ``names`` in ``class_names``."""
    index = {n: i for i, n in enumerate(class_names)}
    return np.fromiter((index[n] for n in names), dtype=np.int64, count=len(names))
