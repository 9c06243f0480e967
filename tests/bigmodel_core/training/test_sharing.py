"""Identical trainings shared: one training for many learners, a run for each, leaving, isolation."""

import time

import pytest

from bigmodel_core.inspect import live_probe, probes
from bigmodel_core.training.jobs import Job, JobPool
from bigmodel_core.training.sharing import share_key
from bigmodel_core.training.store import RunStore
from tests.support import tiny_cnn, wait


def cfg(epochs=1, train_size=256, **changes):
    return tiny_cnn(epochs, train_size, val_size=64, channels=4, **changes)


def train_job(c, owner):
    # what the Train page submits
    return Job(c, owner=owner, kind="train", label=f"run of {owner}", make_trainer=live_probe.make_trainer,
               epoch_hooks=[probes.epoch_hook])


@pytest.fixture
def pool(tmp_path):
    p = JobPool(max_workers=2, store=RunStore(tmp_path), threads_per_job=1, watchdog_interval=0.1,
                share_identical=True)
    yield p
    p.shutdown()


def test_eight_learners_on_one_lesson_train_once_and_each_gets_a_run(pool):
    c = cfg(epochs=2)
    jobs = [pool.submit(train_job(c, f"ws-{i}")) for i in range(8)]
    odd = pool.submit(train_job(c.with_changes({"optimizer.lr": 0.01}), "ws-odd"))  # one setting changed
    assert wait(lambda: pool.stats()["running"] == 2)
    assert pool.stats()["shared_trainings"] == 2 and pool.stats()["following"] == 9
    snaps = [pool.snapshot(j.owner, j.job_id) for j in jobs]
    assert [s.joined for s in snaps] == [False] + [True] * 7
    assert all(s.shared_with == 7 for s in snaps) and pool.snapshot("ws-odd", odd.job_id).shared_with == 0
    assert all(j.wait_until_finished(60) for j in [*jobs, odd])
    assert pool.peak_running == 2  # 9 submissions, 2 trainings: the 8 identical ones and the odd one
    assert [j.status for j in jobs] == ["completed"] * 8
    runs = [pool.store.list(f"ws-{i}") for i in range(8)]
    assert all(len(r) == 1 for r in runs)
    ids = {r[0].run_id for r in runs}
    assert len(ids) == 8 and {j.run_id for j in jobs} == ids
    assert all(r[0].summary["owner"] == f"ws-{i}" and r[0].summary["label"] == f"run of ws-{i}"
               for i, r in enumerate(runs))
    assert all(r[0].metrics == runs[0][0].metrics for r in runs)
    first = runs[0][0].load_state()
    for r in runs[1:]:
        state = r[0].load_state()
        assert state.keys() == first.keys() and all(state[k].equal(first[k]) for k in first)
    odd_run = pool.store.list("ws-odd")[0]
    assert odd_run.metrics != runs[0][0].metrics and odd_run.run_id not in ids
    # the curves, probes and inspect area of every member are the training's
    s0, s7 = pool.snapshot("ws-0", jobs[0].job_id), pool.snapshot("ws-7", jobs[7].job_id)
    assert s0.epochs == s7.epochs and s0.steps == s7.steps and s7.summary == s0.summary
    assert probes.PROBES in s7.extras and live_probe.LIVE in s7.extras
    assert jobs[7].final_state is not None and jobs[7].trainer is not None
    # the carriers are gone from the pool; no workspace ever saw them
    assert pool.stats()["shared_trainings"] == 0
    assert all(j.owner.startswith("ws-") for j in pool._jobs.values())


def test_the_shared_result_equals_a_training_of_ones_own(pool, tmp_path):
    c = cfg(epochs=1)
    a, b = pool.submit(train_job(c, "ws-a")), pool.submit(train_job(c, "ws-b"))
    assert a.wait_until_finished(60) and b.wait_until_finished(60)
    alone = JobPool(max_workers=1, store=RunStore(tmp_path / "alone"), threads_per_job=1)
    try:
        own = alone.submit(train_job(c, "ws-c"))
        assert own.wait_until_finished(60)
    finally:
        alone.shutdown()
    assert b.snapshot().epochs[0]["val_loss"] == own.snapshot().epochs[0]["val_loss"]
    assert b.summary["final"] == own.summary["final"]


def test_a_follower_that_stops_or_pauses_leaves_and_the_others_go_on(pool):
    c = cfg(epochs=30, train_size=1024)
    a, b, d = (pool.submit(train_job(c, o)) for o in ("ws-a", "ws-b", "ws-d"))
    assert wait(lambda: a.snapshot().step > 0)
    b.stop()
    assert b.status == "stopped" and "left the shared training" in b.message and b.left
    step = a.snapshot().step
    assert wait(lambda: a.snapshot().step > step + 3) and a.status == "running"
    d.pause()  # pausing would pause a: d leaves instead
    assert d.status == "stopped" and "Pause leaves a shared training" in d.message
    assert wait(lambda: a.snapshot().step > step + 6) and a.status == "running"
    assert b.snapshot().step <= a.snapshot().step and b.snapshot().status == "stopped"
    # the last one watching pauses and resumes the training itself
    a.pause()
    assert wait(lambda: a.status == "paused")
    time.sleep(0.2)
    s1 = a.snapshot().step
    time.sleep(0.3)
    assert a.snapshot().step == s1
    a.resume()
    assert wait(lambda: a.snapshot().step > s1) and a.status == "running"
    # rejoining is a new job that follows the same training
    again = pool.submit(train_job(c, "ws-b"))
    assert pool.snapshot("ws-b", again.job_id).joined and again.status == "running"
    again.stop()
    assert wait(lambda: len(a.snapshot().epochs) >= 1)  # a run is stored once an epoch has ended
    a.stop()  # the last member's Stop stops the training, and a keeps the stopped run as its own
    assert a.wait_until_finished(30) and a.status == "stopped" and a.run_id
    assert [r.run_id for r in pool.store.list("ws-a")] == [a.run_id]
    assert pool.store.list("ws-b") == [] and pool.store.list("ws-d") == []


def test_owners_stay_isolated_on_a_shared_training(pool):
    c = cfg(epochs=30, train_size=1024)
    a, b = pool.submit(train_job(c, "ws-a")), pool.submit(train_job(c, "ws-b"))
    assert wait(lambda: a.snapshot().step > 0)
    assert pool.get("ws-b", a.job_id) is None and pool.snapshot("ws-b", a.job_id) is None
    assert pool.jobs_of("ws-b") == [b]
    assert pool.stop_group("ws-b", None) == 1  # b's Stop on everything it has leaves; a trains on
    assert b.status == "stopped" and a.status == "running"
    carrier = a.shared.carrier
    assert pool.get("ws-a", carrier.job_id) is None and pool.get(carrier.owner, a.job_id) is None
    assert wait(lambda: len(a.snapshot().epochs) >= 1)
    a.stop()
    assert a.wait_until_finished(30)
    assert pool.store.list("ws-b") == [] and len(pool.store.list("ws-a")) == 1


def test_nobody_watching_stops_a_shared_training(tmp_path):
    p = JobPool(max_workers=1, store=RunStore(tmp_path), threads_per_job=1, idle_stop_seconds=0.5,
                watchdog_interval=0.1, share_identical=True)
    try:
        c = cfg(epochs=50, train_size=2048)
        a, b = p.submit(train_job(c, "ws-a")), p.submit(train_job(c, "ws-b"))
        assert wait(lambda: a.status == "stopped" and b.status == "stopped", timeout=30)
        assert "no page watched" in a.message + b.message
        assert wait(lambda: p.stats()["running"] == 0 and p.stats()["shared_trainings"] == 0, timeout=30)
    finally:
        p.shutdown()


def test_what_is_not_shared(pool):
    c = cfg()
    on_cpu = lambda job: True  # noqa: E731
    base = share_key(train_job(c, "x"), 1, on_cpu)
    assert base == share_key(train_job(c, "y"), 1, on_cpu)  # the owner is not part of the experiment
    assert share_key(train_job(c, "x"), 2, on_cpu) != base  # another thread count rounds differently
    assert share_key(train_job(c.with_changes({"seed": 1}), "x"), 1, on_cpu) != base
    assert share_key(train_job(c, "x"), 1, lambda job: False) is None  # a GPU: not bit-reproducible
    captured = {"weights": 1}
    closure = lambda job: captured and None  # noqa: E731 - a factory that captures data
    assert share_key(Job(c, "x", make_trainer=closure), 1, on_cpu) is None
    assert share_key(Job(c, "x", kind="compare"), 1, on_cpu) is None
    start = {"w": __import__("torch").zeros(3)}
    assert share_key(Job(c, "x", init_state=start), 1, on_cpu) != share_key(Job(c, "x"), 1, on_cpu)
