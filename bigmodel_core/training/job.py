"""One background training job: its settings, its controls, and the progress the page reads.

A :class:`Job` belongs to an owner (a browser session) and is run by a worker of the shared
:class:`~bigmodel_core.training.jobs.JobPool`. The worker records the trainer's events into it;
the page never touches the trainer and reads a :class:`Snapshot` instead, a consistent copy
taken under the job's lock.

A job can instead follow an identical training that other learners share
(:mod:`.sharing`): then its snapshot reads that training's progress, and its Stop and Pause
leave it rather than stop it for everyone.
"""

from __future__ import annotations

import copy
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

from bigmodel_core.config.specs import ExperimentConfig

from .control import Control
from .events import BatchEnd, EpochEnd
from .trainer import Trainer

if TYPE_CHECKING:
    from .jobs import JobPool
    from .sharing import SharedTraining

MAX_POINTS = 4000  # per-batch points kept per job; older points are thinned, never invented

EpochHook = Callable[["Job", Trainer, EpochEnd], None]
TrainerFactory = Callable[["Job"], Trainer]

FINISHED = ("completed", "stopped", "diverged", "failed")
ACTIVE = ("queued", "running", "paused")  # a job exists and has not finished


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of a job's progress, safe to read from the page thread."""

    job_id: str
    label: str
    group: str | None
    status: str  # queued | running | paused | completed | stopped | diverged | failed
    message: str
    queue_position: int | None
    steps: list[int]
    batch_losses: list[float]
    epochs: list[dict[str, float]]
    step: int
    total_steps: int
    eta_seconds: float | None
    samples_per_sec: float | None
    epoch_seconds: float | None
    lr: float | None
    device: str
    run_id: str | None
    summary: dict[str, Any] | None
    extras: dict[str, Any]
    config: ExperimentConfig
    task: str
    joined: bool = False  # this job joined an identical training that was already under way (see .sharing)
    shared_with: int = 0  # other learners following the same training right now

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def progress(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


@dataclass
class Job:
    config: ExperimentConfig
    owner: str
    label: str = ""
    group: str | None = None
    kind: str = "train"
    init_state: dict[str, torch.Tensor] | None = None
    make_trainer: TrainerFactory | None = None
    epoch_hooks: list[EpochHook] = field(default_factory=list)
    save: bool = True
    job_id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    control: Control = field(default_factory=Control)
    status: str = "queued"
    message: str = ""
    created: float = field(default_factory=time.time)
    last_poll: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: list[int] = []
        self._losses: list[float] = []
        self._stride = 1
        self._epochs: list[dict[str, float]] = []
        self._step = 0
        self._total = self.config.training.epochs * math.ceil(
            self.config.data.train_size / self.config.training.batch_size)
        self._elapsed = 0.0
        self._lr: float | None = None
        self._sps: float | None = None
        self._epoch_seconds: float | None = None
        self._device = ""
        self._task = ""
        self.run_id: str | None = None
        self.summary: dict[str, Any] | None = None
        self.extras: dict[str, Any] = {}
        self.trainer: Trainer | None = None
        self.final_state: dict[str, torch.Tensor] | None = None
        self.pool: JobPool | None = None
        self.stop_reason = ""
        self.shared: SharedTraining | None = None  # set when the job carries or follows a shared training
        self.joined = False  # it joined one already under way
        self.left = False  # it followed one and left it
        self._progressed = threading.Event()  # set by the first batch, or when the job ends without one
        self._ended = threading.Event()  # set once the job is finished (any of FINISHED) for good

    # --- control from the page ----------------------------------------------------------
    def touch(self) -> None:
        self.last_poll = time.monotonic()
        if self._following():
            self.shared.carrier.touch()

    def _following(self) -> bool:
        return self.shared is not None and self.shared.following(self)

    def _changed(self) -> None:
        """Tell the members of a shared training that its state changed (never under a job lock)."""
        if self.shared is not None and self.shared.carrier is self:
            self.shared.sync()

    def stop(self) -> None:
        if self._following():
            self.shared.leave(self, pausing=False)
            return
        self.control.stop()
        with self._lock:
            if self.status == "queued":
                self.status, self.message = "stopped", self.stop_reason or "stopped before it started"
                self._progressed.set()
                self._ended.set()
        self._changed()

    def pause(self) -> None:
        if self._following():
            self.shared.leave(self, pausing=True)
            return
        self.control.pause()
        with self._lock:
            if self.status == "running":
                self.status = "paused"
        self._changed()

    def resume(self) -> None:
        if self._following():
            if self.status == "paused":  # only a training's sole follower can have paused it
                self.shared.carrier.resume()
            return
        self.control.resume()
        with self._lock:
            if self.status == "paused":
                self.status = "running"
        self._changed()

    def wait_for_first_step(self, timeout: float) -> bool:
        """Block until the first batch is recorded or the job ended; False on timeout.

        Lets a page that just started a job draw it with its first point instead of polling fast.
        """
        return self._progressed.wait(timeout)

    def wait_until_finished(self, timeout: float) -> bool:
        """Block until the job has finished (its final status and results are set); False on timeout."""
        return self._ended.wait(timeout)

    def set_extra(self, key: str, value: Any) -> None:
        if self._following():  # e.g. the input the inspect area probes: the training's hooks read it
            self.shared.carrier.set_extra(key, value)
            return
        with self._lock:
            self.extras[key] = value

    # --- recording from the worker --------------------------------------------------------
    def record(self, ev: Any) -> None:
        first = isinstance(ev, BatchEnd) and not self._progressed.is_set()
        self._record(ev)
        if first:
            self._changed()

    def _record(self, ev: Any) -> None:
        with self._lock:
            if isinstance(ev, BatchEnd):
                self._step = ev.step
                self._total = ev.batches_per_epoch * self.config.training.epochs
                self._elapsed = ev.elapsed
                self._lr = ev.lr
                self._progressed.set()
                if ev.step % self._stride == 0:
                    self._steps.append(ev.step)
                    self._losses.append(ev.loss)
                    if len(self._steps) > MAX_POINTS:
                        # thin to every other measured point (never interpolate)
                        self._steps = self._steps[::2]
                        self._losses = self._losses[::2]
                        self._stride *= 2
            elif isinstance(ev, EpochEnd):
                self._epochs.append({"epoch": ev.epoch, "train_loss": ev.train_loss, "val_loss": ev.val_loss,
                                     "train_metric": ev.train_metric, "val_metric": ev.val_metric,
                                     "train_eval_loss": ev.train_eval_loss,
                                     "train_eval_metric": ev.train_eval_metric,
                                     "lr": ev.lr, "seconds": ev.seconds, "step": self._step})
                self._sps = ev.samples_per_sec
                self._epoch_seconds = ev.seconds

    def snapshot(self, position: int | None = None) -> Snapshot:
        shared = self.shared
        # a member of a shared training reads the training's progress (kept by its carrier), its own status
        src = shared.carrier if shared is not None and not self.left else self
        others = len(shared.watching()) - 1 if shared is not None and self._following() else 0
        with self._lock:
            own = dict(job_id=self.job_id, label=self.label, group=self.group, status=self.status,
                       message=self.message, run_id=self.run_id, summary=copy.deepcopy(self.summary),
                       config=self.config, joined=self.joined)
        with src._lock:
            eta = None
            if src._step and own["status"] in ("running", "paused"):
                eta = src._elapsed / src._step * max(0, src._total - src._step)
            return Snapshot(
                **own, queue_position=position, steps=list(src._steps),
                batch_losses=list(src._losses), epochs=[dict(e) for e in src._epochs], step=src._step,
                total_steps=src._total, eta_seconds=eta, samples_per_sec=src._sps,
                epoch_seconds=src._epoch_seconds, lr=src._lr, device=src._device, extras=dict(src.extras),
                task=src._task, shared_with=max(0, others),
            )
