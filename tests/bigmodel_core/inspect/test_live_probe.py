"""The live view's probe: what it measures equals PyTorch's own computation, it never changes training,
it records when it should, and it stays small."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bigmodel_core.config.presets import load_preset
from bigmodel_core.config.specs import parse_config
from bigmodel_core.inspect import live_probe
from bigmodel_core.training.jobs import Job, JobPool
from bigmodel_core.training.trainer import Trainer


def cnn_cfg(**changes):
    cfg = parse_config({"data": {"name": "synthetic_digits", "train_size": 96, "val_size": 40},
                        "model": {"family": "cnn", "conv": [{"channels": 6}, {"channels": 4, "pool": "avg"}],
                                  "dense": [{"units": 8, "dropout": 0.3}]},
                        "training": {"epochs": 2, "batch_size": 32, "device": "cpu"}})
    return cfg.with_changes(changes) if changes else cfg


def seq_cfg(family="lstm", hidden=20):
    return parse_config({"data": {"name": "sine_wave", "train_size": 64, "val_size": 40, "seq_len": 12},
                         "model": {"family": family, "hidden": hidden, "layers": 2},
                         "training": {"epochs": 2, "batch_size": 32, "device": "cpu"}})


def test_cnn_maps_are_the_first_blocks_conv_and_relu_for_the_input():
    trainer = Trainer(cnn_cfg())
    frame = live_probe.measure(trainer, index=3)
    conv = trainer.model.blocks[0].conv
    x = trainer.x_val[3:4]
    with torch.no_grad():
        ref = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=conv.padding))[0]
        probs = torch.softmax(trainer.model.eval()(x)[0], dim=0)
    assert frame.maps.shape == (live_probe.CHANNELS, 28, 28) and frame.maps_total == 6
    np.testing.assert_allclose(frame.maps.astype(np.float32), ref[:live_probe.CHANNELS].numpy(), atol=2e-3, rtol=2e-3)
    np.testing.assert_array_equal(frame.image, x[0, 0].numpy().astype(np.float16))
    names = trainer.info.class_names
    assert frame.truth == names[int(trainer.dataset.y_val[3])]
    k = int(probs.argmax())
    assert frame.guess == f"{names[k]} ({float(probs[k]):.0%})"
    assert frame.maps_name == "block 1 after relu"


@pytest.mark.parametrize("family", ["lstm", "gru", "rnn"])
def test_hidden_state_is_the_first_layers_output_of_pytorch(family):
    trainer = Trainer(seq_cfg(family))
    frame = live_probe.measure(trainer, index=5)
    x = trainer.x_val[5:6]
    with torch.no_grad():
        ref, _ = trainer.model.rnn[0](x)
    assert frame.hidden.shape == (12, live_probe.UNITS) and frame.units_total == 20
    np.testing.assert_allclose(frame.hidden.astype(np.float32), ref[0, :, :live_probe.UNITS].numpy(),
                               atol=2e-3, rtol=2e-3)
    assert list(frame.time_steps) == list(range(12))
    expected = {"lstm": ["input", "forget", "output"], "gru": ["reset", "update"], "rnn": []}[family]
    assert list(frame.gates) == expected
    for values in frame.gates.values():  # sigmoid gates, averaged over units: between 0 and 1
        assert values.shape == (12,) and ((values >= 0) & (values <= 1)).all()


def test_gradient_norms_are_each_layers_norm_of_its_gradients():
    trainer = Trainer(cnn_cfg())
    out = trainer.model(trainer.x_train[:16])
    F.cross_entropy(out, trainer.y_train[:16]).backward()
    names, norms = live_probe.gradient_norms(trainer.model)
    by_module: dict[str, list[torch.Tensor]] = {}
    for name, p in trainer.model.named_parameters():
        by_module.setdefault(name.rpartition(".")[0], []).append(p.grad.flatten())
    assert list(names) == list(by_module)
    for name, norm in zip(names, norms):
        assert norm == pytest.approx(float(torch.cat(by_module[name]).norm()), rel=1e-5)
    # labelled as the Build page's table names the layers
    labelled, _ = live_probe.gradient_norms(trainer.model, {"blocks.0.conv": "1. conv 3x3, 6"})
    assert labelled[0] == "1. conv 3x3, 6"


def test_a_layer_without_gradient_reads_nan():
    trainer = Trainer(cnn_cfg())
    _, norms = live_probe.gradient_norms(trainer.model)
    assert all(math.isnan(n) for n in norms)


def final_state(cfg, probe: bool):
    trainer = Trainer(cfg)
    frames = []
    if probe:
        live_probe.attach(trainer, frames.append, every_seconds=0.0)  # measure after every backward pass
    trainer.fit()
    return trainer, frames


@pytest.mark.parametrize("cfg", [cnn_cfg(**{"model.conv.0.batchnorm": True}), seq_cfg("lstm")])
def test_probing_never_changes_training(cfg):
    plain, _ = final_state(cfg, probe=False)
    probed, frames = final_state(cfg, probe=True)
    assert len(frames) > 4
    assert [e.val_loss for e in plain.result.history] == [e.val_loss for e in probed.result.history]
    for (k, a), b in zip(plain.model.state_dict().items(), probed.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_frames_before_training_after_each_epoch_and_every_few_seconds():
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0  # every read of the clock is one second later
        return now[0]

    trainer = Trainer(cnn_cfg(**{"training.epochs": 3}))
    frames = []
    live_probe.attach(trainer, frames.append, every_seconds=2.5, clock=clock)
    trainer.fit()
    whens = [f.when for f in frames]
    assert whens[0] == "before training" and frames[0].grad_norms == () and frames[0].step == 0
    ends = [f for f in frames if f.when.startswith("after epoch")]
    assert [f.when for f in ends] == ["after epoch 1", "after epoch 2", "after epoch 3"]
    assert [f.step for f in ends] == [3, 6, 9] and [f.epoch for f in ends] == [1, 2, 3]
    inside = [f for f in frames if f.when.startswith("epoch ")]
    assert inside and all(f.step > 0 for f in inside)
    assert inside[0].when.endswith("of 3")
    steps = [f.step for f in frames]
    assert steps == sorted(steps)
    assert all(len(f.grad_norms) == 4 and all(n > 0 for n in f.grad_norms) for f in frames[1:])


@pytest.mark.parametrize("preset", ["quickstart_cnn", "textbook_cnn", "lstm_sequential_digits", "textbook_lstm"])
def test_a_frame_is_a_few_kilobytes(preset):
    cfg = load_preset(preset).with_changes({"data.train_size": 64, "data.val_size": 16, "training.device": "cpu"})
    frame = live_probe.measure(Trainer(cfg))
    assert 0 < frame.nbytes < 8_000


def test_the_train_pages_trainer_keeps_the_latest_frame_in_the_job():
    pool = JobPool(max_workers=1, threads_per_job=1)
    try:
        job = pool.submit(Job(cnn_cfg(), owner="me", save=False, make_trainer=live_probe.make_trainer))
        assert job.wait_until_finished(120)
        assert job.status == "completed"
        frame = job.snapshot().extras[live_probe.LIVE]
        assert frame.when == "after epoch 2" and frame.epoch == 2
        assert frame.grad_layers[0] == "1. conv 3x3, 6"
    finally:
        pool.shutdown()
