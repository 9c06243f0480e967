"""Plotly figures for the Concepts page: grids for convolution and pooling, gate traces,
optimizer paths on a loss surface.

Pure functions from arrays (and the result objects of ``bigmodel_core.inspect.concepts``) to
``go.Figure``; no streamlit here. Grids are drawn like images: row 0 at the top.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bigmodel_core.inspect.concepts import (
    OPTIMIZER_LABELS,
    ConvResult,
    GRUStep,
    LSTMStep,
    OptimizerPath,
    PoolResult,
    Surface,
)

ANNOTATE_MAX = 12  # write the numbers into a grid up to this many cells per side
HIGHLIGHT = "#F76707"
WINDOW = "#4C6EF5"
OPTIMIZER_COLORS = {"gd": "#1C7ED6", "sgd": "#74C0FC", "momentum": "#F76707", "nesterov": "#FAB005",
                    "adagrad": "#37B24D", "rmsprop": "#AE3EC9", "adam": "#E03131", "adamw": "#862E9C"}
GATE_COLORS = ["#4C6EF5", "#F76707", "#12B886", "#E64980"]


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=50, b=10), template="plotly_white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.04, x=0))
    return fig


def _fmt(v: float) -> str:
    return f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}"


def _grid(fig: go.Figure, values: np.ndarray, row: int, col: int, colorscale: str, zmid: float | None = None,
          offset: int = 0, name: str = "") -> None:
    """A heatmap of ``values`` in subplot (row, col); cell labels use the original (unpadded) indices."""
    h, w = values.shape
    ys = list(range(-offset, h - offset))
    xs = list(range(-offset, w - offset))
    annotate = max(h, w) <= ANNOTATE_MAX
    fig.add_trace(go.Heatmap(
        z=values, x=xs, y=ys, colorscale=colorscale, zmid=zmid, showscale=False, name=name,
        text=[[_fmt(v) for v in r] for r in values] if annotate else None,
        texttemplate="%{text}" if annotate else None, textfont=dict(size=10),
        hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra>" + name + "</extra>", xgap=1, ygap=1), row=row, col=col)
    axis = dict(showgrid=False, zeroline=False, constrain="domain", dtick=1 if max(h, w) <= 16 else None)
    fig.update_xaxes(axis, row=row, col=col, side="top")
    fig.update_yaxes(axis, row=row, col=col, autorange="reversed", scaleanchor=None)


def _box(fig: go.Figure, r0: float, c0: float, h: int, w: int, row: int, col: int, color: str, width: int = 3,
         fill: str | None = None) -> None:
    fig.add_shape(type="rect", x0=c0 - 0.5, x1=c0 + w - 0.5, y0=r0 - 0.5, y1=r0 + h - 0.5,
                  line=dict(color=color, width=width), fillcolor=fill, row=row, col=col)


def _square_axes(fig: go.Figure, n: int) -> None:
    # keep cells square in every panel
    for k in range(1, n + 1):
        fig.update_yaxes(scaleanchor=f"x{'' if k == 1 else k}", scaleratio=1, row=1, col=k)


def conv_figure(result: ConvResult, i: int, j: int) -> go.Figure:
    """Padded input with the receptive field of output (i, j), the kernel, and the output map."""
    p, s = result.padding, result.stride
    kh, kw = result.kernel.shape
    ph, pw = result.padded.shape
    oh, ow = result.output.shape
    widths = [pw, max(kw, 3) * 1.3, ow]
    fig = make_subplots(rows=1, cols=3, column_widths=widths, horizontal_spacing=0.06,
                        subplot_titles=[f"input {ph - 2 * p}x{pw - 2 * p}" + (f" + padding {p}" if p else ""),
                                        f"kernel {kh}x{kw}", f"output {oh}x{ow}"])
    _grid(fig, result.padded, 1, 1, "Greys", offset=p, name="input")
    if p:  # the padding ring: zeros that are not part of the image
        _box(fig, 0, 0, ph - 2 * p, pw - 2 * p, 1, 1, "#ADB5BD", width=1)
    _box(fig, s * i - p, s * j - p, kh, kw, 1, 1, HIGHLIGHT)
    _grid(fig, result.kernel, 1, 2, "RdBu", zmid=0.0, name="kernel")
    _grid(fig, result.output, 1, 3, "RdBu", zmid=0.0, name="output")
    _box(fig, i, j, 1, 1, 1, 3, HIGHLIGHT)
    _square_axes(fig, 3)
    return _layout(fig, 380)


def pool_figure(x: np.ndarray, result: PoolResult, i: int, j: int) -> go.Figure:
    """Input with the window behind output (i, j) (and its winning cell for max), and the output."""
    k, s = result.window, result.stride
    oh, ow = result.output.shape
    fig = make_subplots(rows=1, cols=2, column_widths=[x.shape[1], max(ow, 2)], horizontal_spacing=0.08,
                        subplot_titles=[f"input {x.shape[0]}x{x.shape[1]}",
                                        f"{result.kind} pool {k}x{k}, stride {s}: {oh}x{ow}"])
    _grid(fig, x, 1, 1, "Greys" if x.min() >= 0 else "RdBu", zmid=None if x.min() >= 0 else 0.0, name="input")
    _box(fig, i * s, j * s, k, k, 1, 1, WINDOW)
    if result.kind == "max":
        wr, wc = result.winners[i, j]
        _box(fig, wr, wc, 1, 1, 1, 1, HIGHLIGHT, width=4)
    _grid(fig, result.output, 1, 2, "Greys" if x.min() >= 0 else "RdBu", zmid=None if x.min() >= 0 else 0.0,
          name="output")
    _box(fig, i, j, 1, 1, 1, 2, HIGHLIGHT)
    _square_axes(fig, 2)
    return _layout(fig, 360)


def gates_figure(steps: Sequence[LSTMStep] | Sequence[GRUStep], t: int) -> go.Figure:
    """Every gate and state over time, one line per unit; the chosen step t is marked."""
    if not steps:
        raise ValueError("no steps to draw")
    if isinstance(steps[0], LSTMStep):
        panels = [("i", "input gate i"), ("f", "forget gate f"), ("g", "candidate g"), ("o", "output gate o"),
                  ("c", "cell state c"), ("h", "hidden state h")]
    else:
        panels = [("r", "reset gate r"), ("z", "update gate z (as on this page)"), ("n", "candidate h~"),
                  ("h", "hidden state h")]
    cols = 3 if len(panels) == 6 else 2
    rows = len(panels) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[title for _, title in panels], vertical_spacing=0.16,
                        horizontal_spacing=0.07, shared_xaxes=True)
    ts = [s.t for s in steps]
    units = len(steps[0].h)
    for k, (attr, _) in enumerate(panels):
        r, c = k // cols + 1, k % cols + 1
        values = np.array([getattr(s, attr) for s in steps])
        for u in range(units):
            fig.add_trace(go.Scatter(x=ts, y=values[:, u], mode="lines+markers", name=f"unit {u + 1}",
                                     line=dict(color=GATE_COLORS[u % len(GATE_COLORS)]), legendgroup=f"u{u}",
                                     showlegend=k == 0), row=r, col=c)
        fig.add_vline(x=t, line=dict(color=HIGHLIGHT, width=2, dash="dot"), row=r, col=c)
        if attr in ("i", "f", "o", "r", "z"):
            fig.update_yaxes(range=[-0.05, 1.05], row=r, col=c)
        elif attr in ("g", "n", "h"):
            fig.update_yaxes(range=[-1.05, 1.05], row=r, col=c)
    fig.update_xaxes(dtick=1, title_text="time step t", row=rows)
    return _layout(fig, 210 * rows + 60)


def optimizer_figure(surface: Surface, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray,
                     paths: Sequence[OptimizerPath]) -> go.Figure:
    """Contours of the loss surface with each optimizer's path from the same start."""
    fig = go.Figure()
    # contour levels on a log scale of f - min: the narrow valleys stay visible
    fmin = float(np.min(zs))
    fig.add_trace(go.Contour(x=xs, y=ys, z=np.log10(zs - fmin + 1e-3), colorscale="Greys", reversescale=True,
                             showscale=False, contours=dict(coloring="heatmap", showlines=True),
                             line=dict(width=0.5), opacity=0.55, hoverinfo="skip", name="loss"))
    for path in paths:
        pts = path.points
        label = OPTIMIZER_LABELS[path.name] + f" (lr {path.lr:g})" + (" diverged" if path.diverged else "")
        fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="lines+markers", name=label,
                                 line=dict(color=OPTIMIZER_COLORS[path.name], width=2), marker=dict(size=3),
                                 customdata=np.arange(len(pts)),
                                 hovertemplate="step %{customdata}: (%{x:.3f}, %{y:.3f})<extra>" + label + "</extra>"))
    if paths:
        x0, y0 = paths[0].points[0]
        fig.add_trace(go.Scatter(x=[x0], y=[y0], mode="markers", name="start",
                                 marker=dict(symbol="circle-open", size=14, color="black", line=dict(width=2))))
    fig.add_trace(go.Scatter(x=[surface.minimum[0]], y=[surface.minimum[1]], mode="markers", name="minimum",
                             marker=dict(symbol="star", size=14, color="#FAB005", line=dict(width=1))))
    fig.update_xaxes(range=list(surface.x_range), title="x", showgrid=False)
    fig.update_yaxes(range=list(surface.y_range), title="y", showgrid=False)
    return _layout(fig, 540)


def optimizer_loss_figure(paths: Sequence[OptimizerPath], f_min: float) -> go.Figure:
    """f(theta_t) - f_min per step, log scale: how fast each optimizer gets down."""
    fig = go.Figure()
    for path in paths:
        gap = np.maximum(path.losses - f_min, 1e-16)
        fig.add_trace(go.Scatter(x=np.arange(len(gap)), y=gap, mode="lines", name=OPTIMIZER_LABELS[path.name],
                                 line=dict(color=OPTIMIZER_COLORS[path.name], width=2)))
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="f(θ) − f(minimum), log scale", type="log", exponentformat="power")
    return _layout(fig, 340)
