"""Weight histograms per layer, at the start of training and now, on shared bins."""

from __future__ import annotations

import math

import numpy as np
from torch import nn

from .common import to_numpy
from .results import HIST_BINS, HIST_SAMPLE, WeightHistogram


def weight_samples(model: nn.Module, max_values: int = HIST_SAMPLE) -> dict[str, np.ndarray]:
    """Each layer's weights (tensors of 2 or more dimensions; not biases), flattened.

    Layers with more than ``max_values`` weights keep an evenly strided subset (no randomness).
    """
    groups: dict[str, list[np.ndarray]] = {}
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            groups.setdefault(name.rpartition(".")[0] or name, []).append(to_numpy(p).ravel())
    out = {}
    for module, arrays in groups.items():
        flat = np.concatenate(arrays)  # always a copy: a sample must not follow the live weights
        if flat.size > max_values:
            flat = flat[:: math.ceil(flat.size / max_values)].copy()
        out[module] = flat
    return out


def weight_histograms(model: nn.Module | dict[str, np.ndarray], start: dict[str, np.ndarray] | None,
                      labels: dict[str, str] | None = None, bins: int = HIST_BINS) -> tuple[WeightHistogram, ...]:
    """Per-layer histograms of the weights now (a model, or its :func:`weight_samples`) and, if
    known, at the start, on shared bins."""
    labels = labels or {}
    hists = []
    now_samples = model if isinstance(model, dict) else weight_samples(model)
    for module, now in now_samples.items():
        before = start.get(module) if start else None
        now = now[np.isfinite(now)]  # a diverged run's NaN/inf weights cannot be binned
        if before is not None:
            before = before[np.isfinite(before)]
        both = now if before is None else np.concatenate([now, before])
        if both.size == 0:
            continue
        lo, hi = float(both.min()), float(both.max())
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        hists.append(WeightHistogram(module, labels.get(module, module), edges,
                                     None if before is None else np.histogram(before, edges)[0],
                                     np.histogram(now, edges)[0]))
    return tuple(hists)
