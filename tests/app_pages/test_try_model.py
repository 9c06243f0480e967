"""The "Try your model" section under AppTest, on the Runs page's details of a stored run with weights:
a drawing sent by the canvas, a validation example and a validation sequence get the model's answer, a bad
drawing a message, and a run without weights says so."""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from bigmodel_core.config.specs import parse_config
from bigmodel_core.inspect.try_input import encode_drawing
from bigmodel_core.nn.models import build_model
from bigmodel_core.training.store import default_store
from bigmodel_core.training.trainer import load_data

ROOT = Path(__file__).resolve().parents[2]


def cnn_cfg():
    return parse_config({"data": {"name": "synthetic_digits", "train_size": 64, "val_size": 32},
                         "model": {"family": "cnn", "conv": [{"channels": 4}, {"channels": 6}],
                                   "dense": [{"units": 8}]},
                         "training": {"epochs": 1, "batch_size": 32, "device": "cpu"}})


def lstm_cfg():
    return parse_config({"data": {"name": "adding_problem", "train_size": 64, "val_size": 16, "seq_len": 6},
                         "model": {"family": "lstm", "hidden": 8},
                         "training": {"epochs": 1, "batch_size": 32, "device": "cpu"}})


def save(owner: str, config, with_weights: bool = True) -> str:
    model = build_model(config.model, load_data(config).info, seed=0)
    rows = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "train_metric": 0.5, "val_metric": 0.4, "lr": 0.001,
             "seconds": 0.5}]
    summary = {"status": "completed", "message": "", "epochs_run": 1, "best_epoch": 1,
               "final": {"train_loss": 1.0, "val_loss": 1.1}, "params": 100, "device": "CPU", "wall_seconds": 1.0,
               "samples_per_sec": 256.0, "task": "classification"}
    state = {k: v.clone() for k, v in model.state_dict().items()} if with_weights else None
    return default_store().save(config, rows, summary, state, owner=owner, kind="train", label="try me")


def runs_app(owner: str, **state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages/runs.py"), default_timeout=90)
    at.session_state["owner"] = owner
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def captions(at) -> str:
    """Every caption's text as shown (Markdown escapes removed)."""
    return " | ".join(c.value.replace("\\", "") for c in at.caption)


def test_a_drawing_from_the_canvas_gets_the_models_answer():
    me = secrets.token_hex(6)
    save(me, cnn_cfg())
    at = runs_app(me)
    assert not at.exception
    assert any(h.value == "Try your model" for h in at.header)
    assert "Draw a digit on the black pad" in captions(at)
    grid = np.zeros((112, 112))
    grid[20:90, 50:62] = 1.0
    at = runs_app(me, try_canvas=encode_drawing(grid))
    assert not at.exception, at.exception
    text = captions(at)
    assert "What the model receives: canvas 112 x 112 → 28 x 28" in text and "computed in" in text
    assert any(s.value.startswith("Why ") for s in at.subheader)


def test_a_bad_drawing_says_what_is_wrong():
    me = secrets.token_hex(6)
    save(me, cnn_cfg())
    at = runs_app(me, try_canvas={"side": 112, "pixels": "@@@", "strokes": 1})
    assert not at.exception
    assert "The drawing could not be read: the drawing's pixels are not valid base64." in captions(at)
    assert "computed in" not in captions(at)


def test_a_validation_example_says_whether_the_answer_is_right():
    me = secrets.token_hex(6)
    save(me, cnn_cfg())
    at = runs_app(me)
    at.radio(key="try_mode").set_value("Validation example").run()
    assert not at.exception
    text = captions(at)
    assert "validation example #0, as stored" in text and "True class:" in text


def test_a_validation_sequence_of_a_sequence_model_gets_the_models_answer():
    me = secrets.token_hex(6)
    save(me, lstm_cfg())
    at = runs_app(me)
    assert not at.exception
    assert "validation sequence #0, as stored" in captions(at)
    assert any(s.value == "Why this prediction?" for s in at.subheader)


def test_a_run_without_weights_says_so():
    me = secrets.token_hex(6)
    save(me, cnn_cfg(), with_weights=False)
    at = runs_app(me)
    assert not at.exception
    assert any("Cannot load this model to try it" in w.value and "no saved weights" in w.value for w in at.warning)
