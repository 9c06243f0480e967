"""Workshop lessons: a preset config, the page to open and short steps, stored as JSON.

Each ``assets/lessons/NAME.json`` is one lesson; NAME is what a shareable URL carries
(``?lesson=NAME``). A lesson names a preset from ``assets/presets/`` (the experiment it
starts from), the page a class should land on, and whether advanced controls are hidden
so that a class sees only what the lesson needs.
"""

from __future__ import annotations

import json
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .presets import ASSETS, load_preset, preset_names
from .specs import ExperimentConfig

LESSON_DIR = ASSETS / "lessons"
# url path -> page script, as the app registers them ("" is the home page)
PAGES: dict[str, str] = {
    "": "app_pages/home.py", "build": "app_pages/build.py", "train": "app_pages/train.py",
    "compare": "app_pages/compare.py", "finetune": "app_pages/finetune.py", "concepts": "app_pages/concepts.py",
    "lessons": "app_pages/lessons.py", "runs": "app_pages/runs.py",
}


# what the Compare page can vary (its "What varies" choices), as a lesson may name them
COMPARE_KINDS = ("optimizer", "regularizer", "model family", "one setting", "student alone vs distilled",
                 "model size")


class LessonError(ValueError):
    """An unknown lesson name or a lesson file that cannot be used."""


class Lesson(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("", description="the file name without .json; filled in when loaded")
    title: str = Field(min_length=1)
    summary: str = Field(min_length=1, description="one or two sentences: what the learner will see")
    preset: str = Field(description="the preset config the lesson starts from")
    page: str = Field(description="url path of the page to open: build, train, compare, ...")
    steps: list[str] = Field(min_length=1)
    hide_advanced: bool = True
    order: int = 100  # position on the Lessons page
    compare: str | None = Field(None, description="on the Compare page, what varies when the lesson starts")

    @field_validator("compare")
    @classmethod
    def _known_kind(cls, v: str | None) -> str | None:
        kinds = COMPARE_KINDS
        if v is not None and v not in kinds:
            raise ValueError(f"unknown comparison {v!r}; choose one of: {', '.join(kinds)}")
        return v

    @field_validator("page")
    @classmethod
    def _known_page(cls, v: str) -> str:
        if v not in PAGES:
            raise ValueError(f"unknown page {v!r}; choose one of: {', '.join(p or '(home)' for p in PAGES)}")
        return v

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str) -> str:
        names = preset_names()
        if v not in names:
            raise ValueError(f"unknown preset {v!r}; choose one of: {', '.join(names)}")
        return v

    @property
    def page_file(self) -> str:
        """The page script, relative to the repository root (for st.page_link / st.switch_page)."""
        return PAGES[self.page]

    def config(self) -> ExperimentConfig:
        """A fresh copy of the lesson's starting experiment."""
        return load_preset(self.preset)


def lesson_names() -> list[str]:
    return sorted(p.stem for p in LESSON_DIR.glob("*.json"))


@lru_cache(maxsize=64)
def _load(name: str, mtime: float) -> Lesson:
    path = LESSON_DIR / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LessonError(f"lesson file {path.name} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise LessonError(f"lesson file {path.name} must hold a JSON object")
    try:
        return Lesson.model_validate({**raw, "name": name})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors(include_url=False))
        raise LessonError(f"lesson file {path.name}: {problems}") from None


def load_lesson(name: str) -> Lesson:
    """The lesson called ``name``; LessonError listing the valid names if there is none."""
    names = lesson_names()
    if not isinstance(name, str) or name not in names:
        raise LessonError(f"unknown lesson {name!r}; choose one of: {', '.join(names)}")
    path = LESSON_DIR / f"{name}.json"
    return _load(name, path.stat().st_mtime)


def list_lessons() -> list[Lesson]:
    """Every lesson, in the order the Lessons page shows them."""
    return sorted((load_lesson(n) for n in lesson_names()), key=lambda lesson: (lesson.order, lesson.name))
