"""Strategies: what trains, at which learning rate, and what stays in eval mode.

``head`` (frozen feature extractor + a new linear head, a linear probe), ``last:N`` (also
train the last N backbone blocks), ``full`` (train everything, the backbone at
``backbone_lr_scale`` times the head's learning rate) and ``scratch`` (the same network from
its seeded random init: the baseline). Frozen blocks are kept in eval mode, so their
BatchNorm running statistics never move and their dropout is off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from bigmodel_core.nn.models import ConvNet, SeqNet
from bigmodel_core.training.trainer import Callback, ParamGroup, Trainer

from .base import DEFAULT_BACKBONE_LR_SCALE, FinetuneError

STRATEGY_KINDS = ("head", "last", "full", "scratch")
STRATEGY_HELP = {
    "head": "frozen feature extractor + new linear head (linear probe)",
    "last": "new head + the last N backbone blocks trained",
    "full": "everything trained; the backbone at a lower learning rate than the new head",
    "scratch": "same network from random initial weights (the baseline)",
}


@dataclass(frozen=True)
class Strategy:
    kind: str
    n: int = 0  # last:N only

    @staticmethod
    def parse(text: str | Strategy) -> Strategy:
        if isinstance(text, Strategy):
            return text
        t = str(text).strip().lower()
        if t in ("head", "full", "scratch"):
            return Strategy(t)
        m = re.fullmatch(r"last:(\d+)", t)
        if m and int(m.group(1)) >= 1:
            return Strategy("last", int(m.group(1)))
        raise FinetuneError(f"unknown strategy {text!r}; choose head, last:N (N >= 1), full or scratch")

    def __str__(self) -> str:
        return f"last:{self.n}" if self.kind == "last" else self.kind

    @property
    def uses_pretrained(self) -> bool:
        return self.kind != "scratch"

    @property
    def label(self) -> str:
        return {"head": "head only (linear probe)", "last": f"last {self.n} block{'s' if self.n > 1 else ''} + head",
                "full": "full fine-tune", "scratch": "from scratch"}[self.kind]


@dataclass(frozen=True)
class Unit:
    """One backbone block as the learner sees it: a conv block, an RNN layer or a dense layer."""

    name: str
    module: str  # qualified module name


def backbone_units(model: nn.Module) -> list[Unit]:
    """The blocks before the classifier, input to output (``last:N`` counts from the end)."""
    units: list[Unit] = []
    if isinstance(model, ConvNet):
        units += [Unit(f"conv block {i + 1}", f"blocks.{i}") for i in range(len(model.blocks))]
    elif isinstance(model, SeqNet):
        units += [Unit(f"{model.family} layer {i + 1}", f"rnn.{i}") for i in range(len(model.rnn))]
    else:
        raise FinetuneError(f"fine-tuning works on the playground's ConvNet and SeqNet, not {type(model).__name__}")
    dense = [i for i, m in enumerate(model.head) if isinstance(m, nn.Linear)]
    units += [Unit(f"dense {model.head[i].out_features}", f"head.{i}") for i in dense]
    return units


class KeepFrozenInEval(Callback):
    """Frozen blocks stay in eval mode whenever the trainer puts the model in training mode:
    BatchNorm keeps its pretrained running statistics (and normalises with them) and dropout
    stays off, so a frozen block computes exactly what it did before fine-tuning."""

    def __init__(self, modules: list[str]):
        self.modules = modules

    def on_train_mode(self, trainer: Trainer) -> None:
        for name in self.modules:
            trainer.model.get_submodule(name).eval()


def frozen_modules(model: nn.Module, strategy: Strategy | str) -> list[str]:
    """The backbone blocks ``strategy`` freezes (module names)."""
    train = {u.module for u in trainable_units(model, Strategy.parse(strategy))}
    return [u.module for u in backbone_units(model) if u.module not in train]


def trainable_units(model: nn.Module, strategy: Strategy) -> list[Unit]:
    units = backbone_units(model)
    if strategy.kind == "last" and strategy.n > len(units):
        names = ", ".join(u.name for u in units)
        raise FinetuneError(f"last:{strategy.n}: this model has only {len(units)} backbone blocks ({names}); "
                            f"choose N from 1 to {len(units)}, or full")
    return {"head": [], "last": units[len(units) - strategy.n:] if strategy.n else [],
            "full": units, "scratch": units}[strategy.kind]


def apply_strategy(model: nn.Module, strategy: Strategy | str,
                   backbone_lr_scale: float = DEFAULT_BACKBONE_LR_SCALE) -> list[ParamGroup]:
    """Freeze what the strategy freezes and return the optimizer's parameter groups.

    Pretrained blocks that train get ``backbone_lr_scale`` times the learning rate (so large
    early gradients from the random new head do not wreck them); the new head gets 1x.
    """
    strategy = Strategy.parse(strategy)
    if not 0 < backbone_lr_scale <= 10:
        raise FinetuneError(f"backbone_lr_scale must be in (0, 10], got {backbone_lr_scale}")
    units = backbone_units(model)
    train = {u.module for u in trainable_units(model, strategy)}
    backbone: list[nn.Parameter] = []
    for unit in units:
        module = model.get_submodule(unit.module)
        on = unit.module in train
        for p in module.parameters():
            p.requires_grad_(on)
        if on:
            backbone += list(module.parameters())
        else:
            module.eval()  # and a trainer keeps it so (KeepFrozenInEval)
    head = list(model.classifier.parameters())
    for p in head:
        p.requires_grad_(True)
    if strategy.kind == "scratch":
        return [ParamGroup(backbone + head, 1.0, "all")]
    groups = [ParamGroup(head, 1.0, "new head")]
    if backbone:
        groups.insert(0, ParamGroup(backbone, backbone_lr_scale, "backbone"))
    return groups


@dataclass(frozen=True)
class LayerRow:
    block: str
    module: str
    params: int
    trainable: bool
    lr_scale: float | None  # None when frozen
    batchnorm: str  # "" | "eval: running stats frozen" | "train: batch stats, running stats update"


def layer_table(model: nn.Module, strategy: Strategy | str,
                backbone_lr_scale: float = DEFAULT_BACKBONE_LR_SCALE) -> list[LayerRow]:
    """Which blocks train and which are frozen under ``strategy`` (on a throwaway copy of the model)."""
    strategy = Strategy.parse(strategy)
    train = {u.module for u in trainable_units(model, strategy)}
    rows = []
    for unit in backbone_units(model):
        module = model.get_submodule(unit.module)
        on = unit.module in train
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
        bn = ("train: batch statistics, running stats update" if on else "eval: running stats frozen") if has_bn else ""
        scale = (1.0 if strategy.kind == "scratch" else backbone_lr_scale) if on else None
        rows.append(LayerRow(unit.name, unit.module, sum(p.numel() for p in module.parameters()), on, scale, bn))
    rows.append(LayerRow("new head (classifier)" if strategy.uses_pretrained else "classifier", "classifier",
                         sum(p.numel() for p in model.classifier.parameters()), True, 1.0, ""))
    return rows
