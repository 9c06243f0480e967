"""The Fine-tune page's distillation section under AppTest: a good run through the pool, stored as a run,
and a teacher whose classes differ refused with a message naming what differs."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from bigmodel_core.config.specs import parse_config

ROOT = Path(__file__).resolve().parents[2]
FINISHED = ("completed", "failed", "stopped", "diverged")


def page(**data) -> tuple[AppTest, str]:
    at = AppTest.from_file(str(ROOT / "app_pages/finetune.py"), default_timeout=90)
    owner = secrets.token_hex(6)
    at.session_state["owner"] = owner
    at.session_state["config"] = parse_config({
        "seed": 0, "data": {"name": "synthetic_digits", "train_size": 96, "val_size": 64, **data},
        "model": {"family": "cnn", "conv": [{"channels": 4}], "dense": []},
        "training": {"epochs": 2, "batch_size": 32, "device": "cpu"}})
    return at.run(), owner


def test_a_distillation_runs_in_the_pool_shows_its_curves_and_is_stored_as_a_run():
    at, owner = page()
    assert not at.exception and not at.error
    assert at.selectbox(key="ft_distill_teacher").value == "shipped:digits_cnn"
    captions = " ".join(c.value for c in at.caption)
    assert "T softens the probabilities" in captions and "alpha = 0 is plain training" in captions
    at.slider(key="ft_distill_T").set_value(3.0).run()
    at.slider(key="ft_distill_alpha").set_value(0.5).run()
    at.button(key="ft_distill_go").click().run()
    from ui.state import get_pool, get_store

    pool = get_pool()
    deadline = time.time() + 120
    while time.time() < deadline:
        jobs = pool.jobs_of_kind(owner, "distill")
        if jobs and jobs[-1].status in FINISHED:
            break
        time.sleep(0.3)
    job = jobs[-1]
    assert job.status == "completed" and job.kind == "distill"
    at.run()
    assert not at.exception
    table = next(df.value for df in at.dataframe if "teacher val acc" in df.value.columns)
    row = table.iloc[0]
    assert row["run"] == "distilled from digits_cnn · T 3 · alpha 0.5" and row["status"] == "completed"
    assert row["teacher params"] == 105_962 and row["student params"] == 7_890 and row["stored as"] == job.run_id
    stored = get_store().load(job.run_id, owner=owner)
    assert stored.summary["kind"] == "distill" and stored.summary["distill"]["temperature"] == 3.0
    assert stored.summary["distill"]["alpha"] == 0.5 and len(stored.metrics) == 2
    figures = [el for el in at.get("component_instance") if "distillation objective" in el.proto.json_args]
    assert figures  # the live curves' chart, updated in place while the job runs
    # the stored run is now a teacher this workspace can choose
    assert any(o.startswith("your run distilled from digits_cnn · T 3") for o in
               at.selectbox(key="ft_distill_teacher").options)  # the options are shown by their labels


def test_a_teacher_with_other_classes_or_input_size_is_refused_naming_what_differs():
    at, _ = page()
    at.selectbox(key="ft_distill_teacher").set_value("shipped:letters_cnn").run()
    errors = [e.value for e in at.error]
    assert any("the number of classes differs (26 against 10)" in e for e in errors), errors
    assert at.button(key="ft_distill_go").disabled
    at, _ = page()
    at.session_state["config"] = parse_config({
        "data": {"name": "handwritten_digits", "image_size": 8, "train_size": 96, "val_size": 64},
        "model": {"family": "cnn", "conv": [{"channels": 4}], "dense": []}})
    at.run()
    errors = [e.value for e in at.error]
    assert any("the input size differs (1x28x28 against 1x8x8)" in e for e in errors), errors
    assert at.button(key="ft_distill_go").disabled
