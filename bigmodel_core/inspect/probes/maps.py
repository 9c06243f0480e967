"""CNN probes: the feature maps of every conv block, the first layer's filters, class probabilities.

The maps are captured with forward hooks on a copy of the model (like timm's ``FeatureHooks``),
and the hooks are removed before returning, even when the forward pass fails.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from bigmodel_core.data import Dataset
from bigmodel_core.nn.models import ConvNet

from .common import check_index, family_name, model_device, probe_copy, to_numpy
from .results import MAX_MAPS, CNNProbe, FeatureMaps, ProbeError


def feature_maps(model: nn.Module, image: torch.Tensor, max_maps: int = MAX_MAPS) -> list[FeatureMaps]:
    """Feature maps of every conv block of ``model`` for one image (C, H, W).

    Runs the model as it is (callers pass a :func:`probe_copy`); the hooks are removed
    before returning even if the forward pass fails.
    """
    return _maps_and_output(model, image, max_maps)[0]


@torch.no_grad()
def _maps_and_output(model: nn.Module, image: torch.Tensor,
                     max_maps: int = MAX_MAPS) -> tuple[list[FeatureMaps], torch.Tensor]:
    if not isinstance(model, ConvNet):
        raise ProbeError(f"feature maps need a CNN; this model is a {family_name(model)}")
    if len(model.blocks) == 0:
        raise ProbeError("this CNN has no conv layers, so there are no feature maps or filters to show")
    captured: list[tuple[int, str, str, torch.Tensor]] = []
    handles = []

    def grab(block: int, stage: str, name: str):
        def hook(_module: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            captured.append((block, stage, name, out.detach()))
        return hook

    try:
        for i, blk in enumerate(model.blocks):
            act = type(blk.act).__name__.lower()
            handles.append(blk.act.register_forward_hook(grab(i + 1, "activation", f"block {i + 1} after {act}")))
            if not isinstance(blk.pool, nn.Identity):
                pool = type(blk.pool).__name__.replace("Pool2d", "").lower()
                handles.append(blk.pool.register_forward_hook(grab(i + 1, "pool", f"block {i + 1} after {pool} pool")))
        out = model(image.unsqueeze(0).to(model_device(model)))
    finally:
        for h in handles:
            h.remove()
    return [FeatureMaps(b, stage, name, tuple(t.shape[1:]), to_numpy(t[0, :max_maps]))  # type: ignore[arg-type]
            for b, stage, name, t in captured], out


def first_filters(model: nn.Module, max_maps: int = MAX_MAPS) -> tuple[np.ndarray, int]:
    """The first conv layer's kernels (out, in, k, k), capped, and how many there are."""
    if not isinstance(model, ConvNet) or len(model.blocks) == 0:
        raise ProbeError("filters need a CNN with at least one conv layer")
    w = model.blocks[0].conv.weight
    return to_numpy(w[:max_maps]), int(w.shape[0])


@torch.no_grad()
def probe_cnn_copy(model: nn.Module, dataset: Dataset, index: int) -> CNNProbe:
    x = dataset.x_val[index]
    layers, out = _maps_and_output(model, x)
    filters, count = first_filters(model)
    probs = torch.softmax(out, dim=1)[0]
    notes = [f"{fm.name}: showing the first {fm.maps.shape[0]} of {fm.shape[0]} maps" for fm in layers if fm.capped]
    if count > filters.shape[0]:
        notes.append(f"first-layer filters: showing {filters.shape[0]} of {count}")
    return CNNProbe(index, to_numpy(x), int(dataset.y_val[index]), to_numpy(probs), dataset.info.class_names,
                    tuple(layers), filters, count, tuple(notes))


def probe_cnn(model: nn.Module, dataset: Dataset, index: int = 0) -> CNNProbe:
    """Feature maps, first-layer filters and class probabilities for validation input ``index``."""
    return probe_cnn_copy(probe_copy(model), dataset, check_index(dataset, index))
