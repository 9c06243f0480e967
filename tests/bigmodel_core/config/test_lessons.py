"""Workshop lessons load, point at real presets and pages, and explain bad files."""

from __future__ import annotations

import json

import pytest

from bigmodel_core.config import lessons as L
from bigmodel_core.config.presets import load_preset, preset_descriptions, preset_names
from bigmodel_core.data import dataset_info
from bigmodel_core.nn.shapes import infer_layers

EXPECTED_TITLES = {
    "Your first CNN", "Adam vs SGD", "Overfitting and dropout", "Why LSTM beats a plain RNN on long sequences",
    "Transfer learning with 10 labels",
}


def test_the_workshop_lessons_are_there_in_order():
    lessons = L.list_lessons()
    assert {lesson.title for lesson in lessons} >= EXPECTED_TITLES
    assert [lesson.order for lesson in lessons] == sorted(lesson.order for lesson in lessons)
    assert lessons[0].name == "first_cnn"


@pytest.mark.parametrize("name", L.lesson_names())
def test_every_lesson_starts_from_a_buildable_preset_and_a_known_page(name):
    lesson = L.load_lesson(name)
    assert lesson.name == name and lesson.steps and all(step.strip() for step in lesson.steps)
    cfg = lesson.config()
    d = cfg.data
    infer_layers(cfg.model, dataset_info(d.name, image_size=d.image_size, seq_len=d.seq_len))
    assert lesson.page_file == f"app_pages/{lesson.page}.py"
    assert lesson.preset in preset_descriptions()


def test_every_preset_file_has_a_description():
    assert set(preset_names()) <= set(preset_descriptions())


def test_lesson_config_is_its_preset():
    lesson = L.load_lesson("first_cnn")
    assert lesson.config() == load_preset("lesson_first_cnn")


def test_unknown_lesson_lists_the_valid_names():
    with pytest.raises(L.LessonError) as err:
        L.load_lesson("first-cnn")
    message = str(err.value)
    assert "unknown lesson 'first-cnn'" in message
    assert all(name in message for name in L.lesson_names())


@pytest.fixture
def lesson_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(L, "LESSON_DIR", tmp_path)
    return tmp_path


GOOD = {"title": "T", "summary": "S", "preset": "quickstart_cnn", "page": "train", "steps": ["do it"]}


@pytest.mark.parametrize("change,expected", [
    ({"preset": "nope"}, "preset: unknown preset 'nope'; choose one of:"),
    ({"page": "trian"}, "page: unknown page 'trian'; choose one of:"),
    ({"steps": []}, "steps:"),
    ({"colour": "red"}, "colour:"),
])
def test_a_bad_lesson_file_names_the_file_and_the_field(lesson_dir, change, expected):
    (lesson_dir / "mine.json").write_text(json.dumps({**GOOD, **change}))
    with pytest.raises(L.LessonError, match="lesson file mine.json") as err:
        L.load_lesson("mine")
    assert expected in str(err.value)


def test_a_lesson_file_that_is_not_json_is_reported(lesson_dir):
    (lesson_dir / "broken.json").write_text("{not json")
    with pytest.raises(L.LessonError, match="broken.json is not valid JSON"):
        L.load_lesson("broken")


def test_a_good_custom_lesson_loads(lesson_dir):
    (lesson_dir / "mine.json").write_text(json.dumps(GOOD))
    lesson = L.load_lesson("mine")
    assert lesson.hide_advanced and lesson.page_file == "app_pages/train.py"
    assert [x.name for x in L.list_lessons()] == ["mine"]
