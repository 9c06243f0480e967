"""The live chart row: its bundled plotly.js, the figures it is given, and how it paces updates."""

from __future__ import annotations

import json
import re

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs_version
from streamlit.testing.v1 import AppTest

from ui.figures.training import loss_figure, metric_figure
from ui.live_chart import FOLDER

EPOCHS = [dict(epoch=1, step=40, train_loss=1.2, val_loss=1.0, train_metric=0.6, val_metric=0.7),
          dict(epoch=2, step=80, train_loss=0.6, val_loss=0.7, train_metric=0.8, val_metric=0.78)]


def test_bundled_plotly_js_is_the_version_the_python_package_targets():
    head = (FOLDER / "plotly-cartesian.min.js").read_text(encoding="utf-8")[:200]
    version = re.search(r"plotly\.js \(cartesian - minified\) v(\S+)", head).group(1)
    assert version == get_plotlyjs_version()
    assert 'src="plotly-cartesian.min.js"' in (FOLDER / "index.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in FOLDER.glob("*.js")) == ["plotly-cartesian.min.js"]  # one bundle, no leftovers


def test_live_figures_are_valid_plotly_figures_of_the_measured_points():
    steps, losses = [1, 2, 3], [2.3, float("nan"), 1.9]
    figs = [loss_figure(steps, losses, EPOCHS, log_y=True), metric_figure(EPOCHS, "classification"),
            loss_figure([], [], []), metric_figure([], "regression")]
    for fig in figs:
        go.Figure(fig)  # raises on any property plotly does not know
        json.dumps(fig, allow_nan=False)  # the browser parses JSON: no NaN or infinity
    batch, train, val = figs[0]["data"]
    assert batch["x"] == steps and batch["y"] == [2.3, None, 1.9]  # a diverged point is a gap
    assert train["x"] == [40, 80] and train["y"] == [1.2, 0.6] and val["y"] == [1.0, 0.7]
    assert figs[0]["layout"]["yaxis"]["type"] == "log"
    acc = figs[1]["data"]
    assert acc[0]["x"] == [1, 2] and acc[1]["y"] == [0.7, 0.78]
    assert figs[1]["layout"]["yaxis"]["range"] == [0, 1.02]
    assert "range" not in figs[3]["layout"]["yaxis"]  # MAE has no fixed range
    assert len(figs[2]["data"]) == 1  # an empty batch-loss trace: the axes are drawn before the first point


def _chart_app():
    import streamlit as st

    from ui.figures.training import loss_figure
    from ui.live_chart import live_chart

    live_chart([loss_figure([1, 2], [1.0, 0.5], [])], key="curves", revision="r1",
               poll_every=st.session_state.get("poll", 0))


def _args(at) -> dict:
    return json.loads(at.get("component_instance")[0].proto.json_args)


def test_chart_polls_only_when_asked_and_echoes_its_tick():
    at = AppTest.from_function(_chart_app).run()
    args = _args(at)
    assert args["poll_ms"] == 0 and args["tick"] == 0 and args["revision"] == "r1"
    assert args["figures"][0]["data"][0]["y"] == [1.0, 0.5]
    at.session_state["poll"] = 2.5
    at.session_state["curves"] = 7  # the value the browser sends with each request for an update
    at.run()
    assert _args(at)["poll_ms"] == 2500 and _args(at)["tick"] == 7  # the next request will differ
