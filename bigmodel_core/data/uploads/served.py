"""Uploaded datasets served by the registry: ``build_dataset("upload-...")`` once told where the file is.

:func:`register_uploaded` reads only the small ``meta`` array of a normalised dataset file and
adds the dataset to the registry; its tensors are read (and checked against the name) the
first time a run builds it. A name is a hash of the content, so whoever names one holds its data
already: the registry is one per process, and the stores decide who may see which file (the
store of uploaded datasets per owner, the run store per run: a shared run shares its data).

A stored run keeps the data it trained on as ``data.npz`` in its folder
(:func:`run_data_files` for the writer, :func:`register_run_data` for the reader), so it
reopens and reproduces without the upload.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from ..registry import DatasetError, add_dataset, is_upload_name, remove_dataset
from .normalised import read_meta, read_normalised
from .split import split_uploaded
from .uploaded import UploadedData

RUN_DATA_FILE = "data.npz"
_SERVED: dict[str, Path] = {}


def _builder(path: Path):
    def build(name: str, train_size: int, val_size: int, seed: int, params: object) -> tuple:
        try:
            x, y, meta = read_normalised(path)
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"the uploaded dataset {name} cannot be read from {path.name}: {exc}") from None
        if meta["name"] != name:
            raise DatasetError(f"{path.name} holds the dataset {meta['name']}, not {name}")
        try:
            return split_uploaded(x, y, meta["task"] == "classification", name, train_size, val_size, seed)
        except ValueError as exc:
            raise DatasetError(str(exc)) from None

    return build


def register_uploaded(name: str, path: str | Path) -> None:
    """Serve the normalised dataset file ``path`` as dataset ``name`` in this process.

    A name already served from a file that still exists keeps that file (the content is the
    same): a run folder listed now and deleted later cannot take the data away from the
    owner's own copy.
    """
    path = Path(path)
    if not is_upload_name(name):
        raise DatasetError(f"{name!r} is not a name for an uploaded dataset (upload- and 16 hex digits)")
    current = _SERVED.get(name)
    if current is not None and current != path and current.is_file():
        return
    try:
        meta = read_meta(path)
        kind, task, classes, shape = meta["kind"], meta["task"], meta["class_names"], meta["input_shape"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path} is not a readable uploaded dataset ({exc})") from None
    if meta.get("name") != name:
        raise DatasetError(f"{path.name} holds the dataset {meta.get('name')!r}, not {name}")
    n = int(meta.get("samples", 0))
    what = "images" if kind == "image" else "sequences"
    label = f"{len(classes)} classes" if task == "classification" else "a number to predict each"
    add_dataset(name, kind=kind, task=task, class_names=tuple(classes), input_shape=tuple(shape),
                description=f"Your own data from {meta.get('source', 'an upload')}: {n:,} {what}, {label}.",
                builder=_builder(path))
    _SERVED[name] = path


def unregister_uploaded(name: str) -> None:
    remove_dataset(name)
    _SERVED.pop(name, None)


def uploaded_path(name: str) -> Path | None:
    """The file the uploaded dataset ``name`` is served from here, or None."""
    return _SERVED.get(name)


def run_data_files(name: str) -> dict[str, bytes]:
    """The files a stored run of dataset ``name`` keeps beside it: ``data.npz`` for an upload, else none."""
    if not is_upload_name(name):
        return {}
    path = _SERVED.get(name)
    if path is None:
        raise DatasetError(f"the uploaded dataset {name} is not loaded here, so the run cannot keep its data")
    return {RUN_DATA_FILE: path.read_bytes()}


def register_run_data(run_dir: Path) -> str | None:
    """Serve the data a stored run kept (``data.npz``), if it has one; returns its name."""
    path = Path(run_dir) / RUN_DATA_FILE
    if not path.is_file():
        return None
    try:
        name = read_meta(path)["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged copy: the run's config then names a dataset that is not loaded, and says so
    if not is_upload_name(name):
        return None
    register_uploaded(name, path)
    return name


_PROCESS_DIR: list[Path] = []


def serve_for_process(data: UploadedData) -> str:
    """Serve ``data`` until the process ends (the CLI's ``--data``): a temporary file, removed at exit."""
    if not _PROCESS_DIR:
        folder = Path(tempfile.mkdtemp(prefix="bigmodel-upload-"))
        atexit.register(shutil.rmtree, folder, True)
        _PROCESS_DIR.append(folder)
    path = _PROCESS_DIR[0] / f"{data.name}.npz"
    path.write_bytes(data.to_npz_bytes())
    register_uploaded(data.name, path)
    return data.name

