"""The Fine-tune page under AppTest: card check, what trains, a head-vs-scratch experiment, inspection."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def page() -> tuple[AppTest, str]:
    at = AppTest.from_file(str(ROOT / "app_pages/finetune.py"), default_timeout=90)
    owner = secrets.token_hex(6)
    at.session_state["owner"] = owner
    return at.run(), owner


def table_with(at: AppTest, column: str):
    return next(df.value for df in at.dataframe if column in df.value.columns)


def test_default_view_verifies_the_card_and_shows_what_trains():
    at, _ = page()
    assert not at.exception
    assert any("sha256 matches the card" in s.value for s in at.success)
    assert any("Suggested target" in i.value for i in at.info)
    layers = table_with(at, "BatchNorm")
    assert list(layers["trains"]) == ["frozen", "frozen", "frozen", "yes"]  # head only: a linear probe
    assert layers["BatchNorm"].iloc[0] == "eval: running stats frozen"
    assert any("running mean and variance keep the pretrained" in c.value for c in at.caption)


def test_full_strategy_shows_the_lower_backbone_learning_rate():
    at, _ = page()
    at.radio(key="ft_strategy").set_value("full").run()
    layers = table_with(at, "learning rate")
    assert list(layers["trains"]) == ["yes"] * 4
    assert list(layers["learning rate"]) == ["0.0003", "0.0003", "0.0003", "0.003"]
    assert layers["BatchNorm"].iloc[0].startswith("train")
    at.radio(key="ft_strategy").set_value("last").run()
    at.number_input(key="ft_last_n").set_value(2).run()
    layers = table_with(at, "learning rate")
    assert list(layers["trains"]) == ["frozen", "yes", "yes", "yes"]


def test_head_and_scratch_experiment_runs_in_the_pool_and_plots_both():
    at, owner = page()
    at.number_input(key="ft_epochs").set_value(1).run()
    at.multiselect(key="ft_exp_strats_1").set_value(["head", "scratch"]).run()
    at.multiselect(key="ft_exp_b_classification").set_value([2]).run()
    assert "(2 runs)" in at.button(key="ft_many").label
    at.button(key="ft_many").click().run()
    runs = at.session_state["ft_runs"]
    assert [r["strategy"] for r in runs] == ["head", "scratch"] and {r["budget"] for r in runs} == {"2"}
    from ui.state import get_pool

    pool = get_pool()
    deadline = time.time() + 120
    while time.time() < deadline:
        jobs = [pool.get(owner, r["job_id"]) for r in runs]
        if all(j.status in ("completed", "failed", "stopped", "diverged") for j in jobs):
            break
        time.sleep(0.5)
    assert [j.status for j in jobs] == ["completed", "completed"]
    assert all(j.kind == "finetune" and j.config.training.epochs == 1 for j in jobs)
    at.run()
    assert not at.exception
    results = table_with(at, "val accuracy")
    assert list(results["strategy"]) == ["head only (linear probe)", "from scratch"]
    assert list(results["trainable params"]) == [650, 105_962]
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    budget = next(s for s in charts if "against the label budget" in s)
    assert "head only (linear probe)" in budget and "from scratch" in budget
    # inspection of the last finished run: the head-only run's maps would be unchanged
    at.selectbox(key="ft_inspect").set_value(0).run()
    assert any("bit-identical before and after" in c.value for c in at.caption)
    assert at.get("download_button")


def test_sequence_card_offers_sequence_budgets():
    at, _ = page()
    at.selectbox(key="ft_source").set_value("adding_lstm").run()
    assert not at.exception
    assert at.select_slider(key="ft_budget_regression").value == 10
    layers = table_with(at, "BatchNorm")
    assert list(layers["block"])[0] == "lstm layer 1"
