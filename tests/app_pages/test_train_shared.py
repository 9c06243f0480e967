"""The Train page says so when a learner's training joined an identical one already running."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from tests.app_pages.test_train import ROOT, tiny


def learner() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages/train.py"), default_timeout=60)
    # long enough to still run when the second learner presses Train; a seed no other test uses
    at.session_state["config"] = tiny().with_changes({"training.epochs": 40, "data.train_size": 1024,
                                                      "seed": 4242})
    return at.run()


def texts(at: AppTest) -> str:
    return " ".join(t.value for t in at.text)


def test_a_second_learner_on_the_same_experiment_is_told_it_joined():
    first, second = learner(), learner()
    first.button(key="train_start").click().run()
    assert not first.exception
    second.button(key="train_start").click().run()
    deadline = time.time() + 60
    while "joined an identical training" not in texts(second) and time.time() < deadline:
        time.sleep(0.3)
        second.run()
    assert not second.exception
    assert "joined an identical training that was already running" in texts(second)
    assert "1 other learner(s) follow it now" in texts(second)
    first.run()
    assert "Other learners pressed Train on exactly this experiment" in texts(first)
    # the second one leaves with Stop; the first trains on, and the page says it is no longer shared
    second.button(key="train_stop").click().run()
    assert any("left the shared training" in w.value for w in second.warning)
    first.run()
    assert "follow it now" not in texts(first) and not first.button(key="train_stop").disabled
    first.button(key="train_stop").click().run()
    assert not first.exception
