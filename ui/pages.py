"""The app's pages: one table for the navigation, lessons and in-app links (no streamlit import)."""

from __future__ import annotations

from typing import NamedTuple


class Page(NamedTuple):
    script: str  # relative to the repository root
    title: str
    icon: str
    url_path: str  # "" is the home page


PAGES: tuple[Page, ...] = (
    Page("app_pages/home.py", "Home", ":material/home:", ""),
    Page("app_pages/build.py", "Build", ":material/construction:", "build"),
    Page("app_pages/train.py", "Train", ":material/monitoring:", "train"),
    Page("app_pages/compare.py", "Compare", ":material/compare_arrows:", "compare"),
    Page("app_pages/finetune.py", "Fine-tune", ":material/tune:", "finetune"),
    Page("app_pages/concepts.py", "Concepts", ":material/school:", "concepts"),
    Page("app_pages/lessons.py", "Lessons", ":material/menu_book:", "lessons"),
    Page("app_pages/runs.py", "Runs", ":material/folder_open:", "runs"),
)
