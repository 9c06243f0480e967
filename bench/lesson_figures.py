"""The residual, distillation and scaling lessons' figures over three seeds, as README quotes them.

    python -m bench.lesson_figures [--seeds 0 1 2] [--only residual distill scaling]

Residual: the lesson's eight plain conv blocks against the same network with skips (blocks 2-8):
final validation accuracy, and the gradient norm of the first and last conv at the first step.
Distillation: the lesson's 4,266-parameter student (conv 4 and 8 channels, no dense layer) trained
alone and distilled from the shipped digits_cnn (105,962 parameters; T = 4, alpha = 0.7), at 100
and at 300 labelled printed digits for 30 epochs, through the Compare page's "student alone vs
distilled" kind (same initial weights and batches for both arms). Scaling: the lesson's CNN at
widths x0.25 to x4 (1,762 to 421,642 parameters), 3 epochs on 2,000 digits, through the Compare
page's "model size" kind, with the power law fitted per seed and on all points. Each row is
measured here, on CPU with one thread.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from bigmodel_core.config.presets import load_preset
from bigmodel_core.experiments import compare as cmp
from bigmodel_core.experiments.distill import load_teacher
from bigmodel_core.training.jobs import JobPool
from bigmodel_core.training.trainer import Trainer

SCALE_WIDTHS = (0.25, 0.5, 1.0, 2.0, 4.0)
DISTILL_BUDGETS = (100, 300)


def _seeds(v: list[float], digits: int = 3) -> str:
    return ", ".join(f"{x:.{digits}f}" for x in v)


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
        print(f"  {preset:24s} val accuracy {statistics.mean(accs):.3f} (seeds: {_seeds(accs)}); "
              f"grad norm at step 1: first conv {statistics.mean(first):.1e}, last conv {statistics.mean(last):.1e}")


def _run(comp: cmp.Comparison, pool: JobPool) -> cmp.Comparison:
    cmp.submit(comp, pool, "bench", save=False)
    cmp.wait(comp, pool, "bench", poll=0.1)
    bad = [f"{r.name}: {r.status} {r.message}" for r in comp.runs if r.status != "completed"]
    if bad:
        raise SystemExit("a run did not complete: " + "; ".join(bad))
    return comp


def distill_rows(seeds: list[int], pool: JobPool) -> None:
    teacher = load_teacher("digits_cnn")
    base = load_preset("lesson_distill_student").with_changes({"training.device": "cpu"})
    print(f"distillation lesson: student conv 4/8, no dense ({cmp.model_size(base).params:,} parameters), "
          f"{base.training.epochs} epochs; teacher digits_cnn ({cmp.model_size(teacher.config).params:,}), T 4, "
          "alpha 0.7")
    for budget in DISTILL_BUDGETS:
        alone, taught, teacher_acc, same = [], [], [], []
        for seed in seeds:
            cfg = base.with_changes({"seed": seed, "data.train_size": budget})
            comp = _run(cmp.plan_distillation(cfg, teacher, 4.0, 0.7), pool)
            a, d = comp.runs
            alone.append(a.epochs[-1]["val_metric"])
            taught.append(d.epochs[-1]["val_metric"])
            teacher_acc.append(d.summary["distill"]["teacher_final"]["val_accuracy"])
            same.append(a.init_sha == d.init_sha and a.order_sha == d.order_sha)
        gain = [t - a for a, t in zip(alone, taught)]
        print(f"  {budget} labelled digits: alone {statistics.mean(alone):.3f} (seeds: {_seeds(alone)}); "
              f"distilled {statistics.mean(taught):.3f} (seeds: {_seeds(taught)}); "
              f"distilled - alone {statistics.mean(gain):+.3f} (seeds: {', '.join(f'{g:+.3f}' for g in gain)}); "
              f"teacher {statistics.mean(teacher_acc):.3f}; same init and batches in every pair: {all(same)}")


def scaling_rows(seeds: list[int], pool: JobPool) -> None:
    base = load_preset("lesson_scaling_cnn").with_changes({"training.device": "cpu"})
    print(f"scaling lesson: widths {', '.join(f'x{w:g}' for w in SCALE_WIDTHS)} of conv 8/16, dense 32; "
          f"{base.training.epochs} epochs on {base.data.train_size:,} digits")
    points: list[cmp.ScalePoint] = []
    for seed in seeds:
        comp = _run(cmp.plan_scale(base.with_changes({"seed": seed}), SCALE_WIDTHS), pool)
        pts = cmp.scale_points(comp)
        points += pts
        fit_n, fit_c = cmp.fit_points(pts, "params"), cmp.fit_points(pts, "train_flops")
        print(f"  seed {seed}: val loss {_seeds([p.val_loss for p in pts])}; exponent against parameters "
              f"b = {fit_n.b:.3f} (R² {fit_n.r2:.2f}), against training FLOPs b = {fit_c.b:.3f} (R² {fit_c.r2:.2f})")
    by_size: dict[int, list[float]] = {}
    for p in points:
        by_size.setdefault(p.params, []).append(p.val_loss)
    for p in points[:len(SCALE_WIDTHS)]:
        losses = by_size[p.params]
        print(f"  {p.run:12s} {p.params:>8,} parameters, {p.train_flops:.2e} training FLOPs: val loss "
              f"{statistics.mean(losses):.3f} +- {statistics.stdev(losses) if len(losses) > 1 else 0:.3f}")
    for against, what in (("params", "N"), ("train_flops", "C")):
        fit = cmp.fit_points(points, against)
        print(f"  all seeds, against {'parameters' if what == 'N' else 'training FLOPs'}: {fit.describe(what)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", choices=["residual", "distill", "scaling"],
                        default=["residual", "distill", "scaling"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    pool = JobPool(max_workers=1, store=None, threads_per_job=1, idle_stop_seconds=10 ** 9)
    try:
        if "residual" in args.only:
            residual_rows(args.seeds)
        if "distill" in args.only:
            distill_rows(args.seeds, pool)
        if "scaling" in args.only:
            scaling_rows(args.seeds, pool)
    finally:
        pool.shutdown()


if __name__ == "__main__":
    main()
