"""Which device a run trains on: resolving ``training.device`` and naming it for people."""

from __future__ import annotations

import torch

from bigmodel_core.config.specs import device_problem

from .plain_loop import pick_device


def resolve_device(name: str) -> torch.device:
    """The device ``name`` names ("auto": CUDA, then MPS, then CPU); a clear error if it is not here."""
    if name != "auto":
        problem = device_problem(name)
        if problem:
            raise ValueError(f"training.device {problem}")
    return pick_device(name)


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    return {"mps": "Apple MPS", "cpu": "CPU"}.get(device.type, str(device))

