"""Planning fine-tunes: the target model, the label budget, the plan and the trainer that runs it.

Label budgets are K labelled examples per class (K examples in all for regression), repeated
within an epoch so that every strategy at a budget takes the same steps. A
:class:`FinetuneTrainer` is a Trainer built from (target config, pretrained weights, plan), so
the job pool runs fine-tuning like any other job; :func:`plan_experiment` and
:func:`make_job` queue every strategy x budget x seed fairly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bigmodel_core.config.specs import ExperimentConfig
from bigmodel_core.data import Dataset, DatasetError, DatasetInfo, sample_indices_per_class
from bigmodel_core.nn.models import build_model
from bigmodel_core.training.jobs import Job
from bigmodel_core.training.trainer import Control, Trainer, load_data

from .base import CLASSIFIER, DEFAULT_BACKBONE_LR_SCALE, DEFAULT_EPOCH_SAMPLES, FinetuneError, config_info
from .strategies import KeepFrozenInEval, Strategy, apply_strategy, frozen_modules
from .weights import Source, check_weights


def build_finetune_model(config: ExperimentConfig, info: DatasetInfo, source: Source | None,
                         strategy: Strategy) -> nn.Module:
    """The target model: seeded init (so every strategy shares the new head's initial weights),
    then the pretrained backbone loaded over it unless the strategy is ``scratch``."""
    model = build_model(config.model, info, seed=config.seed)
    if not strategy.uses_pretrained:
        return model
    if source is None:
        raise FinetuneError(f"strategy {strategy} needs pretrained weights; pick a pretrained model or upload some")
    check_weights(model, source.state)
    want = model.state_dict()
    backbone = {k: v.to(want[k].dtype) for k, v in source.state.items() if not k.startswith(CLASSIFIER)}
    missing, unexpected = model.load_state_dict(backbone, strict=False)
    assert all(k.startswith(CLASSIFIER) for k in missing) and not unexpected
    return model


def budget_unit(info: DatasetInfo) -> str:
    return "labels per class" if info.task == "classification" else "labelled sequences"


def budget_indices(dataset: Dataset, per_class: int | None, seed: int,
                   epoch_samples: int = DEFAULT_EPOCH_SAMPLES) -> torch.Tensor | None:
    """Training indices for a label budget, repeated to at least ``epoch_samples`` per epoch.

    ``per_class`` is labelled examples per class for classification and labelled examples in
    all for regression; None means every training example. A bigger budget contains every
    smaller one for the same seed. Repeating a tiny labelled set inside an epoch keeps the
    number of optimizer steps the same for every strategy at a budget without validating
    after every handful of steps.
    """
    y = dataset.y_train
    n = len(y)
    if per_class is None:
        base = torch.arange(n)
    elif per_class < 1:
        raise FinetuneError(f"labels per class must be at least 1, got {per_class}")
    elif dataset.info.task == "classification":
        try:
            base = sample_indices_per_class(y, per_class, seed)
        except DatasetError as exc:
            raise FinetuneError(f"label budget {per_class} per class: {exc}") from None
    else:
        if per_class > n:
            raise FinetuneError(f"label budget {per_class}: the training pool has only {n} examples")
        gen = torch.Generator().manual_seed(seed * 7919 + 17)
        base = torch.sort(torch.randperm(n, generator=gen)[:per_class]).values
    repeats = max(1, math.ceil(epoch_samples / len(base)))
    if per_class is None and repeats == 1:
        return None
    return base.repeat(repeats)


def parse_budget(text: str | int | None) -> int | None:
    if text is None or str(text).strip().lower() == "all":
        return None
    try:
        k = int(text)
    except ValueError:
        raise FinetuneError(f"--labels-per-class must be a whole number or 'all', got {text!r}") from None
    if k < 1:
        raise FinetuneError(f"--labels-per-class must be at least 1, got {k}")
    return k


@dataclass(frozen=True)
class Plan:
    """How to fine-tune: strategy, label budget and the backbone's learning-rate scale."""

    strategy: Strategy
    labels_per_class: int | None = None  # None = all
    backbone_lr_scale: float = DEFAULT_BACKBONE_LR_SCALE
    epoch_samples: int = DEFAULT_EPOCH_SAMPLES

    @staticmethod
    def make(strategy: str | Strategy, labels_per_class: int | None = None,
             backbone_lr_scale: float = DEFAULT_BACKBONE_LR_SCALE,
             epoch_samples: int = DEFAULT_EPOCH_SAMPLES) -> Plan:
        return Plan(Strategy.parse(strategy), labels_per_class, backbone_lr_scale, epoch_samples)


class FinetuneTrainer(Trainer):
    """A Trainer whose model, parameter groups and training subset come from a fine-tune plan.

    Everything else (events, evaluation, stopping, determinism) is the plain Trainer's, so the
    same seed gives every strategy the same data order and the same new-head init.
    """

    def __init__(self, config: ExperimentConfig, plan: Plan, source: Source | None = None, *,
                 control: Control | None = None, dataset: Dataset | None = None):
        dataset = dataset if dataset is not None else load_data(config)
        model = build_finetune_model(config, dataset.info, source, plan.strategy)
        # the weights training starts from, for the before/after feature maps
        self.start_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        groups = apply_strategy(model, plan.strategy, plan.backbone_lr_scale)
        indices = budget_indices(dataset, plan.labels_per_class, config.seed, plan.epoch_samples)
        super().__init__(config, dataset=dataset, model=model, control=control, param_groups=groups,
                         train_indices=indices, callbacks=[KeepFrozenInEval(frozen_modules(model, plan.strategy))])
        self.plan = plan
        self.source = source if plan.strategy.uses_pretrained else None
        self.labelled = len(dataset.y_train) if indices is None else int(torch.unique(indices).numel())
        self.trainable_params = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def summary(self) -> dict[str, Any]:
        s = super().summary()
        s["finetune"] = {
            "strategy": str(self.plan.strategy),
            "labels_per_class": self.plan.labels_per_class,
            "labelled_examples": self.labelled,
            "validation_examples": len(self.y_val),  # beside the metric: a few labels make a noisy figure
            "backbone_lr_scale": self.plan.backbone_lr_scale,
            "trainable_params": self.trainable_params,
            "frozen_params": self.params - self.trainable_params,
            "pretrained": self.source.describe() if self.source is not None else None,
        }
        return s


MAX_EXPERIMENT_RUNS = 36


@dataclass(frozen=True)
class PlannedRun:
    strategy: Strategy
    labels_per_class: int | None
    seed: int

    @property
    def budget_text(self) -> str:
        return "all" if self.labels_per_class is None else str(self.labels_per_class)


def plan_experiment(strategies: list[str | Strategy], budgets: list[int | None], seeds: list[int]) -> list[PlannedRun]:
    """Every strategy x budget x seed. Within a budget and seed every run gets the same labelled
    examples, data order, steps and new-head init, so only the strategy differs."""
    parsed = list(dict.fromkeys(Strategy.parse(s) for s in strategies))
    if not parsed or not budgets or not seeds:
        raise FinetuneError("choose at least one strategy, one label budget and one seed")
    runs = [PlannedRun(s, b, seed) for b in dict.fromkeys(budgets) for seed in dict.fromkeys(seeds) for s in parsed]
    if len(runs) > MAX_EXPERIMENT_RUNS:
        raise FinetuneError(f"{len(runs)} runs is more than the {MAX_EXPERIMENT_RUNS} one experiment may queue "
                            "on a shared server; choose fewer strategies, budgets or seeds")
    return runs


def make_job(config: ExperimentConfig, run: PlannedRun, source: Source | None, owner: str, *,
             backbone_lr_scale: float = DEFAULT_BACKBONE_LR_SCALE, epoch_samples: int = DEFAULT_EPOCH_SAMPLES,
             group: str | None = None, save: bool = True) -> Job:
    """A pool Job (kind "finetune") that trains one planned run."""
    cfg = config.with_changes({"seed": run.seed}) if run.seed != config.seed else config
    plan = Plan(run.strategy, run.labels_per_class, backbone_lr_scale, epoch_samples)
    src = source if run.strategy.uses_pretrained else None
    if run.strategy.uses_pretrained and src is None:
        raise FinetuneError(f"strategy {run.strategy} needs pretrained weights")

    def make_trainer(job: Job) -> Trainer:
        return FinetuneTrainer(cfg, plan, src, control=job.control)

    unit = "/class" if config_info(cfg).task == "classification" else " seqs"
    label = f"{run.strategy.label} · {run.budget_text}{unit} · seed {run.seed}"
    return Job(cfg, owner=owner, label=label, group=group, kind="finetune", make_trainer=make_trainer, save=save)
