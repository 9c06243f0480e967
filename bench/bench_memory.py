"""Memory benchmark: does a long-lived server grow with every training?

Run: ``python -m bench.bench_memory [--runs 3] [--epochs 1] [--limit-mb 50]``. In one
process it does what the server does for one session pressing Train again and again:
submit quickstart_cnn to the same :class:`JobPool` (with the Train page's probe hook and a
run store), wait for it to finish, and read this process's resident memory (VmRSS) after
each training. The first training pays the one-off costs (dataset cache, fonts, torch's
kernels and allocator pools), so growth is measured from after the first one: the check
passes when the last reading is at most ``--limit-mb`` above it. Prints one line per
training and a JSON summary; exit status 1 when the limit is exceeded.

``--sessions 5`` measures what a class costs instead: five sessions (owners) each train the
model once in the same pool, as five learners pressing Train; it prints RSS after each, the
peak (sampled every 0.1 s), and RSS every 15 s after they leave (nobody polls their jobs any
more), until the pool has released their Trainers. The check then is the peak against
``--budget-mb`` (600) and the reading a minute after leaving against the reading before the
first training plus ``--limit-mb``.

glibc gives threads their own malloc arenas, which can show as a one-off step of about 60 MB
after a few trainings; ``MALLOC_ARENA_MAX=2 python -m bench.bench_memory`` measures the
setting docs/deploy.md recommends for servers.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from pathlib import Path


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1, help="epochs per training (the preset has 5)")
    ap.add_argument("--limit-mb", type=float, default=50.0)
    ap.add_argument("--sessions", type=int, default=0, help="N learners who each train once (see above)")
    ap.add_argument("--budget-mb", type=float, default=600.0, help="--sessions: the most RSS allowed at the peak")
    args = ap.parse_args()
    if args.sessions:
        return sessions(args)

    from bigmodel_core.config.presets import load_preset
    from bigmodel_core.inspect.probes import epoch_hook
    from bigmodel_core.training.jobs import Job, JobPool
    from bigmodel_core.training.store import RunStore

    hooks = [epoch_hook]  # the Train page's probes, measured after every epoch

    cfg = load_preset("quickstart_cnn").with_changes({"training.epochs": args.epochs})
    readings = {"start": rss_mb()}
    print(f"start: {readings['start']:.1f} MB RSS")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        pool = JobPool(store=RunStore(Path(tmp) / "runs"))
        try:
            for i in range(1, args.runs + 1):
                t0 = time.perf_counter()
                # the same session training again: the pool keeps its finished jobs, as in the app
                job = pool.submit(Job(cfg, owner="one-session", kind="train", label="memory bench",
                                      epoch_hooks=hooks))
                while job.status not in ("completed", "stopped", "diverged", "failed"):
                    job.touch()  # as the page's polling does
                    time.sleep(0.2)
                if job.status != "completed":
                    print(f"training {i} ended {job.status}: {job.message}")
                    return 1
                gc.collect()
                readings[f"after_{i}"] = rss_mb()
                print(f"after training {i}: {readings[f'after_{i}']:.1f} MB RSS "
                      f"({time.perf_counter() - t0:.1f} s, run {job.run_id})")
        finally:
            pool.shutdown()
    first, last = readings["after_1"], readings[f"after_{args.runs}"]
    growth = last - first
    summary = {"runs": args.runs, "epochs": args.epochs, "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX"),
               "rss_mb": {k: round(v, 1) for k, v in readings.items()},
               "growth_after_first_mb": round(growth, 1), "limit_mb": args.limit_mb, "ok": growth <= args.limit_mb}
    print(json.dumps(summary, indent=1))
    print(("PASS" if summary["ok"] else "FAIL") + f": {growth:+.1f} MB from after training 1 to after training "
          f"{args.runs} (limit {args.limit_mb:g} MB)")
    return 0 if summary["ok"] else 1


def sessions(args: argparse.Namespace) -> int:
    import threading

    from bigmodel_core.config.presets import load_preset
    from bigmodel_core.inspect.probes import epoch_hook
    from bigmodel_core.training.jobs import FINISHED, RELEASE_AFTER, Job, JobPool
    from bigmodel_core.training.store import RunStore

    hooks = [epoch_hook]  # the Train page's probes, measured after every epoch
    cfg = load_preset("quickstart_cnn").with_changes({"training.epochs": args.epochs})
    peak = [rss_mb()]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.1)

    threading.Thread(target=sample, daemon=True).start()
    readings: dict[str, float] = {"idle": rss_mb()}
    print(f"idle: {readings['idle']:.1f} MB RSS")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        pool = JobPool(store=RunStore(Path(tmp) / "runs"), watchdog_interval=1.0)
        jobs = []
        try:
            for i in range(1, args.sessions + 1):
                t0 = time.perf_counter()
                job = pool.submit(Job(cfg, owner=f"learner-{i}", kind="train", label="memory bench",
                                      epoch_hooks=hooks))
                jobs.append(job)
                while job.status not in FINISHED:
                    for j in jobs:
                        j.touch()  # every learner's tab still polls while the class trains
                    time.sleep(0.2)
                if job.status != "completed":
                    print(f"session {i} ended {job.status}: {job.message}")
                    return 1
                gc.collect()
                readings[f"after_session_{i}"] = rss_mb()
                print(f"after session {i} trained: {readings[f'after_session_{i}']:.1f} MB RSS "
                      f"({time.perf_counter() - t0:.1f} s)")
            left = time.monotonic()
            print(f"peak while training: {peak[0]:.1f} MB RSS; the learners leave now")
            readings["peak"] = peak[0]
            for t in (15, 30, 45, 60, 75):
                time.sleep(max(0.0, left + t - time.monotonic()))
                readings[f"left_{t}s"] = rss_mb()
                held = sum(j.trainer is not None for j in jobs)
                print(f"{t:3d} s after leaving: {readings[f'left_{t}s']:.1f} MB RSS ({held} Trainers held)")
        finally:
            done.set()
            pool.shutdown()
    after_minute = readings["left_60s"]
    ok = readings["peak"] <= args.budget_mb and after_minute <= readings["idle"] + args.limit_mb
    summary = {"sessions": args.sessions, "epochs": args.epochs, "release_after_s": RELEASE_AFTER,
               "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX"),
               "rss_mb": {k: round(v, 1) for k, v in readings.items()}, "budget_mb": args.budget_mb, "ok": ok}
    print(json.dumps(summary, indent=1))
    print(("PASS" if ok else "FAIL") + f": peak {readings['peak']:.0f} MB (budget {args.budget_mb:g}), "
          f"{after_minute:.0f} MB a minute after leaving (idle {readings['idle']:.0f} MB)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
