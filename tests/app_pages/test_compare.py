"""The Compare page under AppTest: plan, run through the shared pool, stop, tables, screenshot layout."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from bigmodel_core.config.specs import parse_config
from bigmodel_core.experiments import compare as cmp

ROOT = Path(__file__).resolve().parents[2]


def tiny(**changes):
    c = parse_config({"data": {"name": "synthetic_digits", "train_size": 128, "val_size": 32},
                      "model": {"family": "cnn", "conv": [{"channels": 4}], "dense": [{"units": 8}]},
                      "training": {"epochs": 1, "batch_size": 32, "device": "cpu"}})
    return c.with_changes(changes) if changes else c


def compare_app(cfg=None, comparison=None, query=None) -> tuple[AppTest, str]:
    at = AppTest.from_file(str(ROOT / "app_pages/compare.py"), default_timeout=60)
    owner = secrets.token_hex(6)
    at.session_state["owner"] = owner
    at.session_state["config"] = cfg or tiny()
    if comparison is not None:
        at.session_state["compare_current"] = comparison
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run(), owner


def run_to_end(at: AppTest, timeout: float = 120.0) -> cmp.Comparison:
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        comp = at.session_state["compare_current"]
        if not comp.active:
            at.run()
            return comp
        time.sleep(0.3)
    raise AssertionError("the comparison did not finish")


def finished_comparison() -> cmp.Comparison:
    comp = cmp.plan_optimizers(tiny(**{"training.epochs": 3}), [("sgd", 0.05), ("momentum", 0.01), ("adam", 0.001)])
    for i, r in enumerate(comp.runs):
        r.status = "completed"
        r.epochs = [{"epoch": e, "train_loss": 2.0 - 0.3 * e - 0.1 * i, "val_loss": 2.1 - 0.25 * e,
                     "train_metric": 0.2 + 0.2 * e, "val_metric": 0.15 + 0.18 * e + 0.01 * i, "lr": 0.01,
                     "seconds": 1.0} for e in (1, 2, 3)]
    return cmp.Comparison.from_json(comp.to_json())


def test_default_plan_lists_exactly_what_differs():
    at, _ = compare_app()
    assert not at.exception
    plan = at.dataframe[0].value
    assert list(plan.columns) == ["run", "optimizer.name", "optimizer.lr"]
    assert list(plan["run"]) == ["sgd lr=0.05", "momentum lr=0.01", "adam lr=1e-3"]
    assert not at.button(key="compare_start").disabled
    assert at.button(key="compare_stop").disabled


def test_optimizer_comparison_runs_in_the_pool_and_isolates_a_diverged_run():
    at, owner = compare_app()
    at.multiselect(key="compare_optimizers").set_value(["adam", "sgd"]).run()
    at.number_input(key="compare_lr_adam").set_value(100.0).run()
    at.button(key="compare_start").click().run()
    comp = run_to_end(at)
    assert not at.exception
    assert [r.status for r in comp.runs] == ["diverged", "completed"]
    assert any("adam lr=100 diverged" in e.value for e in at.error)
    summary = next(df.value for df in at.dataframe if "best val acc (%)" in df.value.columns)
    assert list(summary["run"]) == ["adam lr=100", "sgd lr=0.05"]
    assert list(summary["status"]) == ["diverged", "completed"]
    fairness = next(df.value for df in at.dataframe if "init digest" in df.value.columns)
    assert fairness["init digest"].nunique() == 1 and list(fairness["initial weights"]) == ["shared", "shared"]
    from ui.state import get_store

    stored = get_store().list(owner)
    # the diverged run ended inside its first epoch: it has no curve to store
    assert [(s.summary["label"], s.summary["kind"]) for s in stored] == [("sgd lr=0.05", "compare")]
    labels = [b.label for b in at.get("download_button")]
    assert {"Table (.csv)", "Curves (.csv)", "Comparison (.json)"} <= set(labels)


def test_a_bad_sweep_value_names_the_field_and_the_value():
    at, _ = compare_app()
    at.radio(key="compare_kind").set_value("one setting").run()
    at.selectbox(key="compare_field").set_value("optimizer.lr").run()
    at.text_input(key="compare_values").set_value("0.1, fast").run()
    assert any("optimizer.lr" in e.value and "'fast'" in e.value for e in at.error)
    assert at.button(key="compare_start").disabled


def test_stop_all_stops_queued_and_running_runs():
    at, _ = compare_app(tiny(**{"training.epochs": 40, "data.train_size": 512}))
    at.button(key="compare_start").click().run()
    comp = at.session_state["compare_current"]
    assert {r.status for r in comp.runs} <= {"queued", "running"}
    at.run()
    assert not at.button(key="compare_stop").disabled
    at.button(key="compare_stop").click().run()
    comp = run_to_end(at, timeout=30)
    assert [r.status for r in comp.runs] == ["stopped"] * 3


def test_overfitting_lesson_is_one_click():
    at, _ = compare_app()
    at.button(key="compare_lesson").click().run()
    comp = at.session_state["compare_current"]
    assert comp.title.startswith("overfitting") and comp.names == ["none", "L2 5e-3", "dropout 0.5", "augmentation"]
    assert all(r.config.data.train_size == 100 for r in comp.runs)
    assert all(r.status in ("queued", "running") for r in comp.runs)
    at.button(key="compare_stop").click().run()
    comp = run_to_end(at, timeout=60)
    assert {r.status for r in comp.runs} == {"stopped"}


def test_screenshot_layout_has_no_controls_and_fits_the_comparison():
    at, _ = compare_app(comparison=finished_comparison(), query={"view": "shot"})
    assert not at.exception
    assert [b.label for b in at.button] == ["Leave the screenshot layout"]
    assert not at.multiselect and not at.radio and not at.number_input
    assert not at.dataframe and len(at.table) == 1
    table = at.table[0].value
    assert list(table.index) == ["sgd lr=0.05", "momentum lr=0.01", "adam lr=1e-3"]
    assert list(table["best val acc (%)"]) == ["69", "70", "71"]
    assert any("Base:" in c.value and "varies:** optimizer.name, optimizer.lr" in c.value for c in at.caption)
    charts = at.get("plotly_chart")
    assert len(charts) == 1


def test_screenshot_toggle_and_back():
    at, _ = compare_app(comparison=finished_comparison())
    at.button(key="compare_to_shot").click().run()
    assert [b.label for b in at.button] == ["Leave the screenshot layout"]
    at.button(key="compare_leave_shot").click().run()
    assert at.button(key="compare_start")


def test_a_reopened_comparison_shows_its_table_and_exports():
    at, _ = compare_app(comparison=finished_comparison())
    assert not at.exception
    summary = next(df.value for df in at.dataframe if "best val acc (%)" in df.value.columns)
    assert list(summary["run"]) == ["sgd lr=0.05", "momentum lr=0.01", "adam lr=1e-3"]
    assert list(summary["best epoch"]) == [3, 3, 3]
    assert list(summary["best val acc (%)"]) == [69.0, 70.0, 71.0]
    assert any(b.label == "Comparison (.json)" for b in at.get("download_button"))


def test_each_run_keeps_its_colour_in_every_chart():
    import json

    at, _ = compare_app(comparison=finished_comparison())
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    for el in at.get("component_instance"):  # the live curves
        charts += json.loads(el.proto.json_args).get("figures", [])
    assert len(charts) >= 2
    seen: dict[str, set[str]] = {}
    for spec in charts:
        for trace in spec["data"]:
            group = trace.get("legendgroup") or ""
            if group.startswith("run:"):
                seen.setdefault(group[4:], set()).add(trace["line"]["color"])
        bars = [t for t in spec["data"] if t["type"] == "bar"]
        for bar in bars:
            for name, colour in zip(bar["x"], bar["marker"]["color"]):
                seen.setdefault(name, set()).add(colour)
    assert set(seen) == {"sgd lr=0.05", "momentum lr=0.01", "adam lr=1e-3"}
    assert all(len(colours) == 1 for colours in seen.values())
    assert len({next(iter(c)) for c in seen.values()}) == 3


def lesson_app(name: str) -> AppTest:
    from bigmodel_core.config.lessons import load_lesson

    lesson = load_lesson(name)
    at = AppTest.from_file(str(ROOT / "app_pages/compare.py"), default_timeout=60)
    at.session_state["owner"] = secrets.token_hex(6)
    at.session_state["config"] = lesson.config().with_changes({"training.device": "cpu"})
    at.session_state["lesson_active"] = name
    if lesson.compare:
        at.session_state["compare_kind"] = lesson.compare
    return at.run()


def test_the_rnn_lesson_compares_model_families_without_typing_a_path():
    at = lesson_app("rnn_vs_lstm")
    assert not at.exception
    assert at.radio(key="compare_kind").value == "model family"
    plan = at.dataframe[0].value
    assert list(plan["run"]) == ["plain RNN", "LSTM"] and list(plan["model.family"]) == ["rnn", "lstm"]
    assert not at.text_input  # no dotted path to type
    assert not [b for b in at.button if b.key == "compare_lesson"]  # the overfitting button is not this lesson's


def test_the_overfitting_button_belongs_to_its_lesson_and_to_the_free_playground():
    assert [b for b in lesson_app("overfitting_dropout").button if b.key == "compare_lesson"]
    assert not [b for b in lesson_app("adam_vs_sgd").button if b.key == "compare_lesson"]
    at, _ = compare_app()
    assert at.button(key="compare_lesson")


def test_show_advanced_controls_shows_more_on_compare():
    at = lesson_app("adam_vs_sgd")
    assert at.radio(key="compare_kind").options == ["optimizer", "regularizer"]
    assert not [b for b in at.button if b.key == "compare_to_shot"]
    at.toggle(key="_lesson_show_all_widget").set_value(True).run()
    assert "one setting" in at.radio(key="compare_kind").options
    assert at.button(key="compare_to_shot")


def test_the_curves_carry_what_was_compared_for_an_exported_png():
    import json

    at, _ = compare_app(comparison=finished_comparison())
    fig = next(f for el in at.get("component_instance")
               for f in json.loads(el.proto.json_args).get("figures", []))
    title = fig["layout"]["title"]["text"]
    assert title.startswith("Optimizer: 3 runs") and "optimizer.name, optimizer.lr" in title
    assert "synthetic_digits" in title and "seed 0" in title
