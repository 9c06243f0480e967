"""An uploaded image set made to fit a model that reads another image size (a pretrained CNN).

A CNN's dense layers are sized for the image side it was trained on (the shipped letters CNN
reads 28 x 28): a learner's 16 x 16 images must be resized before its weights can be loaded.
The resized set is a new dataset with a name of its own (its content changed), and a note says
what was done.
"""

from __future__ import annotations

import numpy as np

from .errors import UploadedDataError, shown
from .images import resize
from .uploaded import UploadedData

_CHUNK = 1024  # images resized at once


def fit_images(data: UploadedData, side: int) -> UploadedData:
    """``data`` with every image resized to ``side`` x ``side`` (``data`` itself when they already are).

    Raises UploadedDataError for sequences: a sequence has no image size to change."""
    if data.kind != "image":
        raise UploadedDataError(f"{shown(data.source, 60)} holds sequences; only images can be resized to fit a CNN")
    height, width = data.x.shape[2:]
    if (height, width) == (side, side):
        return data
    x = np.empty((len(data.x), 1, side, side), dtype=np.float32)
    for start in range(0, len(data.x), _CHUNK):
        x[start:start + _CHUNK, 0] = resize(data.x[start:start + _CHUNK, 0], side)
    note = (f"Resized from {width} x {height} to {side} x {side} pixels to fit the model's input "
            f"(the pretrained weights read {side} x {side} images).")
    return UploadedData(data.kind, data.task, x, data.y, data.class_names, data.source, (*data.notes, note))
