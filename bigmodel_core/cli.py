"""Command line: ``python -m bigmodel_core <command>``.

Every command-line argument is parsed here, the only module that uses argparse; what a command
does is a plain function of its room (``training.runner.train_and_save``,
``experiments.distill.distill_and_save``, ``experiments.compare.run_compare``,
``experiments.finetune.run_pretrain`` and ``run_finetune``, ``export.write_script``). The options
that ``train``, ``distill``, ``compare`` and ``finetune`` share (``--out``, ``--overwrite``,
``--epochs``, ``--device``, ``--seed``) come from one parent parser; the config overrides among
them reach the commands as dotted-path changes.

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback), 1 a run that
did not complete (diverged or failed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable

from bigmodel_core.config.presets import load_config_arg, preset_descriptions, preset_names
from bigmodel_core.config.specs import ConfigError, ExperimentConfig, json_schema, parse_config_here
from bigmodel_core.config.uploaded_data import use_data_file
from bigmodel_core.data import DATASET_NAMES, DatasetError, dataset_info
from bigmodel_core.experiments import distill
from bigmodel_core.experiments.compare import run_compare
from bigmodel_core.experiments.finetune import (
    DEFAULT_BACKBONE_LR_SCALE,
    PRETRAINED_DIR,
    RECIPES,
    run_finetune,
    run_pretrain,
)
from bigmodel_core.export import write_script
from bigmodel_core.nn.models import summarize
from bigmodel_core.nn.shapes import SpecError, check_design
from bigmodel_core.safejson import parse_number
from bigmodel_core.training.bench import DEFAULT_PRESETS, run_bench
from bigmodel_core.training.runner import train_and_save
from bigmodel_core.training.store import StoreError, check_out_dir
from bigmodel_core.training.trainer import BatchEnd, EpochEnd


class UsageError(Exception):
    """Bad input from the command line; printed as one line, exit code 2."""


def number_arg(kind: type, low: float | None = None) -> Callable[[str], float | int]:
    """An argparse type from :func:`bigmodel_core.safejson.parse_number`: a whole number (``int``) or
    a finite float, bounded in length and value, so ``--epochs 99...9`` (thousands of digits) or
    ``--seconds 1e999`` exit 2 with a short message naming the option."""
    def parse(text: str) -> float | int:
        try:
            return parse_number(text, kind, low)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "whole number" if kind is int else "number"
    return parse


def shared_options() -> argparse.ArgumentParser:
    """The parent parser of the commands that train and write a folder: train, distill, compare, finetune."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--out", required=True, help="the folder to write (new or empty, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="write into an existing non-empty --out folder")
    p.add_argument("--epochs", type=number_arg(int, 1), help="override the config's training.epochs")
    p.add_argument("--device", help="override the config's training.device (auto, cpu, cuda, cuda:N, mps)")
    p.add_argument("--seed", type=number_arg(int, 0), help="override the config's seed")
    p.add_argument("--data", metavar="FILE", help="your own dataset: a .zip of class folders of images, an "
                                                   ".npz with arrays x and y, or a .csv of sequences")
    p.add_argument("--task", choices=("classification", "regression"),
                   help="with a .csv --data: classify its labels (the default) or predict them as numbers")
    return p


def with_data(cfg: ExperimentConfig, args: argparse.Namespace) -> ExperimentConfig:
    """``cfg`` on the ``--data`` file when one was given (what it did is told on stderr), else ``cfg``."""
    if getattr(args, "data", None) is None:
        if getattr(args, "task", None) is not None:
            raise UsageError("--task goes with --data FILE")
        return cfg
    return use_data_file(cfg, args.data, args.task, log=lambda line: print(line, file=sys.stderr))


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The shared options that change the config, as dotted-path changes (none for other commands)."""
    changes: dict[str, Any] = {}
    if getattr(args, "epochs", None) is not None:
        changes["training.epochs"] = args.epochs
    if getattr(args, "device", None) is not None:
        changes["training.device"] = args.device
    if getattr(args, "seed", None) is not None:
        changes["seed"] = args.seed
    return changes


def _config(args: argparse.Namespace) -> ExperimentConfig:
    cfg = load_config_arg(args.config)
    changes = overrides(args)
    # the device is checked here, before any data is built: cuda on a CPU-only machine fails now
    return parse_config_here(cfg.with_changes(changes) if changes else cfg)


def cmd_datasets(args: argparse.Namespace) -> int:
    for name in DATASET_NAMES:
        info = dataset_info(name)
        shape = "x".join(map(str, info.input_shape))
        print(f"{name:20s} {info.kind:8s} {info.task:14s} input {shape:9s} outputs {info.num_outputs:3d}  "
              f"{info.description}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    desc = preset_descriptions()
    for name in preset_names():
        print(f"{name:24s} {desc.get(name, '')}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    cfg = _config(args)
    check_design(cfg)
    if args.schema:
        print(json.dumps(json_schema(), indent=2))
    else:
        print(f"ok: {cfg.model.family} on {cfg.data.name}, {cfg.training.epochs} epochs")
    return 0


def summary_json(cfg, info, rows) -> dict:
    """One JSON object for tools and tests: a row per layer and the totals."""
    return {
        "family": cfg.model.family, "dataset": cfg.data.name, "input_shape": list(info.input_shape),
        "layers": [{"index": r.index, "name": r.name, "kind": r.kind, "block": r.block,
                    "output_shape": list(r.out_shape), "params": r.params, "flops": r.flops} for r in rows],
        "total_params": sum(r.params for r in rows), "total_flops": sum(r.flops for r in rows),
        "flops_note": "forward FLOPs for one sample, 2 per multiply-add; recurrent layers counted from their shapes",
    }


def cmd_summary(args: argparse.Namespace) -> int:
    cfg = _config(args)
    info = dataset_info(cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len)
    rows = summarize(cfg.model, info)
    if args.json:
        print(json.dumps(summary_json(cfg, info, rows), indent=2))
        return 0
    print(f"{'#':>3}  {'layer':28s} {'output':>14s} {'params':>10s} {'FLOPs':>12s}")
    print(f"{'':>3}  {'input':28s} {'x'.join(map(str, info.input_shape)):>14s}")
    for r in rows:
        print(f"{r.index:>3}  {r.name:28s} {'x'.join(map(str, r.out_shape)):>14s} {r.params:>10,} {r.flops:>12,}")
    print(f"total parameters {sum(r.params for r in rows):,}; forward FLOPs per sample "
          f"{sum(r.flops for r in rows):,}")
    return 0


def _bar(done: int, total: int, width: int = 28) -> str:
    filled = int(width * done / max(1, total))
    return "#" * filled + "-" * (width - filled)


def cmd_train(args: argparse.Namespace) -> int:
    cfg = with_data(_config(args), args)
    out = check_out_dir(args.out, args.overwrite)  # before training: a bad folder fails in a second, not after
    summary = train_and_save(cfg, out, on_event=_progress(cfg))
    print(json.dumps(summary, indent=2))
    return 0 if summary["status"] in ("completed", "stopped") else 1


def cmd_distill(args: argparse.Namespace) -> int:
    cfg = with_data(_config(args), args)
    distill.check_settings(args.temperature, args.alpha)
    teacher = distill.load_teacher(args.teacher)
    out = check_out_dir(args.out, args.overwrite)
    summary = distill.distill_and_save(cfg, teacher, out, temperature=args.temperature, alpha=args.alpha,
                                       on_event=_progress(cfg))
    print(json.dumps(summary, indent=2))
    return 0 if summary["status"] in ("completed", "stopped") else 1


def _progress(cfg: ExperimentConfig) -> Callable[[object], None]:
    """Progress lines on stderr: a bar per batch (throttled), a line per epoch."""
    last_print = 0.0
    tty = sys.stderr.isatty()

    def on_event(ev: object) -> None:
        nonlocal last_print
        if isinstance(ev, BatchEnd):
            now = time.perf_counter()
            if now - last_print < (0.1 if tty else 2.0) and ev.batch != ev.batches_per_epoch:
                return
            last_print = now
            total = ev.batches_per_epoch * cfg.training.epochs
            eta = ev.elapsed / ev.step * (total - ev.step)
            line = (f"epoch {ev.epoch}/{cfg.training.epochs} [{_bar(ev.step, total)}] {ev.step}/{total} "
                    f"loss {ev.loss:.4f} lr {ev.lr:.2g} ETA {eta:5.1f}s")
            print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
        elif isinstance(ev, EpochEnd):
            name = "acc" if info_task == "classification" else "mae"
            print(("\r" if tty else "") + f"epoch {ev.epoch}: train loss {ev.train_loss:.4f} (running) "
                  f"{ev.train_eval_loss:.4f} (eval mode), train {name} {ev.train_eval_metric:.4f} (eval mode), "
                  f"val loss {ev.val_loss:.4f} val {name} {ev.val_metric:.4f} "
                  f"({ev.seconds:.1f}s, {ev.samples_per_sec:,.0f} samples/s)" + " " * 10, file=sys.stderr)

    info_task = dataset_info(cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len).task
    return on_event


def cmd_bench(args: argparse.Namespace) -> int:
    result = run_bench(args.presets or DEFAULT_PRESETS, seconds=args.seconds, rounds=args.rounds,
                       threads=args.threads)
    if args.json:
        print(json.dumps(result))
    else:
        for name, r in result.items():
            step = "fused optimizer step" if r["fused_optimizer"] else "torch's default optimizer step"
            print(f"{name}: engine {r['engine_samples_per_sec']:,.0f} samples/s ({r['memory_format']}, {step}); "
                  f"plain PyTorch loop in NCHW {r['plain_samples_per_sec']:,.0f} samples/s, ratio {r['ratio']:.3f} "
                  f"(median of rounds {r['ratio_median']:.3f}); plain loop with the engine's settings "
                  f"{r['plain_same_format_samples_per_sec']:,.0f} samples/s, ratio {r['ratio_same_format']:.3f} "
                  f"(median {r['ratio_same_format_median']:.3f}); in CPU time: {r['cpu_ratio']:.3f} against NCHW, "
                  f"{r['cpu_ratio_same_format']:.3f} against the same settings ({r['threads']} threads, "
                  f"batch {r['batch_size']}, best of {r['rounds']} alternating rounds)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    return run_compare(args.config, args.vary, args.out, overwrite=args.overwrite, overrides=overrides(args),
                       workers=args.workers, threads=args.threads, data_file=args.data, task=args.task,
                       teacher=args.teacher, temperature=args.temperature, alpha=args.alpha,
                       widths=_number_list(args.widths, float, "--widths"),
                       depths=_number_list(args.depths, int, "--depths"), executor=args.executor)


def _number_list(text: str | None, kind: type, option: str) -> list | None:
    """``0.5,1,2`` -> [0.5, 1.0, 2.0]; each number bounded as every CLI number is."""
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) > 64:
        raise UsageError(f"{option}: {len(parts):,} values; a comparison holds at most 8 runs")
    try:
        return [parse_number(part.strip(), kind, 0) for part in parts]
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def cmd_pretrain(args: argparse.Namespace) -> int:
    return run_pretrain(args.name, args.out, epochs=args.epochs)


def cmd_finetune(args: argparse.Namespace) -> int:
    return run_finetune(args.config, args.out, pretrained=args.pretrained, strategy=args.strategy,
                        labels_per_class=args.labels_per_class, backbone_lr_scale=args.backbone_lr_scale,
                        overwrite=args.overwrite, overrides=overrides(args), data_file=args.data, task=args.task)


def cmd_export_code(args: argparse.Namespace) -> int:
    return write_script(args.config, args.out)


def _add_engine_commands(sub: argparse._SubParsersAction, shared: argparse.ArgumentParser) -> None:
    p = sub.add_parser("datasets", help="list the datasets")
    p.set_defaults(func=cmd_datasets)
    p = sub.add_parser("presets", help="list the preset configs")
    p.set_defaults(func=cmd_presets)
    p = sub.add_parser("validate", help="check a config (file or preset name)")
    p.add_argument("config")
    p.add_argument("--schema", action="store_true", help="print the config's JSON Schema")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("summary", help="per-layer shapes, parameters and FLOPs")
    p.add_argument("config")
    p.add_argument("--json", action="store_true", help="print one JSON object (a row per layer, and totals)")
    p.set_defaults(func=cmd_summary)
    p = sub.add_parser("train", parents=[shared], help="train a config and write the run folder")
    p.add_argument("config")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("distill", parents=[shared],
                       help="train a student on a teacher's softened outputs and write the run folder")
    p.add_argument("config", help="the student: a config file or preset name")
    p.add_argument("--teacher", required=True, help="a shipped pretrained name or a run folder (same data)")
    p.add_argument("--temperature", type=number_arg(float, 0.0), default=4.0, help="softening T (default 4)")
    p.add_argument("--alpha", type=number_arg(float, 0.0), default=0.7,
                   help="weight of the teacher's soft targets, 0-1 (default 0.7); 1 - alpha goes to the labels")
    p.set_defaults(func=cmd_distill)
    p = sub.add_parser("bench", help="engine throughput versus a plain PyTorch loop "
                                     "(as written by hand, and with the engine's settings)")
    p.add_argument("presets", nargs="*")
    p.add_argument("--json", action="store_true")
    p.add_argument("--seconds", type=number_arg(float, 0.1), default=4.0, help="time per measurement")
    p.add_argument("--rounds", type=number_arg(int, 1), default=3, help="alternating rounds (the best of each side)")
    p.add_argument("--threads", type=number_arg(int, 1), help="torch threads (default: torch's, the cores)")
    p.set_defaults(func=cmd_bench)


def _add_experiment_commands(sub: argparse._SubParsersAction, shared: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "compare", parents=[shared], help="fair side-by-side runs that vary config fields",
        description="Runs CONFIG once per position of the value lists, all from the same initial weights and "
                    "batches, and writes one run folder per run, comparison.json, summary.csv and curves.csv to "
                    "--out. Exit code 0 when every run finished (a diverged run is a result), 1 if one failed, "
                    "2 on bad input.")
    p.add_argument("config", help="a config JSON file or a preset name")
    p.add_argument("--vary", action="append", metavar="FIELD=V1,V2,...",
                   help="dotted config path and values (JSON where possible); repeat to pair fields run by run")
    p.add_argument("--teacher", help="instead of --vary: the student alone against the student distilled from "
                                     "this teacher (a shipped pretrained name or a run folder)")
    p.add_argument("--temperature", type=number_arg(float, 0.0), default=4.0, help="with --teacher: softening T")
    p.add_argument("--alpha", type=number_arg(float, 0.0), default=0.7,
                   help="with --teacher: weight of the teacher's soft targets, 0-1")
    p.add_argument("--widths", metavar="W1,W2,...", help="instead of --vary: width multipliers of the model "
                                                         "(channels, units, hidden size), e.g. 0.25,0.5,1,2")
    p.add_argument("--depths", metavar="D1,D2,...", help="with or instead of --widths: conv blocks (recurrent "
                                                         "layers) of each size")
    p.add_argument("--workers", type=number_arg(int, 1),
                   help="runs trained at once (default 1; with --executor ray, as many as the cluster's CPUs allow)")
    p.add_argument("--threads", type=number_arg(int, 1), help="torch threads per run (default: cores / workers; "
                   "with --executor ray, 1)")
    p.add_argument("--executor", choices=["threads", "ray"],
                   help="where the runs train: threads in this process, or a Ray cluster (RAY_ADDRESS, else a "
                        "local Ray; needs requirements-ray.txt); default BIGMODEL_EXECUTOR, else threads")
    p.set_defaults(func=cmd_compare)
    names = ", ".join(RECIPES)
    p = sub.add_parser("pretrain", help=f"remake a shipped pretrained model ({names})")
    p.add_argument("name", choices=list(RECIPES))
    p.add_argument("--out", default=str(PRETRAINED_DIR), help="folder for NAME.safetensors and NAME.json")
    p.add_argument("--epochs", type=number_arg(int, 1), help="stop after this many epochs (checked against the card's "
                                                             "per-epoch sha256)")
    p.set_defaults(func=cmd_pretrain)
    p = sub.add_parser("finetune", parents=[shared],
                       help="fine-tune pretrained weights on a target task with a label budget")
    p.add_argument("config", help=f"target config (JSON file or preset), or a pretrained name ({names}) for "
                                  "its suggested target")
    p.add_argument("--pretrained", help=f"a shipped model ({names}) or a .safetensors file")
    p.add_argument("--strategy", default="head", help="head | last:N | full | scratch")
    p.add_argument("--labels-per-class", default="all",
                   help="labelled examples per class (in all, for regression), or 'all'")
    p.add_argument("--backbone-lr-scale", type=number_arg(float, 0), default=DEFAULT_BACKBONE_LR_SCALE,
                   help="learning-rate factor for trained pretrained blocks (last:N, full)")
    p.set_defaults(func=cmd_finetune)
    p = sub.add_parser("export-code", help="write a standalone PyTorch script for a config")
    p.add_argument("config", help="a config JSON file or a preset name")
    p.add_argument("-o", "--out", help="script file to write (default: print to stdout)")
    p.set_defaults(func=cmd_export_code)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bigmodel_core",
                                     description="bigmodel playground engine: datasets, presets, training")
    sub = parser.add_subparsers(dest="command", required=True)
    shared = shared_options()
    _add_engine_commands(sub, shared)
    _add_experiment_commands(sub, shared)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, SpecError, DatasetError, StoreError, UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
