"""Lesson mode for the Build and Train pages, when workshop lessons are installed.

A lesson URL can hide advanced controls and shows a banner with the lesson's steps;
without the lessons module both calls are no-ops.
"""

from __future__ import annotations


def advanced_hidden() -> bool:
    try:
        from ui.lesson import advanced_hidden as hidden
    except ModuleNotFoundError:
        return False
    return hidden()


def lesson_banner() -> None:
    try:
        from ui.lesson import render_lesson_banner
    except ModuleNotFoundError:
        return
    render_lesson_banner()
