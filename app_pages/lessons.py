"""Lessons: ready-made workshop lessons, each a preset, a page to open and a few steps."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from bigmodel_core.config.lessons import LessonError, list_lessons
from ui import lesson as lesson_ui
from ui import state
from ui.literal import md, sentence
from ui.pages import PAGES

ROOT = Path(__file__).resolve().parent.parent
PAGE_TITLES = {p.url_path: p.title for p in PAGES}


def base_url() -> str:
    """scheme://host:port of the browser's address, or "" without one (tests): the link is then relative."""
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - no browser context
        return ""
    parts = urlsplit(url) if isinstance(url, str) else None
    return f"{parts.scheme}://{parts.netloc}" if parts and parts.netloc else ""


state.show_notice()
st.title("Lessons")
st.caption("Ready-made lessons for a class or for yourself. Each one loads an experiment, opens the page it needs "
           "and shows its steps at the top; advanced controls stay hidden until you ask for them. Share a lesson "
           "with its link: anyone who opens it starts the same lesson.")

try:
    lessons = list_lessons()
except LessonError as exc:
    st.error(f"The lessons could not be loaded: {md(sentence(exc, capital=False))}")
    st.stop()

current = lesson_ui.active_lesson()
if current is not None:
    with st.container(border=True):
        c = st.columns([5, 1.2])
        c[0].markdown(f":material/school: You are in the lesson **{current.title}**.")
        if c[1].button("Leave lesson", key="lessons_leave", width="stretch"):
            lesson_ui.end_lesson()
            st.rerun()

for lesson in lessons:
    with st.container(border=True, key=f"lesson_card_{lesson.name}"):
        page_title = PAGE_TITLES.get(lesson.page, lesson.page)
        st.subheader(f"{lesson.order}. {lesson.title}")
        st.markdown(lesson.summary)
        with st.expander(f"{len(lesson.steps)} steps"):
            st.markdown("\n".join(f"{i}. {step}" for i, step in enumerate(lesson.steps, start=1)))
        c = st.columns([1.6, 4])
        label = f"Start on the {page_title} page"
        try:
            c[0].page_link(lesson.page_file, label=label, icon=":material/play_arrow:",
                           query_params={"lesson": lesson.name})
        except StreamlitPageNotFoundError:  # the page run on its own (no navigation): a plain link
            c[0].markdown(f":material/play_arrow: [{label}](/{lesson.page}?lesson={lesson.name})")
        c[1].code(f"{base_url()}/{lesson.page}?lesson={lesson.name}", language=None)
