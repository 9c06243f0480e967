"""The widgets' bounds come from the server's limits, so an operator who raises one reaches the pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bigmodel_core.config.presets import load_preset

ROOT = Path(__file__).resolve().parents[2]


def page(name: str, monkeypatch, **env) -> AppTest:
    config = load_preset("quickstart_cnn")  # made before the limits change, as a learner's experiment is
    for key, value in env.items():
        monkeypatch.setenv(f"BIGMODEL_{key.upper()}", str(value))
    at = AppTest.from_file(str(ROOT / f"app_pages/{name}.py"), default_timeout=60)
    at.session_state["config"] = config
    return at.run()


def number(at: AppTest, label: str):
    found = [w for w in at.number_input if w.label == label]
    assert found, f"no number input labelled {label!r}"
    return found[0]


@pytest.mark.parametrize("raised", [False, True])
def test_train_page_bounds_follow_the_limits(monkeypatch, raised):
    env = dict(max_epochs=250, max_batch_size=8192, max_train_size=70_000, max_val_size=30_000) if raised else {}
    at = page("train", monkeypatch, **env)
    assert not at.exception
    assert number(at, "epochs").max == (250 if raised else 100)
    assert number(at, "batch size").max == (8192 if raised else 4096)
    # synthetic digits have no fixed size: the limits bound the split
    assert number(at, "train samples").max == (70_000 if raised else 60_000)
    assert number(at, "validation samples").max == (30_000 if raised else 20_000)


def test_a_lowered_limit_caps_the_widget_and_its_value(monkeypatch):
    # the learner's experiment asks for 5 epochs; the operator lowered the limit to 3 since
    at = page("train", monkeypatch, max_epochs=3)
    assert not at.exception
    epochs = number(at, "epochs")
    assert epochs.max == 3 and epochs.value <= 3


def test_compare_and_finetune_epochs_follow_the_limit(monkeypatch):
    at = page("compare", monkeypatch, max_epochs=250)
    assert not at.exception
    assert number(at, "epochs for every run").max == 250
    at = page("finetune", monkeypatch, max_epochs=250)
    assert not at.exception
    assert number(at, "epochs").max == 250
