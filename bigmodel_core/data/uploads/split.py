"""The train/validation split of an uploaded dataset: deterministic, stratified, sizes as caps.

20% of every class (at least one sample, never all of them) is held out for validation, the
rest is for training, both drawn from one permutation seeded from (name, seed): the same
seed gives the same split, and the validation part does not depend on train_size. Each part
is ordered class by class in turn (one of every class, then a second of every class, ...),
so capping it to train_size or val_size keeps every class in it. Asking for more than a part
holds takes all of it, and a note says so. Regression sets hold out 20% of the samples.

Self-contained (torch and the seeding module only): the exported training scripts copy it.
"""

import torch

from ..seeding import make_generator

VAL_PERCENT = 20


def held_out(count):
    """How many of ``count`` samples (of one class, or all of a regression set) go to validation."""
    return max(1, min(count - 1, (count * VAL_PERCENT + 50) // 100))


def interleave(parts):
    """The indices of ``parts`` (one tensor per class) in turn: the first of each, then the second, ..."""
    index = torch.cat(parts)
    rank = torch.cat([torch.arange(len(p)) for p in parts])
    owner = torch.cat([torch.full((len(p),), i, dtype=torch.int64) for i, p in enumerate(parts)])
    return index[torch.argsort(rank * len(parts) + owner)]


def split_uploaded(x, y, classification, name, train_size, val_size, seed):
    """(x_train, y_train, x_val, y_val, notes) of an uploaded dataset.

    ``notes`` is a list of plain sentences about sizes that were capped. Raises ValueError when
    a class has fewer than 2 samples, or train_size or val_size is smaller than the number of
    classes (every class must be in both parts).
    """
    perm = torch.randperm(len(y), generator=make_generator(name, "split", seed))
    if classification:
        labels = y[perm]
        val_parts, train_parts = [], []
        classes = torch.unique(labels).tolist()
        for cls in classes:
            members = perm[labels == cls]
            if len(members) < 2:
                raise ValueError(f"class {cls} of {name} has {len(members)} sample; every class needs at least 2")
            cut = held_out(len(members))
            val_parts.append(members[:cut])
            train_parts.append(members[cut:])
        for option, size in (("train_size", train_size), ("val_size", val_size)):
            if size < len(classes):
                raise ValueError(f"{option} {size} is smaller than the {len(classes)} classes of {name}; every class "
                                 f"needs a sample in both parts, so {option} must be at least {len(classes)}")
        val_pool, train_pool = interleave(val_parts), interleave(train_parts)
        share = f"{VAL_PERCENT}% of each class"
    else:
        if len(y) < 2:
            raise ValueError(f"{name} has {len(y)} sample; it needs at least 2, one to train on and one to validate")
        cut = held_out(len(y))
        val_pool, train_pool = perm[:cut], perm[cut:]
        share = f"{VAL_PERCENT}% of the samples"
    notes = []
    if train_size > len(train_pool):
        notes.append(f"Asked for {train_size:,} training samples; the file has {len(train_pool):,} once {share} is "
                     f"held out for validation, so all {len(train_pool):,} are used.")
    if val_size > len(val_pool):
        notes.append(f"Asked for {val_size:,} validation samples; {share} is held out for validation, "
                     f"{len(val_pool):,} samples, so all of them are used.")
    train_idx, val_idx = train_pool[:train_size], val_pool[:val_size]
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx], notes
