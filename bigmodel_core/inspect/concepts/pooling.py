"""Max and average pooling window by window, with the cell each max came from.

The check compares with ``F.max_pool2d`` (values and winning cells) and ``F.avg_pool2d``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from .convolution import as_image, output_size

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
    img = as_image(x)
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


def check_pool(x: np.ndarray, result: PoolResult) -> float:
    """Hand pooling against F.max_pool2d (values, and 1.0 more if any winning cell differs) or F.avg_pool2d."""
    t = torch.tensor(as_image(x))[None, None]
    if result.kind == "max":
        ref, idx = F.max_pool2d(t, result.window, result.stride, return_indices=True)
        same = bool((idx[0, 0].numpy() == result.winners[..., 0] * x.shape[1] + result.winners[..., 1]).all())
        return float(np.abs(ref[0, 0].numpy() - result.output).max()) + (0.0 if same else 1.0)
    ref = F.avg_pool2d(t, result.window, result.stride)
    return float(np.abs(ref[0, 0].numpy() - result.output).max())
