"""The "student alone vs distilled" comparison: one student twice from the same weights and batches,
what differs named, the file kind validated, and the CLI's compare --teacher."""

from __future__ import annotations

import json

import pytest

from bigmodel_core.cli import main
from bigmodel_core.config.specs import ConfigError, parse_config
from bigmodel_core.experiments import compare as cmp
from bigmodel_core.experiments.distill import DistillTrainer, load_teacher
from bigmodel_core.training.jobs import JobPool


def student(name="synthetic_digits", **data):
    return parse_config({"seed": 3, "data": {"name": name, "train_size": 96, "val_size": 64, **data},
                         "model": {"family": "cnn", "conv": [{"channels": 4}], "dense": []},
                         "optimizer": {"name": "adam", "lr": 0.003},
                         "training": {"epochs": 2, "batch_size": 32, "device": "cpu"}})


@pytest.fixture(scope="module")
def teacher():
    return load_teacher("digits_cnn")


@pytest.fixture(scope="module")
def finished(teacher):
    comp = cmp.plan_distillation(student(), teacher, temperature=3.0, alpha=0.6)
    pool = JobPool(max_workers=1, store=None, threads_per_job=1, idle_stop_seconds=10 ** 9)
    try:
        cmp.submit(comp, pool, "me", save=False)
        cmp.wait(comp, pool, "me", poll=0.05)
    finally:
        pool.shutdown()
    return comp


def test_the_two_arms_share_weights_batches_and_budget_and_differ_only_in_the_teacher(finished):
    alone, taught = finished.runs
    assert finished.kind == "distill" and [r.status for r in finished.runs] == ["completed", "completed"]
    assert alone.config == taught.config and alone.distill is None
    assert taught.distill == {"teacher": "digits_cnn (shipped)", "sha256": taught.teacher.sha256,
                              "temperature": 3.0, "alpha": 0.6}
    assert alone.init == taught.init == "shared" and alone.init_sha == taught.init_sha
    assert alone.order_sha == taught.order_sha and alone.data_sha == taught.data_sha
    assert len(alone.epochs) == len(taught.epochs) == 2
    assert taught.summary["distill"]["teacher_params"] == 105_962 and "distill" not in alone.summary
    assert finished.differing() == ["learns from (teacher)"]
    assert [row["learns from"] for row in finished.differs()] == ["labels only", "digits_cnn (shipped), T=3, alpha=0.6"]


def test_the_distilled_arm_is_the_distill_trainer_on_the_same_config(finished, teacher):
    plain = DistillTrainer(student(), teacher, temperature=3.0, alpha=0.6)
    plain.fit()
    assert [e.val_loss for e in plain.result.history] == [e["val_loss"] for e in finished.runs[1].epochs]


def test_the_file_keeps_the_kind_and_the_teacher_and_refuses_bad_entries(finished):
    again = cmp.Comparison.from_json(finished.to_json())
    assert again.kind == "distill" and again.runs[1].distill == finished.runs[1].distill
    assert again.runs[1].teacher is None  # a file names its teacher; it does not carry the weights
    with pytest.raises(ValueError, match="is not loaded"):
        cmp.submit(again, None, "me")
    doc = json.loads(finished.to_json())
    for change, needle in [({"alpha": 1.5}, "runs[1].distill.alpha"), ({"temperature": "4"}, "temperature"),
                           ({"colour": 1}, "colour"), ({"teacher": "x" * 5000}, "runs[1].distill.teacher")]:
        bad = json.loads(json.dumps(doc))
        bad["runs"][1]["distill"].update(change)
        with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
            cmp.Comparison.from_dict(bad)
    bad = json.loads(json.dumps(doc))
    bad["kind"] = "magic"
    with pytest.raises(ConfigError, match="kind"):
        cmp.Comparison.from_dict(bad)
    old = json.loads(json.dumps(doc))  # a file from before kinds: settings, no distill entries
    del old["kind"]
    for r in old["runs"]:
        del r["distill"]
    assert cmp.Comparison.from_dict(old).kind == "settings"


@pytest.mark.parametrize("cfg,needle", [
    (student("synthetic_letters"), "the number of classes differs (10 against 26)"),
    (student("handwritten_digits", image_size=8), "the input size differs (1x28x28 against 1x8x8)"),
    (parse_config({"data": {"name": "sine_wave", "train_size": 64, "val_size": 32}, "model": {"family": "lstm"}}),
     "the student's data sine_wave is regression"),
])
def test_a_teacher_that_does_not_fit_the_students_data_is_refused_naming_what_differs(teacher, cfg, needle):
    with pytest.raises(ConfigError, match="teacher") as err:
        cmp.plan_distillation(cfg, teacher)
    assert needle in str(err.value)


def test_a_teacher_on_other_data_of_the_same_shape_and_classes_can_teach(teacher):
    comp = cmp.plan_distillation(student("handwritten_digits", image_size=28), teacher)
    assert comp.names == ["student alone", "distilled from digits_cnn"]


def test_a_regression_teacher_and_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="predicts numbers"):
        cmp.plan_distillation(student(), load_teacher("adding_lstm"))
    with pytest.raises(ConfigError, match="alpha"):
        cmp.plan_distillation(student(), load_teacher("digits_cnn"), alpha=-0.1)


def test_cli_compare_with_a_teacher_writes_both_arms(tmp_path, capsys):
    f = tmp_path / "s.json"
    f.write_text(student().with_changes({"training.epochs": 1}).to_json())
    assert main(["compare", str(f), "--teacher", "digits_cnn", "--temperature", "2", "--alpha", "0.5",
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr()
    assert "learns from=digits_cnn (shipped), T=2, alpha=0.5" in out.err
    doc = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert doc["kind"] == "distill" and [r["name"] for r in doc["runs"]] == ["student alone",
                                                                            "distilled from digits_cnn"]
    assert json.loads((tmp_path / "out" / "02-distilled-from-digits-cnn" / "summary.json").read_text()
                      )["distill"]["alpha"] == 0.5
