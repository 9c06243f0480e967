"""AppTest runs page scripts in this process: give them a private run store, and an idle job pool."""

from __future__ import annotations

import os
import tempfile
import time

import pytest

os.environ.setdefault("BIGMODEL_RUNS_DIR", tempfile.mkdtemp(prefix="bigmodel-apptest-runs-"))


@pytest.fixture(autouse=True)
def pool_left_idle():
    """Every page test finds the process's job pool idle: a training one test left running (or
    queued) would otherwise queue the next test's job, or share it, depending on the order."""
    yield
    from ui import state

    pool = state.pool_if_started()
    if pool is None:
        return
    pool.stop_all()
    deadline = time.monotonic() + 60
    while (pool.running_count or pool.queued_count) and time.monotonic() < deadline:
        time.sleep(0.05)
