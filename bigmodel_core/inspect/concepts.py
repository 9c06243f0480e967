"""The math behind the Concepts page, computed the way the formulas on the page say.

Each function here evaluates one textbook formula step by step (sum of products for a
convolution, window max or mean for pooling, gate equations for LSTM and GRU cells,
update rules for optimizers) so the page can show every intermediate number. The tests
check every number against PyTorch's own implementation (``F.conv2d``,
``F.max_pool2d``, ``F.avg_pool2d``, ``nn.LSTMCell``, ``nn.GRUCell``, ``torch.optim``).

Conventions follow PyTorch: "convolution" is cross-correlation (the kernel is not
flipped), LSTM gates are ordered (i, f, g, o) and GRU gates (r, z, n) in the weight
matrices. The GRU is shown in the textbook convention ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``;
PyTorch's ``z`` is ``1 - z_t`` (see :func:`gru_steps`).

Pure numpy/torch: no streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------

KERNEL_PRESETS: dict[str, tuple[tuple[float, ...], ...]] = {
    "identity": ((0, 0, 0), (0, 1, 0), (0, 0, 0)),
    # Laplacian-style outline detector: zero on flat regions, large at edges in any direction.
    "edge": ((-1, -1, -1), (-1, 8, -1), (-1, -1, -1)),
    "vertical edge (Sobel)": ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1)),
    "horizontal edge (Sobel)": ((-1, -2, -1), (0, 0, 0), (1, 2, 1)),
    "blur": ((1 / 9, 1 / 9, 1 / 9), (1 / 9, 1 / 9, 1 / 9), (1 / 9, 1 / 9, 1 / 9)),
    "sharpen": ((0, -1, 0), (-1, 5, -1), (0, -1, 0)),
}


def kernel_preset(name: str) -> np.ndarray:
    if name not in KERNEL_PRESETS:
        raise ValueError(f"unknown kernel preset {name!r}; choose one of: {', '.join(KERNEL_PRESETS)}")
    return np.array(KERNEL_PRESETS[name], dtype=np.float64)


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """floor((size + 2 * padding - kernel) / stride) + 1, the formula PyTorch uses."""
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class ConvResult:
    padded: np.ndarray  # the input with `padding` zeros on every side
    kernel: np.ndarray
    output: np.ndarray
    stride: int
    padding: int
    bias: float


@dataclass(frozen=True)
class Term:
    """One product in the sum that makes an output cell."""

    u: int  # kernel row
    v: int  # kernel column
    row: int  # input row (in the unpadded input; -1 or >= H means a padding zero)
    col: int
    x: float
    w: float

    @property
    def product(self) -> float:
        return self.x * self.w


def _as_image(x: np.ndarray | torch.Tensor, what: str = "input") -> np.ndarray:
    arr = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D grid of numbers, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains a value that is not a finite number")
    return arr


def conv2d(x: np.ndarray | torch.Tensor, kernel: np.ndarray, stride: int = 1, padding: int = 0,
           bias: float = 0.0) -> ConvResult:
    """y[i, j] = b + sum_{u, v} xpad[s*i + u, s*j + v] * w[u, v] (one channel in, one out)."""
    img = _as_image(x)
    w = _as_image(kernel, "kernel")
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    if padding < 0:
        raise ValueError(f"padding must be 0 or more, got {padding}")
    kh, kw = w.shape
    padded = np.pad(img, padding)
    oh = output_size(img.shape[0], kh, stride, padding)
    ow = output_size(img.shape[1], kw, stride, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"a {kh}x{kw} kernel does not fit in the {img.shape[0]}x{img.shape[1]} input "
                         f"with padding {padding}; add padding or use a bigger input")
    out = np.empty((oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = padded[i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[i, j] = bias + float((window * w).sum())
    return ConvResult(padded, w, out, stride, padding, float(bias))


def conv_terms(result: ConvResult, i: int, j: int) -> list[Term]:
    """The products whose sum (plus the bias) is output cell (i, j)."""
    oh, ow = result.output.shape
    if not (0 <= i < oh and 0 <= j < ow):
        raise ValueError(f"output cell ({i}, {j}) is outside the {oh}x{ow} output")
    kh, kw = result.kernel.shape
    s, p = result.stride, result.padding
    return [Term(u, v, s * i + u - p, s * j + v - p, float(result.padded[s * i + u, s * j + v]),
                 float(result.kernel[u, v]))
            for u in range(kh) for v in range(kw)]


# --------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------

PoolKind = Literal["max", "avg"]


@dataclass(frozen=True)
class PoolResult:
    kind: PoolKind
    window: int
    stride: int
    output: np.ndarray
    winners: np.ndarray  # (out_h, out_w, 2) input row/col of each window's max (max pooling)


def pool2d(x: np.ndarray | torch.Tensor, kind: PoolKind, window: int, stride: int | None = None) -> PoolResult:
    """Max or mean over each window x window patch, moving by ``stride`` (default: window).

    Ties in max pooling go to the first cell in reading order, as in PyTorch.
    """
    img = _as_image(x)
    if kind not in ("max", "avg"):
        raise ValueError(f"unknown pooling {kind!r}; choose max or avg")
    stride = window if stride is None else stride
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be at least 1, got window {window}, stride {stride}")
    h, w = img.shape
    if h < window or w < window:
        raise ValueError(f"a {window}x{window} window does not fit in the {h}x{w} input")
    oh, ow = output_size(h, window, stride, 0), output_size(w, window, stride, 0)
    out = np.empty((oh, ow))
    winners = np.zeros((oh, ow, 2), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * stride, j * stride
            patch = img[r0:r0 + window, c0:c0 + window]
            if kind == "max":
                k = int(np.argmax(patch))  # first maximum in reading order
                out[i, j] = patch.flat[k]
                winners[i, j] = (r0 + k // window, c0 + k % window)
            else:
                out[i, j] = patch.mean()
                winners[i, j] = (-1, -1)
    return PoolResult(kind, window, stride, out, winners)


def pool_window(result: PoolResult, i: int, j: int) -> tuple[int, int]:
    """Top-left input cell of the window behind output cell (i, j)."""
    oh, ow = result.output.shape
    if not (0 <= i < oh and 0 <= j < ow):
        raise ValueError(f"output cell ({i}, {j}) is outside the {oh}x{ow} output")
    return i * result.stride, j * result.stride


# --------------------------------------------------------------------------------------
# LSTM and GRU cells
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellWeights:
    """Weights in PyTorch's layout: rows stacked by gate (LSTM i,f,g,o; GRU r,z,n)."""

    kind: Literal["lstm", "gru"]
    weight_ih: np.ndarray  # (gates * H, F)
    weight_hh: np.ndarray  # (gates * H, H)
    bias_ih: np.ndarray
    bias_hh: np.ndarray

    @property
    def hidden(self) -> int:
        return self.weight_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    def to_cell(self) -> nn.Module:
        """The same weights in an ``nn.LSTMCell`` / ``nn.GRUCell`` (float64)."""
        cls = nn.LSTMCell if self.kind == "lstm" else nn.GRUCell
        cell = cls(self.input_size, self.hidden).double()
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(torch.from_numpy(getattr(self, name)))
        return cell


def random_cell(kind: Literal["lstm", "gru"], input_size: int, hidden: int, seed: int = 0) -> CellWeights:
    """PyTorch's default initialisation (uniform in +-1/sqrt(hidden)) from a fixed seed."""
    if kind not in ("lstm", "gru"):
        raise ValueError(f"unknown cell {kind!r}; choose lstm or gru")
    if input_size < 1 or hidden < 1:
        raise ValueError(f"input_size and hidden must be at least 1, got {input_size} and {hidden}")
    gen = torch.Generator().manual_seed(seed)
    gates = 4 if kind == "lstm" else 3
    bound = 1.0 / np.sqrt(hidden)

    def draw(*shape: int) -> np.ndarray:
        return ((torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound).numpy()

    return CellWeights(kind, draw(gates * hidden, input_size), draw(gates * hidden, hidden),
                       draw(gates * hidden), draw(gates * hidden))


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _sequence(xs: np.ndarray | list[float], input_size: int) -> np.ndarray:
    arr = np.asarray(xs, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != input_size:
        raise ValueError(f"the sequence must have {input_size} feature(s) per step, got shape {arr.shape}")
    if len(arr) == 0:
        raise ValueError("the sequence is empty")
    if not np.isfinite(arr).all():
        raise ValueError("the sequence contains a value that is not a finite number")
    return arr


@dataclass(frozen=True)
class LSTMStep:
    t: int  # 1-based
    x: np.ndarray
    h_prev: np.ndarray
    c_prev: np.ndarray
    i: np.ndarray  # input gate
    f: np.ndarray  # forget gate
    g: np.ndarray  # candidate cell value
    o: np.ndarray  # output gate
    c: np.ndarray
    h: np.ndarray


def lstm_steps(xs: np.ndarray | list[float], w: CellWeights, h0: np.ndarray | None = None,
               c0: np.ndarray | None = None) -> list[LSTMStep]:
    """Run the LSTM equations over the sequence, keeping every gate value.

    i = s(W_ii x + b_ii + W_hi h + b_hi), f = s(...), g = tanh(...), o = s(...)
    c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)
    """
    if w.kind != "lstm":
        raise ValueError("lstm_steps needs LSTM weights")
    seq = _sequence(xs, w.input_size)
    hid = w.hidden
    h = np.zeros(hid) if h0 is None else np.asarray(h0, dtype=np.float64)
    c = np.zeros(hid) if c0 is None else np.asarray(c0, dtype=np.float64)
    steps = []
    for t, x in enumerate(seq, start=1):
        a = w.weight_ih @ x + w.bias_ih + w.weight_hh @ h + w.bias_hh
        i, f, g, o = (a[k * hid:(k + 1) * hid] for k in range(4))
        i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        steps.append(LSTMStep(t, x, h, c, i, f, g, o, c_new, h_new))
        h, c = h_new, c_new
    return steps


@dataclass(frozen=True)
class GRUStep:
    t: int
    x: np.ndarray
    h_prev: np.ndarray
    r: np.ndarray  # reset gate
    z: np.ndarray  # update gate, textbook convention: share of the new candidate
    n: np.ndarray  # candidate state h~_t
    h: np.ndarray

    @property
    def z_pytorch(self) -> np.ndarray:
        """PyTorch's z: the share of the *old* state kept, 1 - z."""
        return 1.0 - self.z


def gru_steps(xs: np.ndarray | list[float], w: CellWeights, h0: np.ndarray | None = None) -> list[GRUStep]:
    """Run the GRU equations (update and reset gates only) over the sequence.

    r_t = s(W_ir x + b_ir + W_hr h + b_hr)
    z_t = s(-(W_iz x + b_iz + W_hz h + b_hz))        textbook z; PyTorch's z is 1 - z_t
    n_t = tanh(W_in x + b_in + r_t * (W_hn h + b_hn)) the candidate h~_t (reset applied after W_hn, as PyTorch)
    h_t = (1 - z_t) * h_{t-1} + z_t * n_t
    """
    if w.kind != "gru":
        raise ValueError("gru_steps needs GRU weights")
    seq = _sequence(xs, w.input_size)
    hid = w.hidden
    h = np.zeros(hid) if h0 is None else np.asarray(h0, dtype=np.float64)
    steps = []
    for t, x in enumerate(seq, start=1):
        gi = w.weight_ih @ x + w.bias_ih
        gh = w.weight_hh @ h + w.bias_hh
        r = _sigmoid(gi[:hid] + gh[:hid])
        # sigmoid(-a) = 1 - sigmoid(a): the textbook's gate uses PyTorch's update weights negated.
        z = _sigmoid(-(gi[hid:2 * hid] + gh[hid:2 * hid]))
        n = np.tanh(gi[2 * hid:] + r * gh[2 * hid:])
        h_new = (1.0 - z) * h + z * n
        steps.append(GRUStep(t, x, h, r, z, n, h_new))
        h = h_new
    return steps


# --------------------------------------------------------------------------------------
# Optimizers on a 2-D loss surface
# --------------------------------------------------------------------------------------

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
        "A long narrow valley: steep across (y), almost flat along (x). Plain GD zig-zags across "
        "and crawls along; momentum and the adaptive methods do better.",
        lambda x, y: 0.1 * x ** 2 + 2.0 * y ** 2,
        lambda x, y: (0.2 * x, 4.0 * y),
        (-4.5, 1.0), (-5.0, 5.0), (-1.5, 1.5), (0.0, 0.0),
        {"gd": 0.4, "sgd": 0.4, "momentum": 0.03, "adagrad": 0.5, "rmsprop": 0.05, "adam": 0.1}),
    "saddle": Surface(
        "saddle", "Saddle", r"f(x, y) = 0.5\,x^2 + 0.25\,y^4 - 0.5\,y^2",
        "A saddle point at (0, 0) between two minima at (0, +-1). Starting almost on the ridge, GD "
        "slows to a crawl near the saddle; noise and adaptive steps escape it sooner.",
        lambda x, y: 0.5 * x ** 2 + 0.25 * y ** 4 - 0.5 * y ** 2,
        lambda x, y: (x, y ** 3 - y),
        (-2.0, 0.001), (-2.5, 2.5), (-1.8, 1.8), (0.0, 1.0),
        {"gd": 0.1, "sgd": 0.1, "momentum": 0.01, "adagrad": 0.3, "rmsprop": 0.02, "adam": 0.05}),
    "rosenbrock": Surface(
        "rosenbrock", "Rosenbrock valley", r"f(x, y) = (1 - x)^2 + 10\,(y - x^2)^2",
        "A curved banana-shaped valley with its minimum at (1, 1): easy to reach the valley, slow to "
        "follow it.",
        lambda x, y: (1 - x) ** 2 + 10.0 * (y - x ** 2) ** 2,
        lambda x, y: (-2 * (1 - x) - 40.0 * x * (y - x ** 2), 20.0 * (y - x ** 2)),
        (-1.5, 2.0), (-2.0, 2.0), (-1.0, 3.0), (1.0, 1.0),
        {"gd": 0.01, "sgd": 0.01, "momentum": 0.003, "adagrad": 0.5, "rmsprop": 0.05, "adam": 0.1}),
}

OPTIMIZER_NAMES: tuple[str, ...] = ("gd", "sgd", "momentum", "adagrad", "rmsprop", "adam")
OPTIMIZER_LABELS: dict[str, str] = {
    "gd": "GD", "sgd": "SGD (noisy gradient)", "momentum": "Momentum", "adagrad": "Adagrad",
    "rmsprop": "RMSprop", "adam": "Adam",
}
# PyTorch's defaults, written into the formulas on the page.
ADAGRAD_EPS = 1e-10
RMSPROP_ALPHA, RMSPROP_EPS = 0.99, 1e-8
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
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
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
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
    b = np.zeros(2)  # momentum buffer
    acc = np.zeros(2)  # Adagrad's sum of squares / RMSprop's and Adam's second moment
    m = np.zeros(2)
    (beta1, beta2) = ADAM_BETAS
    points = [theta.copy()]
    for k in range(steps):
        g = np.array(surf.grad(theta[0], theta[1])) + eps[k]
        t = k + 1
        if name in ("gd", "sgd"):
            theta = theta - lr * g
        elif name == "momentum":
            b = g if t == 1 else momentum * b + g
            theta = theta - lr * b
        elif name == "adagrad":
            acc = acc + g ** 2
            theta = theta - lr * g / (np.sqrt(acc) + ADAGRAD_EPS)
        elif name == "rmsprop":
            acc = RMSPROP_ALPHA * acc + (1 - RMSPROP_ALPHA) * g ** 2
            theta = theta - lr * g / (np.sqrt(acc) + RMSPROP_EPS)
        else:  # adam
            m = beta1 * m + (1 - beta1) * g
            acc = beta2 * acc + (1 - beta2) * g ** 2
            m_hat, v_hat = m / (1 - beta1 ** t), acc / (1 - beta2 ** t)
            theta = theta - lr * m_hat / (np.sqrt(v_hat) + ADAM_EPS)
        if not np.isfinite(theta).all() or np.abs(theta).max() > DIVERGED:
            break
        points.append(theta.copy())
    return np.array(points)


def surface_grid(surface_name: str, resolution: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xs, ys and f on a grid over the surface's plotting window (for contours)."""
    surf = surface(surface_name)
    xs = np.linspace(*surf.x_range, resolution)
    ys = np.linspace(*surf.y_range, resolution)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, surf.fn(gx, gy)


# --------------------------------------------------------------------------------------
# Example inputs
# --------------------------------------------------------------------------------------

# --- the page's checks against PyTorch: each returns the largest absolute difference -----------------------
def check_conv(image: np.ndarray, result: ConvResult) -> float:
    """The hand-computed convolution against F.conv2d on the same input, kernel, stride and padding."""
    ref = F.conv2d(torch.tensor(_as_image(image))[None, None], torch.tensor(result.kernel)[None, None],
                   bias=torch.tensor([result.bias], dtype=torch.float64), stride=result.stride,
                   padding=result.padding)[0, 0].numpy()
    return float(np.abs(ref - result.output).max())


def check_pool(x: np.ndarray, result: PoolResult) -> float:
    """Hand pooling against F.max_pool2d (values, and 1.0 more if any winning cell differs) or F.avg_pool2d."""
    t = torch.tensor(_as_image(x))[None, None]
    if result.kind == "max":
        ref, idx = F.max_pool2d(t, result.window, result.stride, return_indices=True)
        same = bool((idx[0, 0].numpy() == result.winners[..., 0] * x.shape[1] + result.winners[..., 1]).all())
        return float(np.abs(ref[0, 0].numpy() - result.output).max()) + (0.0 if same else 1.0)
    ref = F.avg_pool2d(t, result.window, result.stride)
    return float(np.abs(ref[0, 0].numpy() - result.output).max())


def check_cell(xs: list[float] | np.ndarray, w: CellWeights, step: LSTMStep | GRUStep) -> float:
    """The hand-computed state after ``xs`` (h_t, and c_t for an LSTM) against nn.LSTMCell / nn.GRUCell
    with the same weights, in float64."""
    cell = w.to_cell()
    seq = _sequence(xs, w.input_size)
    h = torch.zeros(1, w.hidden, dtype=torch.float64)
    c = torch.zeros(1, w.hidden, dtype=torch.float64)
    with torch.no_grad():
        for x in seq:
            xt = torch.tensor(x[None, :], dtype=torch.float64)
            if isinstance(step, LSTMStep):
                h, c = cell(xt, (h, c))
            else:
                h = cell(xt, h)
    diff = float(np.abs(h[0].numpy() - step.h).max())
    if isinstance(step, LSTMStep):
        diff = max(diff, float(np.abs(c[0].numpy() - step.c).max()))
    return diff


def paths_with_check(surface_name: str, chosen: tuple[str, ...], lrs: tuple[float, ...], steps: int,
                     start: tuple[float, float], momentum: float, noise: float,
                     seed: int) -> tuple[list[OptimizerPath], float]:
    """torch.optim's paths for each chosen optimizer, and the largest difference from the update rules
    written out by hand (formula_path) along the same steps."""
    paths, worst = [], 0.0
    for name, lr in zip(chosen, lrs):
        path = optimizer_path(surface_name, name, lr, steps, start, momentum, noise, seed)
        by_hand = formula_path(surface_name, name, lr, steps, start, momentum, noise, seed)
        n = min(len(by_hand), len(path.points))
        worst = max(worst, float(np.abs(by_hand[:n] - path.points[:n]).max()))
        paths.append(path)
    return paths, worst


EXAMPLE_SOURCES: dict[str, dict[str, object]] = {
    "handwritten digit (8x8)": {"name": "handwritten_digits", "image_size": 8},
    "synthetic digit (28x28)": {"name": "synthetic_digits"},
}


def example_images(source: str, count: int = 20, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """``count`` images (N x H x W, values in [0, 1]) and their labels from a dataset."""
    if source not in EXAMPLE_SOURCES:
        raise ValueError(f"unknown example source {source!r}; choose one of: {', '.join(EXAMPLE_SOURCES)}")
    from bigmodel_core.data import build_dataset

    opts = dict(EXAMPLE_SOURCES[source])
    name = str(opts.pop("name"))
    ds = build_dataset(name, train_size=1, val_size=count, seed=seed, **opts)  # type: ignore[arg-type]
    labels = [ds.info.class_names[int(y)] for y in ds.y_val]
    return ds.x_val[:, 0].numpy().astype(np.float64), labels
