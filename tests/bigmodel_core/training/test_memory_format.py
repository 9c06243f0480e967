"""channels_last on CPU (training/memory_format.py): the same training as NCHW, up to float rounding.

Both layouts train the same CNN from the same weights on the same batches (with the things a
layout could disturb: batchnorm, dropout in a conv block, augmentation, stride and padding);
the loss curve, every epoch's metrics and the final weights must agree, in the Trainer and in
the exported scripts' plain loop alike.
"""

from __future__ import annotations

import pytest
import torch

from bigmodel_core.config.presets import load_preset
from bigmodel_core.data import augment_images, build_dataset
from bigmodel_core.nn.models import build_model
from bigmodel_core.training import memory_format, plain_loop
from bigmodel_core.training.trainer import BatchEnd, EpochEnd, Trainer

CNN_CHANGES = {
    "data.train_size": 160, "data.val_size": 64, "data.augment": True, "training.epochs": 3,
    "training.batch_size": 32, "training.device": "cpu", "regularization.label_smoothing": 0.1,
    "model.conv": [{"channels": 6, "batchnorm": True, "dropout": 0.3},
                   {"channels": 8, "kernel": 5, "stride": 2, "padding": 1, "pool": "avg"},
                   {"channels": 8, "pool": "none", "residual": True}],
    "model.dense": [{"units": 16, "dropout": 0.2}],
    # SGD with momentum, not Adam: a conv bias before batchnorm has a gradient of 0 up to rounding, and
    # Adam's normalised step would turn that rounding noise into full-size steps in both layouts alike
    "optimizer.name": "momentum", "optimizer.lr": 0.05,
}


def cnn_config():
    return load_preset("quickstart_cnn").with_changes(CNN_CHANGES)


def run(cfg, channels_last):
    trainer = Trainer(cfg, channels_last=channels_last)
    events = list(trainer.run())
    batches = [e.loss for e in events if isinstance(e, BatchEnd)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    return trainer, batches, epochs


def test_the_rule_picks_channels_last_for_a_cnn_on_a_cpu_only():
    cfg = cnn_config()
    ds = build_dataset(cfg.data.name, train_size=32, val_size=16, seed=0)
    cnn = build_model(cfg.model, ds.info)
    lstm_cfg = load_preset("textbook_lstm")
    lstm_ds = build_dataset(lstm_cfg.data.name, train_size=16, val_size=8, seed=0, seq_len=lstm_cfg.data.seq_len)
    lstm = build_model(lstm_cfg.model, lstm_ds.info)
    mkldnn = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
    assert memory_format.channels_last_wanted(cnn, torch.device("cpu")) is mkldnn
    assert memory_format.channels_last_wanted(cnn, torch.device("cuda")) is False  # not measured faster there
    assert memory_format.channels_last_wanted(cnn, torch.device("mps")) is False
    assert memory_format.channels_last_wanted(lstm, torch.device("cpu")) is False  # nothing to convert
    assert memory_format.channels_last_wanted(lstm, "cpu", choice=True) is True  # an explicit choice wins
    assert memory_format.channels_last_wanted(cnn, "cpu", choice=False) is False


def test_channels_last_trains_like_nchw_curve_metrics_and_final_weights():
    cfg = cnn_config()
    fast, fast_batches, fast_epochs = run(cfg, True)
    slow, slow_batches, slow_epochs = run(cfg, False)
    # it really trained channels_last: the conv weights and the data are stored NHWC, the other run's are not
    conv = fast.model.blocks[1].conv.weight  # 6 input channels (with 1, both layouts coincide)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert not slow.model.blocks[1].conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert fast.summary()["memory_format"] == "channels_last"
    assert slow.summary()["memory_format"] == "contiguous (NCHW)"
    assert fast.result.status == slow.result.status == "completed"
    # the loss curve, batch by batch
    assert len(fast_batches) == len(slow_batches) == 15
    assert fast_batches == pytest.approx(slow_batches, rel=1e-5, abs=1e-7)
    # every epoch's metrics, running and clean
    for a, b in zip(fast_epochs, slow_epochs, strict=True):
        for key in ("train_loss", "train_metric", "train_eval_loss", "train_eval_metric", "val_loss", "val_metric"):
            assert getattr(a, key) == pytest.approx(getattr(b, key), rel=1e-5, abs=1e-7), (a.epoch, key)
    # and the weights at the end
    theirs = slow.model.state_dict()
    for name, mine in fast.model.state_dict().items():
        assert torch.allclose(mine, theirs[name], rtol=1e-5, atol=1e-6), name


def test_the_plain_loop_trains_channels_last_like_nchw():
    cfg = cnn_config()
    ds = build_dataset(cfg.data.name, train_size=cfg.data.train_size, val_size=cfg.data.val_size, seed=cfg.seed)
    data = (ds.x_train, ds.y_train, ds.x_val, ds.y_val)
    results = []
    for channels_last in (True, False):
        model, history, summary = plain_loop.train(cfg.to_dict(), data, lambda: build_model(cfg.model, ds.info),
                                                   torch.device("cpu"), True, augment_images, log=lambda *_: None,
                                                   channels_last=channels_last)
        results.append((model, history, summary))
    (m1, h1, s1), (m2, h2, s2) = results
    assert s1["memory_format"] == "channels_last" and s2["memory_format"] == "contiguous (NCHW)"
    for a, b in zip(h1, h2, strict=True):
        for key in ("train_loss", "train_acc", "train_eval_loss", "train_eval_acc", "val_loss", "val_acc"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (a["epoch"], key)
    for (name, p1), p2 in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.allclose(p1, p2, rtol=1e-4, atol=1e-5), name


def test_dropout_masks_follow_logical_positions_not_memory_order():
    from bigmodel_core.nn.seeded_dropout import SeededDropout

    x = torch.randn(4, 3, 5, 5)
    drop = SeededDropout(0.5)
    drop.generator = torch.Generator().manual_seed(7)
    nchw = drop(x)
    drop.generator = torch.Generator().manual_seed(7)
    nhwc = drop(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(nchw, nhwc)
