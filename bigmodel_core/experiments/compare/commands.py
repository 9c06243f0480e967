"""The command line's ``compare``: plan from ``--vary``, train through a private pool, write the folder.

Argument parsing is the CLI's (:mod:`bigmodel_core.cli`); this is what the command does.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from bigmodel_core.config.presets import load_config_arg
from bigmodel_core.config.specs import parse_config_here
from bigmodel_core.config.uploaded_data import use_data_file
from bigmodel_core.training.jobs import JobPool
from bigmodel_core.training.store import check_out_dir

from .comparison import CompareRun
from .naming import differs_rows, parse_vary
from .planning import plan_vary
from .running import stop, submit, wait
from .tables import describe_base, summary_rows, write_comparison


def run_compare(config: str, vary: list[str], out: str, *, overwrite: bool = False,
                overrides: dict[str, Any] | None = None, workers: int = 1, threads: int | None = None,
                data_file: str | None = None, task: str | None = None) -> int:
    """Compare ``config`` once per position of the ``--vary`` value lists; 1 if a run failed, else 0.

    ``overrides`` are dotted-path changes applied to the base (the shared ``--epochs``,
    ``--device``, ``--seed``); ``threads`` is torch threads per run (default: cores / workers).
    """
    base = load_config_arg(config)
    if data_file is not None:  # the learner's own data file (``--data``)
        base = use_data_file(base, data_file, task, log=lambda line: print(line, file=sys.stderr))
    if overrides:
        base = base.with_changes(overrides)
    base = parse_config_here(base)  # a device missing here is refused before anything trains
    comp = plan_vary(base, parse_vary(vary))
    folder = check_out_dir(out, overwrite)
    workers = max(1, workers)
    threads = threads or max(1, (os.cpu_count() or 2) // workers)
    pool = JobPool(max_workers=workers, store=None, threads_per_job=threads, idle_stop_seconds=10 ** 9)
    owner = "cli"
    task = comp.task
    print(f"comparing {len(comp.runs)} runs of {describe_base(base)}", file=sys.stderr)
    for row in differs_rows(comp.names, [r.config for r in comp.runs]):
        print("  " + "  ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr)

    def on_epoch(run: CompareRun, row: dict[str, float]) -> None:
        metric = "acc" if task == "classification" else "mae"
        print(f"[{run.name}] epoch {int(row['epoch'])}: train loss {row['train_loss']:.4f} (running), train {metric} "
              f"{row.get('train_eval_metric', float('nan')):.4f} (eval mode), val loss {row['val_loss']:.4f} "
              f"val {metric} {row['val_metric']:.4f}", file=sys.stderr, flush=True)

    jobs = submit(comp, pool, owner, save=False)
    try:
        wait(comp, pool, owner, on_epoch=on_epoch)
    except KeyboardInterrupt:
        stop(comp, pool, owner)
        wait(comp, pool, owner)
        raise
    finally:
        pool.shutdown()
    write_comparison(comp, folder, {r.name: j.final_state for r, j in zip(comp.runs, jobs)})
    for row in summary_rows(comp):
        print("  ".join(f"{k}={v}" for k, v in row.items() if k != "message" or v))
    print(f"wrote {len(comp.runs)} run folders, comparison.json, summary.csv and curves.csv to {folder}",
          file=sys.stderr)
    return 1 if any(r.status in ("failed", "lost") for r in comp.runs) else 0
