"""Plotly figures for the Fine-tune page: accuracy against label budget, what trains, maps before/after.

Pure functions (no streamlit). Every point drawn was measured: one marker per finished run
(seed), and a line through the mean of the seeds at each budget (aggregated in the engine:
``bigmodel_core.experiments.finetune.results``). A strategy keeps its colour in every figure;
from scratch (the baseline) is always grey and dashed.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bigmodel_core.experiments.finetune import FinetuneResults
from ui.figures.probes import mosaic

STRATEGY_COLORS = {"head": "#0072B2", "last": "#009E73", "full": "#D55E00", "scratch": "#6C757D"}
TRAINABLE_COLOR = "#D55E00"
FROZEN_COLOR = "#ADB5BD"
PNG_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2, "filename": "finetune"}}


def strategy_color(strategy: str) -> str:
    return STRATEGY_COLORS.get(strategy.split(":")[0], "#332288")


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10), template="plotly_white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def metric_name(task: str) -> str:
    return "validation accuracy" if task == "classification" else "validation MAE (lower is better)"


def budget_figure(results: FinetuneResults, task: str, unit: str = "labels per class",
                  height: int = 420) -> go.Figure:
    """Validation metric against the label budget (log x axis): seeds as dots, their mean as a line.

    Draws ``results`` as :func:`bigmodel_core.experiments.finetune.aggregate_results` computed it:
    one line per strategy through the mean at each budget, the spread over seeds as error bars.
    """
    fig = go.Figure()
    for curve in results.curves:
        label = curve.label
        color = strategy_color(curve.strategy)
        dash = "dash" if curve.strategy == "scratch" else "solid"
        sds = [m.sd for m in curve.means]
        fig.add_trace(go.Scatter(
            x=[m.per_class for m in curve.means], y=[m.mean for m in curve.means], mode="lines+markers", name=label,
            legendgroup=curve.strategy, text=[m.text for m in curve.means],
            line=dict(color=color, dash=dash, width=2.5), marker=dict(size=9),
            error_y=dict(type="data", array=sds, visible=any(sds), thickness=1.2),
            hovertemplate="%{text}<br>mean %{y:.3f}<extra>" + label + "</extra>"))
        if curve.several_seeds:
            fig.add_trace(go.Scatter(
                x=[p.per_class for p in curve.points], y=[p.value for p in curve.points], mode="markers",
                showlegend=False, legendgroup=curve.strategy, marker=dict(color=color, size=5, opacity=0.45),
                text=[f"seed {p.seed}" for p in curve.points],
                hovertemplate="%{text}: %{y:.3f}<extra>" + label + "</extra>"))
    fig.update_xaxes(title=unit + " (log scale)", type="log", tickvals=[x for x, _ in results.ticks],
                     ticktext=[text for _, text in results.ticks])
    fig.update_yaxes(title=metric_name(task), range=[0, 1.02] if task == "classification" else None,
                     rangemode="tozero")
    fig = _layout(fig, f"{metric_name(task).capitalize()} against the label budget", height)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.18, x=0), margin=dict(b=10))
    return fig


def trainable_figure(blocks: Sequence[str], params: Sequence[int], trainable: Sequence[bool],
                     height: int = 280) -> go.Figure:
    """Parameters per block, coloured trainable or frozen (input at the top)."""
    fig = go.Figure()
    for on, name, color in ((True, "trainable", TRAINABLE_COLOR), (False, "frozen", FROZEN_COLOR)):
        fig.add_trace(go.Bar(
            y=list(blocks), x=[p if t == on else 0 for p, t in zip(params, trainable)], orientation="h",
            name=name, marker_color=color, hovertemplate="%{y}: %{x:,} parameters<extra>" + name + "</extra>"))
    fig.update_layout(barmode="stack", legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    fig.update_yaxes(autorange="reversed")
    spread = max(params, default=1) > 50 * max(1, min(params, default=1))
    fig.update_xaxes(title="parameters" + (" (log scale)" if spread else ""), type="log" if spread else None,
                     dtick=1 if spread else None)
    n_on = sum(p for p, t in zip(params, trainable) if t)
    total = sum(params) or 1
    fig = _layout(fig, f"{n_on / total:.1%} of the parameters train", height)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.35, x=0), margin=dict(b=10))
    return fig


def _image_axes(fig: go.Figure, row: int, col: int) -> None:
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain", row=row, col=col)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                     constrain="domain", row=row, col=col)
    sub = fig.get_subplot(row, col)
    sub.yaxis.scaleanchor = sub.yaxis.anchor  # an 8x8 map is drawn square, not stretched to its panel
    sub.yaxis.scaleratio = 1


def before_after_figure(layer: str, kind: str, before: np.ndarray, after: np.ndarray,
                        max_maps: int = 16) -> go.Figure:
    """One layer's activations for the same input at the start and end of fine-tuning, and the change.

    ``kind="maps"``: (C, H, W) feature maps, tiled; ``"states"``: (T, H) hidden states, units x steps.
    Before and after share one colour scale; the change has its own, centred on zero.
    """
    if kind == "maps":
        before, after = before[:max_maps], after[:max_maps]
        zb, _, _ = mosaic(before)
        za, _, _ = mosaic(after)
    else:
        zb, za = before.T, after.T
    diff = za - zb
    change = float(np.nanmax(np.abs(diff))) if diff.size else 0.0
    lo = float(np.nanmin([np.nanmin(zb), np.nanmin(za)]))
    hi = float(np.nanmax([np.nanmax(zb), np.nanmax(za)]))
    hi = hi if hi > lo else lo + 1e-6
    lim = change or 1e-6
    titles = ("at the start", "after fine-tuning", "change" if change else "change: none (bit-identical)")
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, horizontal_spacing=0.04)
    for i, (z, kw) in enumerate(((zb, dict(zmin=lo, zmax=hi, colorscale="Viridis", showscale=False)),
                                 (za, dict(zmin=lo, zmax=hi, colorscale="Viridis", showscale=False)),
                                 (diff, dict(zmin=-lim, zmax=lim, colorscale="RdBu", reversescale=True,
                                             showscale=True, colorbar=dict(thickness=10, title="change"))))):
        z = np.where(np.isnan(z), None, z).tolist() if kind == "maps" else z
        fig.add_trace(go.Heatmap(z=z, hovertemplate="%{z:.3g}<extra></extra>", **kw), row=1, col=i + 1)
        if kind == "maps":
            _image_axes(fig, 1, i + 1)
        else:
            fig.update_xaxes(title="time step", row=1, col=i + 1)
    if kind != "maps":
        fig.update_yaxes(title="unit", row=1, col=1)
    what = f"{min(before.shape[0], max_maps)} feature maps" if kind == "maps" else "hidden state (units x steps)"
    height = 300 if kind != "maps" else max(260, 70 + 55 * math.ceil(math.sqrt(before.shape[0])))
    return _layout(fig, f"{layer}: {what}, largest change {change:.3g}", height)
