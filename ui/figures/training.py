"""Plotly figures for the Build and Train pages: curves, architecture, dataset previews.

Pure functions from arrays to ``go.Figure``; no streamlit here, so they are testable and
reusable. Curves plot only measured points: per-batch losses at the steps they were
measured, epoch metrics at the step where each epoch ended.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from bigmodel_core.nn.shapes import LayerInfo
from ui.figures.probes import square_pixels

TRAIN_COLOR = "#4C6EF5"
VAL_COLOR = "#F76707"
BATCH_COLOR = "rgba(76, 110, 245, 0.35)"
KIND_COLORS = {
    "conv": "#4C6EF5", "batchnorm": "#CED4DA", "activation": "#FAB005", "pool": "#12B886",
    "dropout": "#ADB5BD", "flatten": "#868E96", "dense": "#7950F2", "rnn": "#E64980", "output": "#F76707",
    "skip": "#15AABF",
}
PNG_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def _layout(fig: go.Figure, height: int = 340) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


# The live curves are rebuilt every few seconds while a training runs, in the server process that
# also trains: they are plain dicts in Plotly's figure format, because building and validating a
# go.Figure costs ~60 ms of Python (GIL) time per figure, which the training thread waits for.
_WHITE = pio.templates["plotly_white"].to_plotly_json()
_LIVE_STYLE = dict(  # the look of Streamlit's own charts: bold title on the left; the legend under the plot,
    # where the chart's toolbar (top right, on hover) never covers it
    font=dict(family='"Source Sans Pro", "Source Sans 3", sans-serif', color="#31333F"),
    legend=dict(orientation="h", x=0, xanchor="left", y=-0.3, yanchor="top"),
    margin=dict(l=10, r=10, t=44, b=34),
    template=_WHITE,
)
LIVE_HEIGHT = 300


def _finite(values: Sequence[float]) -> list[float | None]:
    """JSON has no NaN or infinity (a diverged run has them): those points become gaps."""
    return [float(v) if math.isfinite(v) else None for v in values]


def live_figure(traces: list[dict], title: str, xaxis: dict, yaxis: dict, height: int = LIVE_HEIGHT) -> dict:
    """A figure dict in the live charts' style (title top left, legend under the plot)."""
    title_ = dict(text=title, x=0, xanchor="left", xref="container", y=1, yanchor="top", yref="container",
                  pad=dict(t=10, l=10), font=dict(size=16, weight="bold"))
    return dict(data=traces, layout=dict(_LIVE_STYLE, title=title_, xaxis=xaxis, yaxis=yaxis, height=height))


RUNNING_NOTE = "running mean, as trained"  # the label of the epoch's running train values


def running_label(smoothing: float = 0.0) -> str:
    """How the running train loss is named: with label smoothing it is the smoothed loss, which
    cannot reach the plain loss's values (it stays above the smoothed targets' entropy)."""
    note = f"{RUNNING_NOTE}, label smoothing {smoothing:g}" if smoothing else RUNNING_NOTE
    return f"train ({note})"


CLEAN_LABEL = "train (eval mode)"  # the clean value: eval mode on the training set, plain loss


def _has(epochs: Sequence[dict], key: str) -> bool:
    """Whether the runs measured ``key`` (runs stored before the clean train metric existed did not)."""
    return any(isinstance(e.get(key), (int, float)) and math.isfinite(e[key]) for e in epochs)


def loss_figure(steps: Sequence[int], batch_losses: Sequence[float], epochs: Sequence[dict],
                log_y: bool = False, smoothing: float = 0.0) -> dict:
    """Per-batch training loss, and per-epoch train/validation loss at each epoch's last step.

    The epoch curves compare like with like: the clean train loss (eval mode on the training set,
    plain loss) beside the validation loss. The batch losses and their running mean are what the
    model trained on (dropout on, augmented, and smoothed when ``smoothing``): drawn faint and
    dotted, and named so."""
    # SVG, not WebGL: with at most a few thousand points it is as fast, and it stays cheap in
    # browsers without GPU acceleration (WebGL falls back to software rendering there)
    traces = [dict(type="scatter", x=list(steps), y=_finite(batch_losses), mode="lines", name="batch loss",
                   line=dict(color=BATCH_COLOR, width=1))]
    if epochs:
        xs = [e["step"] for e in epochs]
        text = [f"epoch {e['epoch']}" for e in epochs]
        lines = [("train_loss", running_label(smoothing), dict(color=TRAIN_COLOR, width=1.5, dash="dot"))]
        if _has(epochs, "train_eval_loss"):
            lines.append(("train_eval_loss", CLEAN_LABEL, dict(color=TRAIN_COLOR)))
        lines.append(("val_loss", "validation", dict(color=VAL_COLOR)))
        for key, name, line in lines:
            traces.append(dict(type="scatter", x=xs, y=_finite([e.get(key, math.nan) for e in epochs]),
                               mode="lines+markers", name=name, line=line, text=text))
    # the batch curve keeps its name (the page finds it by name); the title says it is smoothed
    title = f"Loss (batch and running train: label smoothing {smoothing:g})" if smoothing else "Loss"
    return live_figure(traces, title, dict(title=dict(text="step (batches)"), rangemode="tozero"),
                       dict(title=dict(text="loss"), type="log" if log_y else "linear"))


def metric_figure(epochs: Sequence[dict], task: str) -> dict:
    """Per-epoch train and validation metric: the clean train value beside validation, the running one dotted."""
    name = "accuracy" if task == "classification" else "mean absolute error"
    xs = [e["epoch"] for e in epochs]
    lines = [("train_metric", f"train ({RUNNING_NOTE})", dict(color=TRAIN_COLOR, width=1.5, dash="dot"))]
    if _has(epochs, "train_eval_metric"):
        lines.append(("train_eval_metric", CLEAN_LABEL, dict(color=TRAIN_COLOR)))
    lines.append(("val_metric", "validation", dict(color=VAL_COLOR)))
    traces = [dict(type="scatter", x=xs, y=_finite([e.get(key, math.nan) for e in epochs]), mode="lines+markers",
                   name=label, line=line) for key, label, line in lines]
    yaxis = dict(title=dict(text=name))
    if task == "classification":
        yaxis["range"] = [0, 1.02]
    return live_figure(traces, name.capitalize(), dict(title=dict(text="epoch"), dtick=1), yaxis)


LABEL_Y = 0.56  # layer names start just above the tallest box (half height 0.5)


def architecture_figure(rows: Sequence[LayerInfo], input_shape: Sequence[int],
                        error_block: str | None = None) -> go.Figure:
    """Layers left to right as boxes; box height grows with the layer's output size."""
    labels = ["input"] + [r.name for r in rows]
    shapes = [tuple(input_shape)] + [r.out_shape for r in rows]
    kinds = ["input"] + [r.kind for r in rows]
    params = [0] + [r.params for r in rows]
    sizes = [float(np.prod(s)) for s in shapes]
    biggest = max(sizes) if sizes else 1.0
    fig = go.Figure()
    for i, (label, shape, kind, size, p) in enumerate(zip(labels, shapes, kinds, sizes, params)):
        h = 0.25 + 0.75 * (np.log1p(size) / np.log1p(biggest))
        color = KIND_COLORS.get(kind, "#495057")
        block = rows[i - 1].block if i else None
        bad = error_block is not None and block == error_block
        fig.add_shape(type="rect", x0=i - 0.38, x1=i + 0.38, y0=-h / 2, y1=h / 2,
                      line=dict(color="#E03131" if bad else color, width=3 if bad else 1),
                      fillcolor=color, opacity=0.85)
        # names above the tallest box, so none overlaps a box; slanted from the box's centre when many
        slanted = len(labels) > 6
        fig.add_annotation(x=i - (0.15 if slanted else 0), y=LABEL_Y, text=f"<b>{label}</b>", showarrow=False,
                           font=dict(size=11), textangle=-28 if slanted else 0, yanchor="bottom",
                           xanchor="left" if slanted else "center")
        fig.add_annotation(x=i, y=-h / 2 - 0.1, text="x".join(map(str, shape)), showarrow=False,
                           font=dict(size=10, color="#495057"))
        fig.add_trace(go.Scatter(x=[i], y=[0], mode="markers", marker=dict(opacity=0), showlegend=False,
                                 hovertext=f"{label}<br>output {'x'.join(map(str, shape))}<br>{p:,} parameters",
                                 hoverinfo="text"))
    # a residual block's skip: an arc from the block's input (the box before its conv) to the add
    for i, r in enumerate(rows, start=1):
        if r.kind != "skip":
            continue
        start = next(j for j, q in enumerate(rows, start=1) if q.block == r.block and q.kind == "conv") - 1
        fig.add_shape(type="path", path=f"M {start},-0.45 Q {(start + i) / 2},-0.72 {i},-0.45",
                      line=dict(color=KIND_COLORS["skip"], width=2, dash="dot"))
    # room on the right for the last slanted name, above the boxes for all of them
    fig.update_xaxes(visible=False, range=[-0.6, len(labels) - 0.4 + (0.9 if len(labels) > 6 else 0)])
    fig.update_yaxes(visible=False, range=[-0.75, 1.3 if len(labels) > 6 else 0.95])
    fig.update_layout(title="Architecture (box height ~ log of the output size"
                      + ("; dotted arcs: residual skips" if any(r.kind == "skip" for r in rows) else "") + ")")
    return _layout(fig, height=310 if len(labels) > 6 else 270)


def image_gallery(images: np.ndarray, titles: Sequence[str], cols: int = 8) -> go.Figure:
    """A grid of grey images (N x H x W in [0, 1]) with titles."""
    n = len(images)
    rows = max(1, int(np.ceil(n / cols)))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles) + [""] * (rows * cols - n),
                        horizontal_spacing=0.01, vertical_spacing=0.08)
    for i, img in enumerate(images):
        fig.add_trace(go.Heatmap(z=img[::-1], colorscale="Greys", reversescale=True, zmin=0, zmax=1,
                                 showscale=False, hovertemplate="value %{z:.2f}<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, constrain="domain")
    square_pixels(fig)
    fig.update_annotations(font_size=11)
    fig.update_layout(height=120 * rows + 40, margin=dict(l=0, r=0, t=30, b=0), template="plotly_white")
    return fig


def sequence_gallery(x: np.ndarray, titles: Sequence[str], feature_names: Sequence[str] | None = None,
                     cols: int = 4) -> go.Figure:
    """Small line plots of sequences (N x T x F), one subplot each."""
    n = len(x)
    rows = max(1, int(np.ceil(n / cols)))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles) + [""] * (rows * cols - n),
                        horizontal_spacing=0.04, vertical_spacing=0.12)
    palette = ["#4C6EF5", "#F76707", "#12B886", "#7950F2", "#E64980", "#FAB005", "#868E96", "#15AABF"]
    for i, seq in enumerate(x):
        for f in range(seq.shape[1]):
            name = feature_names[f] if feature_names and f < len(feature_names) else f"feature {f}"
            fig.add_trace(go.Scatter(y=seq[:, f], mode="lines", line=dict(width=1.2, color=palette[f % 8]),
                                     name=name, showlegend=i == 0 and seq.shape[1] > 1, legendgroup=name),
                          row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_annotations(font_size=11)
    fig.update_layout(height=150 * rows + 50, margin=dict(l=0, r=0, t=30, b=0), template="plotly_white")
    return fig
