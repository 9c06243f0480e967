"""The one error an uploaded file can raise, and how names from the file are shown in it."""

from __future__ import annotations


class UploadedDataError(ValueError):
    """An uploaded dataset file that cannot be used; the message names the file and the member, row or
    column at fault, on one line, as plain text."""


def shown(text: object, limit: int = 80) -> str:
    """A name from a file, quoted for a one-line message: control characters escaped (repr), cut short."""
    quoted = repr(str(text))
    return quoted if len(quoted) <= limit else quoted[:limit] + f"...' ({len(str(text)):,} characters)"


def file_label(filename: str) -> str:
    """The last part of a file name as given by the learner (any folder dropped), quoted."""
    base = str(filename).replace("\\", "/").rsplit("/", 1)[-1] or "the file"
    return shown(base, 60)
