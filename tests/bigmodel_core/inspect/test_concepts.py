"""Every number the Concepts page shows equals PyTorch's own computation."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bigmodel_core.inspect import concepts as C

RNG = np.random.default_rng(0)
IMAGE = RNG.random((9, 11))
BINARY = (RNG.random((8, 8)) > 0.6).astype(float)  # many ties for max pooling


def t4(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))[None, None]


@pytest.mark.parametrize("preset", list(C.KERNEL_PRESETS))
@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), (3, 2)])
def test_convolution_matches_f_conv2d(preset, stride, padding):
    k = C.kernel_preset(preset)
    res = C.conv2d(IMAGE, k, stride=stride, padding=padding, bias=0.25)
    ref = F.conv2d(t4(IMAGE), t4(k), bias=torch.tensor([0.25], dtype=torch.float64), stride=stride,
                   padding=padding)[0, 0].numpy()
    assert res.output.shape == ref.shape
    assert res.output.shape == (C.output_size(9, 3, stride, padding), C.output_size(11, 3, stride, padding))
    np.testing.assert_allclose(res.output, ref, rtol=0, atol=1e-12)


def test_the_terms_shown_for_a_cell_add_up_to_it():
    k = RNG.normal(size=(3, 3))
    res = C.conv2d(IMAGE, k, stride=2, padding=1)
    ref = F.conv2d(t4(IMAGE), t4(k), stride=2, padding=1)[0, 0].numpy()
    for i, j in [(0, 0), (2, 3), (4, 5)]:
        terms = C.conv_terms(res, i, j)
        assert len(terms) == 9
        assert sum(t.product for t in terms) == pytest.approx(ref[i, j], abs=1e-12)
        for t in terms:  # each term names the right input cell (padding cells hold 0)
            inside = 0 <= t.row < 9 and 0 <= t.col < 11
            assert t.x == (IMAGE[t.row, t.col] if inside else 0.0)
            assert t.w == k[t.u, t.v]


def test_convolution_rejects_bad_input_with_reasons():
    with pytest.raises(ValueError, match="does not fit"):
        C.conv2d(np.ones((2, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="outside"):
        C.conv_terms(C.conv2d(IMAGE, np.ones((3, 3))), 99, 0)
    with pytest.raises(ValueError, match="unknown kernel preset 'emboss'; choose one of: identity"):
        C.kernel_preset("emboss")


@pytest.mark.parametrize("image", [IMAGE, BINARY], ids=["random", "binary-ties"])
@pytest.mark.parametrize("window,stride", [(2, 2), (3, 3), (2, 1), (3, 2)])
def test_max_pooling_and_winner_match_f_max_pool2d(image, window, stride):
    res = C.pool2d(image, "max", window, stride)
    ref, idx = F.max_pool2d(t4(image), window, stride, return_indices=True)
    np.testing.assert_array_equal(res.output, ref[0, 0].numpy())
    w = image.shape[1]
    flat = res.winners[..., 0] * w + res.winners[..., 1]
    np.testing.assert_array_equal(flat, idx[0, 0].numpy())


@pytest.mark.parametrize("window,stride", [(2, 2), (3, 3), (2, 1), (3, 2)])
def test_average_pooling_matches_f_avg_pool2d(window, stride):
    res = C.pool2d(IMAGE, "avg", window, stride)
    ref = F.avg_pool2d(t4(IMAGE), window, stride)[0, 0].numpy()
    np.testing.assert_allclose(res.output, ref, rtol=0, atol=1e-12)


def test_pooling_window_must_fit():
    with pytest.raises(ValueError, match="does not fit in the 2x2 input"):
        C.pool2d(np.ones((2, 2)), "max", 3)


SEQ = np.array([[0.5, -1.0], [1.2, 0.3], [-0.7, 0.9], [0.0, 0.0], [2.0, -2.0]])


def test_lstm_gates_match_nn_lstmcell():
    w = C.random_cell("lstm", input_size=2, hidden=3, seed=4)
    cell = w.to_cell()
    steps = C.lstm_steps(SEQ, w)
    h = torch.zeros(1, 3, dtype=torch.float64)
    c = torch.zeros(1, 3, dtype=torch.float64)
    for step, x in zip(steps, SEQ):
        h, c = cell(torch.from_numpy(x)[None], (h, c))
        np.testing.assert_allclose(step.h, h[0].detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(step.c, c[0].detach().numpy(), atol=1e-12)
        # the gates shown are the ones PyTorch computes internally (same equations, from its weights)
        gates = (cell.weight_ih @ torch.from_numpy(x) + cell.bias_ih + cell.weight_hh @ torch.from_numpy(step.h_prev)
                 + cell.bias_hh).detach().numpy()
        i, f, g, o = np.split(gates, 4)
        np.testing.assert_allclose(step.f, torch.sigmoid(torch.from_numpy(f)).numpy(), atol=1e-12)
        np.testing.assert_allclose(step.c, step.f * step.c_prev + step.i * step.g, atol=1e-12)
        np.testing.assert_allclose(step.h, step.o * np.tanh(step.c), atol=1e-12)


def test_gru_matches_nn_grucell_with_the_textbook_update_gate():
    w = C.random_cell("gru", input_size=2, hidden=3, seed=5)
    cell = w.to_cell()
    h = torch.zeros(1, 3, dtype=torch.float64)
    for step, x in zip(C.gru_steps(SEQ, w), SEQ):
        h = cell(torch.from_numpy(x)[None], h)
        np.testing.assert_allclose(step.h, h[0].detach().numpy(), atol=1e-12)
        # textbook: h_t = (1 - z) h_{t-1} + z n;  PyTorch: h_t = (1 - z') n + z' h_{t-1}, z' = 1 - z
        np.testing.assert_allclose(step.h, (1 - step.z) * step.h_prev + step.z * step.n, atol=1e-12)
        zp = step.z_pytorch
        np.testing.assert_allclose(step.h, (1 - zp) * step.n + zp * step.h_prev, atol=1e-12)
        a_z = (cell.weight_ih[3:6] @ torch.from_numpy(x) + cell.bias_ih[3:6]
               + cell.weight_hh[3:6] @ torch.from_numpy(step.h_prev) + cell.bias_hh[3:6])
        np.testing.assert_allclose(zp, torch.sigmoid(a_z).detach().numpy(), atol=1e-12)


def test_gru_has_only_update_and_reset_gates():
    step = C.gru_steps([0.3], C.random_cell("gru", 1, 2))[0]
    gate_fields = {"r", "z"}
    assert gate_fields <= set(vars(step)) and not {"f", "o", "i"} & set(vars(step))


def test_cells_reject_wrong_feature_count():
    with pytest.raises(ValueError, match="must have 1 feature"):
        C.lstm_steps(SEQ, C.random_cell("lstm", 1, 2))


@pytest.mark.parametrize("surface", list(C.SURFACES))
@pytest.mark.parametrize("name", C.OPTIMIZER_NAMES)
def test_update_rules_on_the_page_are_torch_optims(surface, name):
    lr = C.SURFACES[surface].lrs[name]
    path = C.optimizer_path(surface, name, lr, steps=60, noise=0.3, seed=1)
    by_hand = C.formula_path(surface, name, lr, steps=60, noise=0.3, seed=1)
    assert not path.diverged and path.points.shape == (61, 2)
    np.testing.assert_allclose(path.points, by_hand, rtol=1e-9, atol=1e-12)


def test_optimizer_path_is_pytorch_step_by_step():
    """Oracle written straight from torch.optim, independent of the page's code."""
    p = torch.tensor([-4.5, 1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1)
    expected = [p.detach().clone()]
    for _ in range(20):
        opt.zero_grad()
        (0.1 * p[0] ** 2 + 2.0 * p[1] ** 2).backward()
        opt.step()
        expected.append(p.detach().clone())
    path = C.optimizer_path("ravine", "adam", 0.1, steps=20)
    np.testing.assert_array_equal(path.points, torch.stack(expected).numpy())


def test_analytic_gradients_match_autograd():
    for surf in C.SURFACES.values():
        p = torch.tensor([0.7, -1.3], dtype=torch.float64, requires_grad=True)
        surf.fn(p[0], p[1]).backward()
        np.testing.assert_allclose(p.grad.numpy(), surf.grad(0.7, -1.3), rtol=1e-12)


def test_too_high_learning_rate_is_reported_as_diverged():
    path = C.optimizer_path("ravine", "gd", 2.0, steps=200)
    assert path.diverged and len(path.points) < 201


def test_noise_only_affects_sgd():
    a = C.optimizer_path("saddle", "gd", 0.1, steps=30, noise=1.0)
    b = C.optimizer_path("saddle", "gd", 0.1, steps=30, noise=0.0)
    np.testing.assert_array_equal(a.points, b.points)
    c = C.optimizer_path("saddle", "sgd", 0.1, steps=30, noise=1.0)
    assert not np.array_equal(a.points, c.points)


def test_example_images_come_from_the_datasets():
    imgs, labels = C.example_images("handwritten digit (8x8)", count=10)
    assert imgs.shape == (10, 8, 8) and len(labels) == 10 and set(labels) <= set("0123456789")
    assert 0.0 <= imgs.min() and imgs.max() <= 1.0


# --- the checks the page shows: near zero for the real computation, and they catch a wrong one ----------
def test_page_checks_pass_on_the_real_computations_and_catch_a_wrong_one():
    rng = np.random.default_rng(0)
    image = rng.random((9, 9))
    conv = C.conv2d(image, rng.random((3, 3)) - 0.5, stride=2, padding=1, bias=0.25)
    assert C.check_conv(image, conv) < 1e-12
    wrong = dataclasses.replace(conv, output=conv.output + np.eye(*conv.output.shape) * 1e-3)
    assert C.check_conv(image, wrong) == pytest.approx(1e-3)
    for kind in ("max", "avg"):
        pooled = C.pool2d(image, kind, 3, 2)
        assert C.check_pool(image, pooled) < 1e-12
        assert C.check_pool(image, dataclasses.replace(pooled, output=pooled.output * 1.01)) > 1e-4
    pooled = C.pool2d(image, "max", 2, 2)
    winners = pooled.winners.copy()
    winners[0, 0, 1] = 1 - winners[0, 0, 1]  # another cell of the same first 2x2 window
    assert C.check_pool(image, dataclasses.replace(pooled, winners=winners)) >= 1.0
    seq = [0.5, -1.0, 0.8]
    for kind, steps_fn in (("lstm", C.lstm_steps), ("gru", C.gru_steps)):
        w = C.random_cell(kind, 1, 3, seed=1)
        steps = steps_fn(seq, w)
        for t in range(1, len(seq) + 1):
            assert C.check_cell(seq[:t], w, steps[t - 1]) < 1e-12, (kind, t)
        off = dataclasses.replace(steps[-1], h=steps[-1].h + 1e-3)
        assert C.check_cell(seq, w, off) == pytest.approx(1e-3), kind


# every setting the page's sliders offer: surfaces, optimizers, the learning-rate options, momentum and noise
PAGE_LRS = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0]


@pytest.mark.parametrize("surface", list(C.SURFACES))
@pytest.mark.parametrize("momentum,noise", [(0.0, 0.0), (0.5, 1.0), (0.9, 0.3), (0.99, 3.0)])
def test_the_step_check_stays_green_over_every_slider_setting(surface, momentum, noise):
    paths, worst = C.paths_with_check(surface, C.OPTIMIZER_NAMES, tuple(PAGE_LRS[::3]) + (2.0, 2.0), 300,
                                      C.SURFACES[surface].start, momentum, noise, 0)
    assert worst < C.STEP_TOLERANCE
    for lr in PAGE_LRS:  # chaotic and diverging paths included: each step still agrees
        for name in ("rmsprop", "momentum", "gd", "sgd"):
            path = C.optimizer_path(surface, name, lr, 300, None, momentum, noise, 0)
            assert C.step_errors(surface, path, 300, momentum, noise, 0) < C.STEP_TOLERANCE, (name, lr)


@pytest.mark.parametrize("wrong", ["adam without bias correction", "momentum with dampening",
                                   "nesterov as plain momentum", "adamw decaying through the gradient"])
def test_a_deliberately_wrong_update_rule_fails_the_check(wrong, monkeypatch):
    from bigmodel_core.inspect.concepts import optimizers

    right = optimizers.update_rule
    name = {"adam without bias correction": "adam", "momentum with dampening": "momentum",
            "nesterov as plain momentum": "nesterov", "adamw decaying through the gradient": "adamw"}[wrong]

    def rule(n, theta, g, st, t, lr, mu):
        if wrong == "adam without bias correction":
            st.m = 0.9 * st.m + 0.1 * g
            st.acc = 0.999 * st.acc + 0.001 * g ** 2
            return theta - lr * st.m / (np.sqrt(st.acc) + 1e-8)
        if wrong == "momentum with dampening":
            st.b = g if t == 1 else mu * st.b + (1 - mu) * g
            return theta - lr * st.b
        if wrong == "nesterov as plain momentum":
            return right("momentum", theta, g, st, t, lr, mu)
        return right("adam", theta, g + optimizers.ADAMW_DECAY * theta, st, t, lr, mu)

    monkeypatch.setattr(optimizers, "update_rule", rule)
    _, worst = C.paths_with_check("ravine", (name,), (C.SURFACES["ravine"].lrs[name],), 50,
                                  C.SURFACES["ravine"].start, 0.9, 0.0, 0)
    assert worst > 1e-6


def test_the_ravine_text_matches_what_its_defaults_show():
    surf = C.SURFACES["ravine"]
    gd = C.optimizer_path("ravine", "gd", surf.lrs["gd"], 100)
    ys = gd.points[:12, 1]
    assert np.all(np.sign(ys[1:]) != np.sign(ys[:-1]))  # zig-zags across the valley at every step
    assert gd.losses[-1] < 1e-3  # and still arrives
    slow = C.optimizer_path("ravine", "gd", 0.1, 100)
    assert np.all(np.sign(slow.points[:, 1]) > 0) and slow.losses[-1] > 1e-2  # no zig-zag, but crawls
    assert C.optimizer_path("ravine", "gd", 0.55, 100).diverged  # past 2 / 4 the steep direction diverges
    assert "zig-zags" in surf.description and "crawls" in surf.description and "0.5" in surf.description
