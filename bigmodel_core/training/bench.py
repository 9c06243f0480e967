"""Engine throughput against a minimal hand-written PyTorch loop (``python -m bigmodel_core bench``).

Three sides train the same model from the same weights on the same tensors with the same batch
size, optimizer and thread count: the engine (in the memory format its rule picks: channels_last
for a CNN on a CPU; for Adam and AdamW the fused optimizer step), the textbook loop as a learner
writes it (NCHW, torch's default optimizer step), and the same loop with the engine's memory
format and optimizer step. They alternate, round after round, in one process so the machine's noise
hits all three. Two ratios come out: against the textbook loop (what the engine's settings gain) and
against the loop with its settings (what the engine's bookkeeping costs), each as the best of each side and
as the median of the rounds' own ratios (steadier on a busy machine). Each side is also timed in
CPU time of the process (``time.process_time``, the engine's evaluation passes excluded): on a
machine that other work keeps busy, waiting for a core inflates wall time but not CPU time, so
those ratios say more there (spin-waiting threads still count, so they are not exact either).
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from bigmodel_core.config.presets import load_preset
from bigmodel_core.nn.models import build_model

from .memory_format import memory_format_name, model_to_channels_last, to_channels_last
from .trainer import Trainer, build_optimizer, load_data


class _CpuTimedTrainer(Trainer):
    """A Trainer that also counts the CPU time of its evaluations, to leave them out of training's."""

    eval_cpu = 0.0

    def evaluate(self, *args: Any, **kwargs: Any) -> tuple[float, float]:
        t0 = time.process_time()
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self.eval_cpu += time.process_time() - t0


def _engine(cfg: Any, data: Any, state: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(samples/s of wall time, as the engine reports it; samples/s of CPU time) of one engine run."""
    trainer = _CpuTimedTrainer(cfg, dataset=data, init_state=state)
    t0 = time.process_time()
    result = trainer.fit()
    cpu = time.process_time() - t0 - trainer.eval_cpu
    return result.samples_per_sec, cfg.training.epochs * len(trainer.x_train) / max(cpu, 1e-9)

DEFAULT_PRESETS = ["quickstart_cnn", "textbook_cnn", "textbook_lstm"]


def _plain_loop(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                bs: int, classification: bool, epochs: int, gen: torch.Generator,
                grad_clip: float | None = None) -> tuple[float, float]:
    """samples/s (of wall time, of CPU time) of the textbook loop: shuffle, forward, loss, backward, (clip,) step."""
    n = len(x)
    model.train()
    t0, c0 = time.perf_counter(), time.process_time()
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
    return epochs * n / (time.perf_counter() - t0), epochs * n / max(time.process_time() - c0, 1e-9)


def bench_preset(name: str, seconds: float = 4.0, rounds: int = 3) -> dict[str, Any]:
    cfg = load_preset(name).with_changes({"training.device": "cpu"})
    data = load_data(cfg)
    model0 = build_model(cfg.model, data.info, seed=cfg.seed)
    state = copy.deepcopy(model0.state_dict())
    classification = data.info.task == "classification"
    bs = cfg.training.batch_size
    n = len(data.x_train)
    # calibrate epochs so one measurement lasts about `seconds`
    probe_trainer = Trainer(cfg.with_changes({"training.epochs": 1}), dataset=data, init_state=state)
    probe = probe_trainer.fit()
    channels_last = probe_trainer.channels_last
    fused = bool(probe_trainer.optimizer.defaults.get("fused"))
    epochs = max(1, min(50, math.ceil(seconds * probe.samples_per_sec / n)))
    run_cfg = cfg.with_changes({"training.epochs": epochs})

    def plain(engines_settings: bool) -> tuple[float, float]:
        # False: as a learner writes it (NCHW, torch's default optimizer step); True: the engine's
        # memory format and optimizer step, so the ratio measures the engine's own overhead
        m = build_model(cfg.model, data.info)
        m.load_state_dict(state)
        x = data.x_train
        if engines_settings and channels_last:  # converted once, as the engine does: the model, then the dataset
            model_to_channels_last(m)
            x = to_channels_last(x)
        opt = build_optimizer(cfg.optimizer, m, fused=fused if engines_settings else False)
        return _plain_loop(m, opt, x, data.y_train, bs, classification, epochs,
                           torch.Generator().manual_seed(0), cfg.regularization.grad_clip)

    sides = {
        "engine": lambda: _engine(run_cfg, data, state),
        "nchw": lambda: plain(False),
        # a network the rule leaves in NCHW (no convolutions) has one plain loop: it is measured twice
        "same": lambda: plain(True),
    }
    measured: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    order = list(sides)
    for r in range(rounds):
        for key in order[r % 3:] + order[:r % 3]:  # each round starts with the next side: no side always first
            measured[key].append(sides[key]())
    engine, nchw, same = ([wall for wall, _ in measured[k]] for k in ("engine", "nchw", "same"))
    cpu = {k: [c for _, c in measured[k]] for k in measured}
    return {
        "engine_samples_per_sec": max(engine),
        "plain_samples_per_sec": max(nchw),
        "plain_same_format_samples_per_sec": max(same),
        "ratio": max(engine) / max(nchw),
        "ratio_same_format": max(engine) / max(same),
        # the same ratios round by round (sides measured seconds apart), their median: steadier on a busy machine
        "ratio_median": statistics.median(e / p for e, p in zip(engine, nchw)),
        "ratio_same_format_median": statistics.median(e / p for e, p in zip(engine, same)),
        "cpu_ratio": max(cpu["engine"]) / max(cpu["nchw"]),
        "cpu_ratio_same_format": max(cpu["engine"]) / max(cpu["same"]),
        "memory_format": memory_format_name(channels_last),
        "fused_optimizer": fused,
        "epochs_per_measurement": epochs,
        "rounds": rounds,
        "batch_size": bs,
        "threads": torch.get_num_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
    }


def run_bench(presets: list[str], seconds: float = 4.0, rounds: int = 3,
              threads: int | None = None) -> dict[str, dict[str, Any]]:
    """Every preset's figures; ``threads`` sets torch's thread count for all sides first (None: as it is)."""
    if threads:
        torch.set_num_threads(threads)
    return {name: bench_preset(name, seconds, rounds) for name in presets}
