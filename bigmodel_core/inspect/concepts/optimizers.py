"""Optimizers on a 2-D loss surface: torch.optim's own steps, and the update rules by hand.

:func:`optimizer_path` runs ``torch.optim`` on a 2-parameter tensor; :func:`formula_path`
applies the update rules exactly as the page writes them (numpy, analytic gradient);
:func:`step_errors` checks each of torch.optim's steps against one update of the rules from the
same point and state, so the check tests the formula, not how far two runs of a chaotic path
drift apart; :func:`paths_with_check` runs it for each optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

TorchFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
GradFn = Callable[[float, float], tuple[float, float]]


@dataclass(frozen=True)
class Surface:
    name: str
    title: str
    latex: str
    description: str
    fn: TorchFn  # works on tensors (autograd) and numpy arrays (contours)
    grad: GradFn  # the analytic gradient, used by the hand-written update rules
    start: tuple[float, float]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    minimum: tuple[float, float]
    lrs: dict[str, float]  # a learning rate per optimizer that shows its typical behaviour here


SURFACES: dict[str, Surface] = {
    "ravine": Surface(
        "ravine", "Ravine", r"f(x, y) = 0.1\,x^2 + 2\,y^2",
        "A long narrow valley: steep across (y), almost flat along (x). At lr 0.4, large enough to move "
        "along x, plain GD overshoots across y at every step: its path zig-zags, and it still arrives "
        "because 0.4 is just under 0.5, where the steep direction diverges (lr > 2 / 4). Lower the lr "
        "and the zig-zag stops but GD crawls along x (at 0.1 it is still far from the minimum after 100 "
        "steps); raise it past 0.5 and it diverges. Momentum and the adaptive methods avoid that trade-off.",
        lambda x, y: 0.1 * x ** 2 + 2.0 * y ** 2,
        lambda x, y: (0.2 * x, 4.0 * y),
        (-4.5, 1.0), (-5.0, 5.0), (-1.5, 1.5), (0.0, 0.0),
        {"gd": 0.4, "sgd": 0.4, "momentum": 0.03, "nesterov": 0.03, "adagrad": 0.5, "rmsprop": 0.05, "adam": 0.1,
         "adamw": 0.1}),
    "saddle": Surface(
        "saddle", "Saddle", r"f(x, y) = 0.5\,x^2 + 0.25\,y^4 - 0.5\,y^2",
        "A saddle point at (0, 0) between two minima at (0, +-1). Starting almost on the ridge, GD "
        "slows to a crawl near the saddle; noise and adaptive steps escape it sooner.",
        lambda x, y: 0.5 * x ** 2 + 0.25 * y ** 4 - 0.5 * y ** 2,
        lambda x, y: (x, y ** 3 - y),
        (-2.0, 0.001), (-2.5, 2.5), (-1.8, 1.8), (0.0, 1.0),
        {"gd": 0.1, "sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.3, "rmsprop": 0.02, "adam": 0.05,
         "adamw": 0.05}),
    "rosenbrock": Surface(
        "rosenbrock", "Rosenbrock valley", r"f(x, y) = (1 - x)^2 + 10\,(y - x^2)^2",
        "A curved banana-shaped valley with its minimum at (1, 1): easy to reach the valley, slow to "
        "follow it.",
        lambda x, y: (1 - x) ** 2 + 10.0 * (y - x ** 2) ** 2,
        lambda x, y: (-2 * (1 - x) - 40.0 * x * (y - x ** 2), 20.0 * (y - x ** 2)),
        (-1.5, 2.0), (-2.0, 2.0), (-1.0, 3.0), (1.0, 1.0),
        {"gd": 0.01, "sgd": 0.01, "momentum": 0.003, "nesterov": 0.003, "adagrad": 0.5, "rmsprop": 0.05,
         "adam": 0.1, "adamw": 0.1}),
}
OPTIMIZER_NAMES: tuple[str, ...] = ("gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
OPTIMIZER_LABELS: dict[str, str] = {
    "gd": "GD", "sgd": "SGD (noisy gradient)", "momentum": "Momentum", "nesterov": "Nesterov momentum",
    "adagrad": "Adagrad", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW",
}

# PyTorch's defaults, written into the formulas on the page.
ADAGRAD_EPS = 1e-10
RMSPROP_ALPHA, RMSPROP_EPS = 0.99, 1e-8
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
ADAMW_DECAY = 0.01  # torch.optim.AdamW's default weight_decay
STEP_TOLERANCE = 1e-9  # largest relative difference between a torch.optim step and the rule's
DIVERGED = 1e6  # |coordinate| beyond this ends a path: the learning rate is too high


def surface(name: str) -> Surface:
    if name not in SURFACES:
        raise ValueError(f"unknown surface {name!r}; choose one of: {', '.join(SURFACES)}")
    return SURFACES[name]


@dataclass(frozen=True)
class OptimizerPath:
    name: str
    lr: float
    points: np.ndarray  # (steps + 1, 2), start included; shorter if it diverged
    losses: np.ndarray
    diverged: bool


def gradient_noise(steps: int, std: float, seed: int) -> np.ndarray:
    """The (steps, 2) Gaussian noise added to each gradient by noisy SGD (mini-batch stand-in)."""
    if std < 0:
        raise ValueError(f"noise must be 0 or more, got {std}")
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(steps, 2, generator=gen, dtype=torch.float64) * std).numpy()


def _check_optimizer(name: str, lr: float, steps: int) -> None:
    if name not in OPTIMIZER_NAMES:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZER_NAMES)}")
    if not lr > 0:
        raise ValueError(f"learning rate must be positive, got {lr}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")


def torch_optimizer(name: str, params: list[torch.Tensor], lr: float, momentum: float = 0.9) -> torch.optim.Optimizer:
    """The torch.optim optimizer behind each name (PyTorch defaults otherwise)."""
    if name in ("gd", "sgd"):
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "nesterov":
        # with mu = 0 Nesterov's rule is plain GD, which torch.optim refuses to call Nesterov
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=ADAMW_DECAY)
    raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZER_NAMES)}")


def optimizer_path(surface_name: str, name: str, lr: float, steps: int = 100,
                   start: tuple[float, float] | None = None, momentum: float = 0.9,
                   noise: float = 0.0, seed: int = 0) -> OptimizerPath:
    """Steps of ``torch.optim`` on a 2-parameter tensor: PyTorch's own updates.

    ``noise`` (standard deviation) is added to the gradient for ``sgd`` only.
    """
    surf = surface(surface_name)
    _check_optimizer(name, lr, steps)
    p = torch.tensor(start or surf.start, dtype=torch.float64, requires_grad=True)
    opt = torch_optimizer(name, [p], lr, momentum)
    eps = torch.from_numpy(gradient_noise(steps, noise if name == "sgd" else 0.0, seed))
    points = [p.detach().clone()]
    diverged = False
    for k in range(steps):
        opt.zero_grad()
        loss = surf.fn(p[0], p[1])
        loss.backward()
        if name == "sgd":
            p.grad += eps[k]
        opt.step()
        point = p.detach().clone()
        if not torch.isfinite(point).all() or point.abs().max() > DIVERGED:
            diverged = True
            break
        points.append(point)
    pts = torch.stack(points).numpy()
    return OptimizerPath(name, lr, pts, surf.fn(pts[:, 0], pts[:, 1]), diverged)


def formula_path(surface_name: str, name: str, lr: float, steps: int = 100,
                 start: tuple[float, float] | None = None, momentum: float = 0.9,
                 noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """The same path from the update rules as written on the page (numpy, analytic gradient).

    The page shows that this agrees with :func:`optimizer_path` (torch.optim): the formulas
    are the ones PyTorch runs.
    """
    surf = surface(surface_name)
    _check_optimizer(name, lr, steps)
    theta = np.array(start or surf.start, dtype=np.float64)
    eps = gradient_noise(steps, noise if name == "sgd" else 0.0, seed)
    state = RuleState()
    points = [theta.copy()]
    for k in range(steps):
        g = np.array(surf.grad(theta[0], theta[1])) + eps[k]
        theta = update_rule(name, theta, g, state, k + 1, lr, momentum)
        if not np.isfinite(theta).all() or np.abs(theta).max() > DIVERGED:
            break
        points.append(theta.copy())
    return np.array(points)


@dataclass
class RuleState:
    """What the update rules carry from step to step (per coordinate)."""

    b: np.ndarray = field(default_factory=lambda: np.zeros(2))  # momentum buffer
    acc: np.ndarray = field(default_factory=lambda: np.zeros(2))  # Adagrad's sum / RMSprop's and Adam's 2nd moment
    m: np.ndarray = field(default_factory=lambda: np.zeros(2))  # Adam's first moment


def update_rule(name: str, theta: np.ndarray, g: np.ndarray, st: RuleState, t: int, lr: float,
                momentum: float) -> np.ndarray:
    """One step of the rule the page writes for ``name``, from ``theta`` with gradient ``g`` at step ``t``."""
    beta1, beta2 = ADAM_BETAS
    if name in ("gd", "sgd"):
        return theta - lr * g
    if name in ("momentum", "nesterov"):
        st.b = g if t == 1 else momentum * st.b + g
        return theta - lr * (g + momentum * st.b if name == "nesterov" else st.b)
    if name == "adagrad":
        st.acc = st.acc + g ** 2
        return theta - lr * g / (np.sqrt(st.acc) + ADAGRAD_EPS)
    if name == "rmsprop":
        st.acc = RMSPROP_ALPHA * st.acc + (1 - RMSPROP_ALPHA) * g ** 2
        return theta - lr * g / (np.sqrt(st.acc) + RMSPROP_EPS)
    if name in ("adam", "adamw"):
        if name == "adamw":
            theta = theta * (1 - lr * ADAMW_DECAY)  # decoupled: the weights shrink, the gradient is untouched
        st.m = beta1 * st.m + (1 - beta1) * g
        st.acc = beta2 * st.acc + (1 - beta2) * g ** 2
        m_hat, v_hat = st.m / (1 - beta1 ** t), st.acc / (1 - beta2 ** t)
        return theta - lr * m_hat / (np.sqrt(v_hat) + ADAM_EPS)
    raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZER_NAMES)}")


def step_errors(surface_name: str, path: OptimizerPath, steps: int, momentum: float, noise: float,
                seed: int) -> float:
    """The largest relative difference between each of torch.optim's steps on ``path`` (run for ``steps``
    steps) and one update
    of the written rule from the same point, with the same gradient (noise included) and state.

    Each step starts again from torch's own point, so rounding never compounds: on a chaotic path
    (a high learning rate on Rosenbrock) two whole runs drift apart by a lot while every single
    step agrees to ~1e-15.
    """
    surf = surface(surface_name)
    eps = gradient_noise(steps, noise if path.name == "sgd" else 0.0, seed)  # the path's own draws
    state = RuleState()
    worst = 0.0
    for k in range(len(path.points) - 1):
        here, there = path.points[k], path.points[k + 1]
        g = np.array(surf.grad(here[0], here[1])) + eps[k]
        predicted = update_rule(path.name, here, g, state, k + 1, path.lr, momentum)
        scale = max(1.0, float(np.abs(there).max()), float(np.abs(here).max()))
        worst = max(worst, float(np.abs(predicted - there).max()) / scale)
    return worst


def surface_grid(surface_name: str, resolution: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xs, ys and f on a grid over the surface's plotting window (for contours)."""
    surf = surface(surface_name)
    xs = np.linspace(*surf.x_range, resolution)
    ys = np.linspace(*surf.y_range, resolution)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, surf.fn(gx, gy)


def paths_with_check(surface_name: str, chosen: tuple[str, ...], lrs: tuple[float, ...], steps: int,
                     start: tuple[float, float], momentum: float, noise: float,
                     seed: int) -> tuple[list[OptimizerPath], float]:
    """torch.optim's paths for each chosen optimizer, and the largest relative difference between any
    of its steps and one update of the rules written out by hand (:func:`step_errors`)."""
    paths, worst = [], 0.0
    for name, lr in zip(chosen, lrs):
        path = optimizer_path(surface_name, name, lr, steps, start, momentum, noise, seed)
        worst = max(worst, step_errors(surface_name, path, steps, momentum, noise, seed))
        paths.append(path)
    return paths, worst
