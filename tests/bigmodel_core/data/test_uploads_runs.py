"""Runs on uploaded data: trained, stored with their data, reopened, exported and run from the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bigmodel_core import cli
from bigmodel_core.config.specs import parse_config
from bigmodel_core.data import build_dataset, clear_dataset_cache, dataset_info
from bigmodel_core.data.uploads import UploadStore, read_upload, unregister_uploaded
from bigmodel_core.export import export_script
from bigmodel_core.training.store import RunStore, StoreError, history_rows, write_run
from bigmodel_core.training.trainer import Trainer
from tests.bigmodel_core.data.upload_files import class_zip, long_csv, zip_bytes
from tests.bigmodel_core.export.test_export import DRIVER, assert_close, load_script

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[3]
OWNER = "ws-" + "c" * 32


def image_zip(seed: int = 11) -> bytes:
    return class_zip(np.random.default_rng(seed), {"circle": 12, "square": 10, "star": 8}, size=(12, 12))[0]


def sequence_csv() -> bytes:
    rng = np.random.default_rng(2)
    seqs = [np.cumsum(rng.normal(size=(9, 2)), axis=0).astype(np.float32) for _ in range(24)]
    return long_csv(seqs, ["rise" if s[-1, 0] > s[0, 0] else "fall" for s in seqs]).encode()


def cnn_config(name: str, **training) -> object:
    return parse_config({"seed": 3, "data": {"name": name, "train_size": 4000, "val_size": 1000},
                         "model": {"family": "cnn", "conv": [{"channels": 4}], "dense": [{"units": 8}]},
                         "training": {"epochs": 1, "batch_size": 8, "device": "cpu", **training}})


def test_a_run_on_an_uploaded_dataset_keeps_its_data_and_reopens_in_a_fresh_process(tmp_path):
    store = UploadStore(tmp_path, OWNER)
    name = store.save(read_upload(image_zip(), "shapes.zip"))
    cfg = cnn_config(name)
    trainer = Trainer(cfg)
    trainer.fit()
    assert trainer.summary()["status"] == "completed"
    runs = RunStore(tmp_path)
    rid = runs.save(cfg, history_rows(trainer.result.history), trainer.summary(), trainer.model.state_dict(),
                    owner=OWNER)
    assert (runs.path(rid) / "data.npz").read_bytes() == store.path(name).read_bytes()
    # as after a restart: nothing is served, nothing cached, and the learner deleted the upload
    store.delete(name)
    unregister_uploaded(name)
    clear_dataset_cache()
    with pytest.raises(ValueError, match="not loaded here"):
        dataset_info(name)
    run = runs.load(rid, owner=OWNER)
    assert run.config == cfg
    again = Trainer(run.config)
    again.fit()
    assert [e.val_loss for e in again.result.history] == [e.val_loss for e in trainer.result.history]
    assert torch.equal(again.dataset.x_val, trainer.dataset.x_val)
    state = run.load_state()
    assert all(torch.equal(state[k], v) for k, v in trainer.model.state_dict().items())
    assert [r.run_id for r in runs.list(OWNER)] == [rid] and runs.list("ws-" + "d" * 32) == []


def test_writing_a_run_of_an_upload_that_is_not_served_fails_clearly(tmp_path):
    store = UploadStore(tmp_path, OWNER)
    name = store.save(read_upload(image_zip(5), "s.zip"))
    cfg = cnn_config(name)
    unregister_uploaded(name)
    with pytest.raises(StoreError, match="the run cannot keep its data"):
        write_run(tmp_path / "run", cfg, [], {"status": "completed"}, None)
    assert not (tmp_path / "run" / "summary.json").exists()


def test_an_exported_script_reads_data_npz_and_prints_the_engines_metrics(tmp_path):
    store = UploadStore(tmp_path, OWNER)
    up = read_upload(image_zip(), "shapes.zip")
    name = store.save(up)
    cfg = cnn_config(name, epochs=2)
    trainer = Trainer(cfg)
    trainer.fit()
    expected = trainer.summary()
    folder = tmp_path / "script"
    folder.mkdir()
    (folder / "train.py").write_text(export_script(cfg, "train.py"))
    code = (folder / "train.py").read_text()
    assert "allow_pickle=False" in code and "bigmodel_core" not in code.replace("bigmodel playground", "")
    # without its data the script says what to do
    mod = load_script(code, folder, "without_data")
    with pytest.raises(SystemExit, match="data.npz is missing: copy data.npz from the run folder"):
        mod.main([])
    (folder / "data.npz").write_bytes(store.path(name).read_bytes())
    x_train, y_train, x_val, y_val = mod.load_data(4000, 1000, 3)
    ds = build_dataset(name, train_size=4000, val_size=1000, seed=3)
    for mine, theirs in [(x_train, ds.x_train), (y_train, ds.y_train), (x_val, ds.x_val), (y_val, ds.y_val)]:
        assert mine.dtype == theirs.dtype and torch.equal(mine, theirs)
    # and run as a program in a Python that cannot import bigmodel_core
    env = {**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps([["up", str(folder / "train.py")]])],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(json.loads(proc.stdout.strip().splitlines()[-1])["up"])
    assert summary["status"] == "completed" and summary["epochs_run"] == 2
    assert summary["params"] == expected["params"]
    assert_close(summary["final"], expected["final"], len(ds.y_val))


def test_an_exported_sequence_script_matches_too(tmp_path):
    store = UploadStore(tmp_path, OWNER)
    name = store.save(read_upload(sequence_csv(), "walks.csv"))
    cfg = parse_config({"data": {"name": name, "train_size": 100, "val_size": 100},
                        "model": {"family": "gru", "hidden": 5}, "training": {"epochs": 2, "batch_size": 4,
                                                                             "device": "cpu"}})
    trainer = Trainer(cfg)
    trainer.fit()
    (tmp_path / "data.npz").write_bytes(store.path(name).read_bytes())
    summary = load_script(export_script(cfg), tmp_path, "seq_script").main([])
    assert_close(summary["final"], trainer.summary()["final"], len(trainer.dataset.y_val))


# --- the CLI ---------------------------------------------------------------------------------------------


def test_cli_train_on_a_zip_and_a_csv(tmp_path, capsys):
    (tmp_path / "shapes.zip").write_bytes(image_zip())
    out = tmp_path / "run"
    assert cli.main(["train", "quickstart_cnn", "--data", str(tmp_path / "shapes.zip"), "--out", str(out),
                     "--epochs", "1", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "data: upload-" in captured.err and "30 images in 3 classes" in captured.err
    assert "training on 24 samples, validating on 6" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "data.npz", "metrics.csv", "model.safetensors",
                                                     "summary.json"]
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["name"].startswith("upload-") and config["data"]["image_size"] is None
    summary = json.loads(captured.out)
    assert summary["status"] == "completed" and summary["task"] == "classification"
    assert load_file(str(out / "model.safetensors"))["classifier.weight"].shape[0] == 3  # the file's 3 classes
    (tmp_path / "walks.csv").write_bytes(sequence_csv())
    assert cli.main(["train", "textbook_lstm", "--data", str(tmp_path / "walks.csv"), "--out", str(tmp_path / "seq"),
                     "--epochs", "1", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "classification"


def test_cli_compare_on_an_uploaded_file_keeps_the_data_in_every_run(tmp_path, capsys):
    (tmp_path / "shapes.zip").write_bytes(image_zip())
    out = tmp_path / "cmp"
    assert cli.main(["compare", "quickstart_cnn", "--data", str(tmp_path / "shapes.zip"), "--vary",
                     "optimizer.lr=0.01,0.001", "--out", str(out), "--epochs", "1", "--device", "cpu"]) == 0
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(runs) == 2 and all((r / "data.npz").is_file() for r in runs)


@pytest.mark.parametrize("args,needle", [
    (["--data", "{tmp}/missing.zip"], "--data '{tmp}/missing.zip': no such file"),
    (["--data", "{tmp}/bad.zip"], "'bad.zip' is not a readable zip archive"),
    (["--data", "{tmp}/walks.csv"], "model.family 'cnn' needs an image dataset"),
    (["--data", "{tmp}/shapes.zip", "--task", "regression"], "regression works on sequence CSV files"),
    (["--task", "regression"], "--task goes with --data FILE"),
])
def test_cli_bad_data_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, needle):
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    (tmp_path / "walks.csv").write_bytes(sequence_csv())
    (tmp_path / "shapes.zip").write_bytes(image_zip())
    out = tmp_path / "out"
    args = [a.format(tmp=tmp_path) for a in args]
    assert cli.main(["train", "quickstart_cnn", *args, "--out", str(out), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle.format(tmp=tmp_path) in err
    assert not out.exists()


def test_cli_bad_data_in_a_real_process_is_one_line_on_stderr(tmp_path):
    (tmp_path / "slip.zip").write_bytes(zip_bytes({"../evil.png": b"x"}))
    for command in (["train", "quickstart_cnn"], ["finetune", "digits_cnn", "--pretrained", "digits_cnn"]):
        proc = subprocess.run([sys.executable, "-m", "bigmodel_core", *command, "--data", str(tmp_path / "slip.zip"),
                               "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines == ["error: 'slip.zip': member '../evil.png' has '..' in its path, which would point outside "
                         "the archive"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slip.zip"]
