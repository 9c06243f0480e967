"""A comparison as tables (summary, fairness, curves), as CSV, and as a folder of run folders."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any

import torch

from bigmodel_core.config.specs import ExperimentConfig
from bigmodel_core.training.store import METRIC_COLUMNS, atomic_write_text, write_run

from .comparison import Comparison
from .naming import fmt_value


def metric_label(task: str) -> str:
    return "acc (%)" if task == "classification" else "MAE"


def summary_rows(comp: Comparison) -> list[dict[str, Any]]:
    """One row per run: best and final validation metric, best epoch, train-validation gap (clean train
    metric at the last epoch minus validation's), time, speed."""
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
        if last is not None and _finite(last.get("train_eval_metric")):
            # the clean train metric (eval mode on the training set), not the running one: with
            # dropout or augmentation the running value is measured on a handicapped model and
            # understates the gap; runs stored before it was measured have no gap
            # positive = the model does better on what it trained on
            gap = (last["train_eval_metric"] - last["val_metric"]) if classification else \
                (last["val_metric"] - last["train_eval_metric"])
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


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "run"


def write_comparison(comp: Comparison, out: Path, states: dict[str, dict[str, torch.Tensor] | None]) -> None:
    """One run folder per run plus comparison.json, summary.csv and curves.csv."""
    for i, r in enumerate(comp.runs, 1):
        folder = out / f"{i:02d}-{_slug(r.name)}"
        summary = dict(r.summary or {"status": r.status, "message": r.message, "epochs_run": len(r.epochs)})
        write_run(folder, r.config, r.epochs, summary, states.get(r.name))
        r.run_id = folder.name
    atomic_write_text(out / "summary.csv", to_csv(summary_rows(comp)))
    atomic_write_text(out / "curves.csv", to_csv(curve_rows(comp)))
    atomic_write_text(out / "comparison.json", comp.to_json())
