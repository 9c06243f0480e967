"""Lesson mode: a lesson URL (``?lesson=NAME``) loads its preset and shows its steps.

The active lesson lives in session state, so it follows the learner from page to page.
``apply_lesson_query`` is called once per distinct URL query by app.py;
``render_lesson_banner`` and ``advanced_hidden`` are called by the Build and Train pages
(each page calls them directly). Nothing here is shared between sessions.
"""

from __future__ import annotations

import streamlit as st

from bigmodel_core.config.lessons import Lesson, LessonError, load_lesson
from bigmodel_core.config.specs import ConfigError
from ui import state, widgets
from ui.literal import md, sentence

ACTIVE = "lesson_active"  # name of the active lesson (plain session value: survives page switches)
SHOW_ALL = "lesson_show_all"  # the learner asked to see advanced controls anyway


def start_lesson(lesson: Lesson) -> None:
    """Make ``lesson`` the active one and its preset the current experiment."""
    state.set_config(lesson.config())
    widgets.bump()  # widgets start again from the loaded values
    st.session_state[ACTIVE] = lesson.name
    st.session_state[SHOW_ALL] = False
    if lesson.compare is not None:
        st.session_state["compare_kind"] = lesson.compare  # the Compare page's "What varies" choice


def apply_lesson_query() -> str | None:
    """Start the lesson named by ``?lesson=NAME``; return the url path of its page ("" is home).

    Returns None when the URL names no lesson; an unknown name shows a warning listing
    the valid ones and changes nothing.
    """
    name = st.query_params.get("lesson")
    if not name:
        return None
    try:
        lesson = load_lesson(name)
        start_lesson(lesson)
    except (LessonError, ConfigError) as exc:
        st.warning(f"This link's lesson could not be opened: {md(sentence(exc, capital=False))}",
                   icon=":material/school:")
        return None
    state.notify(f"Lesson started: {lesson.title}.", "info")
    return lesson.page


def active_lesson() -> Lesson | None:
    name = st.session_state.get(ACTIVE)
    if not name:
        return None
    try:
        return load_lesson(name)
    except LessonError:  # the lesson file went away since the session started
        st.session_state.pop(ACTIVE, None)
        return None


def end_lesson() -> None:
    st.session_state.pop(ACTIVE, None)
    st.session_state.pop(SHOW_ALL, None)


def advanced_hidden() -> bool:
    """True while a lesson that hides advanced controls is active (unless the learner shows them)."""
    lesson = active_lesson()
    return bool(lesson and lesson.hide_advanced and not st.session_state.get(SHOW_ALL, False))


def _reset(name: str) -> None:
    lesson = load_lesson(name)
    start_lesson(lesson)
    state.notify(f"Lesson reset: the experiment is back to the start of '{lesson.title}'.", "info")


def _toggle_show_all() -> None:
    # widget values are forgotten on pages that do not draw the widget; keep the choice in a plain key
    st.session_state[SHOW_ALL] = st.session_state["_lesson_show_all_widget"]


def render_lesson_banner(compact: bool = False) -> None:
    """Title, steps and Reset / Leave buttons of the active lesson; nothing without one.

    ``compact`` folds the steps away (the Train page with a job, whose live view must stay in sight)."""
    lesson = active_lesson()
    if lesson is None:
        return
    with st.container(border=True, key="lesson_banner"):
        cols = st.columns([5, 1.2, 1.2])
        cols[0].markdown(f":material/school: **Lesson: {lesson.title}**  \n{lesson.summary}")
        cols[1].button("Reset lesson", key="lesson_reset", on_click=_reset, args=(lesson.name,), width="stretch",
                       help="Restore the lesson's starting experiment (your changes are discarded)")
        if cols[2].button("Leave lesson", key="lesson_leave", width="stretch",
                          help="Back to the full playground; the current experiment stays as it is"):
            end_lesson()
            st.rerun()
        with st.expander("Steps", expanded=not compact):
            st.markdown("\n".join(f"{i}. {step}" for i, step in enumerate(lesson.steps, start=1)))
        if lesson.hide_advanced:
            st.toggle("Show advanced controls", value=bool(st.session_state.get(SHOW_ALL, False)),
                      key="_lesson_show_all_widget", on_change=_toggle_show_all,
                      help="This lesson hides the controls it does not need")
