"""Fixtures the engine's tests share."""

from __future__ import annotations

import pytest
import torch

from bigmodel_core.training.jobs import JobPool
from bigmodel_core.training.store import RunStore


@pytest.fixture
def pool(tmp_path):
    """A one-slot job pool with a private run store under ``tmp_path/runs``, shut down after the test."""
    p = JobPool(max_workers=1, store=RunStore(tmp_path / "runs"), threads_per_job=1, watchdog_interval=0.1)
    yield p
    p.shutdown()


@pytest.fixture
def one_thread():
    """Tiny models: a second intra-op thread only adds spin-waiting on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
