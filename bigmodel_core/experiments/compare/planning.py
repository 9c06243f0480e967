"""Planning comparisons: runs that each change a few dotted config fields of one base.

An optimizer per run, a regularizer per run (each on top of the base with all regularizers
off), one setting over a list of values, any ``--vary`` pairs from the CLI, and the
overfitting lesson.
"""

from __future__ import annotations

import re
from typing import Any

from bigmodel_core.config.specs import OPTIMIZERS, ConfigError, ExperimentConfig, parse_config

from .comparison import MAX_RUNS, CompareRun, Comparison
from .naming import fmt_value, run_name, unique_names

# Learning rates that train the quickstart models reasonably in a few epochs; the page
# offers them as the starting value of each optimizer's own lr.
DEFAULT_LR: dict[str, float] = {"sgd": 0.05, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.02,
                                "rmsprop": 0.001, "adam": 0.001, "adamw": 0.001}


# name -> (default strength, what the strength means)
REGULARIZERS: dict[str, tuple[float | None, str]] = {
    "none": (None, ""),
    "L1": (1e-4, "penalty weight on |w| (summed over weights)"),
    "L2": (1e-3, "penalty weight on w^2 (summed over weights)"),
    "weight decay": (0.05, "optimizer weight decay (Adam becomes AdamW: decoupled decay)"),
    "dropout": (0.5, "dropout rate of dense layers (conv blocks get half of it)"),
    "batchnorm": (None, "batch normalization in every conv block"),
    "augmentation": (None, "random shifts, rotations and scaling of the training images"),
    "early stopping": (3, "patience in epochs (restores the best weights)"),
    "label smoothing": (0.1, "smoothing of the one-hot targets"),
}


# Settings a sweep usually varies, with the label the page shows.
SWEEP_FIELDS: dict[str, str] = {
    "optimizer.lr": "learning rate",
    "training.batch_size": "batch size",
    "data.train_size": "training samples",
    "model.hidden": "hidden size (RNN)",
    "model.dense.0.units": "units of dense layer 1",
    "model.conv.0.channels": "channels of conv block 1",
    "regularization.l2": "L2 penalty",
    "optimizer.weight_decay": "weight decay",
    "training.epochs": "epochs",
    "seed": "seed",
}


def _apply(base: ExperimentConfig, changes: dict[str, Any], run: int) -> ExperimentConfig:
    """``base`` with ``changes``; a bad value is reported with its field and the value itself."""
    try:
        return base.with_changes(changes)
    except ConfigError as exc:
        problems = []
        for path, msg in exc.problems:
            path = re.sub(r"\[(\d+)\]", r".\1", path)  # pydantic's model.conv[0].x is our model.conv.0.x
            value = changes.get(path)
            if path not in changes:  # the error landed on a related field (e.g. model-level checks)
                path = ", ".join(changes) or path
                value = ", ".join(fmt_value(v) for v in changes.values())
            shown = repr(value) if isinstance(value, str) and path in changes else fmt_value(value)
            problems.append((path, f"value {shown} (run {run}) is not allowed: {msg}"))
        raise ConfigError(problems) from None


def plan(base: ExperimentConfig, changes: list[dict[str, Any]], names: list[str] | None = None,
         title: str = "") -> Comparison:
    """A comparison of ``base`` with each dict of dotted-path changes (one per run)."""
    if not changes:
        raise ConfigError([("runs", "choose at least one run")])
    if len(changes) > MAX_RUNS:
        raise ConfigError([("runs", f"{len(changes)} runs is more than the {MAX_RUNS} a comparison holds")])
    configs = [_apply(base, ch, i + 1) for i, ch in enumerate(changes)]
    names = unique_names(names or [run_name(ch) for ch in changes])
    return Comparison(base=base, runs=[CompareRun(n, c) for n, c in zip(names, configs)], title=title)


def plan_vary(base: ExperimentConfig, vary: dict[str, list[Any]], title: str = "") -> Comparison:
    """Pair the value lists run by run: {a: [1, 2], b: [3, 4]} -> runs {a: 1, b: 3} and {a: 2, b: 4}."""
    n = len(next(iter(vary.values()))) if vary else 0
    changes = [{k: v[i] for k, v in vary.items()} for i in range(n)]
    return plan(base, changes, title=title or " & ".join(vary))


def plan_optimizers(base: ExperimentConfig, choices: list[tuple[str, float]]) -> Comparison:
    """One run per (optimizer name, lr)."""
    for name, _ in choices:
        if name not in OPTIMIZERS:
            raise ConfigError([("optimizer.name", f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")])
    changes = [{"optimizer.name": n, "optimizer.lr": float(lr), "optimizer.momentum": None} for n, lr in choices]
    names = [f"{n} lr={fmt_value(float(lr))}" for n, lr in choices]
    return plan(base, changes, names=names, title="optimizer")


def strip_regularization(base: ExperimentConfig) -> ExperimentConfig:
    """``base`` with every regularizer off: the "none" run and the starting point of the others."""
    d = base.to_dict()
    d["regularization"].update({"l1": 0.0, "l2": 0.0, "label_smoothing": 0.0, "early_stopping": None})
    d["optimizer"]["weight_decay"] = 0.0
    d["data"]["augment"] = False
    model = d["model"]
    for block in model.get("conv", []):
        block.update({"dropout": 0.0, "batchnorm": False})
    for layer in model.get("dense", []):
        layer["dropout"] = 0.0
    if "dropout" in model:
        model["dropout"] = 0.0
    return parse_config(d)


def regularizer_changes(base: ExperimentConfig, name: str, strength: float | None = None) -> dict[str, Any]:
    """The dotted-path changes that turn regularizer ``name`` on (``base`` has none on)."""
    if name not in REGULARIZERS:
        raise ConfigError([("regularizer", f"unknown regularizer {name!r}; choose from {', '.join(REGULARIZERS)}")])
    s = REGULARIZERS[name][0] if strength is None else strength
    model = base.model
    if name == "none":
        return {}
    if name == "L1":
        return {"regularization.l1": s}
    if name == "L2":
        return {"regularization.l2": s}
    if name == "weight decay":
        ch: dict[str, Any] = {"optimizer.weight_decay": s}
        if base.optimizer.name == "adam":
            ch["optimizer.name"] = "adamw"  # Adam's own weight_decay is an L2 penalty; AdamW decouples it
        return ch
    if name == "dropout":
        ch = {f"model.dense.{i}.dropout": s for i in range(len(model.dense))}
        if model.family == "cnn":
            half = round(s / 2, 4) if model.dense else s
            ch.update({f"model.conv.{i}.dropout": half for i in range(len(model.conv))})
        elif model.layers > 1:
            ch["model.dropout"] = s
        if not ch:
            raise ConfigError([("regularizer", f"dropout has no place in a 1-layer {model.family} without dense "
                                               "layers; add a dense layer or a second recurrent layer")])
        return ch
    if name == "batchnorm":
        if model.family != "cnn":
            raise ConfigError([("regularizer", f"batchnorm applies to conv blocks; this model is an {model.family}")])
        return {f"model.conv.{i}.batchnorm": True for i in range(len(model.conv))}
    if name == "augmentation":
        return {"data.augment": True}
    if name == "early stopping":
        return {"regularization.early_stopping": {"patience": int(s or 3), "restore_best": True}}
    return {"regularization.label_smoothing": s}


def regularizer_label(name: str, strength: float | None) -> str:
    if name in ("none", "batchnorm", "augmentation") or strength is None:
        return name
    if name == "early stopping":
        return f"early stopping (patience {int(strength)})"
    return f"{name} {fmt_value(float(strength))}"


def plan_regularizers(base: ExperimentConfig, choices: list[tuple[str, float | None]]) -> Comparison:
    clean = strip_regularization(base)
    changes = [regularizer_changes(clean, n, s) for n, s in choices]
    names = [regularizer_label(n, s) for n, s in choices]
    return plan(clean, changes, names=names, title="regularizer")


def plan_sweep(base: ExperimentConfig, path: str, values: list[Any]) -> Comparison:
    return plan(base, [{path: v} for v in values], title=path)


# The overfitting lesson: few training samples, so a plain CNN memorises them (train accuracy in
# eval mode 100%, validation far below). Measured (README, "Overfitting lesson"): augmentation
# narrows that gap, L2 a little, dropout not at all here, though the running train accuracy
# measured with dropout on makes it look narrower.
OVERFIT_BASE: dict[str, Any] = {
    "seed": 0,
    "data": {"name": "synthetic_digits", "train_size": 100, "val_size": 500, "augment": False},
    "model": {"family": "cnn", "conv": [{"channels": 16}, {"channels": 32}], "dense": [{"units": 128}]},
    "optimizer": {"name": "adam", "lr": 0.001},
    "training": {"epochs": 40, "batch_size": 16, "device": "auto"},
}


OVERFIT_RUNS: list[tuple[str, float | None]] = [("none", None), ("L2", 5e-3), ("dropout", 0.5), ("augmentation", None)]


def overfitting_lesson() -> Comparison:
    comp = plan_regularizers(parse_config(OVERFIT_BASE), OVERFIT_RUNS)
    comp.title = "overfitting: 100 training samples, with and without regularization"
    return comp
