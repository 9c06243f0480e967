"""The Ray executor against a local Ray this module starts: train, control, failures, the store, the CLI."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (python -m pip install -r requirements-ray.txt)")

from bigmodel_core.cli import main  # noqa: E402
from bigmodel_core.config.presets import load_preset  # noqa: E402
from bigmodel_core.inspect import live_probe, probes  # noqa: E402
from bigmodel_core.training.jobs import Job, JobPool  # noqa: E402
from bigmodel_core.training.ray_executor import RayExecutor  # noqa: E402
from bigmodel_core.training.store import RunStore  # noqa: E402
from tests.support import tiny_cnn  # noqa: E402
from tests.support import wait as wait_every  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def cfg(epochs=1, train_size=256, **changes):
    return tiny_cnn(epochs, train_size, val_size=64, channels=4, **changes)


def wait(pred, timeout=60.0):
    return wait_every(pred, timeout, poll=0.05)  # each look may ask the actor over Ray


@pytest.fixture(scope="module")
def local_ray():
    # the workers import this checkout, as the server's own code
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def pool(local_ray, tmp_path_factory):
    p = JobPool(store=RunStore(tmp_path_factory.mktemp("runs")), threads_per_job=1, watchdog_interval=0.2,
                executor=RayExecutor(threads_per_job=1))
    yield p
    p.shutdown()


def train_job(c, owner):
    return Job(c, owner=owner, kind="train", label="on ray", make_trainer=live_probe.make_trainer,
               epoch_hooks=[probes.epoch_hook])


def test_a_training_runs_on_ray_with_live_snapshots_probes_and_a_reopenable_run(pool):
    assert pool.max_workers == 2  # the local Ray's 2 CPUs at 1 thread per job
    job = pool.submit(train_job(cfg(epochs=2), "ws-a"))
    assert job.wait_for_first_step(60)
    assert job.wait_until_finished(120) and job.status == "completed", job.message
    snap = pool.snapshot("ws-a", job.job_id)
    assert len(snap.epochs) == 2 and snap.steps and snap.batch_losses and snap.device == "CPU"
    assert isinstance(snap.extras[probes.PROBES], probes.ProbeResult) and snap.extras[probes.PROBES].epoch == 2
    assert snap.extras[live_probe.LIVE].epoch == 2 and "Ray worker process" in snap.extras["worker"]
    assert int(snap.extras["worker"].split()[-1]) != os.getpid()  # it trained elsewhere
    run = pool.store.load(snap.run_id, owner="ws-a")
    assert [m["val_loss"] for m in run.metrics] == [e["val_loss"] for e in snap.epochs]
    assert run.summary["final"] == job.summary["final"] and run.summary["owner"] == "ws-a"
    assert run.load_state().keys() == job.final_state.keys()
    assert probes.probes_for_run(run, 0).index == 0  # the inspect area reopens it
    assert pool.store.list("ws-b") == []


def test_pause_resume_and_stop_within_a_batch(pool):
    job = pool.submit(train_job(cfg(epochs=40, train_size=2048), "ws-a"))
    assert wait(lambda: job.snapshot().step > 2)
    job.pause()
    time.sleep(1.0)  # the driver forwards it within a poll; the worker pauses before its next batch
    s1 = job.snapshot().step
    time.sleep(1.0)
    assert job.snapshot().step <= s1 + 1 and job.status == "paused"
    job.resume()
    assert wait(lambda: job.snapshot().step > s1 + 2) and job.status == "running"
    job.stop()
    assert job.wait_until_finished(30) and job.status == "stopped"
    assert "stopped during epoch" in job.message


def test_a_diverged_run_is_reported_as_such(pool):
    c = load_preset("quickstart_cnn").with_changes({"optimizer.name": "sgd", "optimizer.lr": 10.0, "training.epochs": 3,
                                                    "data.train_size": 512, "data.val_size": 64,
                                                    "training.device": "cpu"})
    job = pool.submit(Job(c, owner="ws-a"))
    assert job.wait_until_finished(120)
    assert job.status == "diverged" and "learning rate" in job.message


def test_a_worker_process_killed_mid_run_fails_the_job_and_the_server_goes_on(pool):
    job = pool.submit(Job(cfg(epochs=40, train_size=2048), owner="ws-a"))
    assert wait(lambda: job.snapshot().step > 2 and "worker" in job.extras)
    os.kill(int(job.extras["worker"].split()[-1]), signal.SIGKILL)
    assert job.wait_until_finished(60) and job.status == "failed"
    assert "WorkerLost" in job.message and "died" in job.message
    after = pool.submit(Job(cfg(), owner="ws-a"))
    assert after.wait_until_finished(120) and after.status == "completed"


def test_cli_compare_over_ray_gives_the_in_process_metrics(local_ray, tmp_path, capsys):
    config = tmp_path / "base.json"
    config.write_text(cfg(epochs=2).to_json())
    args = ["compare", str(config), "--vary", "optimizer.name=sgd,adam", "--threads", "1", "--workers", "2"]
    assert main([*args, "--out", str(tmp_path / "here")]) == 0
    assert main([*args, "--executor", "ray", "--out", str(tmp_path / "ray")]) == 0
    assert "on the Ray cluster" in capsys.readouterr().err
    here = json.loads((tmp_path / "here" / "comparison.json").read_text())
    there = json.loads((tmp_path / "ray" / "comparison.json").read_text())
    keys = ("epoch", "train_loss", "train_metric", "val_loss", "val_metric")
    measured = [[[e[k] for k in keys] for e in r["epochs"]] for r in here["runs"]]
    assert [[[e[k] for k in keys] for e in r["epochs"]] for r in there["runs"]] == measured
    assert len(measured) == 2 and all(len(epochs) == 2 for epochs in measured)
