"""Compare's "student alone vs distilled" and "model size" kinds under AppTest, and the two lessons that
open on them from their URLs."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from bigmodel_core.config.lessons import load_lesson
from bigmodel_core.config.presets import load_preset
from tests.app_pages.test_compare import compare_app, run_to_end, tiny
from tests.app_pages.test_lessons import lesson_app as url_app


def test_student_alone_vs_distilled_runs_both_arms_fairly_and_names_the_teacher():
    at, _ = compare_app(tiny(**{"model.dense": []}))
    at.radio(key="compare_kind").set_value("student alone vs distilled").run()
    assert not at.exception and not at.error
    plan = at.dataframe[0].value
    assert list(plan["run"]) == ["student alone", "distilled from digits_cnn"]
    assert list(plan["learns from"]) == ["labels only", "digits_cnn (shipped), T=4, alpha=0.7"]
    at.button(key="compare_start").click().run()
    comp = run_to_end(at)
    assert not at.exception and comp.kind == "distill"
    assert [r.status for r in comp.runs] == ["completed", "completed"]
    fairness = next(df.value for df in at.dataframe if "init digest" in df.value.columns)
    assert fairness["init digest"].nunique() == 1 and fairness["batch order digest"].nunique() == 1
    assert list(fairness["learns from"]) == ["labels only", "digits_cnn (shipped), T=4, alpha=0.7"]
    fig = next(f for el in at.get("component_instance") for f in json.loads(el.proto.json_args).get("figures", []))
    assert "learns from (teacher)" in fig["layout"]["title"]["text"]


def test_a_teacher_of_other_classes_is_refused_naming_what_differs():
    at, _ = compare_app(tiny(**{"model.dense": []}))
    at.radio(key="compare_kind").set_value("student alone vs distilled").run()
    at.selectbox(key="compare_teacher").set_value("shipped:letters_cnn").run()
    assert any("the number of classes differs (26 against 10)" in e.value for e in at.error)
    assert at.button(key="compare_start").disabled


def test_model_size_sweeps_widths_and_draws_log_log_fits_with_the_points():
    at, _ = compare_app()
    at.radio(key="compare_kind").set_value("model size").run()
    at.multiselect(key="compare_widths").set_value([0.5, 1.0, 2.0]).run()
    assert list(at.dataframe[0].value["run"]) == ["width x0.5", "width x1", "width x2"]
    at.button(key="compare_start").click().run()
    comp = run_to_end(at)
    assert not at.exception and comp.kind == "scale" and all(r.status == "completed" for r in comp.runs)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "compare_scaling" in c.proto.id]
    assert len(specs) == 2
    for spec in specs:
        layout = spec["layout"]
        assert layout["xaxis"]["type"] == "log" and layout["yaxis"]["type"] == "log"
        fit = next(t for t in spec["data"] if t["name"].startswith("fit: loss ≈"))
        assert "(3 points" in fit["name"]
    exps = [c.value for c in at.caption if c.value.startswith("Exponent b = ")]
    assert len(exps) == 2 and all("fitted on 3 points" in e for e in exps)
    assert any("rough slope" in c.value for c in at.caption)
    table = next(d for d in at.dataframe if "training FLOPs (est.)" in d.value.columns)
    shown = json.loads(table.proto.columns)  # big counts with thousands separators, as the page's other figures
    assert all(shown[c]["type_config"]["format"] == "localized"
               for c in ("parameters", "forward FLOPs / sample", "training FLOPs (est.)")), shown
    points = next(df.value for df in at.dataframe if "training FLOPs (est.)" in df.value.columns)
    assert list(points["run"]) == ["width x0.5", "width x1", "width x2"]


def test_bad_sizes_name_the_problem():
    at, _ = compare_app()
    at.radio(key="compare_kind").set_value("model size").run()
    at.multiselect(key="compare_depths").set_value([1, 2]).run()
    at.multiselect(key="compare_widths").set_value([0.125, 0.25, 0.5, 1.0, 2.0]).run()
    assert any("10 runs, more than the 8" in e.value for e in at.error)
    assert at.button(key="compare_start").disabled


@pytest.mark.parametrize("name,kind,runs", [
    ("distill_small_student", "student alone vs distilled", ["student alone", "distilled from digits_cnn"]),
    ("scaling_size_compute", "model size", ["width x0.25", "width x0.5", "width x1", "width x2"]),
])
def test_the_lessons_open_from_their_urls_on_their_comparison(name, kind, runs):
    lesson = load_lesson(name)
    at = url_app(name)  # what app.py does with ?lesson=NAME
    assert not at.exception
    assert at.session_state["target"] == "compare" and at.session_state["config"] == load_preset(lesson.preset)
    assert at.session_state["compare_kind"] == kind
    assert any(lesson.title in m.value for m in at.markdown)
    page = AppTest.from_file(str(__import__("pathlib").Path(__file__).resolve().parents[2] / "app_pages/compare.py"),
                             default_timeout=60)
    page.session_state["owner"] = "lesson-" + name
    page.session_state["config"] = lesson.config().with_changes({"training.device": "cpu"})
    page.session_state["lesson_active"] = name
    page.session_state["compare_kind"] = kind
    page.run()
    assert not page.exception and not page.error
    assert page.radio(key="compare_kind").value == kind
    assert page.radio(key="compare_kind").options == ["optimizer", "regularizer", kind]  # advanced stays hidden
    assert list(page.dataframe[0].value["run"]) == runs
