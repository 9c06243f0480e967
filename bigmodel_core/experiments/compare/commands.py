"""The command line's ``compare``: plan from ``--vary`` (or a teacher, or model sizes), train through a
private pool, write the folder.

The kind follows the options: ``--vary`` pairs config values run by run; ``--teacher`` compares the
student alone with the student distilled from that teacher; ``--widths`` / ``--depths`` sweep the
model's size and print the power law fitted to validation loss against parameters and training FLOPs
(also written as ``scaling.csv``).

Argument parsing is the CLI's (:mod:`bigmodel_core.cli`); this is what the command does.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from bigmodel_core.config.presets import load_config_arg
from bigmodel_core.config.specs import ConfigError, ExperimentConfig, parse_config_here
from bigmodel_core.config.uploaded_data import use_data_file
from bigmodel_core.experiments.distill import DEFAULT_ALPHA, DEFAULT_TEMPERATURE, load_teacher
from bigmodel_core.training.executors import executor_name, make_executor
from bigmodel_core.training.jobs import JobPool
from bigmodel_core.training.store import atomic_write_text, check_out_dir

from .comparison import CompareRun, Comparison
from .distilling import plan_distillation
from .naming import differs_rows, parse_vary
from .planning import plan_vary
from .running import stop, submit, wait
from .scaling import fit_points, plan_scale, scale_points, scale_rows
from .tables import describe_base, summary_rows, to_csv, write_comparison


def _plan(base: ExperimentConfig, vary: list[str] | None, teacher: str | None, temperature: float, alpha: float,
          widths: list[float] | None, depths: list[int] | None) -> Comparison:
    kinds = [name for name, given in (("--vary", vary), ("--teacher", teacher), ("--widths/--depths",
                                                                                 widths or depths)) if given]
    if len(kinds) != 1:
        raise ConfigError([("compare", "give one of --vary, --teacher or --widths/--depths" +
                            (f", not {' and '.join(kinds)}" if kinds else ""))])
    if teacher is not None:
        return plan_distillation(base, load_teacher(teacher), temperature, alpha)
    if widths or depths:
        return plan_scale(base, widths or [1.0], depths)
    return plan_vary(base, parse_vary(vary or []))


def _print_fit(comp: Comparison, folder: Any) -> None:
    points = scale_points(comp)
    atomic_write_text(folder / "scaling.csv", to_csv(scale_rows(points)))
    for against, what in (("params", "N"), ("train_flops", "C")):
        fit = fit_points(points, against)
        if fit is None:
            print(f"no fit against {against}: fewer than 2 finished sizes", file=sys.stderr)
        else:
            print(f"validation loss against {'parameters' if against == 'params' else 'training FLOPs'}: "
                  f"{fit.describe(what)}")


def run_compare(config: str, vary: list[str] | None, out: str, *, overwrite: bool = False,
                overrides: dict[str, Any] | None = None, workers: int | None = None, threads: int | None = None,
                data_file: str | None = None, task: str | None = None, teacher: str | None = None,
                temperature: float = DEFAULT_TEMPERATURE, alpha: float = DEFAULT_ALPHA,
                widths: list[float] | None = None, depths: list[int] | None = None,
                executor: str | None = None) -> int:
    """Compare ``config`` once per position of the ``--vary`` value lists (or alone vs distilled from
    ``teacher``, or at each of ``widths`` x ``depths``); 1 if a run failed, else 0.

    ``overrides`` are dotted-path changes applied to the base (the shared ``--epochs``,
    ``--device``, ``--seed``); ``threads`` is torch threads per run (default: cores / workers).
    ``executor`` (default ``BIGMODEL_EXECUTOR``, else threads) is where the runs train: with ``ray``
    they spread over the cluster, ``workers`` at once (default: as many as its CPUs take at
    ``threads`` each, default 1).
    """
    executor = executor_name(executor)  # a name that is neither is refused before anything is read
    base = load_config_arg(config)
    if data_file is not None:  # the learner's own data file (``--data``)
        base = use_data_file(base, data_file, task, log=lambda line: print(line, file=sys.stderr))
    if overrides:
        base = base.with_changes(overrides)
    base = parse_config_here(base)  # a device missing here is refused before anything trains
    comp = _plan(base, vary, teacher, temperature, alpha, widths, depths)
    folder = check_out_dir(out, overwrite)
    if executor == "ray":
        threads = threads or 1
        runner = make_executor("ray", threads_per_job=threads)
        workers = workers or runner.slots(threads) or 1
    else:
        workers = max(1, workers or 1)
        threads = threads or max(1, (os.cpu_count() or 2) // workers)
        runner = make_executor("threads")
    pool = JobPool(max_workers=workers, store=None, threads_per_job=threads, idle_stop_seconds=10 ** 9,
                   executor=runner)
    owner = "cli"
    task = comp.task
    print(f"comparing {len(comp.runs)} runs of {describe_base(base)} ({workers} at a time, {threads} thread(s) each, "
          f"{'on the Ray cluster' if executor == 'ray' else 'in this process'})", file=sys.stderr)
    for row in comp.differs() if comp.kind == "distill" else differs_rows(comp.names, [r.config for r in comp.runs]):
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
    if comp.kind == "scale":
        _print_fit(comp, folder)
    print(f"wrote {len(comp.runs)} run folders, comparison.json, summary.csv and curves.csv to {folder}",
          file=sys.stderr)
    return 1 if any(r.status in ("failed", "lost") for r in comp.runs) else 0
