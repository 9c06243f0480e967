"""The clean train metric: eval mode on the training set, after each epoch, with the plain loss.

PyTorch is the oracle: the final model, run by hand in eval mode over the training samples,
gives the run's last train_eval_loss / train_eval_metric. The run trains with dropout,
augmentation and label smoothing, so the running train values differ from the clean ones, and
a run that mixed them up would fail here. The files carry the new columns, and a run stored
before they existed still opens.
"""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import torch.nn.functional as F

from bigmodel_core.config.presets import load_preset
from bigmodel_core.experiments.compare import Comparison, summary_rows
from bigmodel_core.training.plain_loop import TRAIN_EVAL_MAX, train_eval_indices
from bigmodel_core.training.runner import train_and_save
from bigmodel_core.training.store import RunStore
from bigmodel_core.training.trainer import Trainer
from ui.figures.compare import Series, curves_figure
from ui.figures.training import loss_figure, metric_figure


def regularised(train_size=96, epochs=2):
    return load_preset("quickstart_cnn").with_changes({
        "data.train_size": train_size, "data.val_size": 48, "data.augment": True, "training.epochs": epochs,
        "training.batch_size": 32, "training.device": "cpu", "regularization.label_smoothing": 0.2,
        "model.conv": [{"channels": 4, "dropout": 0.5}, {"channels": 6}],
        "model.dense": [{"units": 16, "dropout": 0.5}]})


@torch.no_grad()
def by_hand(model, x, y):
    model.eval()
    out = torch.cat([model(x[i:i + 50]) for i in range(0, len(x), 50)])
    return F.cross_entropy(out, y).item(), (out.argmax(1) == y).sum().item() / len(y)


def test_the_clean_train_metric_is_an_eval_mode_pass_over_the_training_set():
    cfg = regularised()
    trainer = Trainer(cfg)
    trainer.fit()
    last = trainer.result.history[-1]
    loss, acc = by_hand(trainer.model, trainer.dataset.x_train, trainer.dataset.y_train)
    assert last.train_eval_loss == pytest.approx(loss, rel=1e-5)
    assert last.train_eval_metric == pytest.approx(acc, abs=1e-9)
    # what it is not: the running loss is smoothed and measured with dropout on augmented batches
    assert abs(last.train_loss - last.train_eval_loss) > 1e-3
    final = trainer.summary()["final"]
    assert final["train_eval_loss"] == last.train_eval_loss and final["train_eval_metric"] == last.train_eval_metric


def test_a_big_training_set_is_scored_on_a_fixed_subset_drawn_from_the_seed():
    n = TRAIN_EVAL_MAX + 200
    assert train_eval_indices(TRAIN_EVAL_MAX, 0) is None  # up to the limit: all of it
    chosen = train_eval_indices(n, 3)
    assert len(chosen) == TRAIN_EVAL_MAX == len(set(chosen.tolist()))
    assert torch.equal(chosen, train_eval_indices(n, 3)) and not torch.equal(chosen, train_eval_indices(n, 4))
    assert chosen.tolist() == sorted(chosen.tolist()) and 0 <= int(chosen.min()) and int(chosen.max()) < n

    cfg = regularised(train_size=n, epochs=1).with_changes({"model.conv": [{"channels": 2}], "model.dense": [],
                                                            "training.batch_size": 128, "seed": 3})
    trainer = Trainer(cfg)
    trainer.fit()
    x, y = trainer.dataset.x_train[chosen], trainer.dataset.y_train[chosen]
    loss, acc = by_hand(trainer.model, x, y)
    last = trainer.result.history[-1]
    assert last.train_eval_loss == pytest.approx(loss, rel=1e-5)
    assert last.train_eval_metric == pytest.approx(acc, abs=1e-9)


def test_run_files_carry_the_clean_columns_and_the_thread_count(tmp_path):
    summary = train_and_save(regularised(epochs=1), tmp_path / "run")
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"train_eval_loss", "train_eval_metric"} <= set(rows[0])
    assert all(math.isfinite(float(r["train_eval_loss"])) and 0 <= float(r["train_eval_metric"]) <= 1 for r in rows)
    stored = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert stored == json.loads(json.dumps(summary))
    assert float(rows[-1]["train_eval_loss"]) == pytest.approx(stored["final"]["train_eval_loss"])
    assert {"train_eval_loss", "train_eval_metric"} <= set(stored["final"])
    assert stored["threads"] == torch.get_num_threads() and stored["device"] == "CPU"


OLD_METRICS = ("epoch,train_loss,val_loss,train_metric,val_metric,lr,seconds\n"
               "1,1.9,2.0,0.40,0.35,0.001,0.5\n2,1.2,1.5,0.70,0.55,0.001,0.5\n")
OLD_SUMMARY = {"status": "completed", "message": "", "epochs_run": 2, "best_epoch": 2,
               "final": {"train_loss": 1.2, "val_loss": 1.5, "val_accuracy": 0.55}, "params": 100, "device": "CPU",
               "wall_seconds": 1.0, "samples_per_sec": 256.0, "task": "classification"}


def write_old_run(root, run_id, owner=None):
    """A run folder as the store wrote it before the clean train metric and the thread count existed."""
    folder = root / run_id
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(regularised().to_json())
    (folder / "metrics.csv").write_text(OLD_METRICS)
    (folder / "summary.json").write_text(json.dumps(dict(OLD_SUMMARY, owner=owner, run_id=run_id, label="old run")))
    return folder


def test_an_old_run_without_the_clean_columns_still_opens_compares_and_draws(tmp_path):
    write_old_run(tmp_path, "20240101-000000-train-0123456789ab")
    run = RunStore(tmp_path).load("20240101-000000-train-0123456789ab")
    assert [r["train_metric"] for r in run.metrics] == [0.40, 0.70]
    assert "train_eval_metric" not in run.metrics[0]
    comp = Comparison.from_stored([run])
    row = summary_rows(comp)[0]
    assert row["best val acc (%)"] == 55.0
    assert row["train-val gap acc (%)"] is None  # not measured: no gap from the running metric instead
    fig = curves_figure([Series(r.name, r.epochs) for r in comp.runs], comp.task)
    names = {t.name for t in fig.data}
    assert "train, running mean as trained (dotted)" in names and "train, eval mode (dashed)" not in names
    epochs = [dict(r, step=i) for i, r in enumerate(run.metrics, 1)]
    assert [t["name"] for t in loss_figure([], [], epochs)["data"]] == \
        ["batch loss", "train (running mean, as trained)", "validation"]
    assert len(metric_figure(epochs, "classification")["data"]) == 2


def test_the_gap_is_the_clean_train_metric_minus_validation():
    trainer = Trainer(regularised())
    trainer.fit()
    rows = [{"epoch": e.epoch, "train_loss": e.train_loss, "val_loss": e.val_loss, "train_metric": e.train_metric,
             "val_metric": e.val_metric, "train_eval_loss": e.train_eval_loss,
             "train_eval_metric": e.train_eval_metric} for e in trainer.result.history]
    from bigmodel_core.experiments.compare.comparison import CompareRun

    comp = Comparison(base=trainer.config, runs=[CompareRun(name="a", config=trainer.config, epochs=rows)])
    last = trainer.result.history[-1]
    assert summary_rows(comp)[0]["train-val gap acc (%)"] == round(100 * (last.train_eval_metric - last.val_metric), 2)
    smoothed = loss_figure([1], [2.0], [dict(rows[-1], step=6)], smoothing=0.2)
    assert [t["name"] for t in smoothed["data"]] == [
        "batch loss", "train (running mean, as trained, label smoothing 0.2)", "train (eval mode)", "validation"]
    assert "label smoothing 0.2" in smoothed["layout"]["title"]["text"]
