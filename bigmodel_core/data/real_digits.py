"""scikit-learn's 1,797 real 8x8 handwritten digits: handwritten_digits, sequential_digits.

They are installed with scikit-learn, so nothing is downloaded. The validation set is the
first val_size samples of a seeded class-interleaved order and the training set the next
train_size, so the validation set does not depend on train_size and both are stratified.

Self-contained (torch, scikit-learn and the seeding module only): the exported training
scripts copy it.
"""

import torch
import torch.nn.functional as F

from .seeding import class_interleaved_order, make_generator

REAL_DIGITS_SIZE = 1797


def load_sklearn_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 images as (N, 8, 8) floats in [0, 1] and their int64 labels."""
    # Imported here: scikit-learn is slow to import and only these two datasets need it.
    from sklearn.datasets import load_digits  # noqa: PLC0415

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32) / 16.0
    return images, torch.as_tensor(bunch.target, dtype=torch.int64)


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
