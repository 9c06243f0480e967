"""What a fine-tune leaves: feature maps before and after, and the weights with their card.

The maps come from the probes (``probes.feature_maps`` for a CNN, ``probes.rnn_states`` for an
RNN) on a copy of the model, under the weights at the start of fine-tuning and at the end.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from bigmodel_core.config.specs import ExperimentConfig
from bigmodel_core.data import DatasetInfo
from bigmodel_core.nn.models import ConvNet, SeqNet, build_model
from bigmodel_core.training.store import metrics_csv, save_weights_bytes

from .base import FinetuneError
from .recipes import RECIPES
from .weights import sha256_bytes


@dataclass(frozen=True)
class MapPair:
    """One layer's activations for the same input before and after fine-tuning."""

    layer: str  # "conv block 1" or "lstm layer 1"
    kind: str  # "maps": (C, H, W) feature maps after the activation; "states": (T, H) hidden states
    before: np.ndarray
    after: np.ndarray

    @property
    def max_change(self) -> float:
        return float(np.abs(self.after - self.before).max()) if self.before.size else 0.0


def _layer_activations(model: nn.Module, x: torch.Tensor) -> list[tuple[str, str, np.ndarray]]:
    # Imported here: the probes bring pandas (about 0.3 s), paid only when maps are drawn, not by the CLI.
    from bigmodel_core.inspect.probes import feature_maps, probe_copy, rnn_states  # noqa: PLC0415

    copy = probe_copy(model)  # eval mode, no grad: the model being shown is never touched
    if isinstance(copy, ConvNet):
        return [(f"conv block {m.block}", "maps", m.maps) for m in feature_maps(copy, x) if m.stage == "activation"]
    if isinstance(copy, SeqNet):
        with torch.no_grad():
            _, states = rnn_states(copy, x.unsqueeze(0).to(next(copy.parameters()).device))
        return [(f"{copy.family} layer {s.layer + 1}" + (" (backward)" if s.direction == "backward" else ""),
                 "states", s.h[0].detach().float().cpu().numpy()) for s in states]
    raise FinetuneError(f"no feature maps for {type(model).__name__}")


def maps_before_after(config: ExperimentConfig, info: DatasetInfo, before: dict[str, torch.Tensor],
                      after: dict[str, torch.Tensor], x: torch.Tensor) -> list[MapPair]:
    """Feature maps (CNN, via ``probes.feature_maps``) or hidden states (RNN, via ``probes.rnn_states``)
    of one input ``x`` under the weights at the start of fine-tuning and at the end."""
    model = build_model(config.model, info)
    out = []
    model.load_state_dict(before)
    first = _layer_activations(model, x)
    model.load_state_dict(after)
    second = _layer_activations(model, x)
    for (name, kind, a), (_, _, b) in zip(first, second):
        out.append(MapPair(name, kind, a, b))
    return out


def finetuned_card(config: ExperimentConfig, summary: dict[str, Any], weights: bytes) -> dict[str, Any]:
    """The card that goes with a fine-tuned model's weights (what, from what, how well, sha256)."""
    ft = summary.get("finetune") or {}
    pre = ft.get("pretrained") or {}
    src = pre.get("source")
    cmd = [f"python -m bigmodel_core finetune config.json --strategy {ft.get('strategy')}"]
    if src:
        cmd.append(f"--pretrained {src if src in RECIPES else 'YOUR_WEIGHTS.safetensors'}")
    k = ft.get("labels_per_class")
    cmd.append(f"--labels-per-class {k if k is not None else 'all'} --out OUT")
    return {
        "kind": "finetuned",
        "config": config.to_dict(),
        "pretrained": pre or None,
        "strategy": ft.get("strategy"),
        "labels_per_class": k,
        "trained_on": {"dataset": config.data.name, "labelled_examples": ft.get("labelled_examples"),
                       "seed": config.seed},
        "metrics": summary.get("final"),
        "trainable_params": ft.get("trainable_params"),
        "frozen_params": ft.get("frozen_params"),
        "sha256": sha256_bytes(weights),
        "command": " ".join(cmd),
    }


def finetuned_files(config: ExperimentConfig, summary: dict[str, Any],
                    state: dict[str, torch.Tensor]) -> dict[str, bytes]:
    """model.safetensors and card.json for a fine-tuned model (download or --out)."""
    weights = save_weights_bytes(state)
    card = finetuned_card(config, summary, weights)
    return {"model.safetensors": weights, "card.json": (json.dumps(card, indent=2) + "\n").encode()}


def finetuned_zip(config: ExperimentConfig, summary: dict[str, Any], state: dict[str, torch.Tensor],
                  rows: list[dict[str, Any]]) -> bytes:
    """A zip with model.safetensors, card.json, config.json, metrics.csv and summary.json."""
    files = finetuned_files(config, summary, state)
    files["config.json"] = config.to_json().encode()
    files["metrics.csv"] = metrics_csv(rows).encode()
    files["summary.json"] = json.dumps(summary, indent=2, default=str).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(f"finetuned/{name}", data)
    return buf.getvalue()
