"""Simulated learners against the job pool itself: today's pool, with sharing, with the Ray executor.

Used by ``python -m bench.bench_load --engine pool|sharing|ray|all [--learners 8,30]``. Each
simulated learner is an owner of its own that submits the Train page's job (the live probe and
the per-epoch probes attached) for the same lesson config at the same moment, then polls its
snapshot every ``POLL`` seconds as an open Train page does. Measured: seconds from the first
press of Train to the last learner's stored run, how many trainings ran (the pool's peak and the
number of carriers), whether every learner got a run of its own with the same metrics, and the
queue positions shown.

- ``pool``: the server's pool as it was before sharing (threads, ``share_identical=False``).
- ``sharing``: the same pool with ``share_identical=True``, as the server now runs it.
- ``ray``: the Ray executor on a local Ray of this machine's cores (no sharing), one actor per job.

The engines run alternately within one invocation (for every learner count, in the order given),
so the shared machine's noise hits all of them; the ratios are to ``pool`` of the same round.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

POLL = 1.0  # seconds between two polls of one learner's page
ENGINES = ("pool", "sharing", "ray")


def lesson_config(epochs: int):
    from bigmodel_core.config.presets import load_preset

    return load_preset("quickstart_cnn").with_changes({"training.epochs": epochs, "training.device": "cpu"})


def _pool(engine: str, root: Path):
    from bigmodel_core.limits import current_limits
    from bigmodel_core.training.jobs import JobPool
    from bigmodel_core.training.store import RunStore

    store = RunStore(root)
    if engine == "ray":
        from bigmodel_core.training.ray_executor import RayExecutor

        # one thread per actor: the local Ray's CPUs become the slots (2 trainings at once here)
        return JobPool(store=store, threads_per_job=1, executor=RayExecutor(threads_per_job=1))
    lim = current_limits()
    return JobPool(store=store, max_workers=lim.max_concurrent_jobs, threads_per_job=lim.threads_per_job,
                   share_identical=engine == "sharing")


def run_engine(engine: str, learners: int, epochs: int, deadline_s: float = 900.0) -> dict[str, Any]:
    """``learners`` owners press Train on the lesson at once; the figures of that round."""
    from bigmodel_core.inspect import live_probe, probes
    from bigmodel_core.training.jobs import Job

    cfg = lesson_config(epochs)
    with tempfile.TemporaryDirectory(prefix=f"bench-load-{engine}-") as tmp:
        pool = _pool(engine, Path(tmp))
        try:
            warm = pool.submit(Job(cfg.with_changes({"data.train_size": 64, "data.val_size": 16}), owner="warm-up",
                                   save=False))
            warm.wait_until_finished(300)  # datasets, kernels and (for Ray) the first worker paid before timing
            pool.peak_running = 0
            t0 = time.perf_counter()
            jobs = [pool.submit(Job(cfg, owner=f"ws-learner-{i}", kind="train", label="lesson",
                                    make_trainer=live_probe.make_trainer, epoch_hooks=[probes.epoch_hook]))
                    for i in range(learners)]
            carriers = pool.stats().get("shared_trainings", 0)
            positions: set[int] = set()
            done_at: dict[str, float] = {}
            while len(done_at) < learners and time.perf_counter() - t0 < deadline_s:
                for j in jobs:
                    if j.job_id in done_at:
                        continue
                    snap = pool.snapshot(j.owner, j.job_id)
                    if snap.queue_position:
                        positions.add(snap.queue_position)
                    if snap.finished:
                        done_at[j.job_id] = time.perf_counter() - t0
                time.sleep(POLL / max(1, learners) if learners else POLL)
            wall = max(done_at.values(), default=float("nan"))
            runs = [pool.store.list(j.owner) for j in jobs]
            # every measured number per epoch (not its wall time): the same lesson gives the same run
            metrics = [[{k: v for k, v in row.items() if k != "seconds"} for row in r[0].metrics]
                       for r in runs if len(r) == 1]
            return {"engine": engine, "learners": learners, "epochs": epochs, "wall_s": round(wall, 1),
                    "completed": sum(j.status == "completed" for j in jobs),
                    "runs_stored": sum(len(r) == 1 for r in runs),
                    "distinct_run_ids": len({r[0].run_id for r in runs if r}) == learners,
                    "identical_metrics": bool(metrics) and all(m == metrics[0] for m in metrics),
                    "trainings": carriers if engine == "sharing" else learners,
                    "peak_running": pool.peak_running, "slots": pool.max_workers,
                    "max_queue_position_shown": max(positions, default=0),
                    "failed": [j.message for j in jobs if j.status != "completed"][:3]}
        finally:
            pool.shutdown()


def run_all(engines: list[str], learner_counts: list[int], epochs: int, log=print) -> list[dict[str, Any]]:
    """Every engine for every learner count, alternating; each result with its ratio to ``pool``."""
    if "ray" in engines:
        import ray

        # a local Ray of this machine's cores, its workers on this checkout
        root = str(Path(__file__).resolve().parents[1])
        ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": root}})
    results = []
    try:
        for n in learner_counts:
            base = None
            for engine in engines:
                fig = run_engine(engine, n, epochs)
                if engine == "pool":
                    base = fig["wall_s"]
                fig["vs_pool"] = round(base / fig["wall_s"], 2) if base and fig["wall_s"] else None
                log(f"{n} learners, {engine}: {fig['wall_s']} s to the last stored run, {fig['trainings']} "
                    f"training(s), peak {fig['peak_running']} running (slots {fig['slots']}), "
                    f"{fig['runs_stored']} runs stored, identical metrics {fig['identical_metrics']}"
                    + (f", {fig['vs_pool']}x faster than pool" if fig["vs_pool"] and engine != "pool" else ""))
                results.append(fig)
    finally:
        if "ray" in engines:
            import ray

            ray.shutdown()
    return results
