"""The "student alone vs distilled" comparison: one student, the same data and seed, two teachers of it.

Both runs have the same config (so the same initial weights, batches and budget, by the rules
of :mod:`.fairness`); the first learns from the labels only, the second minimises the
distillation objective of :mod:`bigmodel_core.experiments.distill` with a frozen teacher. What
differs is therefore not in the configs: each run's ``distill`` entry records the teacher, its
digest, the temperature and alpha, and the comparison's "what differs" table shows it.
"""

from __future__ import annotations

from typing import Any

from bigmodel_core.config.specs import ConfigError, ExperimentConfig
from bigmodel_core.experiments.distill import (
    DEFAULT_ALPHA,
    DEFAULT_TEMPERATURE,
    DistillError,
    DistillTrainer,
    Teacher,
    check_settings,
    teacher_problem,
)

from .comparison import CompareRun, Comparison
from .fairness import CompareTrainer

ALONE = "student alone"


def distilled_name(teacher: Teacher) -> str:
    return f"distilled from {teacher.label.removesuffix(' (shipped)')}"


def distill_entry(teacher: Teacher, temperature: float, alpha: float) -> dict[str, Any]:
    return {"teacher": teacher.label, "sha256": teacher.sha256, "temperature": float(temperature),
            "alpha": float(alpha)}


def plan_distillation(student: ExperimentConfig, teacher: Teacher, temperature: float = DEFAULT_TEMPERATURE,
                      alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Two runs of ``student``: on the labels only, and distilled from ``teacher`` (refused, naming what
    differs, when the teacher's classes or input size are not the student's data's)."""
    try:
        check_settings(temperature, alpha)
    except DistillError as exc:
        raise ConfigError([("distill", str(exc))]) from None
    problem = teacher_problem(teacher, student)
    if problem is not None:
        raise ConfigError([("teacher", problem)])
    runs = [CompareRun(ALONE, student),
            CompareRun(distilled_name(teacher), student, distill=distill_entry(teacher, temperature, alpha),
                       teacher=teacher)]
    title = f"student alone vs distilled from {teacher.label}"
    return Comparison(base=student, runs=runs, title=title, kind="distill")


class DistillCompareTrainer(CompareTrainer, DistillTrainer):
    """A comparison run that distils: the fairness records of CompareTrainer on DistillTrainer's loss."""


__all__ = ["ALONE", "DistillCompareTrainer", "distill_entry", "distilled_name", "plan_distillation"]
