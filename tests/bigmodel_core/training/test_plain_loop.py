"""The exported scripts' training loop (training/plain_loop.py), checked directly against the Trainer.

Same config, seed and thread count: the plain loop and the Trainer share data, initial
weights, data order and every seeded draw, so the per-epoch metrics agree to float32
rounding (the tests allow a relative 1e-5).
"""

from __future__ import annotations

import ast
import inspect
import sys

import pytest
import torch

from bigmodel_core.config.presets import load_preset
from bigmodel_core.data import augment_images, build_dataset
from bigmodel_core.export import COPIED_MODULES, export_script
from bigmodel_core.nn import models, seeded_dropout
from bigmodel_core.nn.models import build_model
from bigmodel_core.training import plain_loop
from bigmodel_core.training.trainer import Trainer

THIRD_PARTY = {"torch", "numpy", "PIL", "sklearn"}

CASES = {
    # a CNN preset with every regularizer the script supports
    "cnn-batchnorm-dropout-l1-l2-smoothing-clip-cosine-augment": (
        "quickstart_cnn",
        {"data.train_size": 96, "data.val_size": 48, "data.augment": True, "training.epochs": 3,
         "training.batch_size": 32, "model.conv": [
             {"channels": 4, "batchnorm": True, "dropout": 0.2},
             {"channels": 6, "kernel": 5, "stride": 2, "padding": 1, "activation": "gelu", "pool": "avg"}],
         "model.dense": [{"units": 12, "activation": "tanh", "dropout": 0.3}],
         "optimizer.name": "adamw", "optimizer.lr": 0.01, "optimizer.weight_decay": 0.05,
         "optimizer.schedule": "cosine", "regularization.l1": 1e-4, "regularization.l2": 1e-3,
         "regularization.label_smoothing": 0.1, "regularization.grad_clip": 0.5},
    ),
    # an RNN preset with stacked layers, dropout between them, a step schedule and early stopping
    "lstm-dropout-step-schedule-early-stopping-restore": (
        "lstm_sequential_digits",
        {"data.train_size": 96, "data.val_size": 48, "training.epochs": 6, "training.batch_size": 16,
         "model.hidden": 8, "model.layers": 2, "model.dropout": 0.3,
         "model.dense": [{"units": 6, "dropout": 0.2}], "optimizer.name": "nesterov", "optimizer.lr": 0.8,
         "optimizer.schedule": "step", "optimizer.step_size": 1, "optimizer.gamma": 0.5,
         "regularization.grad_clip": 1.0, "regularization.early_stopping": {"patience": 1, "restore_best": True}},
    ),
    # a regression preset: MSE and MAE instead of cross-entropy and accuracy
    "gru-regression-rmsprop": (
        "gru_adding",
        {"data.train_size": 64, "data.val_size": 32, "data.seq_len": 10, "training.epochs": 2,
         "training.batch_size": 16, "model.hidden": 6, "optimizer.name": "rmsprop", "optimizer.lr": 0.01},
    ),
}


@pytest.mark.parametrize("key", list(CASES))
def test_plain_loop_gives_the_trainers_metrics_epoch_by_epoch(key):
    preset, changes = CASES[key]
    cfg = load_preset(preset).with_changes({**changes, "training.device": "cpu"})
    trainer = Trainer(cfg)
    trainer.fit()
    expected = trainer.summary()
    assert expected["status"] == "completed", expected

    ds = build_dataset(cfg.data.name, train_size=cfg.data.train_size, val_size=cfg.data.val_size, seed=cfg.seed,
                       image_size=cfg.data.image_size, seq_len=cfg.data.seq_len)
    classification = ds.info.task == "classification"
    augment = augment_images if ds.info.kind == "image" else None
    model, history, summary = plain_loop.train(
        cfg.to_dict(), (ds.x_train, ds.y_train, ds.x_val, ds.y_val), lambda: build_model(cfg.model, ds.info),
        torch.device("cpu"), classification, augment, log=lambda *_: None)

    metric = "acc" if classification else "mae"
    assert len(history) == len(trainer.result.history) == expected["epochs_run"]
    for mine, theirs in zip(history, trainer.result.history, strict=True):
        assert mine["epoch"] == theirs.epoch
        for key_, value in [("train_loss", theirs.train_loss), (f"train_{metric}", theirs.train_metric),
                            ("val_loss", theirs.val_loss), (f"val_{metric}", theirs.val_metric),
                            ("lr", theirs.lr)]:
            assert mine[key_] == pytest.approx(value, rel=1e-5, abs=1e-7), (mine["epoch"], key_)
    assert summary["status"] == "completed"
    assert summary["best_epoch"] == expected["best_epoch"] and summary["params"] == expected["params"]
    assert summary["final"].keys() == expected["final"].keys()
    for key_, value in expected["final"].items():
        assert summary["final"][key_] == pytest.approx(value, rel=1e-5, abs=1e-7), key_
    # the weights at the end are the same too (the best epoch's, where early stopping restores them)
    for (name, mine_p), theirs_p in zip(model.state_dict().items(), trainer.model.state_dict().values(), strict=True):
        assert torch.allclose(mine_p, theirs_p, rtol=1e-4, atol=1e-6), name


def test_the_early_stopping_case_really_stops_early_and_restores():
    preset, changes = CASES["lstm-dropout-step-schedule-early-stopping-restore"]
    cfg = load_preset(preset).with_changes({**changes, "training.device": "cpu"})
    trainer = Trainer(cfg)
    trainer.fit()
    summary = trainer.summary()
    # otherwise the comparison above would not exercise early stopping and the restore
    assert summary["epochs_run"] < cfg.training.epochs
    assert summary["best_epoch"] < summary["epochs_run"]


def _imports(module) -> list[tuple[int, str]]:
    """(level, module) of every import in ``module``, in functions too."""
    found = []
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


@pytest.mark.parametrize("module", COPIED_MODULES, ids=lambda m: m.__name__)
def test_copied_modules_are_self_contained(module):
    """Only the standard library, torch, numpy, Pillow, scikit-learn and other copied modules."""
    copied = {m.__name__ for m in COPIED_MODULES}
    for level, name in _imports(module):
        if level:  # relative: "from .x" is a sibling, "from ..x" one package up
            target = ".".join(module.__name__.split(".")[:-level] + [name])
            assert target in copied, (module.__name__, name)
        else:
            top = name.split(".")[0]
            assert top in THIRD_PARTY or top in sys.stdlib_module_names, (module.__name__, name)
            assert top != "bigmodel_core"


def test_the_script_carries_the_engine_source_verbatim():
    cfg = load_preset("quickstart_cnn").with_changes(
        {"model.dense": [{"units": 8, "dropout": 0.5}], "data.augment": True})
    code = export_script(cfg)
    for obj in (plain_loop.train, plain_loop.command_line, plain_loop.make_optimizer, seeded_dropout.SeededDropout,
                augment_images):
        assert inspect.getsource(obj) in code, obj.__name__
    # and nothing is in it twice
    assert code.count("def train(") == 1 and code.count("class SeededDropout(") == 1


def test_old_import_paths_keep_working():
    assert models.SeededDropout is seeded_dropout.SeededDropout
