"""Seeded random numbers for the dataset generators.

Every draw comes from a ``torch.Generator`` seeded from ``(dataset name, split, seed)``;
the global torch and numpy RNGs are never used or touched, so the data is the same in
every process and on every machine.

Self-contained (stdlib and torch only): the exported training scripts copy this module.
"""

import hashlib

import torch


def make_generator(name: str, split: str, seed: int) -> torch.Generator:
    """A CPU generator seeded from (name, split, seed).

    hashlib rather than hash(): Python salts str hashes per process, and the data must be
    identical across processes and machines.
    """
    digest = hashlib.sha256(f"{name}|{split}|{seed}".encode()).digest()
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    return gen


def uniform(gen: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    """n floats drawn uniformly from [low, high)."""
    return low + (high - low) * torch.rand(n, generator=gen)


def balanced_labels(n: int, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """Labels as equal as possible per class, in random order.

    Balanced rather than i.i.d. so every class appears once n >= num_classes and a
    majority-class guess never looks good.
    """
    labels = torch.arange(n, dtype=torch.int64) % num_classes
    return labels[torch.randperm(n, generator=gen)]


def class_interleaved_order(y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A seeded permutation of range(len(y)) that cycles through the classes.

    Within a seeded shuffle, each sample gets its rank among the samples of its class;
    sorting by (rank, position) puts one sample of every class first, then a second of
    every class, and so on. Any prefix is therefore (almost) stratified, which gives
    stratified splits and label budgets.
    """
    n = y.numel()
    perm = torch.randperm(n, generator=gen)
    y_perm = y[perm]
    rank = torch.empty(n, dtype=torch.int64)
    for cls in torch.unique(y_perm):
        where = (y_perm == cls).nonzero(as_tuple=True)[0]
        rank[where] = torch.arange(where.numel())
    key = rank * n + torch.arange(n)
    return perm[torch.argsort(key)]


def split_samples(sample, name: str, train_size: int, val_size: int, seed: int) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_val, y_val) from ``sample(n, gen)``, one generator per split.

    The validation set has its own generator, so it depends only on (name, val_size,
    seed): changing train_size leaves it unchanged, which keeps comparisons fair.
    """
    x_val, y_val = sample(val_size, make_generator(name, "val", seed))
    x_train, y_train = sample(train_size, make_generator(name, "train", seed))
    return x_train, y_train, x_val, y_val
