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
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from torch import nn

from bigmodel_core.config.specs import OPTIMIZERS, ConfigError, ExperimentConfig, parse_config, parse_config_here
from bigmodel_core.config.uploaded_data import add_data_arguments, apply_data_arguments
from bigmodel_core.data import dataset_info
from bigmodel_core.limits import current_limits
from bigmodel_core.nn.models import build_model
from bigmodel_core.safejson import JSONInputError, TooLong, loads, number_arg, too_long_message
from bigmodel_core.training.jobs import ACTIVE, Job, JobPool
from bigmodel_core.training.store import METRIC_COLUMNS, StoredRun, check_out_dir, write_run
from bigmodel_core.training.trainer import Callback, EpochEnd, RunEnd, Trainer

MAX_RUNS = 8
FORMAT = "bigmodel-comparison"
VERSION = 1

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


# --- values and names -------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A sweep value: JSON where possible (numbers, null, true, objects), else the plain string."""
    text = text.strip()
    try:
        return loads(text)  # an over-long number becomes a marker the config refuses naming the field
    except JSONInputError:
        return text


def split_values(text: str) -> list[str]:
    """Split ``V1,V2,...`` on the commas that are not inside brackets, braces or quotes."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_vary(specs: list[str]) -> dict[str, list[Any]]:
    """``["optimizer.name=sgd,adam", "optimizer.lr=0.1,0.001"]`` -> {field: values}, lengths checked."""
    vary: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise ConfigError([("--vary", f"{spec!r} is not FIELD=V1,V2,... (e.g. optimizer.lr=0.1,0.01)")])
        if name in vary:
            raise ConfigError([(name, "is given twice in --vary")])
        items = split_values(values)
        if any(not v for v in items):
            raise ConfigError([(name, f"an empty value in {values!r}")])
        vary[name] = [parse_value(v) for v in items]
    lengths = {len(v) for v in vary.values()}
    if len(lengths) > 1:
        detail = ", ".join(f"{k} has {len(v)}" for k, v in vary.items())
        raise ConfigError([("--vary", f"the value lists must have equal length to pair up run by run ({detail})")])
    return vary


def fmt_value(v: Any) -> str:
    """Compact value text for legends: 0.001 -> 1e-3, 0.05 -> 0.05, True -> true."""
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)  # inf, -inf, nan: there is no mantissa to shorten
        if v != 0 and (abs(v) < 0.01 or abs(v) >= 1e5):
            mantissa, exp = f"{v:.2e}".split("e")
            mantissa = mantissa.rstrip("0").rstrip(".")
            return f"{mantissa}e{int(exp)}"
        return f"{v:g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def short_field(path: str) -> str:
    """The part of a dotted path a legend needs: optimizer.lr -> lr, model.conv.0.dropout -> conv.0.dropout."""
    parts = path.split(".")
    return ".".join(parts[1:]) if len(parts) > 1 else path


def run_name(changes: dict[str, Any]) -> str:
    """A legend name that says the setting, e.g. ``adam lr=1e-3``."""
    bits: list[str] = []
    if "optimizer.name" in changes:
        bits.append(str(changes["optimizer.name"]))
    for path, value in changes.items():
        if path != "optimizer.name":
            bits.append(f"{short_field(path)}={fmt_value(value)}")
    return " ".join(bits) or "base"


def unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


# --- what differs -------------------------------------------------------------------------------
def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1, {"c": 2}]}}`` -> {"a.b.0": 1, "a.b.1.c": 2}; empty containers stay as leaves."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}.{i}" if prefix else str(i)))
        return out
    return {prefix: value}


ABSENT = "(absent)"


def differing_fields(configs: list[ExperimentConfig]) -> list[str]:
    """Dotted paths whose value is not the same in every config (a path missing somewhere counts)."""
    flats = [flatten(c.to_dict()) for c in configs]
    keys: list[str] = []
    for f in flats:
        keys += [k for k in f if k not in keys]
    return [k for k in keys if len({json.dumps(f.get(k, ABSENT), sort_keys=True) for f in flats}) > 1]


def differs_rows(names: list[str], configs: list[ExperimentConfig]) -> list[dict[str, Any]]:
    """One row per run: its name and its value of every field that differs between the runs."""
    fields = differing_fields(configs)
    rows = []
    for name, cfg in zip(names, configs):
        flat = flatten(cfg.to_dict())
        rows.append({"run": name, **{k: fmt_value(flat[k]) if k in flat else ABSENT for k in fields}})
    return rows


def names_from_diff(configs: list[ExperimentConfig]) -> list[str]:
    fields = differing_fields(configs)
    names = []
    for i, cfg in enumerate(configs):
        flat = flatten(cfg.to_dict())
        changes = {k: flat.get(k, ABSENT) for k in fields}
        names.append(run_name(changes) if changes else f"run {i + 1}")
    return unique_names(names)


# --- the comparison -------------------------------------------------------------------------------
@dataclass
class CompareRun:
    """One run of a comparison: its plan, then whatever was measured."""

    name: str
    config: ExperimentConfig
    status: str = "planned"  # planned | queued | running | paused | completed | stopped | diverged | failed | lost
    message: str = ""
    epochs: list[dict[str, float]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    run_id: str | None = None
    job_id: str | None = None
    init: str = ""  # how the initial weights relate to the shared ones
    init_sha: str | None = None
    data_sha: str | None = None
    order_sha: str | None = None
    # live-only (not saved in the JSON)
    queue_position: int | None = None
    progress: float = 0.0
    live_samples_per_sec: float | None = None
    steps: list[int] = field(default_factory=list)
    batch_losses: list[float] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config.to_dict(), "status": self.status,
                "message": self.message, "epochs": self.epochs, "summary": self.summary,
                "run_id": self.run_id, "init": self.init, "init_sha": self.init_sha, "data_sha": self.data_sha,
                "order_sha": self.order_sha}


@dataclass
class Comparison:
    base: ExperimentConfig
    runs: list[CompareRun]
    title: str = ""
    comparison_id: str = field(default_factory=lambda: f"cmp-{secrets.token_hex(5)}")
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))

    def __post_init__(self) -> None:
        if not 1 <= len(self.runs) <= MAX_RUNS:
            raise ConfigError([("runs", f"a comparison has 1 to {MAX_RUNS} runs, not {len(self.runs)}")])

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.runs]

    @property
    def task(self) -> str:
        d = self.base.data
        return dataset_info(d.name, image_size=d.image_size, seq_len=d.seq_len).task

    @property
    def active(self) -> bool:
        return any(r.active for r in self.runs)

    @property
    def started(self) -> bool:
        return any(r.status != "planned" for r in self.runs)

    def differs(self) -> list[dict[str, Any]]:
        return differs_rows(self.names, [r.config for r in self.runs])

    # --- JSON --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "id": self.comparison_id, "title": self.title,
                "created": self.created, "base": self.base.to_dict(), "runs": [r.to_dict() for r in self.runs]}

    def to_json(self) -> str:
        return json.dumps(_no_nan(self.to_dict()), indent=1, allow_nan=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Comparison:
        limit = current_limits().max_upload_bytes
        if len(raw) > limit:
            raise ConfigError([("", f"the comparison file is {len(raw):,} bytes; the limit is {limit:,}")])
        try:
            data = loads(raw, "the file")
        except JSONInputError as exc:
            raise ConfigError([("", f"not a comparison JSON file: {exc}")]) from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> Comparison:
        """A comparison from its file: the whole document is checked by :class:`ComparisonFile`
        (bounded fields, at most MAX_RUNS runs and MAX_FILE_EPOCHS epochs each) before any of it
        is drawn, so a huge file is refused in one pass instead of freezing the page."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError([("format", f"not a comparison file (expected \"format\": \"{FORMAT}\")")])
        if data.get("version") != VERSION:
            raise ConfigError([("version", f"unsupported version {_brief(data.get('version'))}; "
                                           f"this app reads {VERSION}")])
        try:
            doc = ComparisonFile.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_file_problems(exc)) from None
        base = _parse_at(doc.base, "base")
        runs = []
        for i, r in enumerate(doc.runs):
            where = f"runs[{i}]"
            if not r.name.strip():
                raise ConfigError([(f"{where}.name", "each run needs a non-empty name")])
            status = r.status
            if status in ACTIVE or status == "planned":  # a saved comparison is not running any more
                status = "stopped" if r.epochs else "planned"
            runs.append(CompareRun(
                name=r.name, config=_parse_at(r.config, f"{where}.config"), status=status, message=r.message or "",
                epochs=[{k: (float("nan") if v is None else v) for k, v in row.model_dump().items() if k in
                         row.model_fields_set} for row in r.epochs],
                summary=r.summary, run_id=r.run_id, init=r.init or "", init_sha=r.init_sha, data_sha=r.data_sha,
                order_sha=r.order_sha))
        return cls(base=base, runs=runs, title=doc.title or "",
                   comparison_id=doc.id or f"cmp-{secrets.token_hex(5)}", created=doc.created or "")

    @classmethod
    def from_stored(cls, stored: list[StoredRun], title: str = "stored runs") -> Comparison:
        """A finished comparison of stored runs (Runs page): their metrics.csv curves and summaries."""
        if not stored:
            raise ConfigError([("runs", "select at least one stored run")])
        configs = [s.config for s in stored]
        labels = [str(s.summary.get("label") or "") for s in stored]
        names = unique_names(labels) if all(labels) and len(set(labels)) == len(labels) else names_from_diff(configs)
        runs = []
        for s, name in zip(stored, names):
            info = s.summary.get("comparison") if isinstance(s.summary.get("comparison"), dict) else {}
            runs.append(CompareRun(name=name, config=s.config, status=str(s.summary.get("status", "completed")),
                                   message=str(s.summary.get("message") or ""),
                                   epochs=[{k: v for k, v in row.items() if k in METRIC_COLUMNS} for row in s.metrics],
                                   summary=s.summary, run_id=s.run_id, init=str(info.get("init") or ""),
                                   init_sha=_opt_str(info.get("init_sha")), data_sha=_opt_str(info.get("data_sha")),
                                   order_sha=_opt_str(info.get("order_sha"))))
        return cls(base=configs[0], runs=runs, title=title)


# --- the comparison file's schema ------------------------------------------------------------------
MAX_FILE_EPOCHS = 1000  # per run: ten times the epoch limit of a run trained here
MAX_TEXT = 500  # a name, a message, an id


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)


Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Sha = Annotated[str, StringConstraints(max_length=64)]
Metric = Annotated[float, Field(ge=-1e30, le=1e30)] | None  # a diverged loss was saved as null


class EpochRow(_FileModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    epoch: Metric = None
    train_loss: Metric = None
    val_loss: Metric = None
    train_metric: Metric = None
    val_metric: Metric = None
    lr: Metric = None
    seconds: Metric = None
    step: Metric = None


class RunFile(_FileModel):
    name: Annotated[str, StringConstraints(max_length=80)]
    config: dict[str, Any]
    status: Literal["planned", "queued", "running", "paused", "completed", "stopped", "diverged", "failed",
                    "lost"] = "planned"
    message: Text | None = ""
    epochs: Annotated[list[EpochRow], Field(max_length=MAX_FILE_EPOCHS)] | None = None
    summary: dict[str, Any] | None = None
    run_id: Sha | None = None
    init: Text | None = ""
    init_sha: Sha | None = None
    data_sha: Sha | None = None
    order_sha: Sha | None = None


class ComparisonFile(_FileModel):
    format: Literal["bigmodel-comparison"]
    version: Literal[1]
    id: Annotated[str, StringConstraints(max_length=64)] | None = None
    title: Annotated[str, StringConstraints(max_length=200)] | None = ""
    created: Annotated[str, StringConstraints(max_length=40)] | None = ""
    base: dict[str, Any]
    runs: Annotated[list[RunFile], Field(min_length=1, max_length=MAX_RUNS)]


def _brief(value: Any, limit: int = 60) -> str:
    if isinstance(value, (str, list, dict)) and len(value) > limit:
        return f"<a {type(value).__name__} of {len(value):,} {'characters' if isinstance(value, str) else 'items'}>"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _file_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """pydantic's errors with the field's path and a short echo of the value (never the whole of it)."""
    out = []
    for err in exc.errors(include_url=False, include_input=True)[:50]:
        path = ""
        for item in err["loc"]:
            path += f"[{item}]" if isinstance(item, int) else ("." if path else "") + str(item)
        value = err.get("input")
        msg = too_long_message(value) if isinstance(value, TooLong) else f"{err['msg']} (got {_brief(value)})"
        out.append((path, msg))
    return out


def _no_nan(v: Any) -> Any:
    """NaN and infinities (a diverged loss) become null, so the file is strict JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _no_nan(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_no_nan(x) for x in v]
    return v


def comparison_order(stored: list[StoredRun]) -> list[StoredRun]:
    """Runs of one comparison in the order they were planned (the store lists newest first)."""
    def key(s: StoredRun) -> tuple[str, int]:
        info = s.summary.get("comparison")
        info = info if isinstance(info, dict) else {}
        return (str(info.get("id", "")), int(info.get("index", 0) or 0))

    return sorted(stored, key=key)


def _opt_str(v: Any) -> str | None:
    return v[:64] if isinstance(v, str) else None


def _parse_at(raw: Any, where: str) -> ExperimentConfig:
    try:
        return parse_config(raw if raw is not None else "null")
    except ConfigError as exc:
        raise ConfigError([(f"{where}.{p}" if p else where, m) for p, m in exc.problems]) from None


# --- planning -------------------------------------------------------------------------------------
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


# The overfitting lesson: few training samples, so a plain CNN memorises them (train accuracy
# near 100%, validation far below) and each remedy narrows the gap; measured in bench notes.
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


# --- fairness: shared initial weights, recorded batches ---------------------------------------------
def state_sha(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def _weight_tensors(model: nn.Module) -> list[torch.Tensor]:
    """Parameters of the layers that draw random initial weights, in construction order."""
    return [p for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.RNNBase))
            for p in m.parameters(recurse=False)]


@dataclass(frozen=True)
class InitPlan:
    state: dict[str, torch.Tensor] | None  # passed as init_state, or None: the run builds its own
    note: str  # shown in the fairness table


def initial_states(comp: Comparison) -> list[InitPlan]:
    """Build the base weights once; share them with every run whose parameter names and shapes match."""
    b = comp.base
    base_model = build_model(b.model, dataset_info(b.data.name, image_size=b.data.image_size,
                                                   seq_len=b.data.seq_len), seed=b.seed)
    base_state = {k: v.detach().clone() for k, v in base_model.state_dict().items()}
    shapes = {k: tuple(v.shape) for k, v in base_state.items()}
    base_weights = _weight_tensors(base_model)
    plans = []
    for run in comp.runs:
        c = run.config
        model = build_model(c.model, dataset_info(c.data.name, image_size=c.data.image_size,
                                                  seq_len=c.data.seq_len), seed=c.seed)
        own = model.state_dict()
        if c.seed != b.seed:
            plans.append(InitPlan(None, f"own (seed {c.seed})"))
        elif {k: tuple(v.shape) for k, v in own.items()} == shapes:
            plans.append(InitPlan(base_state, "shared"))
        else:
            # the same seed draws the same values for the layers both have (dropout and batchnorm
            # take no random draws): say how many weight tensors still match exactly
            mine = _weight_tensors(model)
            same = sum(1 for a, w in zip(base_weights, mine) if a.shape == w.shape and torch.equal(a, w))
            plans.append(InitPlan(None, f"own (architecture differs): {same} of {len(mine)} weight tensors equal"))
    return plans


class BatchDigest(Callback):
    """Evidence that runs saw the same data: digests of the first epoch's training batches.

    ``data_sha``: the inputs as the model sees them (after augmentation) and the batch
    boundaries; ``order_sha``: the targets of every batch, which stays equal for augmented runs;
    ``first_batch``: a copy of the first batch's inputs. One epoch is evidence enough: the
    digests are sealed when it ends, and recording costs nothing after that.
    """

    def __init__(self) -> None:
        self.first_batch: torch.Tensor | None = None
        self.data_sha: str | None = None
        self.order_sha: str | None = None
        self._data = hashlib.sha256()
        self._order = hashlib.sha256()
        self._sealed = False

    def on_batch(self, trainer: Trainer, xb: torch.Tensor, yb: torch.Tensor) -> None:
        if self._sealed:
            return
        x = xb.detach()
        if self.first_batch is None:
            self.first_batch = x.cpu().clone()
        self._data.update(repr(tuple(x.shape)).encode())  # batch boundaries count, not only the order
        self._data.update(x.cpu().contiguous().numpy().tobytes())
        self._order.update(repr(tuple(yb.shape)).encode())
        self._order.update(yb.detach().cpu().contiguous().numpy().tobytes())

    def _seal(self) -> None:
        if not self._sealed:
            self._sealed = True
            self.data_sha = self._data.hexdigest()[:12]
            self.order_sha = self._order.hexdigest()[:12]

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        self._seal()

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        self._seal()


class CompareTrainer(Trainer):
    """A Trainer that records what fairness needs (:class:`BatchDigest`, the initial weights'
    digest) and tags its summary with the comparison."""

    def __init__(self, config: ExperimentConfig, *, comparison_id: str = "", name: str = "", index: int = 0,
                 init_note: str = "", **kwargs: Any):
        super().__init__(config, **kwargs)
        self.comparison_id, self.name, self.index, self.init_note = comparison_id, name, index, init_note
        self.init_sha = state_sha(self.model.state_dict())
        self.digest = self.add_callback(BatchDigest())

    @property
    def first_batch(self) -> torch.Tensor | None:
        return self.digest.first_batch

    @property
    def data_sha(self) -> str | None:
        return self.digest.data_sha

    @property
    def order_sha(self) -> str | None:
        return self.digest.order_sha

    def summary(self) -> dict[str, Any]:
        s = super().summary()
        s["comparison"] = {"id": self.comparison_id, "name": self.name, "index": self.index, "init": self.init_note,
                           "init_sha": self.init_sha, "data_sha": self.data_sha, "order_sha": self.order_sha}
        return s


def _make_trainer(job: Job) -> Trainer:
    trainer = CompareTrainer(job.config, control=job.control, init_state=job.init_state,
                             comparison_id=job.group or "", name=job.label, index=job.extras.get("index", 0),
                             init_note=job.extras.get("init", ""))
    job.set_extra("init_sha", trainer.init_sha)
    return trainer


def _after_epoch(job: Job, trainer: Trainer, ev: EpochEnd) -> None:
    if ev.epoch == 1 and isinstance(trainer, CompareTrainer):
        job.set_extra("data_sha", trainer.data_sha)
        job.set_extra("order_sha", trainer.order_sha)


# --- running through the pool -------------------------------------------------------------------------
def submit(comp: Comparison, pool: JobPool, owner: str, *, save: bool = True) -> list[Job]:
    """Queue every run of ``comp`` in ``pool`` (group = comparison id, kind = "compare")."""
    inits = initial_states(comp)
    jobs = []
    for i, (run, init) in enumerate(zip(comp.runs, inits)):
        job = Job(run.config, owner, label=run.name, group=comp.comparison_id, kind="compare",
                  init_state=init.state, make_trainer=_make_trainer, epoch_hooks=[_after_epoch], save=save)
        job.extras.update(init=init.note, index=i)
        run.init, run.status, run.job_id = init.note, "queued", job.job_id
        jobs.append(job)
    for job in jobs:
        pool.submit(job)
    return jobs


def refresh(comp: Comparison, pool: JobPool, owner: str) -> bool:
    """Pull every run's latest snapshot into ``comp``; True while any run is queued or running."""
    for run in comp.runs:
        if run.job_id is None or not run.active:
            continue
        snap = pool.snapshot(owner, run.job_id)
        if snap is None:  # the server restarted or forgot the job
            run.status, run.message = "lost", "the job is gone (the server restarted?)"
            continue
        run.status, run.message = snap.status, snap.message
        run.queue_position = snap.queue_position
        run.epochs = snap.epochs
        run.summary, run.run_id = snap.summary, snap.run_id
        run.progress = snap.progress
        run.live_samples_per_sec = snap.samples_per_sec
        run.steps, run.batch_losses = snap.steps, snap.batch_losses
        run.init_sha = snap.extras.get("init_sha", run.init_sha)
        run.data_sha = snap.extras.get("data_sha", run.data_sha)
        run.order_sha = snap.extras.get("order_sha", run.order_sha)
    return comp.active


def stop(comp: Comparison, pool: JobPool, owner: str) -> int:
    """Stop every queued and running job of the comparison."""
    return pool.stop_group(owner, comp.comparison_id)


def wait(comp: Comparison, pool: JobPool, owner: str, poll: float = 0.25,
         on_epoch: Callable[[CompareRun, dict[str, float]], None] | None = None) -> Comparison:
    """Block until every run has finished; ``on_epoch(run, row)`` sees each new epoch row."""
    seen = {r.name: 0 for r in comp.runs}
    while True:
        active = refresh(comp, pool, owner)
        if on_epoch is not None:
            for r in comp.runs:
                for row in r.epochs[seen[r.name]:]:
                    on_epoch(r, row)
                seen[r.name] = len(r.epochs)
        if not active:
            return comp
        time.sleep(poll)


# --- tables ---------------------------------------------------------------------------------------------
def metric_label(task: str) -> str:
    return "acc (%)" if task == "classification" else "MAE"


def summary_rows(comp: Comparison) -> list[dict[str, Any]]:
    """One row per run: best and final validation metric, best epoch, train-validation gap, time, speed."""
    classification = comp.task == "classification"
    unit = metric_label(comp.task)
    scale = 100.0 if classification else 1.0
    rows = []
    for r in comp.runs:
        ep = [e for e in r.epochs if _finite(e.get("val_metric"))]
        best = (max if classification else min)(ep, key=lambda e: e["val_metric"]) if ep else None
        last = ep[-1] if ep else None
        s = r.summary or {}
        seconds = s.get("wall_seconds")
        if seconds is None and r.epochs:
            seconds = sum(e.get("seconds", 0.0) for e in r.epochs)
        sps = s.get("samples_per_sec") if s else r.live_samples_per_sec
        status = r.status
        if r.status == "queued" and r.queue_position:
            status = f"queued (#{r.queue_position})"
        elif r.status == "running":
            status = f"running {r.progress:.0%}"
        gap = None
        if last is not None:
            # positive = the model does better on what it trained on
            gap = (last["train_metric"] - last["val_metric"]) if classification else \
                (last["val_metric"] - last["train_metric"])
        rows.append({
            "run": r.name,
            "status": status,
            f"best val {unit}": _round(best["val_metric"] * scale if best else None),
            "best epoch": int(best["epoch"]) if best else None,
            f"final val {unit}": _round(last["val_metric"] * scale if last else None),
            f"train-val gap {unit}": _round(gap * scale if gap is not None else None),
            "final val loss": _round(last["val_loss"] if last else None, 4),
            "epochs": len(r.epochs),
            "time (s)": _round(seconds, 1),
            "samples/s": _round(sps, 0),
            "message": r.message,
        })
    return rows


def fairness_rows(comp: Comparison) -> list[dict[str, Any]]:
    return [{"run": r.name, "initial weights": r.init or "not started", "init digest": r.init_sha or "",
             "batch order digest": r.order_sha or "", "batch inputs digest": r.data_sha or ""} for r in comp.runs]


def curve_rows(comp: Comparison) -> list[dict[str, Any]]:
    return [{"run": r.name, **{k: e.get(k) for k in METRIC_COLUMNS}} for r in comp.runs for e in r.epochs]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _round(v: Any, digits: int = 2) -> float | None:
    return round(float(v), digits) if _finite(v) else None


def to_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def describe_base(cfg: ExperimentConfig) -> str:
    """One line for captions: data, model, optimizer, training."""
    d, m, o, t = cfg.data, cfg.model, cfg.optimizer, cfg.training
    if m.family == "cnn":
        arch = "CNN conv " + "/".join(str(b.channels) for b in m.conv)
    else:
        arch = f"{m.family.upper()} {m.layers}x{m.hidden}"
    if m.dense:
        arch += ", dense " + "/".join(str(layer.units) for layer in m.dense)
    return (f"{d.name} ({d.train_size:,} train / {d.val_size:,} val) · {arch} · {o.name} lr={fmt_value(o.lr)} · "
            f"{t.epochs} epochs, batch {t.batch_size} · seed {cfg.seed}")


# --- CLI ----------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "run"


def write_comparison(comp: Comparison, out: Path, states: dict[str, dict[str, torch.Tensor] | None]) -> None:
    """One run folder per run plus comparison.json, summary.csv and curves.csv."""
    from bigmodel_core.training.store import atomic_write_text

    for i, r in enumerate(comp.runs, 1):
        folder = out / f"{i:02d}-{_slug(r.name)}"
        summary = dict(r.summary or {"status": r.status, "message": r.message, "epochs_run": len(r.epochs)})
        write_run(folder, r.config, r.epochs, summary, states.get(r.name))
        r.run_id = folder.name
    atomic_write_text(out / "summary.csv", to_csv(summary_rows(comp)))
    atomic_write_text(out / "curves.csv", to_csv(curve_rows(comp)))
    atomic_write_text(out / "comparison.json", comp.to_json())


def cmd_compare(args: argparse.Namespace) -> int:
    from bigmodel_core.config.presets import load_config_arg

    base = apply_data_arguments(load_config_arg(args.config), args)
    shared: dict[str, Any] = {}
    if args.epochs is not None:
        shared["training.epochs"] = args.epochs
    if args.device is not None:
        shared["training.device"] = args.device
    if args.seed is not None:
        shared["seed"] = args.seed
    if shared:
        base = base.with_changes(shared)
    base = parse_config_here(base)  # a device missing here is refused before anything trains
    comp = plan_vary(base, parse_vary(args.vary))
    out = check_out_dir(args.out, args.overwrite)
    workers = max(1, args.workers)
    threads = args.threads or max(1, (os.cpu_count() or 2) // workers)
    pool = JobPool(max_workers=workers, store=None, threads_per_job=threads, idle_stop_seconds=10 ** 9)
    owner = "cli"
    task = comp.task
    print(f"comparing {len(comp.runs)} runs of {describe_base(base)}", file=sys.stderr)
    for row in differs_rows(comp.names, [r.config for r in comp.runs]):
        print("  " + "  ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr)

    def on_epoch(run: CompareRun, row: dict[str, float]) -> None:
        metric = "acc" if task == "classification" else "mae"
        print(f"[{run.name}] epoch {int(row['epoch'])}: train loss {row['train_loss']:.4f} val loss "
              f"{row['val_loss']:.4f} val {metric} {row['val_metric']:.4f}", file=sys.stderr, flush=True)

    jobs = submit(comp, pool, owner, save=False)
    try:
        wait(comp, pool, owner, on_epoch=on_epoch)
    except KeyboardInterrupt:
        stop(comp, pool, owner)
        wait(comp, pool, owner)
        raise
    finally:
        pool.shutdown()
    write_comparison(comp, out, {r.name: j.final_state for r, j in zip(comp.runs, jobs)})
    for row in summary_rows(comp):
        print("  ".join(f"{k}={v}" for k, v in row.items() if k != "message" or v))
    print(f"wrote {len(comp.runs)} run folders, comparison.json, summary.csv and curves.csv to {out}", file=sys.stderr)
    return 1 if any(r.status in ("failed", "lost") for r in comp.runs) else 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare", help="fair side-by-side runs that vary config fields",
        description="Runs CONFIG once per position of the value lists, all from the same initial weights and "
                    "batches. Exit code 0 when every run finished (a diverged run is a result), 1 if one failed, "
                    "2 on bad input.")
    p.add_argument("config", help="a config JSON file or a preset name")
    p.add_argument("--vary", action="append", required=True, metavar="FIELD=V1,V2,...",
                   help="dotted config path and values (JSON where possible); repeat to pair fields run by run")
    p.add_argument("--out", required=True, help="folder for the run folders, comparison.json and summary.csv")
    p.add_argument("--overwrite", action="store_true", help="write into an existing non-empty --out folder")
    p.add_argument("--epochs", type=number_arg(int, 1), help="epochs for every run")
    p.add_argument("--device")
    p.add_argument("--seed", type=number_arg(int, 0))
    p.add_argument("--workers", type=number_arg(int, 1), default=1, help="runs trained at once (default 1)")
    p.add_argument("--threads", type=number_arg(int, 1), help="torch threads per run (default: cores / workers)")
    add_data_arguments(p)
    p.set_defaults(func=cmd_compare)


__all__ = ["Comparison", "CompareRun", "CompareTrainer", "plan", "plan_vary", "plan_optimizers",
           "plan_regularizers", "plan_sweep", "overfitting_lesson", "submit", "refresh", "stop", "wait",
           "summary_rows", "differs_rows", "differing_fields", "flatten", "parse_vary", "add_cli"]

