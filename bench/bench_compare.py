"""Comparison wall time: runs side by side in the job pool versus one after another.

Four runs of the quickstart_cnn preset (four optimizers, 2 epochs each) go through a
:class:`JobPool` twice, in one process:

- concurrent: ``max_workers=2``, 1 torch thread per run (two runs train at once);
- sequential: ``max_workers=1``, 2 torch threads per run (one run at a time, using both cores).

Both modes train the same runs from the same shared initial weights on the same (cached)
data, so the work is identical; the ratio sequential / concurrent is printed (above 1 means
the pool's concurrency finishes a comparison sooner). The mode that goes first alternates
between rounds so that warm-up does not favour one. Usage::

    python -m bench.bench_compare [--epochs 2] [--train-size 4000] [--rounds 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

from bigmodel_core.config.presets import load_preset
from bigmodel_core.experiments import compare as cmp
from bigmodel_core.training.jobs import JobPool
from bigmodel_core.training.trainer import load_data

OPTIMIZERS = [("sgd", 0.05), ("momentum", 0.01), ("rmsprop", 0.001), ("adam", 0.001)]


def run_mode(comp_factory, workers: int, threads: int) -> tuple[float, list[str]]:
    comp = comp_factory()
    pool = JobPool(max_workers=workers, store=None, threads_per_job=threads, idle_stop_seconds=10 ** 9)
    try:
        t0 = time.perf_counter()
        cmp.submit(comp, pool, "bench", save=False)
        cmp.wait(comp, pool, "bench", poll=0.05)
        wall = time.perf_counter() - t0
        peak = pool.peak_running
    finally:
        pool.shutdown()
    statuses = [r.status for r in comp.runs]
    if peak != workers:
        print(f"  note: peak concurrent runs was {peak}, expected {workers}")
    return wall, statuses


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-size", type=int, default=None, help="default: the preset's")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    base = load_preset("quickstart_cnn").with_changes({"training.epochs": args.epochs, "training.device": args.device})
    if args.train_size:
        base = base.with_changes({"data.train_size": args.train_size})
    load_data(base)  # build the dataset once, outside the timings (it is cached for every run)
    # warm-up outside the timings: first-call costs (allocator, kernels) would otherwise go to the first mode
    warm = base.with_changes({"training.epochs": 1})
    run_mode(lambda: cmp.plan_optimizers(warm, OPTIMIZERS[:2]), 2, 1)

    def factory() -> cmp.Comparison:
        return cmp.plan_optimizers(base, OPTIMIZERS)

    print(f"4 runs of quickstart_cnn ({cmp.describe_base(base)})")
    times: dict[str, list[float]] = {"concurrent": [], "sequential": []}
    modes = {"concurrent": (2, 1), "sequential": (1, 2)}
    for r in range(args.rounds):
        order = ["concurrent", "sequential"] if r % 2 == 0 else ["sequential", "concurrent"]
        for mode in order:
            workers, threads = modes[mode]
            wall, statuses = run_mode(factory, workers, threads)
            times[mode].append(wall)
            print(f"round {r + 1} {mode:10s} ({workers} worker(s) x {threads} thread(s)): {wall:6.1f} s  {statuses}")
    conc, seq = min(times["concurrent"]), min(times["sequential"])
    print(f"best concurrent {conc:.1f} s, best sequential {seq:.1f} s, "
          f"ratio sequential/concurrent {seq / conc:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
