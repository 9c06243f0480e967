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
module re-exports them with the pool. How a training runs is the pool's executor's business
(:mod:`.executors`: threads in this process by default, a Ray cluster with
``BIGMODEL_EXECUTOR=ray``); with ``share_identical`` identical experiments share one training
(:mod:`.sharing`).
"""

from __future__ import annotations

import gc
import json
import os
import secrets
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

import torch

from bigmodel_core.limits import current_limits

from .executors import Executor, Outcome, make_executor
from .job import ACTIVE, FINISHED, EpochHook, Job, Snapshot, TrainerFactory
from .memory import release_free_memory
from .sharing import SharedTraining, share_key
from .store import RunStore, StoreError, atomic_write_text
from .workspace import clear_job_record, write_job_record

__all__ = ["ACTIVE", "FINISHED", "KEEP_TRAINERS", "RELEASE_AFTER", "EpochHook", "Job", "JobPool", "Snapshot",
           "TrainerFactory", "release_free_memory"]

KEEP_TRAINERS = 8  # finished jobs per owner that keep their Trainer for probes (a comparison has up to 8 runs)
RELEASE_AFTER = 45.0  # seconds without a poll from a session before its finished jobs let go of their Trainers


class JobPool:
    """A bounded worker pool shared by every session of the process."""

    def __init__(self, max_workers: int | None = None, store: RunStore | None = None,
                 threads_per_job: int | None = None, idle_stop_seconds: float | None = None,
                 watchdog_interval: float = 5.0, stats_file: str | os.PathLike | None = None,
                 executor: Executor | None = None, share_identical: bool = False):
        lim = current_limits()
        self.threads_per_job = threads_per_job or lim.threads_per_job
        self.executor = executor or make_executor(threads_per_job=self.threads_per_job)
        # a cluster's size sets how many train at once, unless the operator set the cap
        slots = None if "BIGMODEL_MAX_CONCURRENT_JOBS" in os.environ else self.executor.slots(self.threads_per_job)
        self.max_workers = max_workers or slots or lim.max_concurrent_jobs
        self.share_identical = share_identical
        self._shared: dict[str, SharedTraining] = {}
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
        key = share_key(job, self.threads_per_job, lambda j: self.executor.trains_on_cpu(j.config)) \
            if self.share_identical else None
        with self._lock:
            if self._closed:
                raise RuntimeError("the job pool is shut down")
            self._jobs[job.job_id] = job
            queued = job
            if key is not None:
                group = self._shared.get(key)
                if group is not None and group.join(job):
                    queued = None  # it follows a training already queued or running
                else:
                    group = self._shared[key] = SharedTraining(key, job)
                    queued = group.carrier
                    queued.pool = self
                    self._jobs[queued.job_id] = queued
            if queued is not None:
                self._queue.append(queued)
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
        if job.shared is not None and job.shared.following(job):
            job = job.shared.carrier  # a member waits where its training waits
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

    def stop_all(self) -> None:
        """Stop every job of every workspace, queued or running (the pool stays open)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for j in jobs:
            j.stop()
        for j in jobs:  # carriers last: their members left or stopped them above
            if j.shared is not None and j.shared.carrier is j:
                j.control.stop()

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        self.stop_all()
        self.executor.close()

    # --- workers -----------------------------------------------------------------------------
    def _next(self) -> Job | None:
        job = self._take()
        if job is not None:
            job._changed()  # the members of a shared training read as running too
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
                    if job.shared is not None and job.shared.carrier is job:
                        threading.Thread(target=self._settle, args=(job, None), daemon=True).start()
                self._wake.wait(timeout=1.0)
            return None

    def _worker(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            outcome = None
            try:
                outcome = self._run(job)
            finally:
                self._record(job, False)  # before the job reads as ended: an ended job has no record
                job._progressed.set()
                job._ended.set()
                if job.shared is not None and job.shared.carrier is job:
                    self._settle(job, outcome)
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
            groups = list(self._shared.values())
            stats = {"running": len(self._running), "peak_running": self.peak_running, "queued": len(self._queue),
                     "max_workers": self.max_workers, "executor": self.executor.name, "pid": os.getpid(),
                     "time": time.time()}
        stats["shared_trainings"] = len(groups)
        stats["following"] = sum(len(g.watching()) for g in groups)
        return stats

    def _settle(self, carrier: Job, outcome: Outcome | None) -> None:
        """A shared training ended: its members get their results and runs; the carrier is let go."""
        group = carrier.shared
        with self._lock:
            if group is not None and self._shared.get(group.key) is group:
                del self._shared[group.key]
        members = group.settle(self, outcome) if group is not None else []
        with self._lock:
            self._jobs.pop(carrier.job_id, None)
            for owner in {m.owner for m in members}:
                self._trim_finished(owner)

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

    def _run(self, job: Job) -> Outcome | None:
        with job._lock:
            if job.status not in ("running", "paused"):  # _take marked it running; stopped since: it stays so
                return None
        job.touch()
        # What the pages let go of since the last training is freed first, so that it does not add to
        # this training's own peak: cyclic garbage (a rerun's traceback holding an upload's frames)
        # waits for the collector, and glibc keeps freed memory in its arenas until asked.
        gc.collect()
        release_free_memory()
        try:
            outcome = self.executor.run(job)
            if outcome is not None:
                self._finish(job, outcome)
            return outcome
        except Exception as exc:  # noqa: BLE001 - the job fails with its message, the server goes on
            with job._lock:
                job.status = "failed"
                job.message = f"{type(exc).__name__}: {exc}"
                job.extras["traceback"] = traceback.format_exc(limit=5)
            return None

    def _finish(self, job: Job, out: Outcome) -> None:
        message = job.stop_reason if out.status == "stopped" and job.stop_reason else out.message
        run_id = None
        if job.save and self.store is not None and out.rows:
            run_id, message = self._save(job, out, message)
        with job._lock:
            job.final_state = out.state
            job.summary = out.summary
            job.run_id = run_id
            job.status = out.status
            job.message = message
            if out.trainer is not None:
                job.trainer = out.trainer

    def _save(self, job: Job, out: Outcome, message: str) -> tuple[str | None, str]:
        """Write ``out`` as a run of ``job``'s owner (atomically, summary last); (run id or None, message)."""
        try:
            run_id = self.store.save(job.config, out.rows, out.summary, out.state, owner=job.owner, kind=job.kind,
                                     label=job.label)
            self.store.prune(job.owner, current_limits().max_runs_per_session)
            return run_id, message
        except (StoreError, OSError) as exc:
            return None, (message + "; " if message else "") + f"the run was not saved: {exc}"

    def _copy_run(self, job: Job, run_id: str, message: str) -> tuple[str | None, str]:
        """A copy of stored run ``run_id`` as ``job``'s own run (a member of a shared training)."""
        try:
            new_id = self.store.copy_run(run_id, owner=job.owner, kind=job.kind, label=job.label)
            self.store.prune(job.owner, current_limits().max_runs_per_session)
            return new_id, message
        except (StoreError, OSError) as exc:
            return None, (message + "; " if message else "") + f"the run was not saved: {exc}"

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
                if job.shared is not None and job.shared.carrier is job:
                    continue  # a shared training stops when the last of its members leaves or is stopped
                if job.status in ACTIVE and now - job.last_poll > self.idle_stop_seconds:
                    with job._lock:
                        job.stop_reason = (f"stopped: no page watched this job for {self.idle_stop_seconds:.0f} s "
                                       "(the tab was probably closed)")
                    job.stop()
