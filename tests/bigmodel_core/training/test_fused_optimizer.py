"""Adam and AdamW step with torch's fused kernel on a CPU: the same training as torch's default loop,
up to float rounding, in the Trainer and in the exported scripts' plain loop alike."""

from __future__ import annotations

import pytest
import torch

from bigmodel_core.config.presets import load_preset
from bigmodel_core.training import plain_loop
from bigmodel_core.training.optim import build_optimizer
from bigmodel_core.training.trainer import BatchEnd, EpochEnd, Trainer

KEYS = ("train_loss", "train_metric", "train_eval_loss", "train_eval_metric", "val_loss", "val_metric")


def config(name="adam"):
    return load_preset("quickstart_cnn").with_changes({
        "data.train_size": 320, "data.val_size": 64, "training.epochs": 3, "training.batch_size": 32,
        "training.device": "cpu", "optimizer.name": name, "optimizer.weight_decay": 0.01})


def test_the_rule_fuses_adam_and_adamw_on_a_cpu_only():
    cpu = [torch.zeros(3)]
    assert plain_loop.fused_wanted("adam", cpu) and plain_loop.fused_wanted("adamw", cpu)
    for name in ("sgd", "momentum", "nesterov", "rmsprop", "adagrad"):
        assert not plain_loop.fused_wanted(name, cpu), name
    assert not plain_loop.fused_wanted("adam", [torch.zeros(3, device="meta")])  # neither a CPU nor CUDA
    assert not plain_loop.fused_wanted("adam", cpu, fused=False)
    model = Trainer(config()).model
    assert build_optimizer(config().optimizer, model).defaults["fused"] is True
    assert build_optimizer(config().optimizer, model, fused=False).defaults["fused"] is False
    assert not build_optimizer(config("momentum").optimizer, model).defaults.get("fused")


def run(cfg, fused):
    trainer = Trainer(cfg, fused_optimizer=fused)
    events = list(trainer.run())
    return trainer, [e.loss for e in events if isinstance(e, BatchEnd)], [e for e in events if isinstance(e, EpochEnd)]


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_the_fused_step_trains_like_torchs_default_loop(name):
    cfg = config(name)
    fast, fast_batches, fast_epochs = run(cfg, None)  # the engine's rule: fused on a CPU
    slow, slow_batches, slow_epochs = run(cfg, False)
    assert fast.optimizer.defaults["fused"] is True and slow.optimizer.defaults["fused"] is False
    assert len(fast_batches) == len(slow_batches) == 30
    assert fast_batches == pytest.approx(slow_batches, rel=1e-4, abs=1e-6)
    for a, b in zip(fast_epochs, slow_epochs, strict=True):
        for key in KEYS:
            assert getattr(a, key) == pytest.approx(getattr(b, key), rel=1e-4, abs=1e-6), (a.epoch, key)
    theirs = slow.model.state_dict()
    for key, mine in fast.model.state_dict().items():
        assert torch.allclose(mine, theirs[key], rtol=1e-4, atol=1e-5), key
    # the same rounding every time: the fused step keeps a CPU training deterministic
    _, again, _ = run(cfg, None)
    assert again == fast_batches


def test_the_exported_loop_fuses_where_the_engine_does():
    model = Trainer(config()).model
    for name in ("adam", "adamw", "momentum"):
        settings = config(name).to_dict()["optimizer"]
        exported, _ = plain_loop.make_optimizer(model, settings)
        engine = build_optimizer(config(name).optimizer, model)
        assert bool(exported.defaults.get("fused")) == bool(engine.defaults.get("fused")) == (name != "momentum")
