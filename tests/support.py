"""Helpers the engine and page tests share: the smallest useful experiment, and waiting for a job."""

from __future__ import annotations

import time
from collections.abc import Callable

from bigmodel_core.config.specs import ExperimentConfig, parse_config


def tiny_cnn(epochs: int = 1, train_size: int = 64, **changes) -> ExperimentConfig:
    """A 2-channel CNN on 64 synthetic digits (16 for validation), one epoch on the CPU: well under a second."""
    cfg = parse_config({"data": {"name": "synthetic_digits", "train_size": train_size, "val_size": 16},
                        "model": {"family": "cnn", "conv": [{"channels": 2}], "dense": []},
                        "training": {"epochs": epochs, "batch_size": 32, "device": "cpu"}})
    return cfg.with_changes(changes) if changes else cfg


def wait(pred: Callable[[], object], timeout: float = 60.0) -> bool:
    """True as soon as ``pred()`` holds, False if it still does not after ``timeout`` seconds."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.02)
    return False
