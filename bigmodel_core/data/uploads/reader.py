"""Bytes of an uploaded file in, an :class:`UploadedData` out (or one UploadedDataError).

The kind of file is told by its name: ``.zip`` (images in class folders), ``.npz`` (image
arrays x and y) or ``.csv`` (sequences). The size is checked first, before anything is parsed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from bigmodel_core.limits import current_limits

from .errors import UploadedDataError, file_label, shown
from .images import images_from_npz, images_from_zip
from .sequences_csv import sequences_from_csv
from .uploaded import UploadedData

KINDS = {".zip": "images in one folder per class", ".npz": "image arrays x and y", ".csv": "sequences"}
TASKS = ("classification", "regression")
MAX_SOURCE_CHARS = 100


def source_name(filename: str) -> str:
    """The file's own name (folders dropped), as kept with the dataset and shown in notes."""
    base = str(filename).replace("\\", "/").rsplit("/", 1)[-1].strip() or "upload"
    return base[:MAX_SOURCE_CHARS]


def read_upload(data: bytes, filename: str, *, task: Literal["classification", "regression"] | None = None
                ) -> UploadedData:
    """Parse and normalise an uploaded dataset file; ``task`` "regression" for a CSV of numbers to predict.

    Raises UploadedDataError, naming what is wrong, and nothing else; writes nothing anywhere.
    """
    source = source_name(filename)
    label = file_label(source)
    if task is not None and task not in TASKS:
        raise UploadedDataError(f"task must be 'classification' or 'regression', not {task!r}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise UploadedDataError(f"{label}: the upload is not bytes")
    data = bytes(data)
    limit = current_limits().max_upload_bytes
    if len(data) > limit:
        raise UploadedDataError(f"{label} is {len(data):,} bytes; the limit is {limit:,}")
    if not data:
        raise UploadedDataError(f"{label} is empty")
    suffix = os.path.splitext(source)[1].lower()
    if suffix not in KINDS:
        kinds = ", ".join(f"{k} ({v})" for k, v in KINDS.items())
        raise UploadedDataError(f"{label} is not a file the playground reads; use {kinds}")
    if suffix == ".csv":
        return sequences_from_csv(data, source, task or "classification")
    if task == "regression":
        raise UploadedDataError(f"{label}: regression works on sequence CSV files; images are classified")
    return images_from_zip(data, source) if suffix == ".zip" else images_from_npz(data, source)


def read_upload_file(path: str | os.PathLike, *, task: Literal["classification", "regression"] | None = None
                     ) -> UploadedData:
    """:func:`read_upload` for a file on disk (the CLI's ``--data``): its size is checked before it is read."""
    file = Path(path)
    label = shown(str(path), 120)  # the path as given: the learner knows where they meant
    limit = current_limits().max_upload_bytes
    try:
        if not file.is_file():
            raise UploadedDataError(f"--data {label}: no such file" if not file.exists() else
                                    f"--data {label} is not a file")
        size = file.stat().st_size
        if size > limit:
            raise UploadedDataError(f"{label} is {size:,} bytes; the limit is {limit:,}")
        with open(file, "rb") as f:
            data = f.read(limit + 1)  # a file that grew meanwhile is still caught by read_upload
    except OSError as exc:
        raise UploadedDataError(f"--data {label} cannot be read ({exc.strerror or exc})") from None
    return read_upload(data, file.name, task=task)
