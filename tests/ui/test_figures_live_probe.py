"""The live view's figures of a live-probe frame: valid Plotly, JSON-safe, measured values only, small."""

from __future__ import annotations

import json
import math

import numpy as np
import plotly.graph_objects as go

from bigmodel_core.inspect.live_probe import LiveFrame
from ui.figures.live_probe import gradients_figure, inside_figure


def cnn_frame(step=40) -> LiveFrame:
    rng = np.random.default_rng(0)
    maps = rng.random((4, 28, 28)).astype(np.float16)
    maps[1, 0, 0] = np.nan  # a diverged run's map: a gap, never NaN in the JSON
    return LiveFrame(step=step, epoch=1, when="after epoch 1", family="cnn", index=0, truth="7", guess="7 (93%)",
                     image=rng.random((28, 28)).astype(np.float16), maps=maps, maps_name="block 1 after relu",
                     maps_total=16, grad_layers=("1. conv 3x3, 16", "4. dense 64"), grad_norms=(0.25, math.nan))


def lstm_frame() -> LiveFrame:
    rng = np.random.default_rng(1)
    return LiveFrame(step=0, epoch=0, when="before training", family="lstm", index=2, truth="0.53", guess="0.1",
                     hidden=rng.uniform(-1, 1, (30, 16)).astype(np.float16), time_steps=np.arange(30),
                     units_total=64,
                     gates={g: rng.random(30).astype(np.float16) for g in ("input", "forget", "output")})


def check(fig: dict) -> dict:
    body = {k: v for k, v in fig.items() if k in ("data", "layout")}
    go.Figure(body)  # raises on any property plotly does not know
    text = json.dumps(fig, allow_nan=False)  # the browser parses JSON: no NaN or infinity
    assert len(text) < 40_000, len(text)  # sent every few seconds with the curves
    return fig


def test_cnn_frame_draws_the_input_and_the_maps_with_their_values():
    frame = cnn_frame()
    fig = check(inside_figure(frame))
    heat = fig["data"]
    assert len(heat) == 5 and all(t["type"] == "heatmap" for t in heat)
    assert heat[0]["z"][3][5] == round(float(frame.image[3, 5]), 3)
    assert heat[2]["z"][0][0] is None and heat[2]["z"][1][1] == round(float(frame.maps[1, 1, 1]), 3)
    assert "4 of 16" in fig["layout"]["title"]["text"]
    assert "input #0 is 7, predicted 7 (93%)" in fig["layout"]["title"]["subtitle"]["text"]
    for i in range(1, 6):  # square pixels: each y axis is scaled to its x axis
        assert fig["layout"][f"yaxis{i}"]["scaleanchor"] == f"x{i}"
    assert fig["rev"] == "40-after epoch 1"
    assert inside_figure(cnn_frame(step=80))["rev"] != fig["rev"]  # a new frame is redrawn, the same one is not


def test_rnn_frame_draws_states_and_gate_means_over_time():
    frame = lstm_frame()
    fig = check(inside_figure(frame))
    heat, *lines = fig["data"]
    assert heat["type"] == "heatmap" and len(heat["z"]) == 16 and len(heat["z"][0]) == 30  # units x steps
    assert [t["name"].split()[0] for t in lines] == ["input", "forget", "output"]
    assert lines[1]["y"][4] == round(float(frame.gates["forget"][4]), 3)
    assert fig["layout"]["title"]["text"] == "Hidden state and gates, layer 1"
    assert fig["layout"]["yaxis"]["title"]["text"] == "unit (1-16 of 64)"


def test_gradient_bars_leave_a_layer_without_gradient_empty():
    fig = check(gradients_figure(cnn_frame()))
    bars = fig["data"][0]
    assert bars["y"] == ["1. conv 3x3, 16", "4. dense 64"] and bars["x"] == [0.25, None]
    assert bars["text"][1] == "no gradient"
    assert fig["layout"]["xaxis"]["type"] == "log"


def test_before_the_first_frame_the_figures_are_empty_axes_with_a_note():
    empty = (inside_figure(None), inside_figure(None, "lstm"), gradients_figure(None), gradients_figure(lstm_frame()))
    for fig in empty:
        check(fig)
        assert fig["data"] == [] and fig["layout"]["annotations"][0]["text"]


def test_images_keep_their_aspect_and_strategies_keep_their_colour():
    from ui.figures.compare import Series, curves_figure
    from ui.figures.finetune import before_after_figure, strategy_color
    from ui.figures.training import image_gallery

    gallery = image_gallery(np.zeros((10, 8, 8)), [str(i) for i in range(10)])
    maps = before_after_figure("block 1", "maps", np.zeros((4, 8, 8)), np.ones((4, 8, 8)))
    for fig in (gallery, maps):
        axes = [k for k in fig.layout if k.startswith("yaxis")]
        assert axes and all(fig.layout[k].scaleanchor == fig.layout[k].anchor for k in axes)  # square pixels
    epochs = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "train_metric": 0.5, "val_metric": 0.4}]
    fig = curves_figure([Series("scratch", epochs), Series("head", epochs)], "classification",
                        colors=[strategy_color("scratch"), strategy_color("head")])
    by_run = {t.legendgroup: t.line.color for t in fig.data if t.legendgroup.startswith("run:")}
    assert by_run == {"run:scratch": strategy_color("scratch"), "run:head": strategy_color("head")}
