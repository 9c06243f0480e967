"""Figures of "try your model" and of the attributions: what the model receives, its answer, and why.

Plain dicts in Plotly's figure format, drawn by ui/live_chart (kept mounted, updated in place with
``Plotly.react``): they are rebuilt after every stroke on the canvas, and a ``go.Figure`` costs tens of
milliseconds of validation each. The misclassified examples' overlays are a ``go.Figure`` for the
inspect area's ``st.plotly_chart`` (drawn once per epoch). No streamlit here.

Colours: the input as the canvas shows it and as the tensor holds it, 0 black and 1 white (the training
images are bright ink on black); under an attribution it is dimmed to dark greys, and saliency and
Grad-CAM lie over it in a warm colour whose transparency falls to nothing at 0, integrated gradients on
a diverging scale (warm for the explained output, blue against), transparent at 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bigmodel_core.inspect.attributions import Explanation
from bigmodel_core.inspect.probes import FeatureMaps, WrongExample
from ui.figures.probes import mosaic
from ui.figures.training import live_figure

HEIGHT = 300
_BARE = dict(showticklabels=False, showgrid=False, zeroline=False, ticks="")
HEAT = [[0.0, "rgba(255, 80, 0, 0)"], [0.2, "rgba(255, 80, 0, 0.45)"], [0.6, "rgba(255, 150, 0, 0.9)"],
        [1.0, "rgba(255, 240, 60, 1)"]]
SIGNED = [[0.0, "rgba(90, 170, 255, 1)"], [0.4, "rgba(90, 170, 255, 0.35)"], [0.5, "rgba(0, 0, 0, 0)"],
          [0.6, "rgba(255, 110, 40, 0.35)"], [1.0, "rgba(255, 200, 40, 1)"]]
WHITE_INK = [[0.0, "rgb(0, 0, 0)"], [1.0, "rgb(255, 255, 255)"]]
DIM_INK = [[0.0, "rgb(0, 0, 0)"], [1.0, "rgb(120, 120, 120)"]]
TITLES = {"saliency": "Saliency", "integrated gradients": "Integrated gradients",
          "grad-cam": "Grad-CAM"}
GREY = "#6C757D"


def _z(a: np.ndarray, decimals: int = 3) -> list:
    out = np.round(np.asarray(a, dtype=np.float64), decimals)
    return [[float(v) if math.isfinite(v) else None for v in row] for row in out]


def _subtitle(fig: dict, text: str) -> dict:
    fig["layout"]["title"]["subtitle"] = dict(text=text, font=dict(size=12, color=GREY))
    fig["layout"]["margin"] = dict(l=10, r=10, t=64, b=10)
    return fig


def _image_layout(fig: dict) -> dict:
    fig["layout"]["xaxis"] = dict(_BARE, constrain="domain")
    fig["layout"]["yaxis"] = dict(_BARE, autorange="reversed", scaleanchor="x", constrain="domain")
    fig["layout"]["showlegend"] = False
    return fig


def _grey(img: np.ndarray, name: str = "input", dim: bool = False) -> dict:
    return dict(type="heatmap", z=_z(img), colorscale=DIM_INK if dim else WHITE_INK, zmin=0, zmax=1, showscale=False,
                name=name, hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra>" + name + "</extra>")


def empty_figure(title: str, note: str, height: int = HEIGHT) -> dict:
    fig = live_figure([], title, dict(_BARE, visible=False), dict(_BARE, visible=False), height=height)
    fig["layout"]["annotations"] = [dict(text=note, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                                         font=dict(size=13, color=GREY))]
    return fig


def model_input_figure(x: np.ndarray, subtitle: str = "") -> dict:
    """The exact tensor the model receives: an image (C, H, W) in greys, or a sequence (T, F) over time."""
    if x.ndim == 3:
        img = x[0] if x.shape[0] == 1 else x.mean(axis=0)
        h, w = img.shape
        fig = _image_layout(live_figure([_grey(img, "model input")], f"What the model receives: {h} x {w}",
                                        {}, {}, height=HEIGHT))
        return _subtitle(fig, subtitle or "the exact tensor: 0 black, 1 white")
    return sequence_input_figure(x, None, subtitle)


def sequence_input_figure(x: np.ndarray, names: Sequence[str] | None, subtitle: str = "") -> dict:
    t_len, n_feat = x.shape
    names = list(names or [f"feature {k + 1}" for k in range(n_feat)])
    if n_feat > 2:  # e.g. the 8 x 8 digits read row by row: a picture says more than 8 lines
        traces = [dict(type="heatmap", z=_z(x), colorscale=WHITE_INK, showscale=False,
                       name="model input", hovertemplate="step %{y}, feature %{x}: %{z:.3f}<extra></extra>")]
        fig = live_figure(traces, "What the model receives",
                          dict(title=dict(text="feature")), dict(title=dict(text="time step"), autorange="reversed"),
                          height=HEIGHT)
    else:
        traces = [dict(type="scatter", mode="lines", x=list(range(t_len)), y=[float(v) for v in x[:, k]],
                       name=names[k], line=dict(width=1.6)) for k in range(n_feat)]
        fig = live_figure(traces, "What the model receives", dict(title=dict(text="time step")),
                          dict(title=dict(text="value")), height=HEIGHT)
    fig = _subtitle(fig, subtitle or f"the exact tensor: {t_len} steps x {n_feat} feature(s)")
    fig["layout"]["margin"]["b"] = 40
    return fig


def answer_figure(ex: Explanation, class_names: Sequence[str]) -> dict:
    """Class probabilities as bars (the predicted class red, the explained one outlined), or the prediction."""
    if ex.task != "classification":
        value = float(ex.output[0])
        fig = empty_figure("The model's answer", f"prediction: {value:.4g}")
        fig["layout"]["annotations"][0]["font"] = dict(size=28, color="#31333F")
        return _subtitle(fig, "a regression model: one number")
    names = list(class_names) or [str(k) for k in range(len(ex.output))]
    pred = ex.prediction
    colors = ["#E03131" if k == pred else "#ADB5BD" for k in range(len(names))]
    lines = [2.5 if k == ex.target else 0 for k in range(len(names))]
    traces = [dict(type="bar", x=names, y=[round(float(p), 4) for p in ex.output], name="answer",
                   marker=dict(color=colors, line=dict(color="#1C7ED6", width=lines)),
                   hovertemplate="%{x}: %{y:.3f}<extra></extra>")]
    fig = live_figure(traces, f"Prediction: {names[pred]} ({ex.output[pred]:.0%})",
                      dict(type="category", title=dict(text="class")),
                      dict(range=[0, 1], title=dict(text="probability")), height=HEIGHT)
    return _subtitle(fig, "softmax; blue outline: the explained class")


def overlay_figure(image: np.ndarray, attribution: np.ndarray, method: str, subtitle: str) -> dict:
    """One attribution map over the input image (H, W); signed for integrated gradients."""
    signed = method == "integrated gradients"
    a = np.asarray(attribution, dtype=np.float64)
    finite = a[np.isfinite(a)]
    lim = float(np.abs(finite).max()) if finite.size else 0.0
    lim = lim if lim > 0 else 1.0
    over = dict(type="heatmap", z=_z(a / lim, 4), zmin=-1 if signed else 0, zmax=1,
                colorscale=SIGNED if signed else HEAT, name=method, customdata=_z(a, 6),
                hovertemplate="row %{y}, col %{x}: %{customdata:.3g}<extra>" + method + "</extra>",
                colorbar=dict(thickness=10, len=0.8, tickvals=[-1, 0, 1] if signed else [0, 1],
                              ticktext=["against", "0", "for"] if signed else ["0", "most"]))
    fig = _image_layout(live_figure([_grey(image, dim=True), over], TITLES.get(method, method), {}, {},
                                    height=HEIGHT))
    return _subtitle(fig, subtitle)


def attribution_figures(image: np.ndarray, ex: Explanation, class_name: str) -> list[dict]:
    """Saliency, integrated gradients and (CNN) Grad-CAM of one image, each over the image."""
    figs = [overlay_figure(image, ex.saliency, "saliency", f"for {class_name} · |∂score/∂pixel|"),
            overlay_figure(image, ex.integrated, "integrated gradients",
                           f"for {class_name} · sum {ex.ig_total:.3g} = change {ex.ig_expected:.3g} from black")]
    if ex.grad_cam is not None and ex.grad_cam_layer is not None:
        h, w = ex.grad_cam_layer.shape
        figs.append(overlay_figure(image, ex.grad_cam, "grad-cam", f"for {class_name} · {ex.grad_cam_name}, {h} x {w}"))
    return figs


def steps_figure(ex: Explanation, names: Sequence[str] | None, class_name: str) -> dict:
    """Sequence models: saliency and integrated gradients summed over features, per time step."""
    steps = list(range(len(ex.saliency)))
    sal, ig = ex.saliency_steps, ex.integrated_steps
    assert sal is not None and ig is not None
    traces = [dict(type="bar", x=steps, y=[round(float(v), 5) for v in ig], name="integrated gradients (signed)",
                   marker=dict(color=["#C92A2A" if v >= 0 else "#1864AB" for v in ig]), yaxis="y",
                   hovertemplate="step %{x}: %{y:.3g}<extra>integrated gradients</extra>"),
              dict(type="scatter", mode="lines", x=steps, y=[round(float(v), 5) for v in sal], yaxis="y2",
                   name="saliency |∂score/∂x|", line=dict(color="#F76707", width=1.6),
                   hovertemplate="step %{x}: %{y:.3g}<extra>saliency</extra>")]
    fig = live_figure(traces, "Which time steps the answer rests on", dict(title=dict(text="time step")),
                      dict(title=dict(text="integrated gradients"), domain=[0.0, 0.46]), height=HEIGHT + 60)
    fig["layout"]["yaxis2"] = dict(title=dict(text="saliency"), domain=[0.56, 1.0], anchor="x", rangemode="tozero")
    fig = _subtitle(fig, f"for {class_name}, summed over the features of each step · IG sum {ex.ig_total:.3g} = "
                         f"score change {ex.ig_expected:.3g} from an all-zero sequence")
    fig["layout"]["legend"] = dict(orientation="h", x=0, y=-0.18, yanchor="top")
    fig["layout"]["margin"]["b"] = 60
    fig["wide"] = True
    return fig


def sequence_grid_figure(values: np.ndarray, method: str, names: Sequence[str] | None) -> dict:
    """A (T, F) attribution grid: time steps down, features across."""
    t_len, n_feat = values.shape
    signed = method == "integrated gradients"
    lim = float(np.abs(values[np.isfinite(values)]).max()) if np.isfinite(values).any() else 1.0
    lim = lim if lim > 0 else 1.0
    names = list(names or [f"feature {k + 1}" for k in range(n_feat)])
    traces = [dict(type="heatmap", z=_z(values.T, 5), x=list(range(t_len)), y=names,
                   colorscale="RdBu" if signed else [[0, "#FFF4E6"], [1, "#D9480F"]], zmin=-lim if signed else 0,
                   zmax=lim, name=method, colorbar=dict(thickness=10),
                   hovertemplate="step %{x}, %{y}: %{z:.3g}<extra>" + method + "</extra>")]
    fig = live_figure(traces, f"{TITLES.get(method, method)}, step x feature", dict(title=dict(text="time step")),
                      dict(type="category"), height=max(220, 120 + 26 * n_feat))
    return _subtitle(fig, "red for the explained output, blue against" if signed else "larger: more sensitive")


def feature_maps_figure(fm: FeatureMaps) -> dict:
    """One conv block's feature maps for the learner's input, as a mosaic (each map on its own scale)."""
    z, number, _raw = mosaic(fm.maps, per_map=True)
    c, h, w = fm.maps.shape
    traces = [dict(type="heatmap", z=_z(z), customdata=number.tolist(), colorscale="Viridis", zmin=0, zmax=1,
                   showscale=False, name=fm.name, hovertemplate="map %{customdata}<extra></extra>")]
    rows = math.ceil(c / max(1, math.ceil(math.sqrt(c))))
    fig = _image_layout(live_figure(traces, f"Feature maps, {fm.name}", {}, {}, height=min(420, 90 + rows * 48)))
    shown = f"first {c} of {fm.shape[0]}" if fm.capped else f"{c}"
    return _subtitle(fig, f"{shown} maps of {h} x {w}, each on its own scale")


def states_figure(hidden: np.ndarray, gates: dict[str, np.ndarray], family: str, units_total: int) -> dict:
    """Layer 1's hidden state over time (units x steps) and each gate's mean over units, for this input."""
    t_len, units = hidden.shape
    lim = float(np.nanmax(np.abs(hidden))) if np.isfinite(hidden).any() else 1.0
    traces: list[dict[str, Any]] = [
        dict(type="heatmap", z=_z(hidden.T), x=list(range(t_len)), y=list(range(1, units + 1)), colorscale="RdBu",
             reversescale=True, zmin=-max(lim, 1e-6), zmax=max(lim, 1e-6), showscale=False, name="hidden state",
             hovertemplate="unit %{y} · step %{x}: %{z:.3f}<extra>hidden state</extra>")]
    for name, v in gates.items():
        traces.append(dict(type="scatter", mode="lines", x=list(range(t_len)), y=_z(v[None])[0], yaxis="y2",
                           name=f"{name} gate (mean)", line=dict(width=1.6)))
    shown = f"units 1-{units} of {units_total}" if units_total > units else "unit"
    fig = live_figure(traces, "Hidden state" + (" and gates" if gates else "") + ", layer 1",
                      dict(title=dict(text="time step"), showgrid=False),
                      dict(title=dict(text=shown), domain=[0.42, 1.0] if gates else [0, 1], showgrid=False),
                      height=HEIGHT + (60 if gates else 0))
    if gates:
        fig["layout"]["yaxis2"] = dict(domain=[0.0, 0.32], range=[0, 1], anchor="x", title=dict(text="gate mean"))
        fig["layout"]["xaxis"]["anchor"] = "y2"
        fig["layout"]["legend"] = dict(orientation="h", x=0, y=-0.25, yanchor="top")
    fig = _subtitle(fig, "PyTorch's GRU convention: update gate z near 1 keeps the old state" if family == "gru"
                    else "recomputed from the layer's own weights")
    fig["layout"]["margin"]["b"] = 60 if gates else 10
    fig["wide"] = True
    return fig


# --- the inspect area's misclassified examples --------------------------------------------------------
def wrong_attributions_figure(wrong: Sequence[WrongExample], explanations: Sequence[Explanation],
                              class_names: Sequence[str], method: str, pairs_per_row: int = 3) -> go.Figure:
    """Each confidently wrong example next to the same picture with ``method``'s map for the predicted
    (wrong) class over it: what the model looked at when it got it wrong."""
    names = list(class_names) or [str(k) for k in range(max([w.pred for w in wrong] + [0]) + 1)]
    n = len(wrong)
    rows = max(1, math.ceil(n / pairs_per_row))
    cols = 2 * min(pairs_per_row, max(1, n))
    titles: list[str] = []
    for w in wrong:
        titles += [f"#{w.index}: true {names[w.true]} → {names[w.pred]} ({w.confidence:.0%})", "why " + names[w.pred]]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles + [""] * (rows * cols - len(titles)),
                        horizontal_spacing=0.015, vertical_spacing=0.12 if rows > 1 else 0.0)
    signed = method == "integrated gradients"
    for k, (w, ex) in enumerate(zip(wrong, explanations)):
        r, c = divmod(k, pairs_per_row)
        img = w.x[0] if w.x.ndim == 3 else w.x
        a = {"saliency": ex.saliency, "integrated gradients": ex.integrated, "grad-cam": ex.grad_cam}[method]
        if a is None:
            a = np.zeros_like(img)
        lim = float(np.abs(a).max()) or 1.0
        for col, overlay in ((2 * c + 1, False), (2 * c + 2, True)):
            fig.add_trace(go.Heatmap(z=img, colorscale=DIM_INK if overlay else WHITE_INK, zmin=0, zmax=1,
                                     showscale=False, hovertemplate="%{z:.2f}<extra>input</extra>"),
                          row=r + 1, col=col)
            if overlay:
                fig.add_trace(go.Heatmap(z=a / lim, zmin=-1 if signed else 0, zmax=1, showscale=False,
                                         colorscale=SIGNED if signed else HEAT,
                                         hovertemplate="%{z:.2f}<extra>" + method + "</extra>"), row=r + 1, col=col)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed", constrain="domain")
    for name in list(fig.layout):
        if name.startswith("yaxis"):
            axis = fig.layout[name]
            axis.scaleanchor = axis.anchor or "x"
            axis.scaleratio = 1
    fig.update_annotations(font_size=11)
    what = {"saliency": "saliency", "integrated gradients": "integrated gradients (red for, blue against)",
            "grad-cam": "Grad-CAM of the last conv block"}[method]
    fig.update_layout(title=dict(text=f"Why it was wrong: {what} for the predicted class", y=0.99, yanchor="top",
                                 yref="container"),
                      height=90 + 190 * rows, margin=dict(l=10, r=10, t=70, b=10), template="plotly_white")
    return fig
