"""Uploaded datasets kept on disk, per workspace owner: ``<root>/.datasets/<owner>/<name>.npz``.

``root`` is the run store's root. Each file is a normalised dataset (normalised.py), written
atomically. An owner sees, loads and deletes only the files in its own folder; the owner string
must be a plain id (a workspace id such as ``ws-<hex>``), so it can never point elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from bigmodel_core.atomic import atomic_write_bytes
from bigmodel_core.limits import current_limits

from ..registry import DatasetError, is_upload_name
from .errors import UploadedDataError
from .normalised import read_meta
from .served import register_uploaded
from .uploaded import UploadedData

FOLDER = ".datasets"  # dot-prefixed: never taken for a run folder
_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")


class UploadStore:
    """One owner's uploaded datasets under a run store root."""

    def __init__(self, root: str | Path, owner: str):
        if not isinstance(owner, str) or not _OWNER.match(owner):
            raise DatasetError("an uploaded dataset needs a workspace owner of letters, digits, - and _")
        self.folder = Path(root) / FOLDER / owner

    def path(self, name: str) -> Path:
        """Where dataset ``name`` is (or would be) kept; DatasetError for a name of another form."""
        if not is_upload_name(name):
            raise DatasetError(f"{name!r} is not a name for an uploaded dataset (upload- and 16 hex digits)")
        return self.folder / f"{name}.npz"

    def names(self) -> list[str]:
        """This owner's datasets, newest first."""
        if not self.folder.is_dir():
            return []
        files = [f for f in self.folder.iterdir() if f.suffix == ".npz" and is_upload_name(f.stem) and f.is_file()]
        return [f.stem for f in sorted(files, key=lambda f: f.stat().st_mtime, reverse=True)]

    def save(self, data: UploadedData) -> str:
        """Keep ``data`` (again: nothing changes) and serve it in this process; returns its name."""
        path = self.path(data.name)
        if not path.exists():
            limit = current_limits().max_datasets_per_owner
            if len(self.names()) >= limit:
                raise UploadedDataError(f"this workspace keeps {limit} uploaded datasets already; delete one first")
            atomic_write_bytes(path, data.to_npz_bytes())
        register_uploaded(data.name, path)
        return data.name

    def meta(self, name: str) -> dict:
        """The kept dataset's description (kind, task, class names, source, notes, samples, input shape)."""
        return read_meta(self._existing(name))

    def class_counts(self, name: str) -> list[int]:
        """Samples per class of the kept dataset, in the order of its class names ([] for regression)."""
        path = self._existing(name)
        meta = read_meta(path)
        if meta.get("task") != "classification":
            return []
        with np.load(path, allow_pickle=False) as npz:
            y = npz["y"]  # only y is read: a few bytes per sample
        return np.bincount(y.astype(np.int64), minlength=len(meta["class_names"])).tolist()

    def register(self, name: str) -> None:
        """Serve this owner's dataset ``name`` in this process (before a run of it is built)."""
        register_uploaded(name, self._existing(name))

    def delete(self, name: str) -> None:
        """Forget the dataset here; stored runs keep their own copy."""
        self._existing(name).unlink()

    def _existing(self, name: str) -> Path:
        path = self.path(name)
        if not path.is_file():
            raise DatasetError(f"this workspace has no uploaded dataset {name}")
        return path
