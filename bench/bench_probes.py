"""How much does probing once per epoch slow training? (``python -m bench.bench_probes``)

Trains the quickstart CNN from the same initial weights with and without probes
(``probes.attach`` + ``probes.epoch_hook`` after every epoch, as the Train page runs it).
The two runs advance in turn one epoch at a time in one process, so the machine's noise
hits both; it prints each one's throughput (training samples per wall-clock second, hook
included) for its best epoch (least disturbed by other programs) and over all epochs, the
ratios, and the time the hook itself took per epoch. Goal: under 5% slower.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from bigmodel_core.config.presets import load_preset
from bigmodel_core.inspect import probes
from bigmodel_core.nn.models import build_model
from bigmodel_core.training.jobs import Job
from bigmodel_core.training.trainer import EpochEnd, Trainer, load_data


def epoch_timer(trainer: Trainer, job: Job | None):
    """Advance ``trainer`` one epoch per ``next()``; yields (wall seconds, process CPU seconds, hook
    wall seconds) of that epoch, hook included. CPU time is less sensitive to other programs' load."""
    events = trainer.run()
    while True:
        t0, c0 = time.perf_counter(), time.process_time()
        hook = 0.0
        for ev in events:
            if isinstance(ev, EpochEnd):
                if job is not None:
                    t = time.perf_counter()
                    probes.epoch_hook(job, trainer, ev)
                    hook = time.perf_counter() - t
                break
        else:
            return
        yield time.perf_counter() - t0, time.process_time() - c0, hook


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
    # warm up the probe path once (lazy kernel set-up, first-call costs) before measuring
    warm = cfg.with_changes({"training.epochs": 1, "data.train_size": min(256, cfg.data.train_size)})
    wt = probes.attach(Trainer(warm, dataset=load_data(warm), init_state=state))
    for _ in epoch_timer(wt, Job(warm, owner="bench", make_trainer=probes.make_trainer, save=False)):
        pass
    wall = {"plain": 0.0, "probed": 0.0}
    cpu = {"plain": 0.0, "probed": 0.0}
    hooks: list[float] = []
    ratios: list[float] = []
    best = {"plain": float("inf"), "probed": float("inf")}
    for _ in range(args.rounds):
        # two runs from the same weights, stepped one epoch at a time in turn (order swapped every
        # epoch), so a busy machine slows both alike
        runs = {"plain": epoch_timer(Trainer(cfg, dataset=data, init_state=state), None),
                "probed": epoch_timer(probes.attach(Trainer(cfg, dataset=data, init_state=state)),
                                      Job(cfg, owner="bench", make_trainer=probes.make_trainer, save=False))}
        for e in range(args.epochs):
            got = {}
            for name in (("plain", "probed") if e % 2 == 0 else ("probed", "plain")):
                got[name] = next(runs[name])
            for name, (w, c, _) in got.items():
                wall[name] += w
                cpu[name] += c
                best[name] = min(best[name], w)
            hooks.append(got["probed"][2])
            ratios.append(got["plain"][0] / got["probed"][0])
    n = len(data.x_train) * args.epochs * args.rounds
    print(f"preset {args.preset}: {cfg.data.train_size} training samples, {args.rounds} pair(s) of runs x "
          f"{args.epochs} epochs, stepped alternately epoch by epoch; device {args.device}, "
          f"{torch.get_num_threads()} threads")
    per_epoch = len(data.x_train)
    for name, label in (("plain", "without probes"), ("probed", "with probes   ")):
        print(f"{label}: best epoch {per_epoch / best[name]:,.0f} samples/s; over all epochs "
              f"{n / wall[name]:,.0f} samples/s wall, {n / cpu[name]:,.0f} samples per CPU-second")
    print(f"(with probes = gradient norms every {probes.GRAD_EVERY} steps, kept validation outputs, epoch hook)")
    ratio = best["plain"] / best["probed"]
    print(f"ratio with/without, best epochs: {ratio:.3f} (slowdown {1 - ratio:+.1%}); all epochs: "
          f"{wall['plain'] / wall['probed']:.3f} wall, median per-epoch pair {statistics.median(ratios):.3f}, "
          f"{cpu['plain'] / cpu['probed']:.3f} CPU time")
    med_hook = statistics.median(hooks)
    print(f"epoch hook alone: median {med_hook * 1000:.0f} ms per epoch = "
          f"{med_hook / (wall['plain'] / len(ratios)):.1%} of a mean epoch without probes")


if __name__ == "__main__":
    main()
