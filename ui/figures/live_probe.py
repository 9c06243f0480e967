"""The live view's look inside the model: figures of a :class:`~bigmodel_core.inspect.live_probe.LiveFrame`.

Plain dicts in Plotly's figure format (no ``go.Figure``: they are rebuilt with the curves every few
seconds in the process that trains, see ui.figures.training), drawn by ui/live_chart next to the
curves. Each carries ``rev``, the frame's identity: the browser redraws a figure only when a new
frame was measured, so the seconds between two measurements cost it nothing. Values are rounded
to 3 decimals (what a heatmap or a bar can show), which keeps a frame's figures to a few KB.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bigmodel_core.inspect.live_probe import LiveFrame
from ui.figures.training import live_figure

GATE_COLORS = {"input": "#12B886", "forget": "#F76707", "output": "#7950F2", "reset": "#E64980",
               "update": "#4C6EF5"}
GATE_TITLES = {"input": "input gate i", "forget": "forget gate f", "output": "output gate o",
               "reset": "reset gate r", "update": "update gate z (PyTorch's: near 1 keeps the old state)"}
HEIGHT = 230
_BARE = dict(showticklabels=False, showgrid=False, zeroline=False, ticks="")


def _z(a: np.ndarray) -> list:
    """A 2-D array as JSON-safe nested lists, 3 decimals (NaN and infinity become gaps)."""
    out = np.round(a.astype(np.float64), 3)
    return [[float(v) if math.isfinite(v) else None for v in row] for row in out]


def _range(a: np.ndarray) -> tuple[float, float]:
    finite = a[np.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return (lo, hi) if hi > lo else (lo, lo + 1e-6)


def _note(text: str) -> dict:
    return dict(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                font=dict(size=13, color="#6C757D"))


def _empty(title: str, note: str, rev: str) -> dict:
    fig = live_figure([], title, dict(_BARE, visible=False), dict(_BARE, visible=False), height=HEIGHT)
    fig["layout"]["annotations"] = [_note(note)]
    fig["rev"] = rev
    return fig


def _subtitle(frame: LiveFrame) -> str:
    return f"{frame.when} · input #{frame.index} is {frame.truth}, predicted {frame.guess}"


def inside_figure(frame: LiveFrame | None, family: str = "cnn") -> dict:
    """CNN: the input and the first block's feature maps; RNN: the first layer's hidden state and gates."""
    if frame is None:
        what = "Feature maps (block 1)" if family == "cnn" else "Hidden state and gates (layer 1)"
        return _empty(what, "shown from the start of training", "none")
    if frame.maps is not None:
        return _maps_figure(frame)
    if frame.hidden is not None:
        return _states_figure(frame)
    return _empty("Inside the model", "nothing to show for this model", f"{frame.step}-{frame.when}")


def _maps_figure(frame: LiveFrame) -> dict:
    """The input on the left, the maps in a 2-column grid on its right, each square and on its own scale."""
    maps = frame.maps.astype(np.float32)
    n = len(maps)
    rows = max(1, math.ceil(n / 2))
    traces: list[dict] = []
    layout: dict[str, Any] = {}
    panels = [("input", frame.image.astype(np.float32), (0.0, 0.40), (0.0, 1.0), "Greys", True)]
    cell_h = 1.0 / rows
    for k in range(n):
        col, row = k % 2, k // 2
        x0 = 0.46 + col * 0.28
        y1 = 1.0 - row * cell_h
        panels.append((f"map {k + 1}", maps[k], (x0, x0 + 0.25), (y1 - cell_h + 0.04, y1), "Viridis", False))
    for i, (name, z, xd, yd, scale, reverse) in enumerate(panels, start=1):
        lo, hi = _range(z)
        traces.append(dict(type="heatmap", z=_z(z), xaxis=f"x{i}", yaxis=f"y{i}", colorscale=scale,
                           reversescale=reverse, zmin=lo, zmax=hi, showscale=False, name=name,
                           hovertemplate=f"{name} · row %{{y}}, col %{{x}}: %{{z:.3f}}<extra></extra>"))
        layout[f"xaxis{i}"] = dict(_BARE, domain=list(xd), anchor=f"y{i}", constrain="domain")
        layout[f"yaxis{i}"] = dict(_BARE, domain=list(yd), anchor=f"x{i}", autorange="reversed",
                                   scaleanchor=f"x{i}", constrain="domain")
    shown = f"{n} of {frame.maps_total}" if frame.maps_total > n else f"{n}"
    fig = live_figure(traces, f"Feature maps, block 1 ({shown})", {}, {}, height=HEIGHT)
    fig["layout"].pop("xaxis")
    fig["layout"].pop("yaxis")
    fig["layout"].update(layout, margin=dict(l=10, r=10, t=64, b=6))
    fig["layout"]["title"]["subtitle"] = dict(text=_subtitle(frame), font=dict(size=12, color="#6C757D"))
    fig["rev"] = f"{frame.step}-{frame.when}"
    return fig


def _states_figure(frame: LiveFrame) -> dict:
    """Units x time of the hidden state (diverging colours around 0), and each gate's mean over time below."""
    hidden = frame.hidden.astype(np.float32)
    steps = [int(t) for t in frame.time_steps]
    lim = float(np.nanmax(np.abs(hidden))) if np.isfinite(hidden).any() else 1.0
    lim = max(lim, 1e-6)
    gated = bool(frame.gates)
    traces = [dict(type="heatmap", z=_z(hidden.T), x=steps, y=list(range(1, hidden.shape[1] + 1)), colorscale="RdBu",
                   reversescale=True, zmin=-lim, zmax=lim, showscale=False, xaxis="x", yaxis="y",
                   hovertemplate="unit %{y} · step %{x}: %{z:.3f}<extra>hidden state</extra>")]
    for name, values in frame.gates.items():
        ys = [float(v) if math.isfinite(v) else None for v in np.round(values.astype(np.float64), 3)]
        traces.append(dict(type="scatter", mode="lines", x=steps, y=ys, xaxis="x", yaxis="y2", name=GATE_TITLES[name],
                           line=dict(color=GATE_COLORS[name], width=1.6),
                           hovertemplate=f"{name} gate, mean over units · step %{{x}}: %{{y:.3f}}<extra></extra>"))
    shown = f"unit (1-{hidden.shape[1]} of {frame.units_total})" if frame.units_total > hidden.shape[1] else "unit"
    fig = live_figure(traces, "Hidden state" + (" and gates" if gated else "") + ", layer 1",
                      dict(title=dict(text="time step"), showgrid=False),
                      dict(title=dict(text=shown), domain=[0.42, 1.0] if gated else [0.0, 1.0], showgrid=False),
                      height=HEIGHT + (60 if gated else 0))
    lay = fig["layout"]
    if gated:
        lay["yaxis2"] = dict(domain=[0.0, 0.32], range=[0, 1], title=dict(text="gate mean"), anchor="x", nticks=3)
        lay["xaxis"]["anchor"] = "y2"
        lay["legend"] = dict(orientation="h", x=0, xanchor="left", y=-0.32, yanchor="top", font=dict(size=11))
        lay["margin"] = dict(l=10, r=10, t=64, b=60)
    else:
        lay["margin"] = dict(l=10, r=10, t=64, b=10)
    lay["title"]["subtitle"] = dict(text=_subtitle(frame), font=dict(size=12, color="#6C757D"))
    fig["rev"] = f"{frame.step}-{frame.when}"
    return fig


def gradients_figure(frame: LiveFrame | None) -> dict:
    """Each layer's gradient L2 norm at the latest measured step, on a log axis (first layer on top)."""
    if frame is None or not frame.grad_layers:
        note = "shown from the first training step" if frame is None or frame.step == 0 else "no gradients"
        return _empty("Gradient norm per layer", note, "none" if frame is None else f"{frame.step}-{frame.when}")
    values = [float(v) if math.isfinite(v) and v > 0 else None for v in frame.grad_norms]
    text = [f"{v:.2g}" if v is not None else "no gradient" for v in values]
    traces = [dict(type="bar", orientation="h", x=values, y=list(frame.grad_layers), text=text, textposition="auto",
                   marker=dict(color="#4C6EF5"), hovertemplate="%{y}: %{x:.3g}<extra></extra>")]
    fig = live_figure(traces, "Gradient norm per layer",
                      dict(title=dict(text="L2 norm of the gradient (log scale)"), type="log", dtick=1),
                      dict(autorange="reversed", automargin=True), height=HEIGHT)
    fig["layout"]["margin"] = dict(l=10, r=10, t=64, b=10)
    fig["layout"]["title"]["subtitle"] = dict(text=f"{frame.when} (before clipping)", font=dict(size=12,
                                                                                              color="#6C757D"))
    fig["rev"] = f"{frame.step}-{frame.when}"
    return fig
