import json
import subprocess
import sys
from pathlib import Path

import pytest

from bigmodel_core.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bigmodel_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_datasets_and_presets_list_everything(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("synthetic_digits", "shapes", "handwritten_digits", "sine_wave", "adding_problem",
                 "sequential_digits", "synthetic_letters"):
        assert name in out
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("quickstart_cnn", "textbook_cnn", "textbook_lstm", "gru_adding", "lstm_sequential_digits",
                 "sine_forecast"):
        assert name in out


def test_validate_and_summary(capsys, tmp_path):
    assert main(["validate", "textbook_cnn"]) == 0
    assert main(["summary", "textbook_cnn"]) == 0
    assert "total parameters 421,642" in capsys.readouterr().out
    assert main(["validate", "quickstart_cnn", "--schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "ExperimentConfig"


@pytest.mark.parametrize("content,needle", [
    ('{"optimizer": {"lr": -1}}', "optimizer.lr"),
    ('{"data": {"name": "mnist"}}', "unknown dataset 'mnist'"),
    ("{oops", "not valid JSON"),
    ('{"model": {"family": "cnn", "conv": [{"channels": 8}, {"channels": 8}, {"channels": 8}, {"channels": 8},'
     ' {"channels": 8}]}}', "too small for a 2x2 window"),
])
def test_bad_input_is_one_line_with_exit_code_2(tmp_path, content, needle):
    f = tmp_path / "bad.json"
    f.write_text(content)
    r = run_cli("validate", str(f))
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_unknown_preset_and_missing_file(capsys):
    assert main(["validate", "no_such_preset"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset" in err and "quickstart_cnn" in err
    assert main(["validate", "missing.json"]) == 2
    assert "no such config file" in capsys.readouterr().err


def test_train_writes_run_folder(tmp_path):
    cfg = tmp_path / "c.json"
    from bigmodel_core.config.presets import load_preset

    cfg.write_text(load_preset("quickstart_cnn").with_changes(
        {"data.train_size": 128, "data.val_size": 64}).to_json())
    r = run_cli("train", str(cfg), "--out", str(tmp_path / "run"), "--epochs", "2", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "ETA" in r.stderr and "epoch 2:" in r.stderr
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["config.json", "metrics.csv", "model.safetensors", "summary.json"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 2
    assert json.loads(r.stdout)["final"]["val_accuracy"] == summary["final"]["val_accuracy"]


def test_train_bad_device_is_exit_2(tmp_path):
    r = run_cli("train", "quickstart_cnn", "--out", str(tmp_path / "x"), "--device", "tpu")
    assert r.returncode == 2 and "training.device" in r.stderr


def test_engine_never_imports_streamlit():
    # every module of every room, imported in one process
    code = ("import sys, pkgutil, importlib, bigmodel_core\n"
            "for m in pkgutil.walk_packages(bigmodel_core.__path__, 'bigmodel_core.'):\n"
            "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            "assert len([m for m in sys.modules if m.startswith('bigmodel_core.')]) > 30\n"
            "assert 'streamlit' not in sys.modules, [m for m in sys.modules if 'streamlit' in m]\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
