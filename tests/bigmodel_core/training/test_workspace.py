"""Workspace tokens, state and job records: what makes a learner's work survive reloads and restarts."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from bigmodel_core.config.specs import parse_config
from bigmodel_core.training import workspace as ws
from bigmodel_core.training.jobs import Job, JobPool
from bigmodel_core.training.store import RunStore


def test_an_issued_token_verifies_to_a_stable_workspace_across_restarts(tmp_path):
    token = ws.TokenIssuer(tmp_path).issue()
    owner = ws.TokenIssuer(tmp_path).verify(token)  # a new issuer: as after a restart
    assert owner == ws.workspace_id(token) and ws.is_workspace_id(owner)
    assert token not in owner and token.split(".")[0] not in owner  # the id does not reveal the token
    mode = stat.S_IMODE(os.stat(tmp_path / ws.SECRET_FILE).st_mode)
    assert mode == 0o600


def test_garbled_forged_oversized_and_foreign_tokens_verify_as_nothing(tmp_path):
    issuer = ws.TokenIssuer(tmp_path / "a")
    good = issuer.issue()
    random_part, mac = good.split(".")
    foreign = ws.TokenIssuer(tmp_path / "b").issue()
    bad = ["", "x", good + "0", good[:-1], random_part, f"{random_part}.{'0' * 64}",
           f"{random_part[:-1]}A.{mac}", "A" * 10_000, good + "\n", good.upper(), "é" * 40, foreign,
           None, 42, b"bytes", f"{random_part}.{mac}; other=1"]
    for token in bad:
        assert issuer.verify(token) is None, token
    assert issuer.verify(good) == ws.workspace_id(good)


def test_state_is_merged_written_atomically_and_only_for_workspace_ids(tmp_path):
    owner = ws.workspace_id("t")
    ws.update_state(tmp_path, owner, config={"seed": 1})
    ws.update_state(tmp_path, owner, designs={"cnn": {"family": "cnn"}})
    assert ws.read_state(tmp_path, owner) == {"config": {"seed": 1}, "designs": {"cnn": {"family": "cnn"}}}
    ws.update_state(tmp_path, owner, config=None)
    assert ws.read_state(tmp_path, owner) == {"designs": {"cnn": {"family": "cnn"}}}
    folder = tmp_path / ws.FOLDER / owner
    assert [p.name for p in folder.iterdir()] == ["state.json"]  # no temporary files left behind
    for intruder in ("../x", "alice", "ws-" + "0" * 31, owner + "/.."):
        ws.update_state(tmp_path, intruder, config={})
        assert ws.read_state(tmp_path, intruder) == {}
    (folder / "state.json").write_text("{not json")
    assert ws.read_state(tmp_path, owner) == {}


def tiny(epochs=1):
    return parse_config({"data": {"name": "synthetic_digits", "train_size": 64, "val_size": 16},
                         "model": {"family": "cnn", "conv": [{"channels": 2}], "dense": []},
                         "training": {"epochs": epochs, "batch_size": 32}})


def test_job_records_exist_while_a_job_is_active_and_an_earlier_process_reports_them_interrupted(tmp_path):
    store = RunStore(tmp_path)
    owner = ws.workspace_id("learner")
    pool = JobPool(max_workers=1, store=store)
    try:
        job = pool.submit(Job(tiny(), owner=owner, label="cnn on digits"))
        assert (tmp_path / ws.FOLDER / owner / "jobs" / f"{job.job_id}.json").exists()
        assert ws.interrupted_jobs(tmp_path, owner) == []  # this process's live job
        assert job.wait_until_finished(60)
        assert not (tmp_path / ws.FOLDER / owner / "jobs" / f"{job.job_id}.json").exists()
    finally:
        pool.shutdown()
    # a record written by a process that has ended since: interrupted
    code = ("import sys; from bigmodel_core.training import workspace as ws; "
            "ws.write_job_record(sys.argv[1], sys.argv[2], 'abcdefgh1234', {'kind': 'train', 'label': 'lstm'})")
    subprocess.run([sys.executable, "-c", code, str(tmp_path), owner], check=True)
    lost = ws.interrupted_jobs(tmp_path, owner)
    assert [(r["job_id"], r["kind"], r["label"]) for r in lost] == [("abcdefgh1234", "train", "lstm")]
    ws.dismiss_interrupted(tmp_path, owner)
    assert ws.interrupted_jobs(tmp_path, owner) == []


def test_each_learner_on_a_shared_training_has_a_job_record_in_their_own_workspace(tmp_path):
    # a restart mid-way through a shared training reports it to every learner who followed it
    store = RunStore(tmp_path)
    owners = [ws.workspace_id("first"), ws.workspace_id("second")]
    pool = JobPool(max_workers=1, store=store, share_identical=True)
    try:
        jobs = [pool.submit(Job(tiny(epochs=3), owner=o, label="cnn on digits")) for o in owners]
        assert jobs[1].joined and jobs[0].shared is jobs[1].shared
        for owner, job in zip(owners, jobs):
            assert (tmp_path / ws.FOLDER / owner / "jobs" / f"{job.job_id}.json").exists()
        assert all(j.wait_until_finished(60) for j in jobs)
        for owner, job in zip(owners, jobs):
            assert not (tmp_path / ws.FOLDER / owner / "jobs" / f"{job.job_id}.json").exists()
            assert job.run_id is not None
    finally:
        pool.shutdown()


def test_a_run_without_owner_is_never_opened_as_a_shared_run(tmp_path):
    store = RunStore(tmp_path)
    rid = store.save(tiny(), [], {"status": "completed"}, None, owner=None)
    summary = json.loads((tmp_path / rid / "summary.json").read_text())
    (tmp_path / rid / "summary.json").write_text(json.dumps(dict(summary, shared=True)))
    import pytest

    from bigmodel_core.training.store import StoreError

    with pytest.raises(StoreError):
        store.load(rid, owner=ws.workspace_id("anyone"))
    assert store.load(rid).run_id == rid  # the CLI (no owner) still reads it
