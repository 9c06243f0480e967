"""Example images for the convolution and pooling demos, taken from the playground's datasets."""

from __future__ import annotations

import numpy as np

from bigmodel_core.data import build_dataset

EXAMPLE_SOURCES: dict[str, dict[str, object]] = {
    "handwritten digit (8x8)": {"name": "handwritten_digits", "image_size": 8},
    "synthetic digit (28x28)": {"name": "synthetic_digits"},
}


def example_images(source: str, count: int = 20, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """``count`` images (N x H x W, values in [0, 1]) and their labels from a dataset."""
    if source not in EXAMPLE_SOURCES:
        raise ValueError(f"unknown example source {source!r}; choose one of: {', '.join(EXAMPLE_SOURCES)}")
    opts = dict(EXAMPLE_SOURCES[source])
    name = str(opts.pop("name"))
    ds = build_dataset(name, train_size=1, val_size=count, seed=seed, **opts)  # type: ignore[arg-type]
    labels = [ds.info.class_names[int(y)] for y in ds.y_val]
    return ds.x_val[:, 0].numpy().astype(np.float64), labels
