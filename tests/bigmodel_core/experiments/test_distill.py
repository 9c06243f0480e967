"""Knowledge distillation: the loss against a hand-written formula, the trainer against the plain one,
the CLI's run folder and its refusals."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigmodel_core.cli import main
from bigmodel_core.config.specs import parse_config
from bigmodel_core.experiments.distill import DistillError, DistillTrainer, distillation_loss, load_teacher
from bigmodel_core.training.trainer import Trainer


def hand_loss(s, t, y, temp, alpha):
    """Hinton et al.: alpha * T^2 * sum_k p_k (log p_k - log q_k), averaged over the batch, + (1 - alpha) * CE."""
    total_soft, total_hard = 0.0, 0.0
    for i in range(s.shape[0]):
        zs = [float(v) / temp for v in s[i]]
        zt = [float(v) / temp for v in t[i]]
        ls = [z - math.log(sum(math.exp(w) for w in zs)) for z in zs]
        lt = [z - math.log(sum(math.exp(w) for w in zt)) for z in zt]
        total_soft += sum(math.exp(b) * (b - a) for a, b in zip(ls, lt))
        raw = [float(v) for v in s[i]]
        total_hard += -(raw[int(y[i])] - math.log(sum(math.exp(w) for w in raw)))
    n = s.shape[0]
    return alpha * temp * temp * total_soft / n + (1 - alpha) * total_hard / n


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(2, 7), st.floats(0.5, 20.0), st.floats(0.0, 1.0), st.integers(0, 10_000))
def test_the_loss_equals_the_hand_written_formula(n, k, temp, alpha, seed):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, k, generator=g, dtype=torch.float64) * 3
    t = torch.randn(n, k, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, k, (n,), generator=g)
    got = float(distillation_loss(s, t, y, temp, alpha))
    assert got == pytest.approx(hand_loss(s, t, y, temp, alpha), rel=1e-9, abs=1e-9)


def test_a_student_that_equals_its_teacher_has_no_soft_loss():
    t = torch.randn(4, 10)
    y = torch.tensor([1, 2, 3, 4])
    assert float(distillation_loss(t, t, y, 4.0, 1.0)) == pytest.approx(0.0, abs=1e-6)


def student(**training):
    return parse_config({"seed": 1, "data": {"name": "synthetic_digits", "train_size": 128, "val_size": 64},
                         "model": {"family": "cnn", "conv": [{"channels": 4}], "dense": []},
                         "optimizer": {"name": "adam", "lr": 0.003},
                         "training": {"epochs": 1, "batch_size": 32, "device": "cpu", **training}})


@pytest.fixture(scope="module")
def teacher():
    return load_teacher("digits_cnn")


def test_alpha_zero_is_exactly_plain_training_and_alpha_above_zero_is_not(teacher):
    plain = Trainer(student())
    plain.fit()
    d0 = DistillTrainer(student(), teacher, temperature=4.0, alpha=0.0)
    d0.fit()
    assert [e.val_loss for e in d0.result.history] == [e.val_loss for e in plain.result.history]
    d1 = DistillTrainer(student(), teacher, temperature=4.0, alpha=0.7)
    d1.fit()
    assert d1.result.history[-1].val_loss != plain.result.history[-1].val_loss
    s = d1.summary()["distill"]
    assert s["teacher"] == "digits_cnn (shipped)" and s["temperature"] == 4.0 and s["alpha"] == 0.7
    assert s["teacher_params"] > 10 * s["student_params"]
    assert s["teacher_final"]["val_accuracy"] > 0.95  # the shipped teacher knows these digits


def test_the_teacher_is_frozen_and_its_outputs_are_those_of_the_batch(teacher):
    from bigmodel_core.training.trainer import Callback

    d = DistillTrainer(student(), teacher, temperature=2.0, alpha=0.5)
    net = d._outputs.teacher
    before = {k: v.clone() for k, v in net.state_dict().items()}

    class Batches(Callback):
        def on_batch(self, trainer, xb, yb):
            self.xb = xb.clone()

    batches = d.add_callback(Batches())
    checked = []
    original = d.loss_fn

    def spy(out, y, smoothing=None):
        if smoothing is None:  # a training batch: the logits are the teacher's on this very batch
            with torch.no_grad():
                checked.append(torch.equal(d._outputs.logits, net(batches.xb)))
        return original(out, y, smoothing)

    d.loss_fn = spy
    d.fit()
    assert len(checked) == 4 and all(checked)  # 128 samples in batches of 32
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_a_teacher_of_other_data_or_bad_settings_is_refused(teacher, tmp_path):
    seq = parse_config({"data": {"name": "sequential_digits", "train_size": 64, "val_size": 32},
                        "model": {"family": "lstm", "hidden": 8}})
    with pytest.raises(DistillError, match="trained on synthetic_digits.*sequential_digits"):
        DistillTrainer(seq, teacher)
    with pytest.raises(DistillError, match="temperature"):
        DistillTrainer(student(), teacher, temperature=0.0)
    with pytest.raises(DistillError, match="alpha"):
        DistillTrainer(student(), teacher, alpha=1.5)
    with pytest.raises(DistillError, match="neither a shipped model"):
        load_teacher(str(tmp_path / "nothing"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text(student().to_json())
    with pytest.raises(DistillError, match="no model.safetensors"):
        load_teacher(str(tmp_path / "half"))


def test_cli_distills_from_a_stored_run_and_writes_the_usual_files(tmp_path, capsys):
    cfg = tmp_path / "student.json"
    cfg.write_text(student().to_json())
    assert main(["train", str(cfg), "--out", str(tmp_path / "teacher")]) == 0
    capsys.readouterr()
    assert main(["distill", str(cfg), "--teacher", str(tmp_path / "teacher"), "--temperature", "3",
                 "--alpha", "0.5", "--out", str(tmp_path / "student")]) == 0
    out = json.loads(capsys.readouterr().out)
    files = sorted(p.name for p in (tmp_path / "student").iterdir())
    assert files == ["config.json", "metrics.csv", "model.safetensors", "summary.json"]
    stored = json.loads((tmp_path / "student" / "summary.json").read_text())
    assert stored["distill"]["teacher"] == "run teacher" and stored["distill"]["temperature"] == 3.0
    assert out["final"] == stored["final"]


@pytest.mark.parametrize("argv,needle", [
    (["--teacher", "no_such_model"], "neither a shipped model"),
    (["--teacher", "digits_cnn", "--alpha", "2"], "alpha"),
    (["--teacher", "digits_cnn", "--temperature", "inf"], "finite"),
])
def test_cli_refuses_bad_teachers_and_settings_with_one_line_and_writes_nothing(argv, needle, tmp_path, capsys):
    cfg = tmp_path / "student.json"
    cfg.write_text(student().to_json())
    with pytest.raises(SystemExit) if needle == "finite" else _nothing():
        code = main(["distill", str(cfg), *argv, "--out", str(tmp_path / "out")])
        assert code == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
