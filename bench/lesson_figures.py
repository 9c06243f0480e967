"""The residual and distillation lessons' figures over three seeds, as README quotes them.

    python -m bench.lesson_figures [--seeds 0 1 2]

Residual: the lesson's eight plain conv blocks against the same network with skips (blocks 2-8):
final validation accuracy, and the gradient norm of the first and last conv at the first step.
Distillation: a 4,266-parameter student (conv 4 and 8 channels, no dense layer) on 300 printed
digits for 30 epochs, trained alone and distilled from the shipped digits_cnn (105,962
parameters; T = 4, alpha = 0.7). Each row is measured here, on CPU with one thread.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from bigmodel_core.config.presets import load_preset
from bigmodel_core.config.specs import parse_config
from bigmodel_core.experiments.distill import DistillTrainer, load_teacher
from bigmodel_core.training.trainer import Trainer


def residual_rows(seeds: list[int]) -> None:
    print("residual lesson: 8 conv blocks, SGD lr 0.05, 3 epochs, 2,000 digits")
    for preset in ("lesson_deep_plain_cnn", "deep_residual_cnn"):
        accs, first, last = [], [], []
        for seed in seeds:
            cfg = load_preset(preset).with_changes({"seed": seed, "training.device": "cpu"})
            tr = Trainer(cfg, grad_every=1_000_000)  # the first step's gradient norms only
            tr.fit()
            norms = tr.grad_norms.copy()["norms"]
            accs.append(tr.result.history[-1].val_metric)
            first.append(norms["blocks.0.conv"][0])
            last.append(norms["blocks.7.conv"][0])
        print(f"  {preset:24s} val accuracy {statistics.mean(accs):.3f} "
              f"(seeds: {', '.join(f'{a:.3f}' for a in accs)}); "
              f"grad norm at step 1: first conv {statistics.mean(first):.1e}, last conv {statistics.mean(last):.1e}")


def distill_rows(seeds: list[int]) -> None:
    teacher = load_teacher("digits_cnn")
    print("distillation lesson: student conv 4/8, no dense, 300 digits, 30 epochs; teacher digits_cnn, T 4, alpha 0.7")
    alone, taught, teacher_acc = [], [], []
    for seed in seeds:
        cfg = parse_config({"seed": seed, "data": {"name": "synthetic_digits", "train_size": 300, "val_size": 1000},
                            "model": {"family": "cnn", "conv": [{"channels": 4}, {"channels": 8}], "dense": []},
                            "optimizer": {"name": "adam", "lr": 0.003},
                            "training": {"epochs": 30, "batch_size": 32, "device": "cpu"}})
        a = Trainer(cfg)
        a.fit()
        d = DistillTrainer(cfg, teacher, temperature=4.0, alpha=0.7)
        d.fit()
        alone.append(a.result.history[-1].val_metric)
        taught.append(d.result.history[-1].val_metric)
        teacher_acc.append(d.teacher_val["val_accuracy"])
    for name, v in (("student alone", alone), ("student distilled", taught), ("teacher", teacher_acc)):
        print(f"  {name:24s} val accuracy {statistics.mean(v):.3f} (seeds: {', '.join(f'{x:.3f}' for x in v)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    residual_rows(args.seeds)
    distill_rows(args.seeds)


if __name__ == "__main__":
    main()
