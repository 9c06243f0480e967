import pytest

from bigmodel_core.experiments.finetune import RunOutcome, aggregate_results
from ui.figures.finetune import budget_figure


def outcome(strategy: str, label: str, budget: str, seed: int, value: float, labelled: int) -> RunOutcome:
    return RunOutcome(strategy, label, budget, seed, "completed",
                      {"final": {"val_accuracy": value}, "finetune": {"labelled_examples": labelled}})


def test_budget_figure_draws_the_engine_means_spreads_and_seeds():
    runs = [outcome("head", "head only (linear probe)", "1", 0, 0.4, 10),
            outcome("head", "head only (linear probe)", "1", 1, 0.6, 10),
            outcome("head", "head only (linear probe)", "all", 0, 0.9, 1290),
            outcome("scratch", "from scratch", "1", 0, 0.2, 10)]
    res = aggregate_results(runs, "classification", 10)
    fig = budget_figure(res, "classification")
    lines = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in lines] == ["head only (linear probe)", "from scratch"]
    head, scratch = lines
    assert list(head.x) == [1, 129] and list(head.y) == pytest.approx([0.5, 0.9])
    assert list(head.error_y.array) == pytest.approx([0.1, 0.0]) and head.error_y.visible
    assert not scratch.error_y.visible and scratch.line.dash == "dash"
    seeds = [t for t in fig.data if t.showlegend is False]  # each seed as a dot, for head only (two seeds)
    assert len(seeds) == 1 and list(seeds[0].y) == pytest.approx([0.4, 0.6, 0.9])
    assert list(fig.layout.xaxis.ticktext) == ["1", "all (129)"]
    assert "against the label budget" in fig.layout.title.text
