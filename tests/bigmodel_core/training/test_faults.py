"""Faults a shared server meets: a killed process, a full disk, a store it cannot write.

A process killed at any moment leaves only complete runs in the listing; a training whose
run cannot be saved still finishes, keeps its weights for download and says why nothing
was saved; the pool goes on serving.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bigmodel_core.training.jobs import Job, JobPool
from bigmodel_core.training.store import RunStore
from tests.support import tiny_cnn as tiny
from tests.support import wait

ROOT = Path(__file__).resolve().parents[3]

WRITER = textwrap.dedent("""
    import sys, torch
    from bigmodel_core.config.specs import ExperimentConfig
    from bigmodel_core.training.store import RunStore
    store = RunStore(sys.argv[1])
    cfg = ExperimentConfig()
    # a few MB of weights so that a save takes long enough to be killed in the middle of it
    state = {f"layer{i}": torch.full((256, 1024), float(i)) for i in range(4)}
    rows = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.0 / e} for e in range(1, 4)]
    n = 0
    while True:
        print("saving", n, flush=True)
        store.save(cfg, rows, {"status": "completed", "n": n}, state, owner="writer")
        n += 1
""")


def kill_while_saving(root: Path, saves_before_kill: int) -> None:
    """Start the writer, time its saves, and SIGKILL it about halfway through the next one."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    try:
        started = []
        for line in proc.stdout:
            started.append(time.monotonic())
            if line.strip() == f"saving {saves_before_kill}":
                break
        time.sleep((started[-1] - started[-2]) / 2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        proc.stdout.close()


def test_sigkill_while_saving_leaves_only_complete_runs(tmp_path):
    root = tmp_path / "runs"
    kill_while_saving(root, 3)
    # what a restarted server sees
    store = RunStore(root)
    runs = store.list("writer")
    assert len(runs) >= 2
    for run in runs:
        again = store.load(run.run_id, owner="writer")
        assert again.summary["status"] == "completed"
        assert [m["epoch"] for m in again.metrics] == [1, 2, 3]
        state = again.load_state()
        assert sorted(state) == ["layer0", "layer1", "layer2", "layer3"]
        assert all(t.shape == (256, 1024) for t in state.values())
    listed = {r.run_id for r in runs}
    for d in root.iterdir():
        summary = d / "summary.json"
        if summary.exists():
            # no summary is ever half written, and a folder with one holds a whole run
            json.loads(summary.read_text())
            assert d.name in listed
            assert {"config.json", "metrics.csv", "model.safetensors"} <= {p.name for p in d.iterdir()}
        else:
            assert d.name not in listed  # the save that was cut short is not offered
    assert sorted(r.summary["n"] for r in runs) == list(range(len(runs)))


def test_pool_job_whose_save_hits_a_full_disk_completes_and_says_why(tmp_path, monkeypatch):
    import bigmodel_core.training.store as store_mod

    pool = JobPool(max_workers=1, store=RunStore(tmp_path / "runs"), threads_per_job=1, watchdog_interval=0.1)
    real = store_mod.os.replace

    def full(src, dst):
        raise OSError(28, "No space left on device")

    try:
        monkeypatch.setattr(store_mod.os, "replace", full)
        job = pool.submit(Job(tiny(), owner="alice"))
        assert wait(lambda: job.status in ("completed", "failed"))
        snap = pool.snapshot("alice", job.job_id)
        assert snap.status == "completed"
        assert snap.run_id is None
        assert "the run was not saved" in snap.message and "disk is full" in snap.message
        assert snap.summary["final"]["val_accuracy"] is not None
        assert job.final_state  # the weights can still be downloaded from the page
        assert pool.store.list("alice") == []
        assert not [p for p in (tmp_path / "runs").rglob("*") if p.is_file() and not p.name.startswith(".")]
        # once there is room again the same pool saves the next run
        monkeypatch.setattr(store_mod.os, "replace", real)
        nxt = pool.submit(Job(tiny(), owner="alice"))
        assert wait(lambda: nxt.status == "completed")
        assert nxt.run_id and [r.run_id for r in pool.store.list("alice")] == [nxt.run_id]
    finally:
        pool.shutdown()


def test_pool_job_with_an_unwritable_store_completes_and_says_why(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the run folder should be")
    pool = JobPool(max_workers=1, store=RunStore(blocker), threads_per_job=1, watchdog_interval=0.1)
    try:
        job = pool.submit(Job(tiny(), owner="alice"))
        assert wait(lambda: job.status in ("completed", "failed"))
        assert job.status == "completed" and job.run_id is None
        assert "the run was not saved" in job.message and str(blocker) in job.message
        assert blocker.read_text() == "a file where the run folder should be"
    finally:
        pool.shutdown()


def test_pool_job_with_a_read_only_store_completes_and_says_why(tmp_path, monkeypatch):
    import bigmodel_core.training.store as store_mod

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(store_mod.tempfile, "mkstemp", read_only)  # as root, chmod would not stop us
    pool = JobPool(max_workers=1, store=RunStore(tmp_path / "runs"), threads_per_job=1, watchdog_interval=0.1)
    try:
        job = pool.submit(Job(tiny(), owner="alice"))
        assert wait(lambda: job.status in ("completed", "failed"))
        assert job.status == "completed" and job.run_id is None
        assert "the run was not saved" in job.message and "permission denied" in job.message
    finally:
        pool.shutdown()


def test_a_stopped_job_whose_save_fails_keeps_its_stop_reason(tmp_path, monkeypatch):
    import bigmodel_core.training.store as store_mod

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_mod.os, "replace", full)
    seen = []

    def stop_after_first_epoch(job, trainer, ev):
        seen.append(ev.epoch)
        job.stop()

    pool = JobPool(max_workers=1, store=RunStore(tmp_path / "runs"), threads_per_job=1, watchdog_interval=0.1)
    try:
        job = pool.submit(Job(tiny(epochs=5), owner="a", epoch_hooks=[stop_after_first_epoch]))
        assert wait(lambda: job.status in ("stopped", "completed", "failed"))
        assert job.status == "stopped" and seen == [1]
        assert "stopped during epoch 2" in job.message and "the run was not saved" in job.message
    finally:
        pool.shutdown()


def test_a_damaged_run_folder_does_not_break_the_listing(tmp_path):
    store = RunStore(tmp_path)
    good = store.save(tiny(), [{"epoch": 1}], {"status": "completed"}, None, owner="a")
    bad = store.save(tiny(), [{"epoch": 1}], {"status": "completed"}, None, owner="a")
    (tmp_path / bad / "config.json").write_text("{ truncated")
    torn = tmp_path / "20260101-000000-train-0123456789ab"
    torn.mkdir()
    (torn / "summary.json").write_text('{"owner": "a", "status": "compl')
    assert [r.run_id for r in store.list("a")] == [good]
