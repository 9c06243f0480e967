"""The counters of one run of :meth:`Trainer.run`, and the batch losses waiting to be read.

A batch's loss is a tensor on the training device. Reading it (``.item()``) makes the host wait
until the device has finished everything queued so far: free on a CPU, but on a GPU a read
per batch would keep the GPU idle while Python queues the next step. So losses are queued here
and read in groups (:func:`~.plain_loop.loss_read_every`: every batch on a CPU, 16 at a time on a
GPU), each group with one transfer; the run's events come out per batch as before, a group late.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import torch

from .events import BatchEnd

if TYPE_CHECKING:
    from .trainer import Trainer


class PendingLosses:
    """Batch losses still on the device, each with its event, read together."""

    def __init__(self, every: int):
        self.every = every
        self._items: list[tuple[torch.Tensor, BatchEnd]] = []

    def add(self, loss: torch.Tensor, event: BatchEnd) -> None:
        self._items.append((loss.detach(), event))

    def due(self, last_of_epoch: bool) -> bool:
        return bool(self._items) and (len(self._items) >= self.every or last_of_epoch)

    def read(self) -> list[BatchEnd]:
        """The queued events with their losses, oldest first (one device-to-host read)."""
        if not self._items:
            return []
        tensors = [t for t, _ in self._items]
        values = torch.stack(tensors).tolist() if len(tensors) > 1 else [tensors[0].item()]
        events = [replace(ev, loss=float(v)) for v, (_, ev) in zip(values, self._items)]
        self._items = []
        return events


class LoopState:
    """The counters of one run, shared by the named steps of :meth:`Trainer.run`."""

    def __init__(self, trainer: Trainer, read_every: int):
        cfg = trainer.config
        self.epochs = cfg.training.epochs
        self.n = len(trainer.x_train)
        self.batches = math.ceil(self.n / cfg.training.batch_size)
        self.total_steps = self.epochs * self.batches
        self.augment = cfg.data.augment and trainer.info.kind == "image"
        self.best_val = math.inf
        self.since_best = 0
        self.step = 0
        self.first_loss: float | None = None
        self.t_start = time.perf_counter()
        self.paused_total = 0.0
        self.train_time = 0.0
        self.samples_seen = 0
        self.status, self.message = "completed", ""
        self.losses = PendingLosses(read_every)
        # per epoch
        self.t_epoch = self.t_start
        self.paused_epoch = 0.0
        self.epoch_train_time = 0.0
        self.batch_size = cfg.training.batch_size
        # the epoch's running train loss (losses read to the host, each times its batch's size) and
        # what its running metric keeps of each batch (plain_loop.metric_part), summed at its end
        self.loss_sum = 0.0
        self.metric_parts: list[torch.Tensor] = []
        self.metric_targets: list[torch.Tensor] = []
        self.seen = 0
        self.lr = 0.0

    def samples_in(self, batch: int) -> int:
        """How many samples the 1-based ``batch`` of an epoch holds (the last one may hold fewer)."""
        return min(self.batch_size, self.n - (batch - 1) * self.batch_size)

    def diverged(self, ev: BatchEnd, exploded: float, lr: float) -> bool:
        """Whether the loss of ``ev`` ended the run (NaN, inf, or ``exploded`` times the first batch's);
        if so, the status and a message that says what to change."""
        if self.first_loss is None:
            self.first_loss = max(ev.loss, 1e-3)
        if math.isfinite(ev.loss) and ev.loss <= exploded * self.first_loss:
            return False
        self.status = "diverged"
        what = f"became {ev.loss}" if not math.isfinite(ev.loss) else \
            f"exploded to {ev.loss:.3g} (it started at {self.first_loss:.3g})"
        self.message = (f"the loss {what} at epoch {ev.epoch}, batch {ev.batch}: "
                        f"the learning rate {lr:g} is probably too high; lower it "
                        "(try 10x smaller) or turn on gradient clipping")
        return True
