"""Helpers the engine and page tests share: the smallest useful experiment, and waiting for a job."""

from __future__ import annotations

import time
from collections.abc import Callable

from bigmodel_core.config.specs import ExperimentConfig, parse_config


def tiny_cnn(epochs: int = 1, train_size: int = 64, val_size: int = 16, channels: int = 2,
             **changes) -> ExperimentConfig:
    """A 2-channel CNN on 64 synthetic digits (16 for validation), one epoch on the CPU: well under a second."""
    cfg = parse_config({"data": {"name": "synthetic_digits", "train_size": train_size, "val_size": val_size},
                        "model": {"family": "cnn", "conv": [{"channels": channels}], "dense": []},
                        "training": {"epochs": epochs, "batch_size": 32, "device": "cpu"}})
    return cfg.with_changes(changes) if changes else cfg


def wait(pred: Callable[[], object], timeout: float = 60.0, poll: float = 0.02) -> bool:
    """True as soon as ``pred()`` holds (asked every ``poll`` s), False if it still does not after ``timeout`` s."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(poll)
    return False
