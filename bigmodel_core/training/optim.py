"""Optimizers and learning-rate schedules built from the config's ``optimizer`` section.

Weight decay goes in parameter groups (as nanoGPT's ``configure_optimizers``): weights of
two or more dimensions are decayed, biases and norm scales are not. A :class:`ParamGroup`
scales the learning rate of a part of the model (fine-tuning trains a pretrained backbone
slower than a new head). The schedule factors are the exported loop's own
(:func:`.plain_loop.lr_factor`), so the standalone scripts schedule exactly as the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bigmodel_core.config.specs import OptimizerSpec

from .plain_loop import fused_wanted
from .plain_loop import lr_factor as schedule_factor


def split_decay(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Weights (2-D and up) are decayed and penalised; biases and norm scales are not (as nanoGPT)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return decay, no_decay


@dataclass
class ParamGroup:
    params: list[nn.Parameter]
    lr_scale: float = 1.0
    name: str = "all"


def build_optimizer(spec: OptimizerSpec, model: nn.Module, groups: list[ParamGroup] | None = None,
                    fused: bool | None = None) -> torch.optim.Optimizer:
    """The named optimizer over trainable parameters; ``groups`` give per-group lr scales.

    Adam and AdamW step with torch's fused kernel on a CPU or CUDA (:func:`.plain_loop.fused_wanted`,
    which the exported scripts share); ``fused`` overrides that rule (False: torch's default loop).
    """
    if groups is None:
        groups = [ParamGroup([p for p in model.parameters() if p.requires_grad])]
    torch_groups: list[dict[str, Any]] = []
    for g in groups:
        ids = {id(p) for p in g.params if p.requires_grad}
        for decayed in (True, False):
            ps = [p for p in g.params if id(p) in ids and (p.dim() >= 2) == decayed]
            if ps:
                torch_groups.append({"params": ps, "lr": spec.lr * g.lr_scale, "name": g.name,
                                     "weight_decay": spec.weight_decay if decayed else 0.0})
    if not torch_groups:
        raise ValueError("no trainable parameters: every layer is frozen")
    m = spec.effective_momentum
    name = spec.name
    if name in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD(torch_groups, lr=spec.lr, momentum=0.0 if name == "sgd" else m,
                               nesterov=name == "nesterov")
    if name == "adagrad":
        return torch.optim.Adagrad(torch_groups, lr=spec.lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(torch_groups, lr=spec.lr, momentum=m)
    if name in ("adam", "adamw"):
        use_fused = fused_wanted(name, [p for g in torch_groups for p in g["params"]], fused)
        return (torch.optim.Adam if name == "adam" else torch.optim.AdamW)(torch_groups, lr=spec.lr, fused=use_fused)
    raise ValueError(f"unknown optimizer {name!r}")


def lr_factor(spec: OptimizerSpec, epoch: int, step: int, total_steps: int, epochs: int) -> float:
    """Schedule multiplier at a 0-based ``epoch`` and ``step`` (steps count over the whole run)."""
    settings = {"schedule": spec.schedule, "step_size": spec.step_size, "gamma": spec.gamma}
    return schedule_factor(settings, epoch, step, total_steps, epochs)
