"""Model-size sweeps: the power-law fit recovers known exponents, every swept model's parameters and
FLOPs are the summary's, and a sweep runs through the pool with its points and CLI output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bigmodel_core.cli import main
from bigmodel_core.config.specs import ConfigError, parse_config
from bigmodel_core.experiments import compare as cmp
from bigmodel_core.training.jobs import JobPool


@pytest.mark.parametrize("a,b", [(3.0, 0.076), (12.5, 0.5), (0.8, 1.3)])
def test_the_fit_recovers_an_exact_power_law(a, b):
    n = np.array([1e3, 4e3, 2e4, 1e5, 6e5])
    fit = cmp.fit_power_law(n, a * n ** (-b))
    assert fit.b == pytest.approx(b, rel=1e-9) and fit.a == pytest.approx(a, rel=1e-9)
    assert fit.r2 == pytest.approx(1.0) and fit.n == 5
    assert fit.predict(5e4) == pytest.approx(a * 5e4 ** (-b))


def test_the_fit_recovers_the_exponent_through_noise_and_agrees_with_numpy():
    rng = np.random.default_rng(0)
    n = np.geomspace(1e3, 1e7, 40)
    y = 5.0 * n ** (-0.3) * np.exp(rng.normal(0, 0.05, n.size))  # 5 % multiplicative noise
    fit = cmp.fit_power_law(n, y)
    assert fit.b == pytest.approx(0.3, abs=0.02) and 0.9 < fit.r2 < 1.0
    slope, intercept = np.polyfit(np.log(n), np.log(y), 1)  # the same least squares, written out
    assert fit.b == pytest.approx(-slope) and fit.a == pytest.approx(np.exp(intercept))
    # noisier and fewer points: still the right slope to a rough tolerance, and a worse R²
    few = cmp.fit_power_law(n[::8], (5.0 * n ** (-0.3) * np.exp(rng.normal(0, 0.2, n.size)))[::8])
    assert few.b == pytest.approx(0.3, abs=0.15) and few.r2 < fit.r2


@pytest.mark.parametrize("x,y,needle", [
    ([1.0], [2.0], "at least 2 points"),
    ([5.0, 5.0], [1.0, 2.0], "at least 2 points"),
    ([1.0, 0.0], [1.0, 2.0], "above 0"),
    ([1.0, 2.0], [1.0, float("nan")], "finite"),
    ([1.0, 2.0, 3.0], [1.0, 2.0], "same length"),
])
def test_the_fit_refuses_points_it_cannot_fit(x, y, needle):
    with pytest.raises(ValueError, match=needle):
        cmp.fit_power_law(x, y)


def cnn(**over):
    raw = {"seed": 0, "data": {"name": "synthetic_digits", "train_size": 128, "val_size": 64},
           "model": {"family": "cnn", "conv": [{"channels": 4}, {"channels": 8}], "dense": [{"units": 8}]},
           "optimizer": {"name": "adam", "lr": 0.003}, "training": {"epochs": 1, "batch_size": 32, "device": "cpu"}}
    return parse_config(raw).with_changes(over) if over else parse_config(raw)


def test_widths_scale_channels_and_units_and_depth_adds_blocks_without_pooling():
    comp = cmp.plan_scale(cnn(), [0.5, 2.0], [1, 3])
    assert comp.kind == "scale" and comp.names == ["width x0.5, 1 blocks", "width x2, 1 blocks",
                                                   "width x0.5, 3 blocks", "width x2, 3 blocks"]
    m = comp.runs[3].config.model
    assert [b.channels for b in m.conv] == [8, 16, 16] and [b.pool for b in m.conv] == ["max", "max", "none"]
    assert m.dense[0].units == 16
    assert [b.channels for b in comp.runs[0].config.model.conv] == [2]
    lstm = parse_config({"data": {"name": "sine_wave", "train_size": 64, "val_size": 32},
                         "model": {"family": "lstm", "hidden": 16}})
    assert [r.config.model.hidden for r in cmp.plan_scale(lstm, [0.5, 1, 2]).runs] == [8, 16, 32]
    assert [r.config.model.layers for r in cmp.plan_scale(lstm, [1], [1, 2]).runs] == [1, 2]


@pytest.mark.parametrize("widths,depths,needle", [
    ([0.0], None, "width multiplier"),
    ([1.0], [0], "depth"),
    ([0.25, 0.5, 1, 2, 4], [1, 2], "10 runs"),
    ([1.0, 1.05], None, "same number of parameters"),
    ([1.0], [9], "width x1, 9 blocks is not allowed: 9 conv blocks is above the limit of 8"),
])
def test_bad_sizes_are_refused_naming_what_is_wrong(widths, depths, needle):
    with pytest.raises(ConfigError, match=needle):
        cmp.plan_scale(cnn(**{"model.conv.0.pool": "max", "model.conv.1.pool": "max"}), widths, depths)


def test_each_swept_models_parameters_and_flops_are_the_summarys(tmp_path, capsys):
    for run in cmp.plan_scale(cnn(), [0.25, 1.0, 3.0], [2, 3]).runs:
        f = tmp_path / "c.json"
        f.write_text(run.config.to_json())
        assert main(["summary", str(f), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        size = cmp.model_size(run.config)
        assert (size.params, size.forward_flops) == (summary["total_params"], summary["total_flops"])
        assert cmp.training_flops(size, 1000) == 3 * summary["total_flops"] * 1000


def test_a_sweep_runs_in_the_pool_and_its_points_carry_size_compute_and_loss():
    comp = cmp.plan_scale(cnn(), [0.5, 1.0, 2.0])
    pool = JobPool(max_workers=1, store=None, threads_per_job=1, idle_stop_seconds=10 ** 9)
    try:
        cmp.submit(comp, pool, "me", save=False)
        cmp.wait(comp, pool, "me", poll=0.05)
    finally:
        pool.shutdown()
    points = cmp.scale_points(comp)
    assert [p.run for p in points] == comp.names
    assert [p.params for p in points] == [cmp.model_size(r.config).params for r in comp.runs]
    assert all(p.train_flops == 3 * p.forward_flops * 128 for p in points)  # 1 epoch of 128 samples
    assert [p.val_loss for p in points] == [r.epochs[-1]["val_loss"] for r in comp.runs]
    fit = cmp.fit_points(points, "params")
    assert fit.n == 3 and fit.x == tuple(float(p.params) for p in points)
    again = cmp.Comparison.from_json(comp.to_json())
    assert again.kind == "scale" and [p.params for p in cmp.scale_points(again)] == [p.params for p in points]


def test_cli_compare_sweeps_widths_prints_the_fit_and_writes_scaling_csv(tmp_path, capsys):
    f = tmp_path / "c.json"
    f.write_text(cnn().to_json())
    assert main(["compare", str(f), "--widths", "0.5,1,2", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "against parameters: loss ≈" in out and "fitted on 3 points" in out
    rows = (tmp_path / "out" / "scaling.csv").read_text().splitlines()
    assert rows[0].startswith("run,seed,parameters") and len(rows) == 4
    assert json.loads((tmp_path / "out" / "comparison.json").read_text())["kind"] == "scale"


@pytest.mark.parametrize("argv,needle", [
    (["--widths", "1", "--vary", "seed=1,2"], "not --vary and --widths/--depths"),
    ([], "give one of --vary, --teacher or --widths/--depths"),
    (["--widths", "1,x"], "--widths"),
])
def test_cli_compare_needs_exactly_one_kind(argv, needle, tmp_path, capsys):
    f = tmp_path / "c.json"
    f.write_text(cnn().to_json())
    assert main(["compare", str(f), *argv, "--out", str(tmp_path / "out")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
