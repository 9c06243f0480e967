import json

import pytest
import torch

from bigmodel_core.config.specs import ExperimentConfig
from bigmodel_core.training.store import RunStore, StoreError, check_run_id, history_rows, write_run
from bigmodel_core.training.trainer import Trainer


def tiny():
    return ExperimentConfig().with_changes({"data.train_size": 64, "data.val_size": 32, "training.epochs": 2,
                                            "training.device": "cpu"})


def test_round_trip(tmp_path):
    cfg = tiny()
    tr = Trainer(cfg)
    tr.fit()
    store = RunStore(tmp_path)
    rid = store.save(cfg, history_rows(tr.result.history), tr.summary(), tr.model.state_dict(), owner="me")
    run = store.load(rid)
    assert run.config == cfg
    assert [m["epoch"] for m in run.metrics] == [1, 2]
    assert run.metrics[-1]["val_loss"] == pytest.approx(tr.result.history[-1].val_loss)
    s = run.summary
    for key in ("status", "epochs_run", "best_epoch", "final", "params", "device", "wall_seconds", "samples_per_sec"):
        assert key in s
    assert "val_accuracy" in s["final"]
    state = run.load_state()
    assert all(torch.equal(state[k], v) for k, v in tr.model.state_dict().items())
    assert sorted(p.name for p in run.path.iterdir()) == ["config.json", "metrics.csv", "model.safetensors",
                                                          "summary.json"]
    assert [r.run_id for r in store.list("me")] == [rid]
    assert store.list("someone-else") == []
    with pytest.raises(StoreError):
        store.load(rid, owner="someone-else")


def test_half_written_run_is_not_listed(tmp_path):
    store = RunStore(tmp_path)
    d = tmp_path / "20260101-000000-train-abcdef123456"
    d.mkdir()
    (d / "config.json").write_text(tiny().to_json())
    assert store.list() == []


def test_crash_during_summary_write_leaves_no_partial_file(tmp_path, monkeypatch):
    import bigmodel_core.training.store as st

    real = st.os.replace

    def boom(src, dst):
        if str(dst).endswith("summary.json"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(st.os, "replace", boom)
    with pytest.raises(StoreError, match="disk is full"):
        write_run(tmp_path / "r", tiny(), [], {"status": "completed"}, None)
    assert not (tmp_path / "r" / "summary.json").exists()
    assert not [p for p in (tmp_path / "r").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("bad", ["../etc", "a/../../b", "/abs", "..", "x", "run id with spaces", "a\x00b"])
def test_path_traversal_ids_refused(tmp_path, bad):
    with pytest.raises(StoreError, match="invalid run id"):
        RunStore(tmp_path).load(bad)
    with pytest.raises(StoreError):
        check_run_id(bad)


def test_read_only_store_gives_clear_message(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(StoreError, match="permission denied"):
        write_run(ro / "r", tiny(), [], {}, None)


def test_summary_is_valid_json(tmp_path):
    write_run(tmp_path / "r", tiny(), [], {"status": "completed", "x": float("nan")}, None)
    json.loads((tmp_path / "r" / "summary.json").read_text().replace("NaN", "null"))


def test_permission_error_gives_clear_message(tmp_path, monkeypatch):
    import bigmodel_core.training.store as st

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(st.tempfile, "mkstemp", denied)
    with pytest.raises(StoreError, match="permission denied"):
        write_run(tmp_path / "r", tiny(), [], {}, None)


def test_the_owner_renames_a_run_and_nobody_else_can(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.save(tiny(), [], {"status": "completed"}, None, owner="alice", label="cnn on synthetic_digits")
    assert store.set_label(run_id, "alice", "  first try,\n lr 0.01\t ") == "first try, lr 0.01"
    assert store.load(run_id).summary["label"] == "first try, lr 0.01"
    assert store.set_label(run_id, "alice", "x" * 500) == "x" * 80
    with pytest.raises(StoreError):
        store.set_label(run_id, "mallory", "mine now")
    assert store.load(run_id).summary["label"] == "x" * 80
    assert store.load(run_id).summary["owner"] == "alice"  # renaming keeps everything else
