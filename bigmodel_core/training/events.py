"""What a training run reports: the events ``Trainer.run()`` yields, and the result it leaves.

The CLI prints these events, the app's worker thread stores them for the page to draw, and
the callbacks (:mod:`.callbacks`) receive them at the named points of the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class BatchEnd:
    epoch: int  # 1-based
    batch: int  # 1-based within the epoch
    batches_per_epoch: int
    step: int  # 1-based over the run
    loss: float  # data loss of this batch (per-sample mean), without L1/L2 penalties
    lr: float
    elapsed: float  # seconds since the run started


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    train_loss: float  # per-sample mean over the epoch, train mode, without penalties
    train_metric: float  # accuracy or MAE over the epoch's batches
    val_loss: float  # eval mode on the held-out split
    val_metric: float
    lr: float
    seconds: float  # this epoch's training + validation time
    samples_per_sec: float  # training samples per second of training time
    is_best: bool


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
