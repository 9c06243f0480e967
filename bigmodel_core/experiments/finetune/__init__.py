"""Transfer learning: pretrained weights with cards, freeze strategies, label budgets, safe uploads.

What this package owns:

- **Pretrained assets** in ``assets/pretrained/``: ``NAME.safetensors`` plus ``NAME.json``
  (the card: config, training data, metrics, sha256, reproduce command, suggested target).
  ``RECIPES`` says how each one is made; ``pretrain(NAME)`` remakes it bit for bit on CPU
  (fixed seed, fixed torch thread count). ``load_pretrained`` checks the sha256 first.
- **Strategies** (``Strategy.parse``): ``head`` (frozen feature extractor + a new linear
  head, a linear probe), ``last:N`` (also train the last N backbone blocks), ``full`` (train
  everything, the backbone at ``backbone_lr_scale`` times the head's learning rate) and
  ``scratch`` (the same network from its seeded random init: the baseline). Frozen blocks
  are kept in eval mode, so their BatchNorm running statistics never move and their
  dropout is off.
- **Label budgets**: K labelled examples per class (K examples in all for regression),
  repeated within an epoch so that every strategy at a budget takes the same steps.
- **Uploads**: only safetensors, size-checked and header-checked before parsing; never
  pickle (``torch.load`` is not called anywhere here). Tensors are then checked shape by
  shape against the model, and the first mismatch is named.
- ``FinetuneTrainer``: a Trainer built from (target config, pretrained weights, plan), so
  the job pool runs fine-tuning like any other job; the CLI's ``pretrain`` and ``finetune``.

One module a job: ``base`` (errors, defaults), ``weights`` (safe reading and checking of
weights), ``recipes`` (the shipped models, their cards, pretraining), ``strategies``,
``plan`` (budgets, the plan, the FinetuneTrainer, experiments through the pool), ``outputs``
(maps before and after, the fine-tuned weights with their card), ``results`` (the results
aggregated for the page), ``target_data`` (the label budget the target's split leaves, for a
learner's own images) and ``commands`` (the CLI's ``pretrain`` and ``finetune``). The names
are re-exported here: ``from bigmodel_core.experiments import finetune as ft; ft.load_pretrained(...)``.
"""

from .base import (
    CLASSIFIER,
    DEFAULT_BACKBONE_LR_SCALE,
    DEFAULT_EPOCH_SAMPLES,
    FinetuneError,
    UploadError,
    config_info,
)
from .commands import (
    resolve_source,
    run_finetune,
    run_pretrain,
)
from .outputs import (
    MapPair,
    finetuned_card,
    finetuned_files,
    finetuned_zip,
    maps_before_after,
)
from .plan import (
    MAX_EXPERIMENT_RUNS,
    FinetuneTrainer,
    Plan,
    PlannedRun,
    budget_indices,
    budget_unit,
    build_finetune_model,
    make_job,
    parse_budget,
    plan_experiment,
)
from .recipes import (
    PRETRAIN_THREADS,
    PRETRAINED_DIR,
    RECIPES,
    Recipe,
    card_path,
    cpu_fingerprint,
    find_recipe,
    fixed_threads,
    history_rows_for_card,
    load_card,
    load_pretrained,
    pretrain,
    pretrained_names,
    suggested_target,
    weights_path,
)
from .results import (
    BudgetMean,
    BudgetPoint,
    FinetuneResults,
    RunOutcome,
    StrategyCurve,
    aggregate_results,
    budget_curves,
    budget_points,
    budget_ticks,
    metric_key,
    result_rows,
    status_counts,
)
from .strategies import (
    STRATEGY_HELP,
    STRATEGY_KINDS,
    KeepFrozenInEval,
    LayerRow,
    Strategy,
    Unit,
    apply_strategy,
    backbone_units,
    frozen_modules,
    layer_table,
    trainable_units,
)
from .target_data import LabelBudget, label_budget
from .weights import (
    MAX_HEADER_BYTES,
    MAX_KEY_CHARS,
    MAX_TENSORS,
    Source,
    accept_upload,
    check_values,
    check_weights,
    read_safetensors,
    sha256_bytes,
)

__all__ = [
    "accept_upload",
    "aggregate_results",
    "apply_strategy",
    "backbone_units",
    "budget_curves",
    "budget_indices",
    "budget_points",
    "budget_ticks",
    "budget_unit",
    "BudgetMean",
    "BudgetPoint",
    "build_finetune_model",
    "card_path",
    "check_values",
    "check_weights",
    "CLASSIFIER",
    "config_info",
    "cpu_fingerprint",
    "DEFAULT_BACKBONE_LR_SCALE",
    "DEFAULT_EPOCH_SAMPLES",
    "find_recipe",
    "finetuned_card",
    "finetuned_files",
    "finetuned_zip",
    "FinetuneError",
    "FinetuneResults",
    "FinetuneTrainer",
    "fixed_threads",
    "frozen_modules",
    "history_rows_for_card",
    "KeepFrozenInEval",
    "label_budget",
    "LabelBudget",
    "layer_table",
    "LayerRow",
    "load_card",
    "load_pretrained",
    "make_job",
    "MapPair",
    "maps_before_after",
    "MAX_EXPERIMENT_RUNS",
    "MAX_HEADER_BYTES",
    "MAX_KEY_CHARS",
    "MAX_TENSORS",
    "metric_key",
    "parse_budget",
    "Plan",
    "plan_experiment",
    "PlannedRun",
    "pretrain",
    "PRETRAIN_THREADS",
    "PRETRAINED_DIR",
    "pretrained_names",
    "read_safetensors",
    "Recipe",
    "RECIPES",
    "resolve_source",
    "result_rows",
    "run_finetune",
    "run_pretrain",
    "RunOutcome",
    "sha256_bytes",
    "Source",
    "status_counts",
    "Strategy",
    "STRATEGY_HELP",
    "STRATEGY_KINDS",
    "StrategyCurve",
    "suggested_target",
    "trainable_units",
    "Unit",
    "UploadError",
    "weights_path",
]
