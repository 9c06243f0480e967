"""Batch losses read in groups (a GPU's way, training/loop_state.py), checked on the CPU.

Reading 5 losses at a time must give exactly the events of reading each batch at once: the same
batches, losses, steps and learning rates, and a divergence reported at the same batch with the
same message.
"""

from __future__ import annotations

import math

import pytest
import torch

from bigmodel_core.config.presets import load_preset
from bigmodel_core.training import trainer as trainer_module
from bigmodel_core.training.loop_state import PendingLosses
from bigmodel_core.training.plain_loop import loss_read_every
from bigmodel_core.training.trainer import BatchEnd, EpochEnd, RunEnd, Trainer


def events(cfg, monkeypatch, every):
    monkeypatch.setattr(trainer_module, "loss_read_every", lambda device: every)
    return [e for e in Trainer(cfg).run() if not isinstance(e, EpochEnd)]


def comparable(evs):
    return [(e.epoch, e.batch, e.step, e.loss, e.lr) if isinstance(e, BatchEnd) else (e.status, e.message)
            for e in evs]


@pytest.mark.parametrize("lr, status", [(0.01, "completed"), (10.0, "diverged")])
def test_reading_losses_in_groups_gives_the_same_events(monkeypatch, lr, status):
    cfg = load_preset("quickstart_cnn").with_changes({
        "data.train_size": 352, "data.val_size": 32, "training.epochs": 2, "training.batch_size": 32,
        "training.device": "cpu", "optimizer.name": "sgd", "optimizer.lr": lr})
    one, grouped = events(cfg, monkeypatch, 1), events(cfg, monkeypatch, 5)
    assert comparable(grouped) == comparable(one)
    assert isinstance(one[-1], RunEnd) and one[-1].status == status
    if status == "diverged":  # mid-group (batch 4 of a group of 5): the batches before it, then the end
        assert "batch 4" in one[-1].message and len(one) == 4


def test_pending_losses_read_once_per_group_oldest_first():
    pending = PendingLosses(3)
    for i in range(2):
        pending.add(torch.tensor(float(i)), BatchEnd(1, i + 1, 5, i + 1, math.nan, 0.1, 0.0))
    assert not pending.due(last_of_epoch=False) and pending.due(last_of_epoch=True)
    pending.add(torch.tensor(2.5), BatchEnd(1, 3, 5, 3, math.nan, 0.1, 0.0))
    assert pending.due(last_of_epoch=False)
    assert [(e.batch, e.loss) for e in pending.read()] == [(1, 0.0), (2, 1.0), (3, 2.5)]
    assert pending.read() == [] and not pending.due(last_of_epoch=True)


def test_losses_are_read_every_batch_on_a_cpu_and_in_groups_on_a_gpu():
    assert loss_read_every(torch.device("cpu")) == 1
    assert loss_read_every(torch.device("cuda")) > 1 and loss_read_every("mps") > 1
