"""scikit-learn's 1,797 real 8x8 handwritten digits: handwritten_digits, sequential_digits.

They are installed with scikit-learn (a gzipped CSV in its package data), so nothing is
downloaded. The file is read directly, the way ``sklearn.datasets.load_digits`` reads it, without
importing scikit-learn: its import pulls in SciPy and costs a server about 70 MB. The validation
set is the first val_size samples of a seeded class-interleaved order and the training set the
next train_size, so the validation set does not depend on train_size and both are stratified.

Self-contained (the standard library, numpy, torch and the seeding module only): the exported
training scripts copy it.
"""

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .seeding import class_interleaved_order, make_generator

REAL_DIGITS_SIZE = 1797


def digits_file() -> Path:
    """scikit-learn's digits.csv.gz, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the real digits datasets need scikit-learn installed: it ships the images")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"scikit-learn is installed without its digits file ({path})")
    return path


def load_sklearn_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 images as (N, 8, 8) floats in [0, 1] and their int64 labels."""
    with gzip.open(digits_file(), mode="rt", encoding="utf-8") as f:
        table = np.loadtxt(f, delimiter=",")  # 64 pixel columns (0-16), then the label
    images = torch.as_tensor(table[:, :-1].reshape(-1, 8, 8), dtype=torch.float32) / 16.0
    return images, torch.as_tensor(table[:, -1].astype(np.int64))


def split_real_digits(
    name: str, train_size: int, val_size: int, seed: int, digits: tuple[torch.Tensor, torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_val, y_val) as N x 8 x 8 images; ``digits`` skips loading them again."""
    if train_size + val_size > REAL_DIGITS_SIZE:
        raise ValueError(
            f"the digits set has {REAL_DIGITS_SIZE:,} images; train_size + val_size = {train_size + val_size:,}"
        )
    images, labels = digits if digits is not None else load_sklearn_digits()
    order = class_interleaved_order(labels, make_generator(name, "split", seed))
    val_idx = order[:val_size]
    train_idx = order[val_size : val_size + train_size]
    return images[train_idx], labels[train_idx], images[val_idx], labels[val_idx]


def as_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """N x 8 x 8 digits as N x 1 x size x size images (bilinear keeps values in [0, 1])."""
    x = x.unsqueeze(1)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.contiguous()
