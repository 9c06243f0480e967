"""What every probe shares: the detached copy it runs on, and small conversions and checks."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from bigmodel_core.config.specs import CNNSpec, RNNSpec
from bigmodel_core.data import Dataset
from bigmodel_core.nn.models import SeqNet
from bigmodel_core.nn.shapes import infer_layers

from .results import ProbeError


def probe_copy(model: nn.Module) -> nn.Module:
    """A detached copy in eval mode: what every probe runs on, so training never notices."""
    clone = copy.deepcopy(model)
    clone.eval()
    clone.requires_grad_(False)
    return clone


def model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def layer_labels(spec: CNNSpec | RNNSpec | None, info: Any = None) -> dict[str, str]:
    """Module name -> the layer's name in the Build page's table ("1. conv 3x3, 16")."""
    if spec is None or info is None:
        return {}
    try:
        return {r.module: f"{r.index}. {r.name}" for r in infer_layers(spec, info) if r.module}
    except ValueError:
        return {}


def check_index(dataset: Dataset, index: int) -> int:
    n = len(dataset.x_val)
    if not 0 <= int(index) < n:
        raise ProbeError(f"input index {index} is outside the validation split (0 to {n - 1})")
    return int(index)


def examples_per_class(dataset: Dataset, seed: int = 0) -> dict[int, int]:
    """One random validation index per class present (class -> index), reproducible from ``seed``."""
    if dataset.info.task != "classification":
        return {}
    y = dataset.y_val.detach().cpu()
    gen = torch.Generator().manual_seed(int(seed))
    out: dict[int, int] = {}
    for k in range(dataset.info.num_outputs):
        idx = torch.nonzero(y == k).flatten()
        if len(idx):
            out[k] = int(idx[torch.randint(len(idx), (1,), generator=gen)])
    return out


def family_name(model: nn.Module) -> str:
    if isinstance(model, SeqNet):
        return {"rnn": "plain RNN", "lstm": "LSTM", "gru": "GRU"}[model.family]
    return type(model).__name__
