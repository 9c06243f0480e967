"""One person's jobs and runs stay theirs: nobody else can see, stop, delete or download them,
ids cannot be guessed, and no id or file name from a user reaches outside the run store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from bigmodel_core.training.jobs import Job
from bigmodel_core.training.store import RunStore, StoreError, check_run_id, new_run_id, write_run
from tests.support import tiny_cnn as tiny
from tests.support import wait

RUN_ID_FORMAT = re.compile(r"^\d{8}-\d{6}-(?P<kind>[a-z0-9_]+)-(?P<random>[0-9a-f]{12,})$")


def saved_run(store: RunStore, owner: str | None) -> str:
    state = {"w": torch.arange(4.0)}
    return store.save(tiny(), [{"epoch": 1, "train_loss": 1.0}], {"status": "completed"}, state, owner=owner)


# --- jobs --------------------------------------------------------------------------------------------
def test_another_session_cannot_see_stop_or_forget_a_job(pool):
    long = pool.submit(Job(tiny(epochs=50, train_size=512), owner="alice", group="cmp"))
    assert wait(lambda: long.status == "running")
    for intruder in ("bob", "", "alice ", "ALICE", "alicé", long.owner[:-1]):
        assert pool.get(intruder, long.job_id) is None
        assert pool.snapshot(intruder, long.job_id) is None
        assert pool.jobs_of(intruder) == []
        assert pool.stop_group(intruder, "cmp") == 0
        pool.forget(intruder, long.job_id)
    assert pool.get(None, long.job_id) is None  # type: ignore[arg-type]
    assert long.status == "running" and pool.get("alice", long.job_id) is long
    # the owner's own controls work
    assert pool.stop_group("alice", "cmp") == 1
    assert wait(lambda: long.status == "stopped")


def test_a_job_id_of_one_owner_finds_nothing_for_another_even_when_both_have_jobs(pool):
    a = pool.submit(Job(tiny(), owner="alice"))
    b = pool.submit(Job(tiny(), owner="bob"))
    assert wait(lambda: a.status == "completed" and b.status == "completed")
    assert pool.get("alice", b.job_id) is None and pool.get("bob", a.job_id) is None
    assert [j.job_id for j in pool.jobs_of("alice")] == [a.job_id]
    sa, sb = pool.snapshot("alice", a.job_id), pool.snapshot("bob", b.job_id)
    assert sa.run_id != sb.run_id
    # each owner's run lists only their run, and the other's id does not load for them
    assert [r.run_id for r in pool.store.list("alice")] == [sa.run_id]
    with pytest.raises(StoreError):
        pool.store.load(sb.run_id, owner="alice")


def test_job_ids_are_long_random_tokens(pool):
    ids = {Job(tiny(), owner="x").job_id for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) >= 16 and re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)  # >= 96 random bits


# --- runs --------------------------------------------------------------------------------------------
def test_run_ids_have_at_least_48_random_bits(tmp_path):
    ids = [new_run_id("train") for _ in range(500)]
    assert len(set(ids)) == 500
    for rid in ids:
        m = RUN_ID_FORMAT.match(rid)
        assert m, rid
        assert len(m["random"]) * 4 >= 48
        assert check_run_id(rid) == rid
    # the random parts differ even for ids made in the same second
    assert len({RUN_ID_FORMAT.match(r)["random"] for r in ids}) == 500
    rid = saved_run(RunStore(tmp_path), "alice")
    assert RUN_ID_FORMAT.match(rid)["kind"] == "train"


def test_another_owner_cannot_load_delete_share_or_prune_a_run(tmp_path):
    store = RunStore(tmp_path)
    rid = saved_run(store, "alice")
    missing = "20260101-000000-train-000000000000"
    for action in (lambda o, r: store.load(r, owner=o), lambda o, r: store.delete(r, owner=o),
                   lambda o, r: store.set_shared(r, o)):
        with pytest.raises(StoreError) as theirs:
            action("bob", rid)
        with pytest.raises(StoreError) as nothing:
            action("bob", missing)
        # refusing someone else's run reads exactly like a run that does not exist
        assert str(theirs.value).replace(rid, "ID") == str(nothing.value).replace(missing, "ID")
    assert store.prune("bob", 0) == []
    assert store.list("bob") == []
    assert [r.run_id for r in store.list("alice")] == [rid]
    assert store.load(rid, owner="alice").load_state()["w"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_a_shared_run_can_be_opened_but_not_deleted_or_unshared_by_others(tmp_path):
    store = RunStore(tmp_path)
    rid = saved_run(store, "alice")
    store.set_shared(rid, "alice")
    assert store.load(rid, owner="bob").run_id == rid
    with pytest.raises(StoreError, match="not yours"):
        store.delete(rid, owner="bob")
    with pytest.raises(StoreError, match="not yours"):
        store.set_shared(rid, "bob", shared=False)
    assert store.list("bob") == []  # shared runs are opened by id, never listed to others
    store.delete(rid, owner="alice")
    assert store.list("alice") == []


HOSTILE_IDS = [
    "../../etc/passwd", "..", ".", "", "/", "/etc", "run/../../x", "20260101-000000-train-..%2f..",
    "%2e%2e%2f%2e%2e", "20260101-000000-train-abc\x00def", "20260101-000000-train-abcdef\n",
    "ＲＵＮ-２０２６", "a" * 65, "UPPER-case-000000", "-leading-dash", "run id", "run\\..\\x", "~root",
    "20260101-000000-train-abcdef/../../..",
]


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_hostile_run_ids_never_reach_the_file_system(tmp_path, bad):
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "summary.json").write_text('{"owner": "bob"}')
    store = RunStore(tmp_path / "runs")
    with pytest.raises(StoreError, match="invalid run id"):
        store.path(bad)
    for action in (lambda: store.load(bad), lambda: store.load(bad, owner="bob"),
                   lambda: store.delete(bad, owner="bob"), lambda: store.set_shared(bad, "bob")):
        with pytest.raises(StoreError):
            action()
    assert (outside / "summary.json").exists()


@pytest.mark.parametrize("bad", [None, 7, b"20260101-000000-train-abcdef123456", Path("..")])
def test_run_ids_that_are_not_strings_are_refused(tmp_path, bad):
    with pytest.raises(StoreError, match="invalid run id"):
        RunStore(tmp_path).load(bad)  # type: ignore[arg-type]


def test_user_chosen_run_id_cannot_escape(tmp_path):
    store = RunStore(tmp_path / "runs")
    with pytest.raises(StoreError, match="invalid run id"):
        store.save(tiny(), [], {"status": "completed"}, None, run_id="../escaped")
    assert not (tmp_path / "escaped").exists()
    # a label is data, never a path
    rid = store.save(tiny(), [], {"status": "completed"}, None, owner="a", label="../../../etc/passwd")
    assert store.load(rid).summary["label"] == "../../../etc/passwd"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [rid]


@pytest.mark.parametrize("name", ["../evil.json", "/tmp/evil", "a/b.json", ".hidden", "summary.json", "", "..",
                                  "x" * 200, "nul\x00.json"])
def test_extra_file_names_cannot_escape_or_replace_the_summary(tmp_path, name):
    with pytest.raises(StoreError, match="invalid file name"):
        write_run(tmp_path / "runs" / "r", tiny(), [], {"status": "completed"}, None, extra_files={name: b"x"})
    # nothing was written: not the run, not the file
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "evil.json").exists()


def test_a_run_folder_planted_without_owner_is_not_listed_to_a_session(tmp_path):
    store = RunStore(tmp_path)
    rid = saved_run(store, None)  # e.g. a CLI run written into the same folder
    assert store.list("alice") == [] and [r.run_id for r in store.list()] == [rid]


def test_a_downloaded_run_never_carries_its_owners_session_token(tmp_path):
    import io
    import json
    import zipfile

    from bigmodel_core.training.store import zip_run

    store = RunStore(tmp_path)
    rid = saved_run(store, "alice-secret-token")
    with zipfile.ZipFile(io.BytesIO(zip_run(store.path(rid)))) as z:
        names = z.namelist()
        summary = json.loads(z.read(f"{rid}/summary.json"))
        assert all(b"alice-secret-token" not in z.read(n) for n in names)
    assert f"{rid}/model.safetensors" in names and summary["run_id"] == rid and "owner" not in summary
