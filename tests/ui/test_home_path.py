"""Home's path loads no torch, its catalogue covers every preset, and the pages' words for engine keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bigmodel_core.config.lessons import lesson_names, load_lesson
from bigmodel_core.config.presets import preset_names
from bigmodel_core.nn.shapes import SpecError
from ui import catalog, labels

ROOT = Path(__file__).resolve().parents[2]


def test_the_first_page_and_the_sidebar_load_no_torch():
    # what app.py and Home import, in a fresh interpreter
    code = ("import sys, app_pages, ui.state, ui.sidebar, ui.lesson, ui.urlcodec, ui.literal, ui.pages, ui.warmup, "
            "ui.catalog, ui.widgets, bigmodel_core.config.lessons, bigmodel_core.config.presets; "
            "heavy = ('torch', 'bigmodel_core.data', 'bigmodel_core.training.jobs'); "
            "print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_states_the_sidebar_counts_as_active_are_the_pools():
    from bigmodel_core.training import jobs
    from ui import state

    assert state.ACTIVE == jobs.ACTIVE


def test_every_preset_is_on_home_once_as_a_card_or_as_a_lessons_start():
    cards = [e.name for g in catalog.GROUPS for e in g.entries if e.kind == "preset"]
    lessons = [e.name for g in catalog.GROUPS for e in g.entries if e.kind == "lesson"]
    assert sorted(lessons) == lesson_names()  # every lesson, once
    reached = cards + [load_lesson(n).preset for n in lessons]
    assert sorted(reached) == preset_names()
    assert catalog.FIRST_PRESET in cards
    assert all(e.title and "_" not in e.title for g in catalog.GROUPS for e in g.entries)  # human titles


def test_design_errors_name_the_block_as_the_build_page_does():
    exc = SpecError(15, "max pool 2x2", "model.conv[4]", "input is 1x1, too small for a 2x2 window")
    assert labels.design_message(exc) == ("Block 5, max pool 2x2 (layer 15 of the table): input is 1x1, too small "
                                          "for a 2x2 window.")
    assert labels.design_message(SpecError(9, "dense 64", "model.dense[0]", "x")).startswith("Dense 1, dense 64")
    assert labels.design_message(SpecError(0, "", "model", "too many parameters.")) == "The model: too many parameters."


@pytest.mark.parametrize("task, metric", [("classification", "accuracy"), ("regression", "MAE")])
def test_epoch_rows_and_final_metrics_in_words(task, metric):
    rows = labels.human_rows([{"epoch": 1, "train_loss": 0.5, "val_metric": 0.9, "seconds": 1.0}], task)
    assert list(rows[0]) == ["epoch", "train loss (running, as trained)", f"validation {metric}", "seconds"]
    rows = labels.human_rows([{"train_eval_loss": 0.4, "train_eval_metric": 0.95}], task)
    assert list(rows[0]) == ["train loss (eval mode)", f"train {metric} (eval mode)"]
    assert labels.final_line({"train_loss": 0.25, "val_accuracy": 0.98, "note": "x"}) == \
        "train loss (running, as trained) 0.2500 · validation accuracy 0.9800"


def test_the_warm_up_loads_torch_the_engine_and_the_device_in_the_background_but_not_the_compiler():
    code = ("import sys, ui.warmup as w; assert 'torch' not in sys.modules; assert w.start(0.0); assert not w.start(); "
            "assert w.wait(240); print(bool(w.device()), type(sys.modules['torch._dynamo']).__name__, "
            "'sympy' in sys.modules, 'bigmodel_core.inspect.live_probe' in sys.modules, w.seconds() > 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=300)
    assert out.stdout.split() == ["True", "StandIn", "False", "True", "True"], out.stderr[-2000:]


def test_a_page_that_needs_the_engine_lets_the_warm_up_thread_import_it():
    # several sessions importing torch at once (a class opening a lesson link after a restart) can
    # fail inside torch's nested imports: the first engine page waits for the one warm-up thread
    code = """
import sys, threading
importers = []
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            importers.append(threading.current_thread().name)
        return None
sys.meta_path.insert(0, Spy())
from streamlit.testing.v1 import AppTest
import ui.warmup as w
at = AppTest.from_file("app.py", default_timeout=240)
at.switch_page("app_pages/train.py")
at.run()
assert not at.exception, at.exception
print(w.ready(), importers)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["True", "['bigmodel-warmup']"], out.stdout[-2000:] + out.stderr[-2000:]
