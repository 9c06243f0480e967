"""An uploaded dataset after normalisation, as one .npz file, and the name it goes by.

The file holds three arrays: ``x`` (float32, N x 1 x H x W images in [0, 1] or N x T x F
sequences), ``y`` (int64 class indices, or float32 targets for regression; shape N) and
``meta`` (a JSON text: format, name, kind, task, class_names, source, notes). The store of
uploaded datasets keeps it, every stored run of it keeps a copy (``data.npz``), and the
exported scripts read that copy; it is read with ``allow_pickle=False``, so it never runs code.

The name is ``upload-`` and the first 16 hex digits of a sha256 of the *normalised content*
(kind, task, class names, shapes, and x and y as little-endian bytes), not of the uploaded
file's bytes: the same images zipped twice, or the same table saved by two programs, get one
name, and the name says exactly which tensors a run trained on.

Self-contained (stdlib, numpy and torch only): the exported training scripts copy it.
"""

import hashlib
import json

import numpy as np
import torch

NORMALISED_FORMAT = 1


def content_name(kind, task, class_names, x, y):
    """The dataset's name: "upload-" and 16 hex digits of the sha256 of its normalised content."""
    digest = hashlib.sha256()
    head = {"format": NORMALISED_FORMAT, "kind": kind, "task": task, "class_names": list(class_names),
            "x": list(x.shape), "y": list(y.shape)}
    digest.update(json.dumps(head, sort_keys=True).encode())
    digest.update(np.ascontiguousarray(x, dtype="<f4").data)
    digest.update(np.ascontiguousarray(y, dtype="<i8" if task == "classification" else "<f4").data)
    return "upload-" + digest.hexdigest()[:16]


def read_meta(path):
    """The meta dict of a normalised dataset file, without reading its tensors."""
    with np.load(path, allow_pickle=False) as npz:
        if "meta" not in npz.files:
            raise ValueError(f"{path} is not a dataset file of the playground (it has no meta array)")
        meta = json.loads(str(npz["meta"][()]))
    if not isinstance(meta, dict) or meta.get("format") != NORMALISED_FORMAT:
        raise ValueError(f"{path} is a dataset file of another format than {NORMALISED_FORMAT}")
    return meta


def read_normalised(path):
    """(x, y, meta) of a normalised dataset file as the engine trains on them.

    x is float32; y is int64 of shape (N,) for classification and float32 of shape (N, 1) for
    regression. Raises ValueError when the file is not one, or its content does not match its
    name (a file changed after it was written).
    """
    meta = read_meta(path)
    with np.load(path, allow_pickle=False) as npz:
        if "x" not in npz.files or "y" not in npz.files:
            raise ValueError(f"{path} has no x or no y array")
        x, y = npz["x"], npz["y"]
    classification = meta["task"] == "classification"
    if x.dtype != np.float32 or y.dtype != (np.int64 if classification else np.float32) or y.ndim != 1 \
            or len(x) != len(y):
        raise ValueError(f"{path} holds arrays of the wrong type or shape: x {x.dtype} {x.shape}, "
                         f"y {y.dtype} {y.shape}")
    name = content_name(meta["kind"], meta["task"], meta["class_names"], x, y)
    if name != meta["name"]:
        raise ValueError(f"{path} does not hold the dataset {meta['name']} (its content is {name}); "
                         "it was changed after it was written")
    y_tensor = torch.from_numpy(y) if classification else torch.from_numpy(y).reshape(-1, 1)
    return torch.from_numpy(x), y_tensor, meta
