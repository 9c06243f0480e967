"""The Fine-tune page's results, aggregated in the engine: points, means and spreads over seeds, table rows."""

from __future__ import annotations

import statistics

import pytest

from bigmodel_core.experiments.finetune import RunOutcome, aggregate_results, budget_curves, budget_points

LABELS = {"head": "head only (linear probe)", "last:1": "last 1 block + head", "full": "full fine-tune",
          "scratch": "from scratch"}


def run(strategy: str, budget: str, seed: int, value: float | None, labelled: int, status: str = "completed",
        key: str = "val_accuracy") -> RunOutcome:
    summary = {"final": {"train_loss": 0.5, key: value},
               "finetune": {"labelled_examples": labelled, "validation_examples": 40, "trainable_params": 650,
                            "frozen_params": 105_312}}
    return RunOutcome(strategy, LABELS[strategy], budget, seed, status, summary,
                      "" if strategy == "scratch" else "letters_cnn")


def classification_runs() -> list[RunOutcome]:
    return [
        run("head", "1", 0, 0.40, 10), run("head", "1", 1, 0.60, 10),
        run("scratch", "1", 0, 0.10, 10), run("scratch", "1", 1, 0.30, 10),
        run("head", "5", 0, 0.80, 50),
        run("head", "all", 0, 0.90, 1290),  # 129 per class over 10 classes
        RunOutcome("head", LABELS["head"], "5", 1, "running"),  # no summary yet
        run("scratch", "5", 0, None, 50),  # completed without a final metric: no point
        run("scratch", "5", 1, 0.70, 50, status="failed"),  # not completed: no point, whatever it holds
    ]


def test_points_are_the_completed_runs_with_a_metric_at_the_labels_they_used():
    points = budget_points(classification_runs(), "classification", 10)
    assert [(p.strategy, p.per_class, p.seed, p.value) for p in points] == [
        ("head", 1, 0, 0.40), ("head", 1, 1, 0.60), ("scratch", 1, 0, 0.10), ("scratch", 1, 1, 0.30),
        ("head", 5, 0, 0.80), ("head", 129, 0, 0.90)]
    assert [p.budget_text for p in points][-2:] == ["5", "all (129)"]


def test_means_and_spreads_over_seeds_per_strategy_and_budget():
    res = aggregate_results(classification_runs(), "classification", 10)
    assert [c.strategy for c in res.curves] == ["head", "scratch"]  # the baseline last
    head, scratch = res.curves
    assert head.label == "head only (linear probe)"
    assert [m.per_class for m in head.means] == [1, 5, 129]
    assert [m.seeds for m in head.means] == [2, 1, 1]
    assert head.means[0].mean == pytest.approx(statistics.fmean([0.40, 0.60]))
    assert head.means[0].sd == pytest.approx(statistics.pstdev([0.40, 0.60]))
    assert head.means[1].mean == pytest.approx(0.80) and head.means[1].sd == 0.0
    assert [m.text for m in head.means] == ["1 · 2 seed(s)", "5 · 1 seed(s)", "all (129) · 1 seed(s)"]
    assert scratch.means[0].mean == pytest.approx(0.20) and scratch.means[0].sd == pytest.approx(0.10)
    assert head.several_seeds and scratch.several_seeds
    assert res.ticks == ((1, "1"), (5, "5"), (129, "all (129)"))


def test_status_counts_and_one_row_per_run():
    runs = classification_runs()
    res = aggregate_results(runs, "classification", 10, unit="labels per class")
    assert res.counts == {"completed": 7, "running": 1, "failed": 1}
    assert list(res.counts) == ["completed", "running", "failed"]  # in the order they first appear
    assert len(res.rows) == len(runs) and res.metric_key == "val_accuracy"
    first, running, failed = res.rows[0], res.rows[6], res.rows[8]
    assert first == {"strategy": "head only (linear probe)", "labels per class": "1", "seed": 0, "status": "completed",
                     "val accuracy": 0.40, "validated on": 40, "trainable params": 650, "frozen params": 105_312,
                     "pretrained": "letters_cnn"}
    assert running["val accuracy"] is None and running["trainable params"] is None
    assert running["validated on"] is None  # nothing measured yet: no count claimed
    assert failed["pretrained"] == "–" and failed["val accuracy"] == 0.70  # the table shows what the run reports


def test_strategies_are_ordered_with_scratch_last():
    runs = [run(s, "2", 0, 0.5, 20) for s in ("scratch", "last:1", "head", "full")]
    curves = budget_curves(budget_points(runs, "classification", 10))
    assert [c.strategy for c in curves] == ["full", "head", "last:1", "scratch"]
    assert not any(c.several_seeds for c in curves)


def test_regression_counts_labelled_sequences_in_all():
    runs = [run("head", "20", 0, 0.12, 20, key="val_mae"), run("head", "20", 1, 0.18, 20, key="val_mae"),
            run("scratch", "all", 0, 0.30, 2000, key="val_mae")]
    res = aggregate_results(runs, "regression", 1, unit="labelled sequences")
    assert res.metric_key == "val_mae"
    assert [(p.per_class, p.budget_text) for p in res.points] == [(20, "20"), (20, "20"), (2000, "all (2000)")]
    head = res.curves[0]
    assert head.means[0].mean == pytest.approx(0.15) and head.means[0].sd == pytest.approx(0.03)
    assert res.rows[0]["val mae"] == 0.12 and res.rows[0]["labelled sequences"] == "20"


def test_nothing_finished_gives_no_points():
    res = aggregate_results([RunOutcome("head", LABELS["head"], "1", 0, "queued")], "classification", 10)
    assert res.points == () and res.curves == () and res.ticks == ()
    assert res.counts == {"queued": 1} and len(res.rows) == 1
