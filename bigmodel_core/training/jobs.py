"""Background training jobs for a server that many people share.

One process-wide :class:`JobPool` caps how many trainings run at once; the rest wait in
a FIFO queue and can see their position. Each :class:`Job` belongs to an owner (a
browser session): every lookup is by (owner, job id), so nobody can see or stop another
person's job. Workers never touch the UI; the page polls :meth:`Job.snapshot`. A job no
page has polled for ``idle_stop_seconds`` is stopped (its tab was closed).

Opt-in monitoring: with ``BIGMODEL_STATS_FILE=/path/stats.json`` in the environment (or
``stats_file=``) the pool rewrites that file (atomically) whenever a job starts or ends, with
``running``, ``peak_running``, ``queued``, ``max_workers``, ``pid`` and ``time``, so a load
test or an operator can check the concurrency cap from outside the server process.

A job's own state and its :class:`~bigmodel_core.training.job.Snapshot` are in :mod:`.job`; this
module re-exports them with the pool.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import secrets
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any, Callable

import torch

from bigmodel_core.limits import current_limits

from .devices import device_label
from .events import EpochEnd, RunEnd
from .job import ACTIVE, FINISHED, EpochHook, Job, Snapshot, TrainerFactory
from .store import RunStore, StoreError, atomic_write_text, history_rows
from .trainer import Trainer
from .workspace import clear_job_record, write_job_record

__all__ = ["ACTIVE", "FINISHED", "KEEP_TRAINERS", "RELEASE_AFTER", "EpochHook", "Job", "JobPool", "Snapshot",
           "TrainerFactory", "release_free_memory"]

KEEP_TRAINERS = 8  # finished jobs per owner that keep their Trainer for probes (a comparison has up to 8 runs)
RELEASE_AFTER = 45.0  # seconds without a poll from a session before its finished jobs let go of their Trainers


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
        return None


_MALLOC_TRIM = _load_malloc_trim()


def release_free_memory() -> None:
    """Hand memory that Python and torch freed back to the operating system (glibc only).

    glibc keeps freed blocks in per-thread arenas; a server whose pages and trainings run on
    many threads otherwise keeps the high-water mark of every training as resident memory.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class JobPool:
    """A bounded worker pool shared by every session of the process."""

    def __init__(self, max_workers: int | None = None, store: RunStore | None = None,
                 threads_per_job: int | None = None, idle_stop_seconds: float | None = None,
                 watchdog_interval: float = 5.0, stats_file: str | os.PathLike | None = None):
        lim = current_limits()
        self.max_workers = max_workers or lim.max_concurrent_jobs
        self.threads_per_job = threads_per_job or lim.threads_per_job
        self.idle_stop_seconds = idle_stop_seconds if idle_stop_seconds is not None else lim.idle_stop_seconds
        self.store = store
        self._lock = threading.Lock()
        self._queue: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._running: set[str] = set()
        self._workers: list[threading.Thread] = []
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self.peak_running = 0
        stats_file = stats_file or os.environ.get("BIGMODEL_STATS_FILE") or None
        self.stats_file = Path(stats_file) if stats_file else None
        self._stats_lock = threading.Lock()
        # torch's intra-op thread count is process-wide: set it once so that the running
        # jobs together use about the machine's cores instead of each grabbing all of them
        torch.set_num_threads(self.threads_per_job)
        # The first optimizer a process builds imports torch._dynamo (about 2 s); pay that when
        # the server starts, not between a learner's click on Train and the first point.
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        for i in range(self.max_workers):
            t = threading.Thread(target=self._worker, name=f"bigmodel-worker-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        self._watchdog = threading.Thread(target=self._watch, args=(watchdog_interval,), name="bigmodel-watchdog",
                                          daemon=True)
        self._watchdog.start()

    # --- public ----------------------------------------------------------------------------
    def submit(self, job: Job) -> Job:
        job.pool = self
        with self._lock:
            if self._closed:
                raise RuntimeError("the job pool is shut down")
            self._jobs[job.job_id] = job
            self._queue.append(job)
            self._wake.notify()
        self._record(job, True)
        self._write_stats()
        return job

    def get(self, owner: str, job_id: str) -> Job | None:
        """The job if it exists and belongs to ``owner``; None otherwise (no hint which)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or not isinstance(owner, str):
            return None
        # compared as bytes: compare_digest refuses non-ASCII str, and a lookup must never raise
        return job if secrets.compare_digest(job.owner.encode(), owner.encode()) else None

    def jobs_of(self, owner: str) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.owner == owner]

    def jobs_of_kind(self, owner: str, kind: str) -> list[Job]:
        """The owner's jobs of one kind (train, compare, finetune), oldest first."""
        return sorted((j for j in self.jobs_of(owner) if j.kind == kind), key=lambda j: j.created)

    def position(self, job: Job) -> int | None:
        with self._lock:
            for i, j in enumerate(self._queue):
                if j is job:
                    return i + 1
        return None

    def snapshot(self, owner: str, job_id: str, touch: bool = True) -> Snapshot | None:
        job = self.get(owner, job_id)
        if job is None:
            return None
        if touch:
            job.touch()
        return job.snapshot(self.position(job))

    def stop_group(self, owner: str, group: str) -> int:
        jobs = [j for j in self.jobs_of(owner) if j.group == group and j.status not in FINISHED]
        for j in jobs:
            j.stop()
        return len(jobs)

    def forget(self, owner: str, job_id: str) -> None:
        job = self.get(owner, job_id)
        if job is not None and job.status in FINISHED:
            with self._lock:
                self._jobs.pop(job_id, None)

    @property
    def running_count(self) -> int:
        with self._lock:
            return len(self._running)

    @property
    def queued_count(self) -> int:
        with self._lock:
            return len(self._queue)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())
            self._wake.notify_all()
        for j in jobs:
            j.stop()

    # --- workers -----------------------------------------------------------------------------
    def _next(self) -> Job | None:
        job = self._take()
        if job is not None:
            self._write_stats()
        return job

    def _take(self) -> Job | None:
        with self._lock:
            while not self._closed:
                while self._queue:
                    job = self._queue.popleft()
                    with job._lock:  # out of the queue and running in one step: never "queued, no position"
                        take = job.status == "queued"
                        if take:
                            job.status = "running"
                    if take:
                        self._running.add(job.job_id)
                        self.peak_running = max(self.peak_running, len(self._running))
                        return job
                    self._record(job, False)  # stopped while queued: it ended without running
                self._wake.wait(timeout=1.0)
            return None

    def _worker(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                self._run(job)
            finally:
                self._record(job, False)  # before the job reads as ended: an ended job has no record
                job._progressed.set()
                job._ended.set()
                with self._lock:
                    self._running.discard(job.job_id)
                    self._trim_finished(job.owner)
                self._write_stats()
                # A finished training leaves cyclic garbage (autograd graphs, probe figures): collect it
                # here, once per job and off the page thread, rather than after every page rerun.
                gc.collect()
                release_free_memory()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"running": len(self._running), "peak_running": self.peak_running, "queued": len(self._queue),
                    "max_workers": self.max_workers, "pid": os.getpid(), "time": time.time()}

    def _record(self, job: Job, active: bool) -> None:
        """Keep a small record of each active job in its owner's workspace folder, so that a restarted
        server can tell the learner which jobs it interrupted (see bigmodel_core.training.workspace)."""
        if self.store is None:
            return
        try:
            if active:
                write_job_record(self.store.root, job.owner, job.job_id, {"kind": job.kind, "label": job.label})
            else:
                clear_job_record(self.store.root, job.owner, job.job_id)
        except OSError:
            pass  # bookkeeping must never break training

    def _write_stats(self) -> None:
        if self.stats_file is None:
            return
        try:
            with self._stats_lock:  # one writer at a time, so the file never goes back to older counts
                atomic_write_text(self.stats_file, json.dumps(self.stats()))
        except OSError:
            pass  # monitoring must never break training

    def _trim_finished(self, owner: str, keep: int = 40, keep_trainers: int = KEEP_TRAINERS) -> None:
        done = sorted((j for j in self._jobs.values() if j.owner == owner and j.status in FINISHED),
                      key=lambda j: j.created)
        for j in done[:-keep] if len(done) > keep else []:
            self._jobs.pop(j.job_id, None)
        # An old finished job keeps its weights, curves and summary, but lets go of its Trainer:
        # model, gradients, optimizer state and the dataset it pinned (which may have left the
        # dataset cache) would otherwise grow a session's memory with every training.
        for j in done[:-keep_trainers] if len(done) > keep_trainers else []:
            j.trainer = None

    def release_idle(self, jobs: list[Job], now: float, after: float | None = None) -> int:
        """Drop the Trainers (model, optimizer state, the dataset it pinned) of finished jobs whose
        session has polled none of its jobs for ``after`` seconds: the learner left (tab closed)
        or stopped looking. Weights, curves and summaries stay; the inspect area then rebuilds
        what it needs from the stored config. Returns how many were released."""
        after = RELEASE_AFTER if after is None else after
        seen: dict[str, float] = {}
        for j in jobs:
            seen[j.owner] = max(seen.get(j.owner, 0.0), j.last_poll)
        released = 0
        for j in jobs:
            if j.trainer is not None and j.status in FINISHED and now - seen[j.owner] > after:
                j.trainer = None
                released += 1
        if released:
            gc.collect()
            release_free_memory()
        return released

    def _run(self, job: Job) -> None:
        with job._lock:
            if job.status not in ("running", "paused"):  # _take marked it running; stopped since: it stays so
                return
        job.touch()
        try:
            trainer = job.make_trainer(job) if job.make_trainer else Trainer(
                job.config, control=job.control, init_state=job.init_state)
            job.trainer = trainer
            with job._lock:
                job._device = device_label(trainer.device)
                job._task = trainer.info.task
            for ev in trainer.run():
                job.record(ev)
                if isinstance(ev, EpochEnd):
                    for hook in job.epoch_hooks:
                        try:
                            hook(job, trainer, ev)
                        except Exception as exc:  # noqa: BLE001 - a probe must never kill training
                            job.set_extra("hook_error", f"{type(exc).__name__}: {exc}")
                elif isinstance(ev, RunEnd):
                    self._finish(job, trainer, ev)
        except Exception as exc:  # noqa: BLE001 - the job fails with its message, the server goes on
            with job._lock:
                job.status = "failed"
                job.message = f"{type(exc).__name__}: {exc}"
                job.extras["traceback"] = traceback.format_exc(limit=5)

    def _finish(self, job: Job, trainer: Trainer, ev: RunEnd) -> None:
        summary = trainer.summary()
        state = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}
        run_id = None
        message = job.stop_reason if ev.status == "stopped" and job.stop_reason else ev.message
        if job.save and self.store is not None and trainer.result.history:
            try:
                run_id = self.store.save(job.config, history_rows(trainer.result.history), summary, state,
                                         owner=job.owner, kind=job.kind, label=job.label)
                self.store.prune(job.owner, current_limits().max_runs_per_session)
            except (StoreError, OSError) as exc:
                message = (message + "; " if message else "") + f"the run was not saved: {exc}"
        with job._lock:
            job.final_state = state
            job.summary = summary
            job.run_id = run_id
            job.status = ev.status
            job.message = message

    def _watch(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            with self._lock:
                if self._closed:
                    return
                jobs = list(self._jobs.values())
            now = time.monotonic()
            self.release_idle(jobs, now)
            for job in jobs:
                if job.status in ACTIVE and now - job.last_poll > self.idle_stop_seconds:
                    with job._lock:
                        job.stop_reason = (f"stopped: no page watched this job for {self.idle_stop_seconds:.0f} s "
                                       "(the tab was probably closed)")
                    job.stop()
