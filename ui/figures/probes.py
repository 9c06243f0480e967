"""Plotly figures for looking inside a model: feature maps, filters, RNN states and gates, gradients, errors.

Pure functions from the arrays in ``bigmodel_core.inspect.probes`` results to ``go.Figure``; no
streamlit here. Stacks of maps are drawn as one mosaic heatmap per layer (one trace,
thin gaps between maps) rather than dozens of subplots, which keeps a 64-map layer
light in the browser; hovering names the map and shows the raw value.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bigmodel_core.inspect.probes import RNNTrace, WeightHistogram, WrongExample

START_COLOR = "rgba(134, 142, 150, 0.55)"
NOW_COLOR = "rgba(76, 110, 245, 0.65)"
LINE_COLORS = ["#4C6EF5", "#F76707", "#12B886", "#E64980", "#7950F2", "#FAB005", "#15AABF", "#868E96",
               "#82C91E", "#BE4BDB"]
GATE_TITLES = {
    "lstm": {"input": "input gate i_t", "forget": "forget gate f_t", "candidate": "cell candidate g_t",
             "output": "output gate o_t"},
    "gru": {"reset": "reset gate r_t", "update": "update gate z_t", "candidate": "candidate n_t"},
}
GRU_CONVENTION = ("PyTorch's GRU convention: h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}, so an update gate z near 1 "
                  "keeps the old state (many textbooks swap z and 1 − z: h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t).")
LSTM_EQUATIONS = "c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t,  h_t = o_t ⊙ tanh(c_t)"


def png_config(filename: str) -> dict:
    """Plotly config whose camera button saves the figure as a PNG named ``filename``."""
    return {"displaylogo": False,
            "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2}}


def _layout(fig: go.Figure, title: str, height: int = 340) -> go.Figure:
    # the title sits at the very top and a horizontal legend just above the plot, so they never overlap
    fig.update_layout(title=dict(text=title, y=0.99, yanchor="top", yref="container"), height=height,
                      margin=dict(l=10, r=10, t=70, b=10), template="plotly_white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0))
    return fig


def square_pixels(fig: go.Figure) -> go.Figure:
    """Every image panel keeps its aspect (an 8x8 digit is drawn square, not stretched to its cell):
    each y axis is scaled to the x axis it is anchored to."""
    for name in list(fig.layout):
        if name.startswith("yaxis"):
            axis = fig.layout[name]
            axis.scaleanchor = axis.anchor if axis.anchor and axis.anchor != "free" else "x"
            axis.scaleratio = 1
    return fig


def _image_axes(fig: go.Figure, row: int | None = None, col: int | None = None) -> None:
    kw = {} if row is None else {"row": row, "col": col}
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain", **kw)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                     scaleanchor="x" if row is None else None, constrain="domain", **kw)
    if row is not None:
        sub = fig.get_subplot(row, col)
        sub.yaxis.scaleanchor = sub.yaxis.anchor  # square pixels in this panel too
        sub.yaxis.scaleratio = 1


def mosaic(maps: np.ndarray, per_map: bool = False, cols: int | None = None,
           gap: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tile (C, H, W) maps into one image with NaN gaps.

    Returns (z, map_number, raw): ``z`` is what is coloured (each map rescaled to [0, 1]
    when ``per_map``), ``map_number`` is 1-based (0 in gaps), ``raw`` the unscaled values.
    """
    c, h, w = maps.shape
    cols = cols or max(1, math.ceil(math.sqrt(c)))
    rows = math.ceil(c / cols)
    shape = (rows * (h + gap) - gap, cols * (w + gap) - gap)
    z = np.full(shape, np.nan)
    raw = np.full(shape, np.nan)
    number = np.zeros(shape, dtype=int)
    for k in range(c):
        r, q = divmod(k, cols)
        m = maps[k].astype(float)
        shown = m
        if per_map:
            lo, hi = _finite_range(m, (0.0, 0.0))
            shown = (m - lo) / (hi - lo) if hi - lo > 1e-6 else np.zeros_like(m)  # a flat (often dead) map stays dark
        sl = (slice(r * (h + gap), r * (h + gap) + h), slice(q * (w + gap), q * (w + gap) + w))
        z[sl], raw[sl], number[sl] = shown, m, k + 1
    return z, number, raw


def _finite_range(a: np.ndarray, default: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """min and max of the finite values (a diverged model has NaN/inf), never an empty range."""
    f = np.asarray(a, dtype=float)
    f = f[np.isfinite(f)]
    if f.size == 0:
        return default
    lo, hi = float(f.min()), float(f.max())
    return (lo, hi) if hi > lo else (lo, lo + 1e-6)


def _nan_to_none(a: np.ndarray) -> list:
    return [[None if isinstance(v, float) and math.isnan(v) else v for v in row] for row in a.tolist()]


def feature_maps_figure(maps: np.ndarray, title: str, scaling: str = "layer", total: int | None = None,
                        colorscale: str = "Viridis") -> go.Figure:
    """A layer's feature maps as one mosaic heatmap.

    ``scaling="layer"``: one colour scale for every map of the layer (compare maps with
    each other); ``"map"``: each map stretched to its own range (see the pattern of weak maps).
    """
    if scaling not in ("layer", "map"):
        raise ValueError(f"scaling must be 'layer' or 'map', got {scaling!r}")
    per_map = scaling == "map"
    z, number, raw = mosaic(maps, per_map=per_map)
    custom = np.stack([number, np.nan_to_num(raw)], axis=-1)
    lo, hi = (0.0, 1.0) if per_map else _finite_range(maps)
    fig = go.Figure(go.Heatmap(
        z=_nan_to_none(z), customdata=custom, zmin=lo, zmax=hi, colorscale=colorscale, name="feature maps",
        hovertemplate="map %{customdata[0]}<br>value %{customdata[1]:.4g}<extra></extra>",
        colorbar=dict(title="relative" if per_map else "activation", thickness=12)))
    _image_axes(fig)
    c, h, w = maps.shape
    note = f" (first {c} of {total})" if total and total > c else ""
    scale = "each map its own scale" if per_map else "one scale for the layer"
    rows = math.ceil(c / max(1, math.ceil(math.sqrt(c))))
    return _layout(fig, f"{title}: {c} maps {h}x{w}{note} · {scale}", height=min(900, max(260, 60 + rows * 70)))


def filters_figure(filters: np.ndarray, total: int | None = None) -> go.Figure:
    """First-layer kernels (O, I, k, k) as a mosaic on a diverging scale centred on 0."""
    o, i, kh, kw = filters.shape
    shown = filters[:, 0] if i == 1 else filters.mean(axis=1)
    z, number, raw = mosaic(shown, gap=1)
    lim = max(abs(v) for v in _finite_range(shown)) or 1.0
    fig = go.Figure(go.Heatmap(
        z=_nan_to_none(z), customdata=np.stack([number, np.nan_to_num(raw)], axis=-1), zmin=-lim, zmax=lim,
        colorscale="RdBu", reversescale=True, name="filters",
        hovertemplate="filter %{customdata[0]}<br>weight %{customdata[1]:.4g}<extra></extra>",
        colorbar=dict(title="weight", thickness=12)))
    _image_axes(fig)
    what = "" if i == 1 else f", mean over {i} input channels"
    note = f" (first {o} of {total})" if total and total > o else ""
    return _layout(fig, f"First-layer filters: {o} kernels {kh}x{kw}{what}{note}", height=320)


def input_figure(x: np.ndarray, title: str) -> go.Figure:
    """The probed input: an image (C, H, W) in grey, or a sequence (T, F) as a heatmap of steps."""
    if x.ndim == 3:
        img = x[0] if x.shape[0] == 1 else x.mean(axis=0)
        fig = go.Figure(go.Heatmap(z=img, colorscale="Greys", reversescale=True, showscale=False, name="input",
                                   hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>"))
        _image_axes(fig)
        return _layout(fig, title, height=280)
    fig = go.Figure(go.Heatmap(z=x, colorscale="Greys", reversescale=True, showscale=False, name="input",
                               hovertemplate="step %{y}, feature %{x}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(title="time step", autorange="reversed")
    fig.update_xaxes(title="feature")
    return _layout(fig, title, height=280)


def probabilities_figure(probs: np.ndarray, class_names: Sequence[str], true: int | None = None) -> go.Figure:
    names = list(class_names) or [str(k) for k in range(len(probs))]
    pred = int(np.argmax(probs))
    colors = ["#2B8A3E" if k == true else ("#E03131" if k == pred else "#ADB5BD") for k in range(len(probs))]
    fig = go.Figure(go.Bar(x=names, y=probs, marker_color=colors, name="probability",
                           hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    fig.update_yaxes(title="probability", range=[0, 1])
    fig.update_xaxes(type="category")
    verdict = "" if true is None else (" · correct" if pred == true else f" · wrong (true {names[true]})")
    return _layout(fig, f"Class probabilities: predicted {names[pred]} ({probs[pred]:.0%}){verdict}", height=280)


def _steps_heatmap(values: np.ndarray, steps: np.ndarray, **kw) -> go.Heatmap:
    """(steps, units) values drawn as units (rows) x time steps (columns)."""
    return go.Heatmap(z=values.T, x=steps, y=np.arange(1, values.shape[1] + 1),
                      hovertemplate="step %{x}, unit %{y}: %{z:.3f}<extra></extra>", **kw)


def hidden_state_figure(trace: RNNTrace, what: str = "hidden") -> go.Figure:
    """The hidden state h_t (or the LSTM cell state c_t) of one layer and direction: units x steps."""
    values = trace.hidden if what == "hidden" else trace.cell
    if values is None:
        raise ValueError(f"{trace.label} has no {what} state (only LSTMs have a cell state)")
    lim = max(abs(v) for v in _finite_range(values)) or 1.0
    if what == "hidden" and lim <= 1.0:
        lim = 1.0  # tanh-bounded: a fixed scale makes epochs comparable
    name = "hidden state h_t" if what == "hidden" else "cell state c_t"
    fig = go.Figure(_steps_heatmap(values, trace.steps, colorscale="RdBu", reversescale=True, zmin=-lim, zmax=lim,
                                   name=name, colorbar=dict(title=what, thickness=12)))
    fig.update_xaxes(title="time step")
    fig.update_yaxes(title="unit")
    units = f"{values.shape[1]} of {trace.units} units" if trace.units > values.shape[1] else f"{trace.units} units"
    return _layout(fig, f"{name[0].upper() + name[1:]}, {trace.label} ({units} x {len(trace.steps)} steps)",
                   height=min(520, 140 + 4 * values.shape[1]))


def gates_figure(trace: RNNTrace, family: str) -> go.Figure:
    """Every gate of one layer and direction over time, one heatmap row per gate.

    Sigmoid gates share a 0..1 scale; the tanh candidate has its own -1..1 scale.
    """
    if not trace.gates:
        raise ValueError("a plain RNN has no gates")
    titles = GATE_TITLES.get(family, {})
    names = list(trace.gates)
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[titles.get(g, g) for g in names])
    for r, g in enumerate(names, start=1):
        cand = g == "candidate"
        fig.add_trace(_steps_heatmap(trace.gates[g], trace.steps, coloraxis="coloraxis2" if cand else "coloraxis",
                                     name=titles.get(g, g)), row=r, col=1)
        fig.update_yaxes(title="unit", row=r, col=1)
    fig.update_xaxes(title="time step", row=len(names), col=1)
    fig.update_layout(coloraxis=dict(colorscale="Viridis", cmin=0, cmax=1,
                                     colorbar=dict(title="gate", thickness=12, len=0.45, y=0.78)),
                      coloraxis2=dict(colorscale="RdBu", reversescale=True, cmin=-1, cmax=1,
                                      colorbar=dict(title="candidate", thickness=12, len=0.45, y=0.22)))
    family_name = {"lstm": "LSTM", "gru": "GRU"}.get(family, family)
    title = f"{family_name} gates, {trace.label}"
    caption = GRU_CONVENTION if family == "gru" else LSTM_EQUATIONS if family == "lstm" else ""
    fig = _layout(fig, title, height=130 + 150 * len(names))
    if caption:
        # in the figure itself, so a downloaded PNG says which convention it shows
        fig.update_layout(title_subtitle_text=caption, title_subtitle_font_size=11, margin_t=80)
    return fig


def gate_means_figure(trace: RNNTrace, family: str) -> go.Figure:
    """Each gate's mean over units at every step: when does the layer write, forget, read?"""
    titles = GATE_TITLES.get(family, {})
    fig = go.Figure()
    for k, (g, v) in enumerate(trace.gates.items()):
        fig.add_trace(go.Scatter(x=trace.steps, y=v.mean(axis=1), mode="lines", name=titles.get(g, g),
                                 line=dict(color=LINE_COLORS[k % len(LINE_COLORS)])))
    fig.update_xaxes(title="time step")
    fig.update_yaxes(title="mean over units", range=[-1.05, 1.05])
    return _layout(fig, f"Mean gate activation, {trace.label}", height=300)


def sequence_figure(x: np.ndarray, target: np.ndarray, output: np.ndarray, task: str,
                    feature_names: Sequence[str] | None = None,
                    class_names: Sequence[str] = ()) -> go.Figure:
    """The probed sequence over time; for regression, the target and the prediction after its last step."""
    t_len, n_feat = x.shape
    names = list(feature_names or [f"feature {k + 1}" for k in range(n_feat)])
    fig = go.Figure()
    steps = np.arange(t_len)
    for k in range(n_feat):
        fig.add_trace(go.Scatter(x=steps, y=x[:, k], mode="lines", name=names[k],
                                 line=dict(color=LINE_COLORS[k % len(LINE_COLORS)], width=1.5)))
    if task == "regression":
        tgt, pred = float(np.ravel(target)[0]), float(np.ravel(output)[0])
        fig.add_trace(go.Scatter(x=[t_len], y=[tgt], mode="markers", name="target",
                                 marker=dict(color="#2B8A3E", size=12, symbol="circle")))
        fig.add_trace(go.Scatter(x=[t_len], y=[pred], mode="markers", name="prediction",
                                 marker=dict(color="#E03131", size=12, symbol="x")))
        title = f"Input sequence, target {tgt:.3f}, prediction {pred:.3f} (error {pred - tgt:+.3f})"
    else:
        label = int(np.ravel(target)[0])
        pred = int(np.argmax(output))
        cn = list(class_names) or [str(k) for k in range(len(output))]
        title = f"Input sequence: true {cn[label]}, predicted {cn[pred]} ({output[pred]:.0%})"
    fig.update_xaxes(title="time step")
    return _layout(fig, title, height=300)


def prediction_scatter_figure(predictions: np.ndarray, targets: np.ndarray, mae: float, total: int) -> go.Figure:
    """Predicted against true values on the validation split; the diagonal is a perfect model."""
    lo, hi = _finite_range(np.concatenate([predictions, targets]))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="perfect",
                             line=dict(color="#ADB5BD", dash="dash")))
    fig.add_trace(go.Scattergl(x=targets, y=predictions, mode="markers", name="validation samples",
                               marker=dict(color="#4C6EF5", size=5, opacity=0.6),
                               hovertemplate="target %{x:.3f}<br>prediction %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title="target")
    fig.update_yaxes(title="prediction")
    shown = f"{len(targets)} of {total}" if total > len(targets) else f"{total}"
    return _layout(fig, f"Prediction vs target ({shown} validation samples, MAE {mae:.4f})", height=360)


def grad_norms_figure(steps: Sequence[int], norms: Mapping[str, Sequence[float]]) -> go.Figure:
    """Per-layer gradient L2 norms over training on a log scale (vanishing gradients sink)."""
    fig = go.Figure()
    mode = "lines" if len(steps) > 40 else "lines+markers"  # a short run has only a few measurements
    for k, (name, values) in enumerate(norms.items()):
        fig.add_trace(go.Scatter(x=list(steps), y=list(values), mode=mode, name=name,
                                 line=dict(color=LINE_COLORS[k % len(LINE_COLORS)], width=1.5)))
    fig.update_xaxes(title="step (batches)")
    fig.update_yaxes(title="gradient L2 norm", type="log", exponentformat="power")
    return _layout(fig, "Gradient norm per layer (after backward, before clipping)", height=340)


def hidden_grads_figure(grads: Mapping[str, np.ndarray], batch: int | None = None) -> go.Figure:
    """Mean over sequences of ||dL_i/dh_t|| (each sequence's own loss) at every step: how far back the
    training signal reaches."""
    fig = go.Figure()
    for k, (name, values) in enumerate(grads.items()):
        fig.add_trace(go.Scatter(x=np.arange(len(values)), y=values, mode="lines", name=name,
                                 line=dict(color=LINE_COLORS[k % len(LINE_COLORS)], width=1.5)))
    fig.update_xaxes(title="time step")
    fig.update_yaxes(title="‖∂L_i/∂h_t‖", type="log", exponentformat="power")
    over = (f" (each sequence's own loss, mean over {batch} validation sequence{'s' if batch != 1 else ''})"
            if batch else "")
    return _layout(fig, f"Gradient of the loss with respect to the hidden state{over}", height=320)


def weight_hist_figure(hists: Sequence[WeightHistogram], cols: int = 3) -> go.Figure:
    """Each layer's weight histogram now, over the one at the start (same bins)."""
    n = max(1, len(hists))
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[h.label for h in hists],
                        vertical_spacing=min(0.15, 0.6 / rows), horizontal_spacing=0.06)
    for k, h in enumerate(hists):
        r, c = divmod(k, cols)
        centres = (h.edges[:-1] + h.edges[1:]) / 2
        width = float(h.edges[1] - h.edges[0])
        if h.start is not None:
            fig.add_trace(go.Bar(x=centres, y=h.start, width=width, name="start", marker_color=START_COLOR,
                                 legendgroup="start", showlegend=k == 0), row=r + 1, col=c + 1)
        fig.add_trace(go.Bar(x=centres, y=h.now, width=width, name="now", marker_color=NOW_COLOR,
                             legendgroup="now", showlegend=k == 0), row=r + 1, col=c + 1)
    height = 150 + 200 * rows
    fig = _layout(fig, "Weight histograms per layer: start (grey) and now (blue)", height=height)
    fig.update_layout(barmode="overlay", bargap=0, margin=dict(l=10, r=10, t=80, b=50),
                      legend=dict(orientation="h", yanchor="top", y=-30 / (height - 130), x=0))
    return fig


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """Counts of (true, predicted) pairs on the validation split; the diagonal is right."""
    names = list(class_names) or [str(k) for k in range(len(matrix))]
    total = int(matrix.sum())
    acc = np.trace(matrix) / max(1, total)
    # a plain list (not a typed array) so the browser holds the counts as numbers
    fig = go.Figure(go.Heatmap(z=matrix.tolist(), x=names, y=names, colorscale="Blues", texttemplate="%{z}",
                               name="confusion",
                               hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
                               colorbar=dict(title="count", thickness=12)))
    fig.update_xaxes(title="predicted", type="category", side="bottom")
    fig.update_yaxes(title="true", type="category", autorange="reversed")
    side = max(360, min(720, 40 * len(names) + 120))
    return _layout(fig, f"Confusion matrix ({total} validation samples, accuracy {acc:.1%})", height=side)


def wrong_gallery_figure(wrong: Sequence[WrongExample], class_names: Sequence[str], cols: int = 6) -> go.Figure:
    """The most confidently wrong validation examples with true and predicted labels."""
    names = list(class_names)
    if not wrong:
        fig = go.Figure()
        fig.add_annotation(text="no mistakes on the validation split", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return _layout(fig, "Most confidently wrong", height=160)
    cols = min(cols, len(wrong))
    rows = math.ceil(len(wrong) / cols)
    titles = [f"#{w.index}: true {names[w.true] if names else w.true} → {names[w.pred] if names else w.pred}"
              f" ({w.confidence:.0%})" for w in wrong]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.12 if rows > 1 else 0.0)
    for k, w in enumerate(wrong):
        r, c = divmod(k, cols)
        img = w.x[0] if w.x.ndim == 3 else w.x
        fig.add_trace(go.Heatmap(z=img, colorscale="Greys", reversescale=True, showscale=False, name=titles[k],
                                 hovertemplate="%{z:.2f}<extra></extra>"), row=r + 1, col=c + 1)
        _image_axes(fig, r + 1, c + 1)
    fig.update_annotations(font_size=11)
    return _layout(fig, "Most confidently wrong validation examples (true → predicted, confidence)",
                   height=90 + 190 * rows)
