"""Fair comparisons: shared weights and batches, the exact "what differs", isolation, JSON and CLI."""

from __future__ import annotations

import csv
import json
import time

import pytest
import torch

from bigmodel_core.cli import main
from bigmodel_core.config.specs import ConfigError, parse_config
from bigmodel_core.experiments import compare as cmp
from bigmodel_core.nn.models import build_model
from bigmodel_core.training.trainer import load_data


def tiny(**changes):
    c = parse_config({"data": {"name": "synthetic_digits", "train_size": 128, "val_size": 32},
                      "model": {"family": "cnn", "conv": [{"channels": 4}], "dense": [{"units": 8}]},
                      "training": {"epochs": 1, "batch_size": 32, "device": "cpu"}})
    return c.with_changes(changes) if changes else c


def run_all(comp, pool, owner="alice", timeout=120.0):
    jobs = cmp.submit(comp, pool, owner)
    t0 = time.time()
    while cmp.refresh(comp, pool, owner):
        assert time.time() - t0 < timeout, "comparison did not finish"
        time.sleep(0.05)
    return jobs


# --- fairness ------------------------------------------------------------------------------------
def test_optimizer_runs_start_from_identical_weights_and_see_identical_batches(pool):
    base = tiny(**{"training.epochs": 2})
    comp = cmp.plan_optimizers(base, [("sgd", 0.05), ("adam", 0.001)])
    jobs = run_all(comp, pool)
    assert [r.status for r in comp.runs] == ["completed", "completed"]
    # the initial weights: built once from the base seed and handed to both runs
    expected = build_model(base.model, load_data(base).info, seed=base.seed).state_dict()
    for job in jobs:
        assert job.init_state.keys() == expected.keys()
        assert all(torch.equal(job.init_state[k], expected[k]) for k in expected)
    a, b = (j.trainer for j in jobs)
    assert a.init_sha == b.init_sha == comp.runs[0].init_sha == comp.runs[1].init_sha
    # the batches: the first batch tensors are bit-identical, and so is the whole first epoch's order
    assert a.first_batch is not None and torch.equal(a.first_batch, b.first_batch)
    assert a.first_batch.shape[0] == base.training.batch_size
    assert comp.runs[0].data_sha == comp.runs[1].data_sha is not None
    assert comp.runs[0].order_sha == comp.runs[1].order_sha is not None
    # ... while the runs really trained differently
    assert comp.runs[0].epochs[-1]["val_loss"] != comp.runs[1].epochs[-1]["val_loss"]
    assert [r.init for r in comp.runs] == ["shared", "shared"]


def test_batch_digest_tells_a_different_order_apart(pool):
    comp = cmp.plan_sweep(tiny(), "training.batch_size", [32, 16])
    run_all(comp, pool)
    assert comp.runs[0].data_sha != comp.runs[1].data_sha
    assert comp.runs[0].order_sha != comp.runs[1].order_sha
    assert comp.runs[0].init_sha == comp.runs[1].init_sha


def test_augmented_runs_keep_the_batch_order_but_not_the_inputs(pool):
    comp = cmp.plan_regularizers(tiny(), [("none", None), ("augmentation", None)])
    run_all(comp, pool)
    assert comp.runs[0].order_sha == comp.runs[1].order_sha
    assert comp.runs[0].data_sha != comp.runs[1].data_sha


def test_architecture_changes_get_their_own_init_and_say_so():
    base = tiny()
    comp = cmp.plan_regularizers(base, [("none", None), ("dropout", 0.5), ("batchnorm", None)])
    inits = cmp.initial_states(comp)
    assert inits[0].note == inits[1].note == "shared" and inits[0].state is inits[1].state
    assert inits[2].state is None
    # batchnorm draws no random numbers: conv and dense weights from the same seed still match
    assert inits[2].note == "own (architecture differs): 6 of 6 weight tensors equal"
    seeds = cmp.initial_states(cmp.plan_sweep(base, "seed", [0, 1]))
    assert seeds[0].note == "shared" and seeds[1].note == "own (seed 1)"


# --- what differs -----------------------------------------------------------------------------------
def test_what_differs_is_exact_for_optimizers():
    comp = cmp.plan_optimizers(tiny(), [("sgd", 0.1), ("adam", 0.001), ("adam", 0.01)])
    assert cmp.differing_fields([r.config for r in comp.runs]) == ["optimizer.name", "optimizer.lr"]
    assert comp.differs() == [
        {"run": "sgd lr=0.1", "optimizer.name": "sgd", "optimizer.lr": "0.1"},
        {"run": "adam lr=1e-3", "optimizer.name": "adam", "optimizer.lr": "1e-3"},
        {"run": "adam lr=0.01", "optimizer.name": "adam", "optimizer.lr": "0.01"},
    ]


def test_what_differs_is_exact_for_regularizers():
    base = tiny(**{"model.dense": [{"units": 8}, {"units": 8}]})
    comp = cmp.plan_regularizers(base, [("none", None), ("dropout", 0.4), ("weight decay", 0.05),
                                        ("early stopping", 2)])
    assert comp.differs() == [
        {"run": "none", "model.conv.0.dropout": "0", "model.dense.0.dropout": "0", "model.dense.1.dropout": "0",
         "optimizer.name": "adam", "optimizer.weight_decay": "0", "regularization.early_stopping": "null",
         "regularization.early_stopping.patience": "(absent)",
         "regularization.early_stopping.restore_best": "(absent)"},
        {"run": "dropout 0.4", "model.conv.0.dropout": "0.2", "model.dense.0.dropout": "0.4",
         "model.dense.1.dropout": "0.4", "optimizer.name": "adam", "optimizer.weight_decay": "0",
         "regularization.early_stopping": "null", "regularization.early_stopping.patience": "(absent)",
         "regularization.early_stopping.restore_best": "(absent)"},
        {"run": "weight decay 0.05", "model.conv.0.dropout": "0", "model.dense.0.dropout": "0",
         "model.dense.1.dropout": "0", "optimizer.name": "adamw", "optimizer.weight_decay": "0.05",
         "regularization.early_stopping": "null", "regularization.early_stopping.patience": "(absent)",
         "regularization.early_stopping.restore_best": "(absent)"},
        {"run": "early stopping (patience 2)", "model.conv.0.dropout": "0", "model.dense.0.dropout": "0",
         "model.dense.1.dropout": "0", "optimizer.name": "adam", "optimizer.weight_decay": "0",
         "regularization.early_stopping": "(absent)", "regularization.early_stopping.patience": "2",
         "regularization.early_stopping.restore_best": "true"},
    ]


def test_regularizers_start_from_a_base_without_any():
    base = tiny(**{"regularization.l2": 0.01, "model.dense.0.dropout": 0.3, "data.augment": True})
    comp = cmp.plan_regularizers(base, [("none", None), ("L2", 0.001)])
    assert cmp.differing_fields([r.config for r in comp.runs]) == ["regularization.l2"]
    none = comp.runs[0].config
    assert none.regularization.l2 == 0 and none.model.dense[0].dropout == 0 and not none.data.augment


def test_sweep_names_say_the_setting_and_identical_configs_differ_in_nothing():
    comp = cmp.plan_sweep(tiny(), "data.train_size", [64, 128])
    assert comp.names == ["train_size=64", "train_size=128"]
    assert cmp.differing_fields([tiny(), tiny()]) == []
    assert cmp.run_name({"optimizer.name": "adam", "optimizer.lr": 0.001}) == "adam lr=1e-3"
    assert cmp.fmt_value(0.0005) == "5e-4" and cmp.fmt_value(0.05) == "0.05" and cmp.fmt_value(True) == "true"


# --- bad input ---------------------------------------------------------------------------------------
def test_invalid_sweep_value_names_the_value_and_the_field():
    with pytest.raises(ConfigError) as exc:
        cmp.plan_sweep(tiny(), "optimizer.lr", [0.1, "fast"])
    assert "optimizer.lr" in str(exc.value) and "'fast'" in str(exc.value) and "run 2" in str(exc.value)
    with pytest.raises(ConfigError, match=r"model.conv.0.channels: value 0 \(run 1\)"):
        cmp.plan_sweep(tiny(), "model.conv.0.channels", [0])
    with pytest.raises(ConfigError, match="optimizer.nme.*unknown field"):
        cmp.plan_sweep(tiny(), "optimizer.nme", ["sgd"])
    with pytest.raises(ConfigError, match="more than the 8"):
        cmp.plan_sweep(tiny(), "seed", list(range(9)))
    with pytest.raises(ConfigError, match="batchnorm applies to conv blocks"):
        cmp.plan_regularizers(parse_config({"data": {"name": "sine_wave"}, "model": {"family": "lstm"}}),
                              [("batchnorm", None)])


def test_parse_vary_pairs_values_and_parses_json():
    vary = cmp.parse_vary(["optimizer.name=sgd,adam", "optimizer.lr=0.1,1e-3",
                           'regularization.early_stopping={"patience": 2, "restore_best": true},null'])
    assert vary == {"optimizer.name": ["sgd", "adam"], "optimizer.lr": [0.1, 0.001],
                    "regularization.early_stopping": [{"patience": 2, "restore_best": True}, None]}
    with pytest.raises(ConfigError, match="equal length"):
        cmp.parse_vary(["optimizer.name=sgd,adam", "optimizer.lr=0.1"])
    with pytest.raises(ConfigError, match="FIELD=V1,V2"):
        cmp.parse_vary(["optimizer.lr"])


def test_a_diverged_run_is_isolated(pool):
    comp = cmp.plan_optimizers(tiny(), [("adam", 100.0), ("sgd", 0.05), ("adam", 0.001)])
    run_all(comp, pool)
    assert [r.status for r in comp.runs] == ["diverged", "completed", "completed"]
    rows = cmp.summary_rows(comp)
    assert rows[0]["status"] == "diverged" and "learning rate" in rows[0]["message"]
    assert rows[1]["best val acc (%)"] is not None and rows[2]["epochs"] == 1


def test_stop_stops_every_queued_and_running_run(pool):
    base = tiny(**{"training.epochs": 50, "data.train_size": 512})
    comp = cmp.plan_sweep(base, "optimizer.lr", [0.001, 0.002, 0.003])
    cmp.submit(comp, pool, "bob")
    t0 = time.time()
    while cmp.refresh(comp, pool, "bob") and comp.runs[0].status != "running":
        assert time.time() - t0 < 30
        time.sleep(0.02)
    assert [r.status for r in comp.runs][1:] == ["queued", "queued"]
    assert cmp.summary_rows(comp)[1]["status"] == "queued (#1)"
    assert cmp.stop(comp, pool, "bob") == 3
    while cmp.refresh(comp, pool, "bob"):
        time.sleep(0.02)
    assert [r.status for r in comp.runs] == ["stopped"] * 3
    assert not comp.runs[2].epochs


def test_runs_are_stored_with_kind_label_and_comparison_id(pool):
    comp = cmp.plan_optimizers(tiny(), [("sgd", 0.05), ("adam", 0.001)])
    run_all(comp, pool, owner="carol")
    stored = pool.store.list("carol")
    assert sorted(s.summary["label"] for s in stored) == ["adam lr=1e-3", "sgd lr=0.05"]
    assert {s.summary["kind"] for s in stored} == {"compare"}
    assert {s.summary["comparison"]["id"] for s in stored} == {comp.comparison_id}
    again = cmp.Comparison.from_stored(cmp.comparison_order(stored))
    assert again.names == ["sgd lr=0.05", "adam lr=1e-3"]
    assert [len(r.epochs) for r in again.runs] == [1, 1]


# --- JSON ----------------------------------------------------------------------------------------------
def test_comparison_json_round_trips(pool):
    comp = cmp.plan_optimizers(tiny(), [("adam", 100.0), ("sgd", 0.05)])
    run_all(comp, pool)
    text = comp.to_json()
    json.loads(text)  # strict JSON: a diverged NaN is written as null
    back = cmp.Comparison.from_json(text)
    assert back.to_dict() == json.loads(text)
    assert back.names == comp.names and back.comparison_id == comp.comparison_id
    assert cmp.summary_rows(back)[1]["best val acc (%)"] == cmp.summary_rows(comp)[1]["best val acc (%)"]
    assert back.differs() == comp.differs()


def test_bad_comparison_json_says_where():
    good = cmp.plan_optimizers(tiny(), [("sgd", 0.1), ("adam", 0.001)]).to_dict()
    good["runs"][1]["config"]["optimizer"]["lr"] = -1
    with pytest.raises(ConfigError, match=r"runs\[1\].config.optimizer.lr"):
        cmp.Comparison.from_dict(good)
    with pytest.raises(ConfigError, match="not a comparison file"):
        cmp.Comparison.from_json(b'{"seed": 0}')
    with pytest.raises(ConfigError, match="not a comparison JSON"):
        cmp.Comparison.from_json(b"{nope")


# --- CLI -------------------------------------------------------------------------------------------------
def test_cli_compare_writes_run_folders_comparison_and_summary(tmp_path, capsys):
    config = tmp_path / "base.json"
    config.write_text(tiny().to_json())
    out = tmp_path / "out"
    code = main(["compare", str(config), "--vary", "optimizer.name=sgd,adam", "--vary", "optimizer.lr=0.1,0.001",
                 "--out", str(out)])
    assert code == 0
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["01-sgd-lr-0-1", "02-adam-lr-1e-3"]
    for f in folders:
        assert {p.name for p in (out / f).iterdir()} >= {"config.json", "metrics.csv", "summary.json",
                                                          "model.safetensors"}
    assert parse_config((out / folders[1] / "config.json").read_text()).optimizer.name == "adam"
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["run"] for r in rows] == ["sgd lr=0.1", "adam lr=1e-3"]
    assert all(r["status"] == "completed" for r in rows)
    comp = cmp.Comparison.from_json((out / "comparison.json").read_bytes())
    assert cmp.differing_fields([r.config for r in comp.runs]) == ["optimizer.name", "optimizer.lr"]
    assert (out / "curves.csv").read_text().count("\n") == 3  # header + one epoch per run


def test_cli_compare_rejects_a_bad_value_with_exit_code_2(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["compare", "quickstart_cnn", "--vary", "optimizer.name=sgd,adma", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "optimizer.name" in err and "'adma'" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["compare", "quickstart_cnn", "--vary", "training.batch_size=32,0", "--out", str(out)]) == 2
    assert "training.batch_size: value 0 (run 2)" in capsys.readouterr().err


def test_a_saved_comparison_is_never_running_when_reopened():
    comp = cmp.plan_optimizers(tiny(), [("sgd", 0.1), ("adam", 0.001)])
    assert not comp.active and not comp.started
    data = comp.to_dict()
    data["runs"][0].update(status="running", epochs=[{"epoch": 1, "train_loss": 2.0, "val_loss": 2.1,
                                                       "train_metric": 0.2, "val_metric": 0.1, "lr": 0.1,
                                                       "seconds": 1.0}])
    back = cmp.Comparison.from_dict(data)
    assert [r.status for r in back.runs] == ["stopped", "planned"] and not back.active
