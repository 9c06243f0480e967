"""Fair side-by-side comparisons: plan the runs, run them through the job pool, tabulate.

A :class:`Comparison` is a base config plus up to :data:`MAX_RUNS` runs that each change
a few dotted config fields (an optimizer, a regularizer, one numeric setting over a list
of values, or any ``--vary`` pairs from the CLI). Fairness as DESIGN.md defines it:

- initial weights are built once from the base config's seed and passed as ``init_state``
  to every run whose parameter names and shapes match; the others build from their own
  seed and the table says how many of their weight tensors still equal the shared ones;
- every run shuffles, augments and drops out from generators seeded by the same seed, so
  they see the same batches in the same order (a fingerprint of the first epoch's inputs
  is recorded per run to show it);
- what differs is computed by diffing the flattened run configs, never taken from the
  sweep's own description.

The same object serves the page (live, from job snapshots), the CLI (``compare``) and
the comparison JSON that re-opens a finished comparison.

One module a job: ``naming`` (values, legend names, what differs), ``comparison`` (the
comparison, its runs and its JSON file), ``planning`` (optimizers, regularizers, sweeps,
``--vary``), ``fairness`` (shared initial weights, batch digests, the CompareTrainer),
``distilling`` (student alone vs distilled), ``scaling`` (model size sweeps, their parameters and
training FLOPs, and the power-law fit), ``running`` (through the job pool), ``tables`` (summary,
fairness and curve tables, CSV, the output folder) and ``commands`` (the CLI's ``compare``).
The names are re-exported here: ``from bigmodel_core.experiments import compare as cmp; cmp.plan_optimizers(...)``.
"""

from .commands import (
    run_compare,
)
from .comparison import (
    FORMAT,
    KINDS,
    LABELS_ONLY,
    MAX_FILE_EPOCHS,
    MAX_RUNS,
    MAX_TEXT,
    VERSION,
    CompareRun,
    Comparison,
    ComparisonFile,
    DistillFile,
    EpochRow,
    Metric,
    RunFile,
    Sha,
    Text,
    comparison_order,
)
from .distilling import (
    ALONE,
    DistillCompareTrainer,
    distill_entry,
    distilled_name,
    plan_distillation,
)
from .fairness import (
    BatchDigest,
    CompareTrainer,
    InitPlan,
    initial_states,
    state_sha,
)
from .naming import (
    ABSENT,
    differing_fields,
    differs_rows,
    flatten,
    fmt_value,
    names_from_diff,
    parse_value,
    parse_vary,
    run_name,
    short_field,
    split_values,
    unique_names,
)
from .planning import (
    DEFAULT_LR,
    OVERFIT_BASE,
    OVERFIT_RUNS,
    REGULARIZERS,
    SWEEP_FIELDS,
    overfitting_lesson,
    plan,
    plan_optimizers,
    plan_regularizers,
    plan_sweep,
    plan_vary,
    regularizer_changes,
    regularizer_label,
    strip_regularization,
)
from .running import (
    refresh,
    stop,
    submit,
    wait,
)
from .scaling import (
    DEFAULT_WIDTHS,
    FIT_NOTE,
    MAX_WIDTH,
    TRAIN_FLOPS_PER_FORWARD,
    ModelSize,
    PowerLaw,
    ScalePoint,
    fit_points,
    fit_power_law,
    model_size,
    plan_scale,
    points_of,
    scale_changes,
    scale_points,
    scale_rows,
    size_name,
    training_flops,
)
from .tables import (
    curve_rows,
    describe_base,
    fairness_rows,
    metric_label,
    summary_rows,
    to_csv,
    write_comparison,
)

__all__ = [
    "ABSENT",
    "ALONE",
    "DEFAULT_WIDTHS",
    "DistillCompareTrainer",
    "DistillFile",
    "distill_entry",
    "distilled_name",
    "FIT_NOTE",
    "fit_points",
    "fit_power_law",
    "KINDS",
    "LABELS_ONLY",
    "MAX_WIDTH",
    "model_size",
    "ModelSize",
    "plan_distillation",
    "plan_scale",
    "points_of",
    "PowerLaw",
    "scale_changes",
    "scale_points",
    "scale_rows",
    "ScalePoint",
    "size_name",
    "TRAIN_FLOPS_PER_FORWARD",
    "training_flops",
    "BatchDigest",
    "CompareRun",
    "CompareTrainer",
    "Comparison",
    "comparison_order",
    "ComparisonFile",
    "curve_rows",
    "DEFAULT_LR",
    "describe_base",
    "differing_fields",
    "differs_rows",
    "EpochRow",
    "fairness_rows",
    "flatten",
    "fmt_value",
    "FORMAT",
    "initial_states",
    "InitPlan",
    "MAX_FILE_EPOCHS",
    "MAX_RUNS",
    "MAX_TEXT",
    "Metric",
    "metric_label",
    "names_from_diff",
    "OVERFIT_BASE",
    "OVERFIT_RUNS",
    "overfitting_lesson",
    "parse_value",
    "parse_vary",
    "plan",
    "plan_optimizers",
    "plan_regularizers",
    "plan_sweep",
    "plan_vary",
    "refresh",
    "regularizer_changes",
    "regularizer_label",
    "REGULARIZERS",
    "run_compare",
    "run_name",
    "RunFile",
    "Sha",
    "short_field",
    "split_values",
    "state_sha",
    "stop",
    "strip_regularization",
    "submit",
    "summary_rows",
    "SWEEP_FIELDS",
    "Text",
    "to_csv",
    "unique_names",
    "VERSION",
    "wait",
    "write_comparison",
]
