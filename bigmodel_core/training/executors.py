"""Executors: what the job pool calls to run one training, and the default one (threads in this process).

The :class:`~bigmodel_core.training.jobs.JobPool` owns the queue, the cap, owners, watchdog and
the run store; an executor only runs one job to its end. It records the trainer's events into
the job as they happen (the page polls the job's snapshot), runs the job's epoch hooks, obeys
the job's :class:`~bigmodel_core.training.control.Control` within a batch, and returns an
:class:`Outcome` (final weights, summary, metrics rows) that the pool writes to the server's run
store. It raises when the training could not run; the pool then marks the job failed with the
message and goes on.

- ``threads`` (the default): the pool's worker thread trains in this process, as on a laptop or
  Streamlit Community Cloud.
- ``ray``: each training runs on a Ray cluster in an actor of its own; the server stays the
  driver (:mod:`.ray_executor`, loaded only when chosen, so Ray is never imported otherwise).

Choose with ``BIGMODEL_EXECUTOR=threads|ray`` (:func:`make_executor`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from bigmodel_core.config.specs import ExperimentConfig

from .devices import device_label, resolve_device
from .events import EpochEnd, RunEnd
from .store import history_rows
from .trainer import Trainer

if TYPE_CHECKING:
    from .job import Job

EXECUTORS = ("threads", "ray")


@dataclass
class Outcome:
    """What a finished training hands back to the pool."""

    status: str  # completed | stopped | diverged | failed
    message: str
    summary: dict[str, Any]
    state: dict[str, torch.Tensor]  # final weights, on the CPU
    rows: list[dict[str, Any]]  # metrics.csv rows, one per epoch
    trainer: Trainer | None = None  # kept for the inspect area when the training ran in this process


class Executor(Protocol):
    """Runs one job to its end (see the module docstring)."""

    name: str

    def slots(self, threads_per_job: int) -> int | None:
        """How many trainings it can run at once (None: the pool's own default)."""

    def trains_on_cpu(self, config: ExperimentConfig) -> bool:
        """Whether ``config`` would train on a CPU there (identical runs are shared only then)."""

    def run(self, job: Job) -> Outcome | None:
        """Train ``job``; None if the trainer ended without a result."""

    def close(self) -> None:
        """Let go of what it holds (the pool is shutting down)."""


def run_here(job: Job) -> Outcome | None:
    """Train ``job`` in this thread: build its trainer, record every event into it, run its hooks."""
    trainer = job.make_trainer(job) if job.make_trainer else Trainer(
        job.config, control=job.control, init_state=job.init_state)
    job.trainer = trainer
    with job._lock:
        job._device = device_label(trainer.device)
        job._task = trainer.info.task
    end: RunEnd | None = None
    for ev in trainer.run():
        job.record(ev)
        if isinstance(ev, EpochEnd):
            for hook in job.epoch_hooks:
                try:
                    hook(job, trainer, ev)
                except Exception as exc:  # noqa: BLE001 - a probe must never kill training
                    job.set_extra("hook_error", f"{type(exc).__name__}: {exc}")
        elif isinstance(ev, RunEnd):
            end = ev
    if end is None:
        return None
    state = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}
    return Outcome(end.status, end.message, trainer.summary(), state, history_rows(trainer.result.history), trainer)


class ThreadExecutor:
    """Trains in the pool's worker thread, in this process (the default)."""

    name = "threads"

    def slots(self, threads_per_job: int) -> int | None:
        return None

    def trains_on_cpu(self, config: ExperimentConfig) -> bool:
        try:
            return resolve_device(config.training.device).type == "cpu"
        except Exception:  # noqa: BLE001 - a device this machine lacks fails when it trains, not here
            return False

    def run(self, job: Job) -> Outcome | None:
        return run_here(job)

    def close(self) -> None:
        pass


def executor_name(name: str | None = None) -> str:
    """The executor asked for (``name``, else ``BIGMODEL_EXECUTOR``, else threads), checked."""
    name = (name or os.environ.get("BIGMODEL_EXECUTOR") or "threads").strip().lower()
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)} "
                         "(BIGMODEL_EXECUTOR or --executor)")
    return name


def make_executor(name: str | None = None, threads_per_job: int | None = None) -> Executor:
    """The executor ``name`` (see :func:`executor_name`); Ray's connects to RAY_ADDRESS or starts a local Ray."""
    if executor_name(name) == "ray":
        # Ray is optional (requirements-ray.txt) and takes seconds to import: only a server or a
        # command that asked for it pays for it, and a laptop install never needs it
        try:
            from .ray_executor import RayExecutor  # noqa: PLC0415
        except ImportError as exc:
            raise ValueError(f"the ray executor needs Ray ({exc.name or exc} is not installed): "
                             "python -m pip install -r requirements-ray.txt") from None
        return RayExecutor(threads_per_job=threads_per_job)
    return ThreadExecutor()
