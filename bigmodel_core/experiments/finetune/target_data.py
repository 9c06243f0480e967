"""The target data's label budget in numbers: how many labelled examples the split leaves, and how
much one validation example weighs in the accuracy.

A learner fine-tuning on their own images gives a few labelled images per class; 20% of each
class is held out for validation, so the training budget is smaller than what they gave, and
the validation figure rests on a handful of images. :func:`label_budget` counts both from the
built dataset, and :meth:`LabelBudget.sentences` says them plainly (the Fine-tune page and the
CLI's ``finetune --data`` print the same sentences).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bigmodel_core.data import Dataset

# the accuracy at which the standard error of the validation figure is quoted (a typical result)
QUOTED_ACCURACY = 0.8


@dataclass(frozen=True)
class LabelBudget:
    """Labelled examples per class in each part of the split (one entry in all, for regression)."""

    task: str
    classes: tuple[str, ...]  # () for regression
    train: tuple[int, ...]  # per class (or one total for regression)
    val: tuple[int, ...]

    @property
    def most_per_class(self) -> int:
        """The largest budget every class can meet: the smallest class's training examples."""
        return min(self.train) if self.train else 0

    @property
    def val_total(self) -> int:
        return sum(self.val)

    @property
    def one_example_points(self) -> float:
        """How many accuracy points one validation example is worth."""
        return 100.0 / self.val_total if self.val_total else math.inf

    @property
    def standard_error_points(self) -> float:
        """The standard error of a validation accuracy of QUOTED_ACCURACY on this many examples, in points."""
        n = self.val_total
        return 100.0 * math.sqrt(QUOTED_ACCURACY * (1 - QUOTED_ACCURACY) / n) if n else math.inf

    def sentences(self, unit: str = "images") -> list[str]:
        """Plain sentences about the budget (no Markdown)."""
        if self.task != "classification":
            return [f"The split keeps {self.train[0]:,} labelled sequences for training and holds out "
                    f"{self.val[0]:,} for validation; label budgets go up to {self.train[0]:,}."]
        k = len(self.classes)
        given = [t + v for t, v in zip(self.train, self.val)]
        out = [f"{_span(given)} labelled {unit} per class in {k} classes ({sum(given):,} in all).",
               f"The split holds out {_span(self.val)} per class for validation ({self.val_total:,} in all) and "
               f"keeps {_span(self.train)} per class for training, so label budgets go up to "
               f"{self.most_per_class:,} per class (the smallest class).",
               f"Validation rests on {self.val_total:,} {unit}: one {unit[:-1]} more or less right moves the accuracy "
               f"by {self.one_example_points:.1f} points, and at {QUOTED_ACCURACY:.0%} accuracy its standard error "
               f"is about {self.standard_error_points:.0f} points, so differences smaller than that are noise."]
        return out


def _span(counts: list[int] | tuple[int, ...]) -> str:
    low, high = min(counts), max(counts)
    return f"{low:,}" if low == high else f"{low:,} to {high:,}"


def label_budget(dataset: Dataset) -> LabelBudget:
    """The label budget of ``dataset``'s split (what a run of it trains and validates on)."""
    info = dataset.info
    if info.task != "classification":
        return LabelBudget(info.task, (), (len(dataset.y_train),), (len(dataset.y_val),))
    k = len(info.class_names)
    train = torch.bincount(dataset.y_train.reshape(-1).cpu(), minlength=k).tolist()
    val = torch.bincount(dataset.y_val.reshape(-1).cpu(), minlength=k).tolist()
    return LabelBudget(info.task, tuple(info.class_names), tuple(train), tuple(val))
