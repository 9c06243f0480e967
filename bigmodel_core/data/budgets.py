"""Label budgets: a stratified subset of a labelled training set (for fine-tuning)."""

from __future__ import annotations

import hashlib

import torch

from .registry import DatasetError, as_int
from .seeding import class_interleaved_order


def sample_indices_per_class(y: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices of ``per_class`` examples of every class in ``y`` (a label budget).

    The examples are the first ``per_class`` of each class in a permutation seeded by
    ``seed``, so a bigger budget contains every smaller one. Returns a sorted int64 tensor
    of len(classes) * per_class indices on y's device. Raises DatasetError if
    per_class < 1 or some class has fewer examples.
    """
    per_class = as_int(per_class, "per_class")
    if per_class < 1:
        raise DatasetError(f"per_class must be at least 1, got {per_class}")
    labels = y.detach().to("cpu", torch.int64).reshape(-1)
    classes, counts = torch.unique(labels, return_counts=True)
    if counts.numel() and int(counts.min()) < per_class:
        short = int(classes[counts.argmin()])
        raise DatasetError(
            f"per_class={per_class} but class {short} has only {int(counts.min())} examples; "
            f"per_class can be at most {int(counts.min())} here"
        )
    digest = hashlib.sha256(f"label_budget|{as_int(seed, 'seed')}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    order = class_interleaved_order(labels, gen)
    chosen = order[: per_class * classes.numel()]
    return torch.sort(chosen).values.to(y.device)
