"""What a training run reports: the events ``Trainer.run()`` yields, and the result it leaves.

The CLI prints these events, the app's worker thread stores them for the page to draw, and
the callbacks (:mod:`.callbacks`) receive them at the named points of the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class BatchEnd:
    epoch: int  # 1-based
    batch: int  # 1-based within the epoch
    batches_per_epoch: int
    step: int  # 1-based over the run
    # the loss this batch was trained on, per-sample mean, in train mode (dropout on, after
    # augmentation): the data loss with label smoothing when the config smooths (so it cannot go
    # below the smoothed targets' entropy), and the distillation objective in a distillation;
    # without the L1/L2 penalty terms
    loss: float
    lr: float
    elapsed: float  # seconds since the run started


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    # running: the mean of BatchEnd.loss over the epoch's batches (as trained: dropout on, augmented,
    # smoothed), while the weights still changed
    train_loss: float
    train_metric: float  # running: accuracy or MAE over the epoch's batches, as trained
    val_loss: float  # eval mode on the held-out split, plain loss (no smoothing, no penalties)
    val_metric: float
    lr: float
    seconds: float  # this epoch's training + evaluation time
    samples_per_sec: float  # training samples per second of training time
    is_best: bool
    # clean: eval mode on the training set (at most TRAIN_EVAL_MAX samples of it, drawn from the
    # seed), after the epoch, plain loss; comparable with val_loss / val_metric
    train_eval_loss: float = math.nan
    train_eval_metric: float = math.nan


@dataclass(frozen=True)
class RunEnd:
    status: str  # completed | stopped | diverged | failed
    message: str
    epochs_run: int
    best_epoch: int | None
    wall_seconds: float
    samples_per_sec: float


Event = Union[BatchEnd, EpochEnd, RunEnd]


@dataclass
class RunResult:
    """What a finished run leaves behind, for the store and the summary."""

    status: str = "running"
    message: str = ""
    history: list[EpochEnd] = field(default_factory=list)
    best_epoch: int | None = None
    wall_seconds: float = 0.0
    samples_per_sec: float = 0.0
