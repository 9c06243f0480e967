"""A finished run's summary.json: status, final metrics, and what the run ran on.

``final`` holds the last epoch's metrics (the best epoch's where early stopping restored its
weights): the running train loss, the validation loss and metric, and the clean train loss
and metric (``train_eval_loss``, ``train_eval_metric``: eval mode on the training set, the
numbers a train-validation gap is measured with). ``threads`` and ``device`` say where the
run's numbers repeat: the same config and seed give the same metrics on CPU at the same thread
count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .devices import device_label
from .memory_format import memory_format_name

if TYPE_CHECKING:
    from .trainer import Trainer


def run_summary(trainer: Trainer) -> dict[str, Any]:
    """The summary.json contents for ``trainer``'s run (see DESIGN.md)."""
    result = trainer.result
    h = result.history
    metric_key = "val_accuracy" if trainer.classification else "val_mae"
    final: dict[str, float | None] = {"train_loss": None, "val_loss": None, metric_key: None,
                                      "train_eval_loss": None, "train_eval_metric": None}
    if h:
        last = h[-1]
        if trainer.best_state is not None and result.best_epoch is not None:
            last = h[result.best_epoch - 1]
        final = {"train_loss": last.train_loss, "val_loss": last.val_loss, metric_key: last.val_metric,
                 "train_eval_loss": last.train_eval_loss, "train_eval_metric": last.train_eval_metric}
    return {
        "status": result.status,
        "message": result.message,
        "epochs_run": len(h),
        "best_epoch": result.best_epoch,
        "final": final,
        "params": trainer.params,
        "device": device_label(trainer.device),
        "threads": torch.get_num_threads(),
        "memory_format": memory_format_name(trainer.channels_last),
        "wall_seconds": round(result.wall_seconds, 3),
        "samples_per_sec": round(result.samples_per_sec, 1),
        "task": trainer.info.task,
    }
