"""How much does probing once per epoch slow training? (``python bench/bench_probes.py``)

Trains the quickstart CNN from the same initial weights with and without probes
(``probes.attach`` + ``probes.epoch_hook`` after every epoch, as the Train page runs it),
alternating the two in one process so the machine's noise hits both, and prints each
one's throughput (training samples per wall-clock second, hooks included), the ratio, and
the time the hook itself took per epoch. The goal is a slowdown under 5%.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bigmodel_core import probes  # noqa: E402
from bigmodel_core.jobs import Job  # noqa: E402
from bigmodel_core.models import build_model  # noqa: E402
from bigmodel_core.presets import load_preset  # noqa: E402
from bigmodel_core.train import EpochEnd, Trainer, load_data  # noqa: E402


def one_run(cfg, data, state, probed: bool) -> tuple[float, list[float]]:
    """(samples per wall second, seconds spent in the hook per epoch) for one training run."""
    job = Job(cfg, owner="bench", make_trainer=probes.make_trainer, save=False)
    trainer = Trainer(cfg, dataset=data, init_state=state)
    if probed:
        probes.attach(trainer)
    hook_seconds: list[float] = []
    t0 = time.perf_counter()
    for ev in trainer.run():
        if probed and isinstance(ev, EpochEnd):
            t = time.perf_counter()
            probes.epoch_hook(job, trainer, ev)
            hook_seconds.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    assert trainer.result.status == "completed", trainer.result.message
    return len(trainer.x_train) * len(trainer.result.history) / wall, hook_seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quickstart_cnn")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--train-size", type=int, default=None, help="default: the preset's")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    changes = {"training.epochs": args.epochs, "training.device": args.device}
    if args.train_size:
        changes["data.train_size"] = args.train_size
    cfg = load_preset(args.preset).with_changes(changes)
    data = load_data(cfg)
    state = copy.deepcopy(build_model(cfg.model, data.info, seed=cfg.seed).state_dict())
    # warm up both paths once (lazy kernel set-up, first-call costs) before measuring
    warm = cfg.with_changes({"training.epochs": 1, "data.train_size": min(256, cfg.data.train_size)})
    one_run(warm, load_data(warm), state, probed=True)
    plain, probed, hooks, epoch_secs = [], [], [], []
    for r in range(args.rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        for with_probes in order:
            sps, hook = one_run(cfg, data, state, with_probes)
            (probed if with_probes else plain).append(sps)
            hooks += hook
            if not with_probes:
                epoch_secs.append(len(data.x_train) / sps)
    best_plain, best_probed = max(plain), max(probed)
    print(f"preset {args.preset}: {cfg.data.train_size} training samples, {args.epochs} epochs per run, "
          f"{args.rounds} alternating rounds, device {args.device}, {torch.get_num_threads()} threads")
    print(f"without probes: {best_plain:,.0f} samples/s (best; runs: {', '.join(f'{v:,.0f}' for v in plain)})")
    print(f"with probes:    {best_probed:,.0f} samples/s (best; runs: {', '.join(f'{v:,.0f}' for v in probed)})")
    print(f"ratio with/without: {best_probed / best_plain:.3f} (slowdown {1 - best_probed / best_plain:+.1%})")
    med_hook, med_epoch = statistics.median(hooks), statistics.median(epoch_secs)
    print(f"epoch hook: median {med_hook * 1000:.0f} ms per epoch = {med_hook / med_epoch:.1%} of a "
          f"{med_epoch:.2f} s epoch")


if __name__ == "__main__":
    main()
