"""Exported scripts run on their own and reproduce the engine's numbers.

Tolerance: on CPU the script and the engine share data, initial weights, data order and
every seeded draw, so the metrics agree to float32 rounding. The tests allow a relative
1e-4 on losses and MAE and one validation sample on accuracy; in practice they are equal.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bigmodel_core import cli
from bigmodel_core.config.presets import load_preset, preset_names
from bigmodel_core.config.specs import parse_config
from bigmodel_core.data import DATASET_NAMES, build_dataset
from bigmodel_core.export import export_script
from bigmodel_core.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[3]
SMALL = {"epochs": 1, "train_size": 96, "val_size": 48}
ALLOWED_IMPORTS = {"argparse", "copy", "gzip", "hashlib", "importlib", "json", "math", "time", "pathlib", "numpy",
                   "torch", "PIL"}


def engine_final(cfg):
    trainer = Trainer(cfg)
    trainer.fit()
    summary = trainer.summary()
    assert summary["status"] == "completed", summary
    return summary["final"]


def shrink(cfg, epochs=SMALL["epochs"], train_size=SMALL["train_size"], val_size=SMALL["val_size"]):
    return cfg.with_changes({"training.epochs": epochs, "data.train_size": train_size,
                             "data.val_size": val_size, "training.device": "cpu"})


def assert_close(script: dict, engine: dict, val_size: int) -> None:
    assert script.keys() == engine.keys()
    for key, value in engine.items():
        if key == "val_accuracy":
            assert abs(script[key] - value) <= 1 / val_size + 1e-9, (key, script[key], value)
        else:
            assert script[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (key, script[key], value)


def load_script(code: str, tmp_path: Path, name: str = "exported"):
    path = tmp_path / f"{name}.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # __name__ is not "__main__": nothing trains on import
    return module


def tiny_config(dataset: str, **data):
    from bigmodel_core.data import dataset_info

    image = dataset_info(dataset, **data).kind == "image"
    model = {"family": "cnn", "conv": [{"channels": 3}], "dense": []} if image else {"family": "gru", "hidden": 4}
    return parse_config({"data": {"name": dataset, "train_size": 40, "val_size": 20, **data}, "model": model,
                         "training": {"device": "cpu", "batch_size": 16, "epochs": 1}})


DATA_CASES = [(name, {}) for name in DATASET_NAMES] + [("handwritten_digits", {"image_size": 8}),
                                                        ("sine_wave", {"seq_len": 12}),
                                                        ("adding_problem", {"seq_len": 9})]


@pytest.mark.parametrize("dataset,options", DATA_CASES, ids=[f"{n}{o or ''}" for n, o in DATA_CASES])
def test_exported_data_is_bit_identical_to_the_engine(dataset, options, tmp_path):
    mod = load_script(export_script(tiny_config(dataset, **options)), tmp_path)
    x_train, y_train, x_val, y_val = mod.load_data(40, 20, 3)
    ds = build_dataset(dataset, train_size=40, val_size=20, seed=3, **options)
    for mine, theirs in [(x_train, ds.x_train), (y_train, ds.y_train), (x_val, ds.x_val), (y_val, ds.y_val)]:
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        assert torch.equal(mine, theirs)


def script_imports(code: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("name", preset_names())
def test_scripts_need_only_torch_numpy_and_their_data_source(name):
    code = export_script(load_preset(name))
    compile(code, name, "exec")
    imports = script_imports(code)
    assert imports <= ALLOWED_IMPORTS and "bigmodel_core" not in code.replace("bigmodel playground", "")
    assert "import torch.nn.functional as F" in code  # the textbook's CNN forgot it


# Runs exported scripts as __main__ in a fresh interpreter that cannot import bigmodel_core, and
# prints {name: the script's last stdout line}. One interpreter runs several scripts so that
# importing torch (seconds on a busy machine) is paid once per process, not once per preset.
DRIVER = """
import contextlib, io, json, runpy, sys
results = {}
for name, path, *args in json.loads(sys.argv[1]):
    out = io.StringIO()
    sys.argv = [path, *args]
    with contextlib.redirect_stdout(out):
        runpy.run_path(path, run_name="__main__")
    results[name] = out.getvalue().strip().splitlines()[-1]
assert not any(m.startswith("bigmodel_core") for m in sys.modules), "a script imported bigmodel_core"
print(json.dumps(results))
"""


def test_every_preset_script_runs_and_matches_the_engine(tmp_path):
    """Each preset's script, run for 1 small epoch in a separate Python, prints the engine's final metrics."""
    names = preset_names()
    args = ["--device", "cpu", "--epochs", "1", "--train-size", str(SMALL["train_size"]),
            "--val-size", str(SMALL["val_size"])]
    jobs = []
    for name in names:
        path = tmp_path / f"{name}.py"
        path.write_text(export_script(load_preset(name), path.name))
        jobs.append([name, str(path), *args])
    env = {**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    # from an empty folder, so the scripts cannot find bigmodel_core; two processes for two cores
    procs = [subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(jobs[i::2])], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    expected = {name: engine_final(shrink(load_preset(name))) for name in names}
    results = {}
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        results.update({k: json.loads(v) for k, v in json.loads(out.strip().splitlines()[-1]).items()})
    assert set(results) == set(names)
    for name in names:
        assert results[name]["status"] == "completed", name
        assert_close(results[name]["final"], expected[name], SMALL["val_size"])


FEATURE_CONFIGS = {
    "batchnorm-dropout-augment-penalties-cosine-adamw": {
        "data": {"name": "shapes", "augment": True},
        "model": {"family": "cnn", "conv": [{"channels": 4, "batchnorm": True, "dropout": 0.2, "pool": "avg"},
                                            {"channels": 6, "kernel": 5, "stride": 2, "padding": 1,
                                             "activation": "gelu", "pool": "none"}],
                  "dense": [{"units": 12, "activation": "tanh", "dropout": 0.3}]},
        "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.05, "schedule": "cosine"},
        "regularization": {"l1": 1e-4, "l2": 1e-3, "label_smoothing": 0.1},
        "training": {"epochs": 2, "batch_size": 16},
    },
    "early-stopping-restore-step-schedule-nesterov-clip": {
        "data": {"name": "handwritten_digits", "image_size": 8},
        "model": {"family": "cnn", "conv": [{"channels": 4, "padding": "valid", "activation": "elu"}],
                  "dense": [{"units": 8, "activation": "leaky_relu"}]},
        "optimizer": {"name": "nesterov", "lr": 0.5, "schedule": "step", "step_size": 1, "gamma": 0.5},
        "regularization": {"grad_clip": 0.5, "early_stopping": {"patience": 1, "restore_best": True}},
        "training": {"epochs": 4, "batch_size": 32},
    },
    "bidirectional-gru-stack-dropout-dense-rmsprop": {
        "data": {"name": "adding_problem", "seq_len": 10},
        "model": {"family": "gru", "hidden": 6, "layers": 2, "bidirectional": True, "dropout": 0.3,
                  "dense": [{"units": 5, "dropout": 0.2, "activation": "sigmoid"}]},
        "optimizer": {"name": "rmsprop", "lr": 0.01, "momentum": 0.5},
        "training": {"epochs": 2, "batch_size": 16},
    },
    "plain-rnn-momentum-adagrad-letters": {
        "data": {"name": "sequential_digits"},
        "model": {"family": "rnn", "hidden": 8},
        "optimizer": {"name": "momentum", "lr": 0.05},
        "training": {"epochs": 2, "batch_size": 16},
    },
    "adagrad-letters": {
        "data": {"name": "synthetic_letters"},
        "model": {"family": "cnn", "conv": [{"channels": 3}], "dense": []},
        "optimizer": {"name": "adagrad", "lr": 0.05},
        "training": {"epochs": 1, "batch_size": 16},
    },
    "residual-identity-projection-strided-batchnorm": {
        "data": {"name": "synthetic_digits"},
        "model": {"family": "cnn", "conv": [{"channels": 4, "residual": True, "batchnorm": True},
                                            {"channels": 6, "stride": 2, "residual": True, "pool": "none"},
                                            {"channels": 6, "residual": True, "dropout": 0.2}],
                  "dense": [{"units": 8}]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 2, "batch_size": 16},
    },
    "sgd-lstm-sine": {
        "data": {"name": "sine_wave", "seq_len": 15},
        "model": {"family": "lstm", "hidden": 5, "layers": 3},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "training": {"epochs": 2, "batch_size": 16},
    },
}


@pytest.mark.parametrize("key", list(FEATURE_CONFIGS))
def test_every_training_feature_is_reproduced(key, tmp_path):
    raw = FEATURE_CONFIGS[key]
    raw["data"] = {**raw["data"], "train_size": 64, "val_size": 32}
    raw["training"] = {**raw["training"], "device": "cpu"}
    cfg = parse_config(raw)
    mod = load_script(export_script(cfg), tmp_path, key.replace("-", "_"))
    summary = mod.main([])
    trainer = Trainer(cfg)
    trainer.fit()
    expected = trainer.summary()
    assert summary["epochs_run"] == expected["epochs_run"] and summary["best_epoch"] == expected["best_epoch"]
    assert summary["params"] == expected["params"]
    assert_close(summary["final"], expected["final"], 32)


def test_overrides_shrink_the_run_like_the_config_would(tmp_path):
    cfg = load_preset("lstm_sequential_digits")
    mod = load_script(export_script(cfg), tmp_path)
    summary = mod.main(["--epochs", "1", "--train-size", "64", "--val-size", "32", "--lr", "0.01", "--seed", "2",
                        "--device", "cpu"])
    expected = engine_final(shrink(cfg, train_size=64, val_size=32).with_changes({"optimizer.lr": 0.01, "seed": 2}))
    assert_close(summary["final"], expected, 32)


def test_script_refuses_more_real_digits_than_exist(tmp_path):
    mod = load_script(export_script(load_preset("lstm_sequential_digits")), tmp_path)
    with pytest.raises(SystemExit, match="1,797"):
        mod.main(["--train-size", "1700", "--val-size", "200"])


def test_script_says_where_to_find_missing_fonts(tmp_path):
    mod = load_script(export_script(load_preset("quickstart_cnn")), tmp_path)
    with pytest.raises(SystemExit, match="--fonts-dir"):
        mod.load_data(10, 10, 0, str(tmp_path))


def test_textbook_presets_fix_the_textbook_bugs():
    cnn = export_script(load_preset("textbook_cnn"))
    assert "import torch.nn.functional as F" in cnn and "train_labels" not in cnn
    lstm = export_script(load_preset("textbook_lstm"))
    assert "nn.LSTM(1, 128, batch_first=True)" in lstm  # 1 feature per step, as the data has


def test_cli_writes_the_script(tmp_path, capsys):
    out = tmp_path / "textbook_cnn.py"
    assert cli.main(["export-code", "textbook_cnn", "-o", str(out)]) == 0
    code = out.read_text()
    assert code == export_script(load_preset("textbook_cnn"), "textbook_cnn.py")
    assert "python textbook_cnn.py --epochs 1" in code


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert cli.main(["export-code", "no_such_preset", "-o", str(tmp_path / "x.py")]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'no_such_preset'" in err and "textbook_cnn" in err
    assert cli.main(["export-code", "textbook_cnn", "-o", str(tmp_path / "missing" / "x.py")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.py").exists()
