"""Engine throughput against a minimal hand-written PyTorch loop (``python -m bigmodel_core bench``).

Both loops train the same model from the same weights on the same tensors with the same
batch size, optimizer and thread count, alternating several times in one process so the
machine's noise hits both; the best of each is compared.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
import torch.nn.functional as F

from bigmodel_core.config.presets import load_preset
from bigmodel_core.nn.models import build_model

from .trainer import Trainer, build_optimizer, load_data


def _plain_loop(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                bs: int, classification: bool, epochs: int, gen: torch.Generator,
                grad_clip: float | None = None) -> float:
    """samples/s of the textbook loop: shuffle, forward, loss, backward, (clip,) step."""
    n = len(x)
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx]) if classification else F.mse_loss(out, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:  # the same work the config asks of the engine
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
    return epochs * n / (time.perf_counter() - t0)


def bench_preset(name: str, seconds: float = 4.0, rounds: int = 3) -> dict[str, Any]:
    cfg = load_preset(name).with_changes({"training.device": "cpu"})
    data = load_data(cfg)
    model0 = build_model(cfg.model, data.info, seed=cfg.seed)
    state = copy.deepcopy(model0.state_dict())
    classification = data.info.task == "classification"
    bs = cfg.training.batch_size
    n = len(data.x_train)
    # calibrate epochs so one measurement lasts about `seconds`
    probe = Trainer(cfg.with_changes({"training.epochs": 1}), dataset=data, init_state=state).fit()
    epochs = max(1, min(50, math.ceil(seconds * probe.samples_per_sec / n)))
    run_cfg = cfg.with_changes({"training.epochs": epochs})
    engine, plain = [], []
    for _ in range(rounds):
        r = Trainer(run_cfg, dataset=data, init_state=state).fit()
        engine.append(r.samples_per_sec)
        m = build_model(cfg.model, data.info)
        m.load_state_dict(state)
        opt = build_optimizer(cfg.optimizer, m)
        plain.append(_plain_loop(m, opt, data.x_train, data.y_train, bs, classification, epochs,
                                 torch.Generator().manual_seed(0), cfg.regularization.grad_clip))
    return {
        "engine_samples_per_sec": max(engine),
        "plain_samples_per_sec": max(plain),
        "ratio": max(engine) / max(plain),
        "epochs_per_measurement": epochs,
        "rounds": rounds,
        "batch_size": bs,
        "threads": torch.get_num_threads(),
    }


def run_bench(presets: list[str], seconds: float = 4.0) -> dict[str, dict[str, Any]]:
    return {name: bench_preset(name, seconds) for name in presets}
