"""Running a comparison through the shared job pool: submit, refresh from snapshots, stop, wait."""

from __future__ import annotations

import time
from typing import Callable

from bigmodel_core.training.jobs import Job, JobPool
from bigmodel_core.training.trainer import EpochEnd, Trainer

from .comparison import CompareRun, Comparison
from .distilling import DistillCompareTrainer
from .fairness import CompareTrainer, initial_states


def _trainer_factory(run: CompareRun) -> Callable[[Job], Trainer]:
    """The run's trainer: a plain comparison run, or one that distils from the run's teacher."""
    distill = run.distill if run.teacher is not None else None

    def make(job: Job) -> Trainer:
        common = dict(control=job.control, init_state=job.init_state, comparison_id=job.group or "",
                      name=job.label, index=job.extras.get("index", 0), init_note=job.extras.get("init", ""))
        if distill is not None:
            trainer: CompareTrainer = DistillCompareTrainer(job.config, teacher=run.teacher,
                                                            temperature=distill["temperature"],
                                                            alpha=distill["alpha"], **common)
        else:
            trainer = CompareTrainer(job.config, **common)
        job.set_extra("init_sha", trainer.init_sha)
        return trainer

    return make


def _after_epoch(job: Job, trainer: Trainer, ev: EpochEnd) -> None:
    if ev.epoch == 1 and isinstance(trainer, CompareTrainer):
        job.set_extra("data_sha", trainer.data_sha)
        job.set_extra("order_sha", trainer.order_sha)


def submit(comp: Comparison, pool: JobPool, owner: str, *, save: bool = True) -> list[Job]:
    """Queue every run of ``comp`` in ``pool`` (group = comparison id, kind = "compare")."""
    for run in comp.runs:
        if run.distill and run.teacher is None:  # a re-opened file names its teacher but does not hold it
            raise ValueError(f"run {run.name!r} distils from {run.distill.get('teacher')!r}, which is not loaded; "
                             "plan the comparison again to run it")
    inits = initial_states(comp)
    jobs = []
    for i, (run, init) in enumerate(zip(comp.runs, inits)):
        job = Job(run.config, owner, label=run.name, group=comp.comparison_id, kind="compare",
                  init_state=init.state, make_trainer=_trainer_factory(run), epoch_hooks=[_after_epoch], save=save)
        job.extras.update(init=init.note, index=i)
        run.init, run.status, run.job_id = init.note, "queued", job.job_id
        jobs.append(job)
    for job in jobs:
        pool.submit(job)
    return jobs


def refresh(comp: Comparison, pool: JobPool, owner: str) -> bool:
    """Pull every run's latest snapshot into ``comp``; True while any run is queued or running."""
    for run in comp.runs:
        if run.job_id is None or not run.active:
            continue
        snap = pool.snapshot(owner, run.job_id)
        if snap is None:  # the server restarted or forgot the job
            run.status, run.message = "lost", "the job is gone (the server restarted?)"
            continue
        run.status, run.message = snap.status, snap.message
        run.queue_position = snap.queue_position
        run.epochs = snap.epochs
        run.summary, run.run_id = snap.summary, snap.run_id
        run.progress = snap.progress
        run.live_samples_per_sec = snap.samples_per_sec
        run.steps, run.batch_losses = snap.steps, snap.batch_losses
        run.init_sha = snap.extras.get("init_sha", run.init_sha)
        run.data_sha = snap.extras.get("data_sha", run.data_sha)
        run.order_sha = snap.extras.get("order_sha", run.order_sha)
    return comp.active


def stop(comp: Comparison, pool: JobPool, owner: str) -> int:
    """Stop every queued and running job of the comparison."""
    return pool.stop_group(owner, comp.comparison_id)


def wait(comp: Comparison, pool: JobPool, owner: str, poll: float = 0.25,
         on_epoch: Callable[[CompareRun, dict[str, float]], None] | None = None) -> Comparison:
    """Block until every run has finished; ``on_epoch(run, row)`` sees each new epoch row."""
    seen = {r.name: 0 for r in comp.runs}
    while True:
        active = refresh(comp, pool, owner)
        if on_epoch is not None:
            for r in comp.runs:
                for row in r.epochs[seen[r.name]:]:
                    on_epoch(r, row)
                seen[r.name] = len(r.epochs)
        if not active:
            return comp
        time.sleep(poll)
