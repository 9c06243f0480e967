"""Transfer learning against training from scratch, for each shipped pretrained model's suggested target.

For every card: train each strategy (head, last:1, full, scratch) on the suggested target at the
card's label budget (5 labels per class for the image targets), with the same steps, seeds and data
order, and print the mean and spread of the validation metric over the seeds, plus the best
pretrained strategy's margin over scratch. ``--reproduce`` also remakes every asset with
``pretrain`` (into a temporary folder) and checks its sha256 against the card.

    python -m bench.bench_finetune                 # the README table (3 seeds)
    python -m bench.bench_finetune --budgets 1 5 20 all --names letters_cnn
    python -m bench.bench_finetune --reproduce     # the full bit-identical reproduction check
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bigmodel_core.experiments.finetune import (
    PRETRAINED_DIR,
    RECIPES,
    FinetuneTrainer,
    Plan,
    load_card,
    load_pretrained,
    parse_budget,
    pretrain,
    suggested_target,
)

STRATEGIES = ("head", "last:1", "full", "scratch")


def run_one(name: str, strategy: str, budget: int | None, seed: int, assets: Path) -> float:
    cfg = suggested_target(name).with_changes({"seed": seed, "training.device": "cpu"})
    source = load_pretrained(name, assets) if strategy != "scratch" else None
    trainer = FinetuneTrainer(cfg, Plan.make(strategy, budget), source)
    trainer.fit()
    return trainer.summary()["final"]["val_accuracy" if trainer.classification else "val_mae"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", nargs="*", default=list(RECIPES))
    ap.add_argument("--strategies", nargs="*", default=list(STRATEGIES))
    ap.add_argument("--budgets", nargs="*", help="labels per class (labelled sequences for regression) or 'all'; "
                                                 "default: each card's suggested budget")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--assets", type=Path, default=PRETRAINED_DIR)
    ap.add_argument("--reproduce", action="store_true", help="remake every asset and compare sha256 with its card")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.reproduce:
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.names:
                t0 = time.perf_counter()
                card = pretrain(name, tmp)
                shipped = load_card(name, args.assets)
                same = card["sha256"] == shipped["sha256"]
                here = "the same" if shipped.get("made_on") == card["made_on"] else "another"
                final, was = card["metrics"]["history"][-1], shipped["metrics"]["history"][-1]
                drift = max(abs(final[k] - was[k]) for k in was if k != "epoch")
                print(f"pretrain {name}: {time.perf_counter() - t0:.0f}s, sha256 {card['sha256'][:16]}... "
                      f"{'matches' if same else 'DOES NOT MATCH'} the shipped card (made on {here} kind of "
                      f"processor); final metrics differ by at most {drift:.2g}", flush=True)
        return 0

    print(f"torch {torch.__version__}, {args.threads} threads, seeds 0..{args.seeds - 1}")
    for name in args.names:
        card = load_card(name, args.assets)
        target = card["suggested_target"]
        cfg = suggested_target(name)
        classification = cfg.data.name != "adding_problem" and cfg.data.name != "sine_wave"
        metric = "val accuracy" if classification else "val MAE (lower is better)"
        budgets = [parse_budget(b) for b in args.budgets] if args.budgets else [target["labels_per_class"]]
        unit = "labels/class" if classification else "labelled seqs"
        print(f"\n{name} -> {cfg.data.name}: {target['title']}")
        print(f"{'strategy':10s} {unit:>14s} {metric:>28s}")
        for budget in budgets:
            means: dict[str, float] = {}
            for strategy in args.strategies:
                t0 = time.perf_counter()
                vals = [run_one(name, strategy, budget, seed, args.assets) for seed in range(args.seeds)]
                mean = statistics.fmean(vals)
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                means[strategy] = mean
                print(f"{strategy:10s} {str(budget if budget else 'all'):>14s} {mean:18.3f} +- {sd:.3f}   "
                      f"({', '.join(f'{v:.3f}' for v in vals)}; {time.perf_counter() - t0:.0f}s)", flush=True)
            if "scratch" in means and len(means) > 1:
                pre = {k: v for k, v in means.items() if k != "scratch"}
                best = max(pre, key=pre.get) if classification else min(pre, key=pre.get)
                gap = pre[best] - means["scratch"]
                print(f"best pretrained: {best}, {'+' if gap >= 0 else ''}{gap:.3f} against scratch")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
