"""Identical trainings shared: many learners press Train on the same experiment, one model trains.

On a CPU, at a fixed torch thread count, the same config and seed from the same starting
weights give bit-identical results (every random draw comes from per-run generators seeded by
the config). So in a workshop, where most learners press Train on the same lesson, training it
once per learner only makes everyone wait. A pool made with ``share_identical=True`` gives each
such experiment one *carrier*: a job of its own, owned by nobody, that the pool queues and runs
like any other. Each learner's job is a *member* that follows the carrier: the same live curves,
progress, probes and queue position. When the carrier ends, every member still on it gets its
own stored run in its own workspace (the run is written once and the folder copied, each copy
with its own run id, owner and label).

Leaving: a member that presses Stop or Pause while others follow the same training leaves it
(it reads as stopped; nothing is saved for it), and the others go on; pausing would pause them
too. The last member's Stop and Pause act on the training itself, as for a job of one's own, and
the idle watchdog stops members whose tabs went away, so a training nobody watches stops as
before.

What is the same experiment (:func:`share_key`): a hash of the canonical config JSON, the
sha256 of the start weights, the thread count, the job kind and the trainer factory and epoch
hooks. Only Train jobs share (a comparison's runs carry their comparison in their summary), only
with factories and hooks that are module-level functions (a closure could carry anything, such
as a fine-tune's source weights), and only when the training would run on a CPU: GPU kernels are
not bit-reproducible, so there everyone trains their own.
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
from typing import TYPE_CHECKING, Any, Callable

import torch

from .job import FINISHED, Job

if TYPE_CHECKING:
    from .executors import Outcome
    from .jobs import JobPool

SHAREABLE_KINDS = ("train",)
CARRIER_OWNER = "\x00shared-training"  # no workspace id can equal this: the carrier is nobody's to see

JOINED_NOTE = ("You joined an identical training that was already running: same settings, seed and starting "
               "weights, on the server's CPU with the same thread count, where training is deterministic, so "
               "its result is exactly what training it again would give. It goes on for the others if you leave.")


def sharing_on() -> bool:
    """Whether the server shares identical trainings: on unless ``BIGMODEL_SHARE_IDENTICAL=0``."""
    return os.environ.get("BIGMODEL_SHARE_IDENTICAL", "1").strip().lower() not in ("0", "false", "no", "off")


def shared_note(joined: bool, others: int) -> str:
    """The Train page's words for a shared training (plain text)."""
    if joined:
        head = JOINED_NOTE
    else:
        head = ("Other learners pressed Train on exactly this experiment, so they follow this training instead of "
                "training it again: on the server's CPU, with the same thread count, training is deterministic and "
                "their result is the same.")
    return (f"{head} {others} other learner(s) follow it now; Pause or Stop leaves it for you alone "
            "(each of you gets a run of your own when it ends).")


def _plain_function(fn: Callable[..., Any] | None) -> bool:
    """A module-level function: its behaviour is its name (no captured data)."""
    if fn is None:
        return True
    return (getattr(fn, "__closure__", None) is None and "<locals>" not in getattr(fn, "__qualname__", "<locals>")
            and hasattr(fn, "__module__"))


def _name(fn: Callable[..., Any] | None) -> str:
    return "default" if fn is None else f"{fn.__module__}.{fn.__qualname__}"


def state_sha(state: dict[str, torch.Tensor] | None) -> str:
    """sha256 over the start weights (names, dtypes, shapes, bytes); "none" for the config's own seeded start."""
    if state is None:
        return "none"
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def share_key(job: Job, threads: int, trains_on_cpu: Callable[[Job], bool]) -> str | None:
    """The key under which identical experiments share one training; None when this job trains alone."""
    if job.kind not in SHAREABLE_KINDS or not job.save or not _plain_function(job.make_trainer) \
            or not all(_plain_function(h) for h in job.epoch_hooks):
        return None
    if not trains_on_cpu(job):
        return None
    h = hashlib.sha256()
    for part in (job.config.to_json(indent=None), state_sha(job.init_state), str(threads), job.kind,
                 _name(job.make_trainer), *(_name(h) for h in job.epoch_hooks)):
        h.update(part.encode())
        h.update(b"\x00")
    return h.hexdigest()


class SharedTraining:
    """One carrier job and the members that follow it (see the module docstring)."""

    def __init__(self, key: str, first: Job):
        self.key = key
        self.carrier = Job(first.config, owner=CARRIER_OWNER, label=first.label, kind=first.kind,
                           init_state=first.init_state, make_trainer=first.make_trainer,
                           epoch_hooks=list(first.epoch_hooks), save=False)
        self.carrier.extras.update(first.extras)
        self.carrier.shared = self
        self.members: list[Job] = []
        self.closed = False  # the carrier has ended: no one joins any more
        self._lock = threading.RLock()  # order: pool lock, then this, then a job's lock
        self._join(first, joined=False)

    # --- membership ----------------------------------------------------------------------------
    def _join(self, job: Job, joined: bool) -> None:
        job.shared = self
        job.joined = joined
        with job._lock:
            job.status = self.carrier.status
        self.members.append(job)

    def join(self, job: Job) -> bool:
        """Follow this training if it is still queued or running; False otherwise (train alone)."""
        with self._lock:
            c = self.carrier
            if self.closed or c.control.stopped or c.status not in ("queued", "running"):
                return False
            self._join(job, joined=True)
        self.sync()
        return True

    def watching(self) -> list[Job]:
        """The members still on this training."""
        with self._lock:
            return [m for m in self.members if not m.left and m.status not in FINISHED]

    def following(self, job: Job) -> bool:
        return job is not self.carrier and not job.left

    def leave(self, member: Job, pausing: bool) -> None:
        """Stop or Pause from a member: leave when others follow; otherwise act on the training itself."""
        with self._lock:
            if member.left or member.status in FINISHED or self.closed:
                return
            others = [m for m in self.watching() if m is not member]
            if not others:
                if pausing:
                    self.carrier.pause()
                else:
                    self.carrier.stop_reason = member.stop_reason
                    self.carrier.stop()
                return
            member.left = True
            self._freeze(member)
            why = (f"Pause leaves a shared training (pausing it would pause {len(others)} other learner(s) too)"
                   if pausing else f"you left the shared training; it goes on for {len(others)} other learner(s)")
            with member._lock:
                member.status = "stopped"
                member.message = member.stop_reason or (f"{why}; nothing was saved for you. Press Train to join it "
                                                        "again or to train on your own")
            member._progressed.set()
            member._ended.set()
        pool = self.carrier.pool
        if pool is not None:
            pool._record(member, False)

    def _freeze(self, member: Job) -> None:
        """Copy the carrier's progress into a member that leaves: it keeps what it saw."""
        c = self.carrier
        with c._lock:
            fields = {k: copy.copy(getattr(c, k)) for k in ("_steps", "_losses", "_stride", "_epochs", "_step",
                                                            "_total", "_elapsed", "_lr", "_sps", "_epoch_seconds",
                                                            "_device", "_task")}
            extras = dict(c.extras)
        with member._lock:
            for k, v in fields.items():
                setattr(member, k, v)
            member.extras = extras

    def sync(self) -> None:
        """Bring the members' status in line with the carrier's (called whenever the carrier's changes)."""
        with self._lock:
            c = self.carrier
            status = c.status
            progressed = c._progressed.is_set()
            for m in self.members:
                if m.left or m.status in FINISHED:
                    continue
                if status not in FINISHED:
                    with m._lock:
                        m.status = status
                if progressed:
                    m._progressed.set()

    # --- the end -------------------------------------------------------------------------------------
    def settle(self, pool: JobPool, outcome: Outcome | None) -> list[Job]:
        """The carrier ended: give every member still on it the result and its own stored run."""
        with self._lock:
            self.closed = True
            members = [m for m in self.members if not m.left and m.status not in FINISHED]
        c = self.carrier
        first_run: str | None = None
        for m in members:
            run_id, message = None, c.message
            if outcome is not None and m.save and pool.store is not None and outcome.rows:
                if first_run is None:
                    run_id, message = pool._save(m, outcome, message)
                    first_run = run_id
                else:
                    run_id, message = pool._copy_run(m, first_run, message)
            with m._lock:
                m.final_state = c.final_state
                m.summary = copy.deepcopy(c.summary)
                m.trainer = c.trainer
                m.run_id = run_id
                m.message = message
                m.status = c.status if c.status in FINISHED else "stopped"
            pool._record(m, False)
            m._progressed.set()
            m._ended.set()
        c.trainer = None  # the members hold it now, and let go of it as the pool trims their jobs
        return members
