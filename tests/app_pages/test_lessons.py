"""The Lessons page, and lesson mode as the app and the Build page use it."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from bigmodel_core.config.lessons import list_lessons, load_lesson
from bigmodel_core.config.presets import load_preset

ROOT = Path(__file__).resolve().parents[2]

# What app.py does with a lesson URL, plus what the Build and Train pages draw.
LESSON_SCRIPT = """
import streamlit as st
from ui import state
from ui.lesson import advanced_hidden, apply_lesson_query, render_lesson_banner

if "lesson" in st.query_params and not st.session_state.get("_applied"):
    st.session_state["_applied"] = True
    st.session_state["target"] = apply_lesson_query()
state.show_notice()
render_lesson_banner()
st.session_state["hidden"] = advanced_hidden()
"""


def lesson_app(name: str | None) -> AppTest:
    at = AppTest.from_string(LESSON_SCRIPT, default_timeout=60)
    if name is not None:
        at.query_params["lesson"] = name
    return at.run()


def test_lessons_page_lists_every_lesson_with_its_link():
    at = AppTest.from_file(str(ROOT / "app_pages/lessons.py"), default_timeout=60).run()
    assert not at.exception
    headers = [h.value for h in at.subheader]
    lessons = list_lessons()
    assert headers == [f"{lesson.order}. {lesson.title}" for lesson in lessons]
    links = [c.value for c in at.code]
    for lesson in lessons:
        assert f"/{lesson.page}?lesson={lesson.name}" in "\n".join(links)
    starts = " ".join(m.value for m in at.markdown)
    assert "[Start on the Build page](/build?lesson=first_cnn)" in starts


def test_lesson_url_loads_the_preset_shows_the_steps_and_hides_advanced_controls():
    at = lesson_app("first_cnn")
    assert not at.exception
    lesson = load_lesson("first_cnn")
    assert at.session_state["target"] == "build"
    assert at.session_state["config"] == load_preset("lesson_first_cnn")
    text = " ".join(m.value for m in at.markdown)
    assert lesson.title in text and lesson.steps[0] in text
    assert at.session_state["hidden"] is True
    assert any("Lesson started" in i.value for i in at.info)


def test_show_advanced_controls_and_reset_and_leave():
    at = lesson_app("adam_vs_sgd")
    at.toggle(key="_lesson_show_all_widget").set_value(True).run()
    assert at.session_state["hidden"] is False
    # the learner changes the experiment, then resets the lesson
    at.session_state["config"] = load_preset("quickstart_cnn")
    at.button(key="lesson_reset").click().run()
    assert at.session_state["config"] == load_preset("lesson_adam_vs_sgd")
    assert at.session_state["hidden"] is True
    assert any("Lesson reset" in i.value for i in at.info)
    at.button(key="lesson_leave").click().run()
    assert at.session_state["hidden"] is False
    assert not [m for m in at.markdown if "Lesson:" in m.value]
    assert at.session_state["config"] == load_preset("lesson_adam_vs_sgd")  # leaving keeps the experiment


def test_unknown_lesson_warns_with_the_valid_names_and_changes_nothing():
    at = lesson_app("nope")
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "unknown lesson 'nope'" in warning and "first_cnn" in warning and "rnn_vs_lstm" in warning
    assert at.session_state["target"] is None
    assert "config" not in at.session_state or at.session_state["config"] == load_preset("quickstart_cnn")
    assert at.session_state["hidden"] is False


def test_no_lesson_no_banner():
    at = lesson_app(None)
    assert not at.exception and not at.button and at.session_state["hidden"] is False


def test_build_page_in_lesson_mode_shows_the_banner_and_fewer_controls():
    def build(lesson: str | None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app_pages/build.py"), default_timeout=60)
        at.session_state["config"] = load_preset("lesson_first_cnn")
        if lesson:
            at.session_state["lesson_active"] = lesson
        return at.run()

    plain, in_lesson = build(None), build("first_cnn")
    assert not plain.exception and not in_lesson.exception
    assert any("Your first CNN" in m.value for m in in_lesson.markdown)
    assert in_lesson.button(key="lesson_reset")
    assert len(in_lesson.number_input) < len(plain.number_input)  # e.g. no dropout fields
