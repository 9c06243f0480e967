"""Per-layer gradient norms recorded during training, for the Train page's gradient probe."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class GradNormLog:
    """Per-layer gradient L2 norms, measured after backward and before clipping.

    Layers are the modules that own parameters ("blocks.0.conv", "rnn.1", "classifier");
    a layer without gradients at a step (frozen) reads NaN there. When the log grows past
    ``max_points`` every other measurement is dropped and later ones are kept half as often,
    so a long run stays a few thousand points (measured values only, never interpolated).
    """

    def __init__(self, max_points: int = 2000):
        self.max_points = max_points
        self.steps: list[int] = []
        self.norms: dict[str, list[float]] = {}
        self._stride = 1
        self._calls = 0

    def record(self, step: int, model: nn.Module) -> None:
        self._calls += 1
        if (self._calls - 1) % self._stride:
            return
        groups: dict[str, list[torch.Tensor]] = {}
        for name, p in model.named_parameters():
            if p.grad is not None:
                groups.setdefault(name.rpartition(".")[0] or name, []).append(p.grad.detach())
        if not groups:
            return
        per_layer = torch.stack([torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gs]))
                                 for gs in groups.values()])
        values = dict(zip(groups, per_layer.float().cpu().tolist()))  # one device sync per record
        for name in values:
            if name not in self.norms:
                self.norms[name] = [math.nan] * len(self.steps)
        self.steps.append(step)
        for name, series in self.norms.items():
            series.append(values.get(name, math.nan))
        if len(self.steps) > self.max_points:
            self.steps = self.steps[::2]
            self.norms = {k: v[::2] for k, v in self.norms.items()}
            self._stride *= 2

    def copy(self) -> dict[str, Any]:
        """A consistent copy, safe to take from another thread while the trainer records."""
        steps, norms = list(self.steps), {k: list(v) for k, v in list(self.norms.items())}
        n = min([len(steps), *(len(v) for v in norms.values())])
        return {"steps": steps[:n], "norms": {k: v[:n] for k, v in norms.items()}}
