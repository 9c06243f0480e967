import time

from bigmodel_core.config.specs import parse_config
from bigmodel_core.training.jobs import Job, JobPool
from bigmodel_core.training.store import RunStore
from tests.support import wait


def cfg(epochs=1, train_size=256, **changes):
    c = parse_config({"data": {"name": "synthetic_digits", "train_size": train_size, "val_size": 64},
                      "model": {"family": "cnn", "conv": [{"channels": 4}], "dense": []},
                      "training": {"epochs": epochs, "batch_size": 32, "device": "cpu"}})
    return c.with_changes(changes) if changes else c


def test_job_runs_stores_and_is_private(pool):
    job = pool.submit(Job(cfg(), owner="alice"))
    assert wait(lambda: job.status == "completed")
    snap = pool.snapshot("alice", job.job_id)
    assert snap.finished and snap.run_id and len(snap.epochs) == 1 and snap.steps
    assert snap.summary["final"]["val_accuracy"] is not None
    assert pool.get("bob", job.job_id) is None
    assert pool.snapshot("bob", job.job_id) is None
    assert [r.run_id for r in pool.store.list("alice")] == [snap.run_id]
    assert pool.store.list("bob") == []


def test_cap_holds_and_queue_positions_are_visible(pool):
    jobs = [pool.submit(Job(cfg(epochs=3, train_size=512), owner=f"u{i}")) for i in range(3)]
    assert wait(lambda: jobs[0].status == "running")
    assert pool.position(jobs[1]) == 1 and pool.position(jobs[2]) == 2
    assert pool.snapshot("u2", jobs[2].job_id).queue_position == 2
    for j in jobs:
        j.stop()
    assert wait(lambda: all(j.status in ("stopped", "completed") for j in jobs))
    assert pool.peak_running == 1


def test_stop_a_queued_job_never_runs_it(pool):
    a = pool.submit(Job(cfg(epochs=5, train_size=1024), owner="a"))
    b = pool.submit(Job(cfg(), owner="b"))
    b.stop()
    a.stop()
    assert wait(lambda: a.status == "stopped")
    time.sleep(0.2)
    assert b.status == "stopped" and b.snapshot().step == 0


def test_failing_trainer_marks_job_failed_and_pool_goes_on(pool):
    def broken(job):
        raise RuntimeError("boom in the worker")

    bad = pool.submit(Job(cfg(), owner="a", make_trainer=broken))
    good = pool.submit(Job(cfg(), owner="a"))
    assert wait(lambda: good.status == "completed")
    assert bad.status == "failed" and "boom in the worker" in bad.message


def test_unwatched_job_is_stopped_by_heartbeat(tmp_path):
    pool = JobPool(max_workers=1, store=RunStore(tmp_path), threads_per_job=1, idle_stop_seconds=0.5,
                   watchdog_interval=0.1)
    try:
        job = pool.submit(Job(cfg(epochs=50, train_size=2048), owner="a"))
        assert wait(lambda: job.status == "stopped", timeout=30)
        assert "no page watched" in job.message
        nxt = pool.submit(Job(cfg(), owner="b"))
        assert wait(lambda: nxt.status in ("completed", "stopped"), timeout=30)
    finally:
        pool.shutdown()


def test_pause_resume(pool):
    job = pool.submit(Job(cfg(epochs=20, train_size=1024), owner="a"))
    assert wait(lambda: job.snapshot().step > 0)
    job.pause()
    time.sleep(0.2)
    s1 = job.snapshot().step
    time.sleep(0.3)
    assert job.snapshot().step == s1 and job.status == "paused"
    job.resume()
    assert wait(lambda: job.snapshot().step > s1)
    job.stop()
    assert wait(lambda: job.status == "stopped")


def test_epoch_hooks_run_and_hook_errors_do_not_kill_training(pool):
    seen = []

    def hook(job, trainer, ev):
        seen.append(ev.epoch)
        raise ValueError("probe failed")

    job = pool.submit(Job(cfg(epochs=2), owner="a", epoch_hooks=[hook]))
    assert wait(lambda: job.status == "completed")
    assert seen == [1, 2] and "probe failed" in job.snapshot().extras["hook_error"]


def test_waits_for_the_first_step_and_for_the_end_return_when_they_happen(pool):
    running = pool.submit(Job(cfg(epochs=20, train_size=1024), owner="a"))
    assert running.wait_for_first_step(timeout=30)
    assert running.snapshot().step >= 1 and running.snapshot().batch_losses
    queued = pool.submit(Job(cfg(), owner="b"))
    assert not queued.wait_for_first_step(timeout=0.2)  # the one slot is busy: no point yet
    assert not running.wait_until_finished(timeout=0.1)
    queued.stop()
    assert queued.wait_for_first_step(timeout=1)  # stopped before it ran: nothing more to wait for
    assert queued.wait_until_finished(timeout=1) and queued.status == "stopped"
    running.stop()
    assert running.wait_until_finished(timeout=30) and running.status == "stopped" and running.summary
    failing = pool.submit(Job(cfg(), owner="c", make_trainer=lambda job: 1 / 0))
    assert failing.wait_for_first_step(timeout=30) and failing.status == "failed"
