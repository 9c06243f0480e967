"""Convolution as the page writes it: every output cell a sum of products, with its terms.

"Convolution" is cross-correlation, as in PyTorch (the kernel is not flipped); the check
compares every cell with ``F.conv2d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

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


def as_image(x: np.ndarray | torch.Tensor, what: str = "input") -> np.ndarray:
    arr = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D grid of numbers, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains a value that is not a finite number")
    return arr


def conv2d(x: np.ndarray | torch.Tensor, kernel: np.ndarray, stride: int = 1, padding: int = 0,
           bias: float = 0.0) -> ConvResult:
    """y[i, j] = b + sum_{u, v} xpad[s*i + u, s*j + v] * w[u, v] (one channel in, one out)."""
    img = as_image(x)
    w = as_image(kernel, "kernel")
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


def check_conv(image: np.ndarray, result: ConvResult) -> float:
    """The hand-computed convolution against F.conv2d on the same input, kernel, stride and padding."""
    ref = F.conv2d(torch.tensor(as_image(image))[None, None], torch.tensor(result.kernel)[None, None],
                   bias=torch.tensor([result.bias], dtype=torch.float64), stride=result.stride,
                   padding=result.padding)[0, 0].numpy()
    return float(np.abs(ref - result.output).max())
