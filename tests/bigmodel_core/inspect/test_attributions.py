"""Attributions against hand computations with torch.autograd on tiny models: saliency, Grad-CAM and
integrated gradients' completeness, for CNNs and RNNs; looking never changes the model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bigmodel_core.config.specs import parse_config
from bigmodel_core.data import dataset_info
from bigmodel_core.inspect import attributions, probes
from bigmodel_core.inspect.attributions import AttributionError, explain, explain_batch
from bigmodel_core.nn.models import build_model

ROOT = Path(__file__).resolve().parents[3]


def tiny_cnn(batchnorm: bool = False, pool: str = "max"):
    cfg = parse_config({"data": {"name": "handwritten_digits", "image_size": 8, "train_size": 64, "val_size": 32},
                        "model": {"family": "cnn",
                                  "conv": [{"channels": 3, "kernel": 3, "batchnorm": batchnorm},
                                           {"channels": 4, "kernel": 3, "pool": pool, "activation": "relu"}],
                                  "dense": [{"units": 6}]},
                        "training": {"device": "cpu"}})
    info = dataset_info("handwritten_digits", image_size=8)
    return probes.probe_copy(build_model(cfg.model, info, seed=3)), info


def tiny_rnn(family: str = "lstm", data: str = "sequential_digits", bidirectional: bool = False):
    extra = {"seq_len": 6} if data == "adding_problem" else {}
    cfg = parse_config({"data": {"name": data, "train_size": 32, "val_size": 16, **extra},
                        "model": {"family": family, "hidden": 5, "layers": 2, "bidirectional": bidirectional},
                        "training": {"device": "cpu"}})
    info = dataset_info(data, **extra)
    return probes.probe_copy(build_model(cfg.model, info, seed=1)), info


def input_grad(model, x: torch.Tensor, target: int) -> torch.Tensor:
    xg = x.clone().unsqueeze(0).requires_grad_(True)
    (g,) = torch.autograd.grad(model(xg)[0, target], xg)
    return g[0]


def image(seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("target", [None, 4])
def test_saliency_is_the_absolute_input_gradient_of_the_explained_logit(target):
    model, info = tiny_cnn()
    x = image()
    ex = explain(model, x, info.task, target)
    logits = model(x[None])[0]
    k = int(logits.argmax()) if target is None else target
    assert ex.target == k
    expected = input_grad(model, x, k).abs()[0]
    np.testing.assert_allclose(ex.saliency, expected.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ex.scores, logits.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(ex.output, torch.softmax(logits, 0).detach().numpy(), rtol=1e-6)
    assert ex.saliency.any()


@pytest.mark.parametrize("batchnorm, pool", [(False, "max"), (True, "avg"), (False, "none")])
def test_grad_cam_is_relu_of_the_gradient_weighted_maps_of_the_last_block(batchnorm, pool):
    model, info = tiny_cnn(batchnorm, pool)
    x = image(1)
    target = 2
    grabbed = []
    layer, name = attributions.last_conv_activation(model)
    handle = layer.register_forward_hook(lambda _m, _i, out: grabbed.append(out))
    try:
        xg = x[None].clone().requires_grad_(True)
        score = model(xg)[0, target]
    finally:
        handle.remove()
    a = grabbed[0]  # (1, K, h, w)
    (da,) = torch.autograd.grad(score, a)
    alpha = da.mean(dim=(2, 3), keepdim=True)  # mean over the map of dY/dA_k
    cam = torch.relu((alpha * a).sum(dim=1))[0]  # ReLU(sum_k alpha_k A_k)
    ex = explain(model, x, info.task, target)
    assert ex.grad_cam_name == name == "block 2 after relu"
    np.testing.assert_allclose(ex.grad_cam_layer, cam.detach().numpy(), rtol=1e-5, atol=1e-7)
    up = F.interpolate(cam[None, None], size=(8, 8), mode="bilinear", align_corners=False)[0, 0]
    np.testing.assert_allclose(ex.grad_cam, up.detach().numpy(), rtol=1e-5, atol=1e-7)
    assert (ex.grad_cam >= 0).all()


@pytest.mark.parametrize("target", [0, 7])
def test_integrated_gradients_add_up_to_the_change_of_the_score_from_a_black_image(target):
    model, info = tiny_cnn()
    x = image(2)
    ex = explain(model, x, info.task, target)
    with torch.no_grad():
        expected = float(model(x[None])[0, target] - model(torch.zeros_like(x)[None])[0, target])
    assert ex.ig_expected == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert float(ex.integrated.sum()) == pytest.approx(ex.ig_total, rel=1e-5, abs=1e-6)
    # completeness: ReLU nets are piecewise linear, so 32 Gauss-Legendre points come close, not exact
    assert abs(ex.ig_gap) <= 0.02 * abs(expected) + 1e-3
    # more points, closer: the gap is the integral's error, not a bias of the method
    fine = explain(model, x, info.task, target, methods=("integrated gradients",), ig_steps=300)
    assert abs(fine.ig_gap) <= abs(ex.ig_gap) + 1e-6


def test_integrated_gradients_of_a_linear_model_are_input_times_weight():
    # for a linear score, IG from 0 is exactly x * w: the hand computation needs no integral
    model, info = tiny_cnn()
    for blk in model.blocks:
        blk.act = torch.nn.Identity()
        blk.pool = torch.nn.Identity()
    model.head = torch.nn.Identity()
    model.classifier = torch.nn.Linear(4 * 8 * 8, 10)
    model = probes.probe_copy(model)
    x = image(3)
    ex = explain(model, x, info.task, 5, methods=("integrated gradients", "saliency"))
    w = input_grad(model, x, 5)[0]
    np.testing.assert_allclose(ex.integrated, (x[0] * w).detach().numpy(), rtol=1e-4, atol=1e-6)
    assert ex.ig_gap == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("family, bidirectional", [("lstm", False), ("gru", True), ("rnn", False)])
def test_sequence_saliency_and_integrated_gradients_over_time_steps(family, bidirectional):
    model, info = tiny_rnn(family, bidirectional=bidirectional)
    x = torch.rand(8, 8, generator=torch.Generator().manual_seed(4))
    ex = explain(model, x, info.task, 3)
    assert ex.kind == "sequence" and ex.grad_cam is None
    assert ex.saliency.shape == (8, 8) and ex.saliency_steps.shape == (8,)
    np.testing.assert_allclose(ex.saliency, input_grad(model, x, 3).abs().numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ex.integrated_steps, ex.integrated.sum(axis=1), rtol=1e-6)
    with torch.no_grad():
        expected = float(model(x[None])[0, 3] - model(torch.zeros_like(x)[None])[0, 3])
    assert ex.ig_expected == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert abs(ex.ig_gap) <= 0.02 * abs(expected) + 1e-3


def test_a_regression_model_explains_its_single_output():
    model, info = tiny_rnn("lstm", "adding_problem")
    x = torch.rand(6, 2, generator=torch.Generator().manual_seed(5))
    ex = explain(model, x, info.task)
    assert ex.task == "regression" and ex.target == 0 and ex.output.shape == (1,)
    with torch.no_grad():
        assert float(ex.output[0]) == pytest.approx(float(model(x[None])[0, 0]), rel=1e-6)
    np.testing.assert_allclose(ex.saliency, input_grad(model, x, 0).abs().numpy(), rtol=1e-5, atol=1e-7)


def test_a_batch_explains_each_input_for_its_own_target_as_one_at_a_time_does():
    model, info = tiny_cnn()
    xs = torch.stack([image(s) for s in range(3)])
    batch = explain_batch(model, xs, info.task, [1, 5, 9])
    for x, target, ex in zip(xs, [1, 5, 9], batch):
        one = explain(model, x, info.task, target)
        assert ex.target == target
        for a, b in [(ex.saliency, one.saliency), (ex.integrated, one.integrated), (ex.grad_cam, one.grad_cam)]:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_looking_never_changes_the_model():
    model, info = tiny_cnn(batchnorm=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    explain(model, image(), info.task, 3)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())
    assert not model.training


def test_what_does_not_apply_is_refused_with_a_message():
    model, info = tiny_cnn()
    with pytest.raises(AttributionError, match="class 10 does not exist; this model has classes 0 to 9"):
        explain(model, image(), info.task, 10)
    with pytest.raises(AttributionError, match="expected an input of 3 dimensions"):
        explain(model, torch.zeros(8, 8), info.task)
    with pytest.raises(AttributionError, match="not finite"):
        explain(model, torch.full((1, 8, 8), float("nan")), info.task)
    with pytest.raises(AttributionError, match="unknown attribution method 'lime'"):
        explain(model, image(), info.task, methods=("lime",))
    with pytest.raises(AttributionError, match="this model is a Linear"):
        explain(torch.nn.Linear(3, 2), torch.zeros(3), "classification")


def test_the_app_pages_that_draw_attributions_import_captum_only_when_one_is_computed():
    code = ("import sys, ui.try_model, ui.inspect, bigmodel_core.inspect.attributions; "
            "print('captum' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_computing_attributions_leaves_captums_plotting_helpers_unloaded_until_they_are_used():
    # captum.attr imports matplotlib.pyplot and IPython for its plots; the app draws with Plotly and
    # keeps them out of the server (about 35 MB) until a name of that module is actually read
    code = """
import sys, torch
sys.path.insert(0, "tests/bigmodel_core/inspect")
from test_attributions import tiny_cnn
from bigmodel_core.inspect import attributions
model, _ = tiny_cnn()
ex = attributions.explain(model, torch.rand(1, 8, 8), "classification")
heavy = lambda: sorted(m for m in ("matplotlib.pyplot", "IPython") if m in sys.modules)
print(ex.grad_cam is not None, heavy())
import captum.attr
print(captum.attr.visualization.visualize_image_attr.__module__, heavy())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ["True []", "captum.attr._utils.visualization ['IPython', 'matplotlib.pyplot']"]
