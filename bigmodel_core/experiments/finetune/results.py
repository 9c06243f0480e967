"""Fine-tune results, aggregated: the metric against the label budget and the results table.

The Fine-tune page hands over its runs (what it planned, and what each job reports now) and
draws what comes back: how many runs are in each status, one point per finished run (seed), the
mean and spread over seeds at each budget for each strategy, and one table row per run. Only
measured values are used: a run that did not complete, or has no final metric, adds no point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class RunOutcome:
    """One fine-tune run as the page planned it, with the status and summary its job reports now."""

    strategy: str  # "head", "last:1", "full", "scratch"
    label: str  # "head only (linear probe)"
    budget: str  # the planned budget: "5" or "all"
    seed: int
    status: str  # a job status: queued, running, completed, ...
    summary: dict[str, Any] | None = None  # the trainer's summary once the job finished
    source: str = ""  # the pretrained weights' label; "" for scratch


@dataclass(frozen=True)
class BudgetPoint:
    """One finished fine-tune run: its strategy, budget and final validation metric."""

    strategy: str
    label: str  # legend name
    per_class: float  # labelled examples per class actually used (in all, for regression): the x position
    budget_text: str  # "5" or "all (129)"
    seed: int
    value: float


@dataclass(frozen=True)
class BudgetMean:
    """The seeds of one strategy at one budget."""

    per_class: float
    mean: float
    sd: float  # standard deviation over the seeds (population, ddof 0); 0 for a single seed
    seeds: int  # how many runs (seeds) the mean is over
    text: str  # "5 · 2 seed(s)"


@dataclass(frozen=True)
class StrategyCurve:
    """One strategy across budgets: the mean per budget (smallest budget first) and every run's point."""

    strategy: str
    label: str
    means: tuple[BudgetMean, ...]
    points: tuple[BudgetPoint, ...]

    @property
    def several_seeds(self) -> bool:
        return len({p.seed for p in self.points}) > 1


@dataclass(frozen=True)
class FinetuneResults:
    counts: dict[str, int]  # status -> number of runs, in the order statuses first appear
    points: tuple[BudgetPoint, ...]
    curves: tuple[StrategyCurve, ...]  # alphabetical, from scratch (the baseline) last
    ticks: tuple[tuple[float, str], ...]  # budget axis: (x, label), x ascending
    rows: tuple[dict[str, Any], ...]  # the results table, one row per run
    metric_key: str  # "val_accuracy" or "val_mae"


def metric_key(task: str) -> str:
    """The summary's final metric for ``task``."""
    return "val_accuracy" if task == "classification" else "val_mae"


def status_counts(runs: Sequence[RunOutcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts


def budget_points(runs: Sequence[RunOutcome], task: str, num_outputs: int) -> list[BudgetPoint]:
    """A point per completed run with a final metric, at the labelled examples it really used.

    For classification the x position is labelled examples per class (``num_outputs`` classes);
    the "all" budget is labelled with the number that turned out to be, e.g. ``all (129)``.
    """
    key = metric_key(task)
    points = []
    for r in runs:
        if r.status != "completed" or not r.summary:
            continue
        value = (r.summary.get("final") or {}).get(key)
        labelled = (r.summary.get("finetune") or {}).get("labelled_examples") or 0
        per = labelled / num_outputs if task == "classification" else labelled
        text = r.budget if r.budget != "all" else f"all ({per:.0f})"
        if value is not None:
            points.append(BudgetPoint(r.strategy, r.label, per, text, r.seed, value))
    return points


def budget_curves(points: Sequence[BudgetPoint]) -> list[StrategyCurve]:
    """The points grouped by strategy, then by budget: the mean and spread over seeds at each budget."""
    order = sorted({p.strategy for p in points}, key=lambda s: (s == "scratch", s))  # the baseline drawn last
    curves = []
    for strategy in order:
        mine = [p for p in points if p.strategy == strategy]
        means = []
        for x in sorted({p.per_class for p in mine}):
            vals = [p.value for p in mine if p.per_class == x]
            text = next(p.budget_text for p in mine if p.per_class == x)
            means.append(BudgetMean(x, float(np.mean(vals)), float(np.std(vals)) if len(vals) > 1 else 0.0,
                                    len(vals), f"{text} · {len(vals)} seed(s)"))
        curves.append(StrategyCurve(strategy, mine[0].label, tuple(means), tuple(mine)))
    return curves


def budget_ticks(points: Sequence[BudgetPoint]) -> list[tuple[float, str]]:
    """Each budget on the axis once, ascending, labelled as its (last) run labels it."""
    names = {p.per_class: p.budget_text for p in points}
    return [(x, names[x]) for x in sorted(names)]


def result_rows(runs: Sequence[RunOutcome], task: str, unit: str) -> list[dict[str, Any]]:
    """The results table: strategy, budget (column ``unit``), seed, status, final metric and the number of
    validation examples it was measured on, parameters."""
    key = metric_key(task)
    rows = []
    for r in runs:
        final = (r.summary or {}).get("final") or {}
        fin = (r.summary or {}).get("finetune") or {}
        rows.append({"strategy": r.label, unit: r.budget, "seed": r.seed, "status": r.status,
                     key.replace("_", " "): final.get(key), "validated on": fin.get("validation_examples"),
                     "trainable params": fin.get("trainable_params"),
                     "frozen params": fin.get("frozen_params"), "pretrained": r.source or "–"})
    return rows


def aggregate_results(runs: Sequence[RunOutcome], task: str, num_outputs: int,
                      unit: str = "labels per class") -> FinetuneResults:
    """Everything the results section draws, from the runs of one pretrained model and target."""
    points = budget_points(runs, task, num_outputs)
    return FinetuneResults(counts=status_counts(runs), points=tuple(points), curves=tuple(budget_curves(points)),
                           ticks=tuple(budget_ticks(points)), rows=tuple(result_rows(runs, task, unit)),
                           metric_key=metric_key(task))
