"""Plotly figures for the Compare and Runs pages: overlaid curves, one colour per run.

Pure functions from per-run epoch rows to ``go.Figure`` (no streamlit). A run keeps its
colour in every figure of a page because colours come from the run's position; validation
is drawn solid and training dashed. The training line is the clean value (eval mode on the
training set, plain loss: comparable with validation); a run stored before that was measured
shows its running epoch mean instead, dotted and named so. Only measured epochs are plotted
(no starting point is invented), each with a marker so a one-epoch run is still visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

# Okabe-Ito colours (readable with colour-vision deficiency; yellow swapped for a dark grey-blue
# that survives a white background), then two more for runs 7 and 8.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#332288", "#000000")
STYLE_GREY = "#868E96"
PNG_CONFIG = {"displaylogo": False,
              "toImageButtonOptions": {"format": "png", "scale": 2, "filename": "comparison"}}


@dataclass(frozen=True)
class Series:
    """One run's measured curves."""

    name: str
    epochs: Sequence[dict] = ()
    steps: Sequence[int] = ()
    batch_losses: Sequence[float] = ()
    status: str = ""
    extra: dict = field(default_factory=dict)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def colors_for(names: Sequence[str]) -> dict[str, str]:
    return {n: color(i) for i, n in enumerate(names)}


def _finite(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _layout(fig: go.Figure, height: int, title: str | None) -> go.Figure:
    # the legend under the plots: above them the chart's toolbar (on hover) would cover it
    fig.update_layout(height=height, template="plotly_white", margin=dict(l=10, r=10, t=84 if title else 30, b=10),
                      title=dict(text=title, x=0, xanchor="left", xref="container", y=1, yanchor="top",
                                 yref="container", pad=dict(t=18, l=10), font=dict(size=16)) if title else None,
                      font=dict(family='"Source Sans Pro", "Source Sans 3", sans-serif', color="#31333F"),
                      legend=dict(orientation="h", yanchor="top", y=-0.24, x=0, font=dict(size=13)),
                      hovermode="x unified")
    return fig


def metric_name(task: str) -> str:
    return "accuracy (%)" if task == "classification" else "mean absolute error"


def _metric(v: object, task: str) -> float | None:
    f = _finite(v)
    return None if f is None else (100.0 * f if task == "classification" else f)


def curves_figure(series: Sequence[Series], task: str, *, height: int = 420, title: str | None = None,
                  log_loss: bool = False, colors: Sequence[str] | None = None) -> go.Figure:
    """Loss (left) and the task metric (right) per epoch for every run, on a shared epoch axis.

    ``colors`` (one per series) replace the colours by position, where a page has its own colour map
    (the Fine-tune page colours runs by strategy, as in its other charts)."""
    fig = make_subplots(rows=1, cols=2, shared_xaxes=True, horizontal_spacing=0.08,
                        subplot_titles=("Loss", metric_name(task).capitalize()))
    styles = [("validation (solid)", "solid")]
    for i, s in enumerate(series):
        xs = [int(e["epoch"]) for e in s.epochs]
        group = f"run:{s.name}"
        run_color = colors[i] if colors else color(i)
        label = s.name + (f" ({s.status})" if s.status in ("diverged", "failed", "stopped") else "")
        clean = not s.epochs or any(_finite(e.get("train_eval_loss")) is not None for e in s.epochs)
        train_keys = ("train_eval_loss", "train_eval_metric") if clean else ("train_loss", "train_metric")
        style = ("train, eval mode (dashed)", "dash") if clean else ("train, running mean as trained (dotted)", "dot")
        if style not in styles:
            styles.append(style)
        for col, (train_key, val_key) in enumerate(zip(train_keys, ("val_loss", "val_metric")), 1):
            conv = _finite if col == 1 else (lambda v: _metric(v, task))
            fig.add_trace(go.Scatter(
                x=xs, y=[conv(e.get(val_key)) for e in s.epochs], mode="lines+markers", name=label,
                legendgroup=group, showlegend=col == 1, line=dict(color=run_color, width=2.5),
                hovertemplate=f"{s.name} validation: %{{y:.4g}}<extra></extra>"), row=1, col=col)
            what = "train (eval mode)" if clean else "train (running mean)"
            fig.add_trace(go.Scatter(
                x=xs, y=[conv(e.get(train_key)) for e in s.epochs], mode="lines+markers", name=f"{s.name} {what}",
                legendgroup=group, showlegend=False, line=dict(color=run_color, width=1.5, dash=style[1]),
                marker=dict(symbol="circle-open"), hovertemplate=f"{s.name} {what}: %{{y:.4g}}<extra></extra>"),
                row=1, col=col)
    # a legend key for the line styles, drawn in grey so it names no run
    for name, dash in styles:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=name, legendgroup=f"style:{name}",
                                 line=dict(color=STYLE_GREY, dash=dash)), row=1, col=1)
    most = max((len(s.epochs) for s in series), default=1)
    fig.update_xaxes(title_text="epoch", range=[0.5, max(most, 1) + 0.5], dtick=max(1, most // 10))
    fig.update_yaxes(title_text="loss", type="log" if log_loss else "linear", row=1, col=1)
    fig.update_yaxes(title_text=metric_name(task), row=1, col=2)
    if task == "classification":
        fig.update_yaxes(range=[0, 101], row=1, col=2)
    return _layout(fig, height, title)


def batch_loss_figure(series: Sequence[Series], *, height: int = 300, log_y: bool = False) -> go.Figure:
    """Per-batch training loss of every run against its step (live detail while runs train)."""
    fig = go.Figure()
    for i, s in enumerate(series):
        if s.steps:
            fig.add_trace(go.Scattergl(x=list(s.steps), y=[_finite(v) for v in s.batch_losses], mode="lines",
                                       name=s.name, legendgroup=f"run:{s.name}", showlegend=False,
                                       line=dict(color=color(i), width=1)))
    fig.update_xaxes(title_text="step (batches)", rangemode="tozero")
    fig.update_yaxes(title_text="batch loss", type="log" if log_y else "linear")
    return _layout(fig, height, "Training loss per batch")


def bars_figure(names: Sequence[str], best: Sequence[float | None], gap: Sequence[float | None], task: str, *,
                height: int = 300) -> go.Figure:
    """Best validation metric and final train-validation gap per run, in the runs' colours.

    The gap is the clean train metric (eval mode on the training set) against validation at the
    last epoch (:func:`bigmodel_core.experiments.compare.tables.summary_rows`)."""
    unit = "%" if task == "classification" else "MAE"
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                        subplot_titles=(f"Best validation ({unit})", f"Train (eval mode) - val gap ({unit})"))
    cols = [color(i) for i in range(len(names))]
    for col, values in ((1, best), (2, gap)):
        ys = [_finite(v) for v in values]
        fig.add_trace(go.Bar(x=list(names), y=ys, marker_color=cols, showlegend=False,
                             text=[f"{v:.1f}" if v is not None and task == "classification" else
                                   (f"{v:.3g}" if v is not None else "") for v in ys],
                             textposition="outside", cliponaxis=False), row=1, col=col)
    fig.update_xaxes(tickangle=-20)
    return _layout(fig, height, None)
