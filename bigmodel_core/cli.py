"""Command line: ``python -m bigmodel_core <command>``.

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback), 1 a run that
did not complete (diverged or failed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

from bigmodel_core.config.presets import load_config_arg, preset_descriptions, preset_names
from bigmodel_core.config.specs import ConfigError, ExperimentConfig, parse_config_here
from bigmodel_core.config.uploaded_data import add_data_arguments, apply_data_arguments
from bigmodel_core.data import DATASET_NAMES, DatasetError, dataset_info
from bigmodel_core.nn.models import summarize
from bigmodel_core.nn.shapes import SpecError, check_design
from bigmodel_core.safejson import number_arg
from bigmodel_core.training.store import StoreError, check_out_dir


class UsageError(Exception):
    """Bad input from the command line; printed as one line, exit code 2."""


def _config(args: argparse.Namespace) -> ExperimentConfig:
    cfg = load_config_arg(args.config)
    changes = {}
    if getattr(args, "epochs", None) is not None:
        changes["training.epochs"] = args.epochs
    if getattr(args, "device", None) is not None:
        changes["training.device"] = args.device
    if getattr(args, "seed", None) is not None:
        changes["seed"] = args.seed
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
        from bigmodel_core.config.specs import json_schema

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
    from bigmodel_core.training.runner import train_and_save

    cfg = apply_data_arguments(_config(args), args)
    out = check_out_dir(args.out, args.overwrite)  # before training: a bad folder fails in a second, not after
    summary = train_and_save(cfg, out, on_event=_progress(cfg))
    print(json.dumps(summary, indent=2))
    return 0 if summary["status"] in ("completed", "stopped") else 1


def cmd_distill(args: argparse.Namespace) -> int:
    from bigmodel_core.experiments import distill  # noqa: PLC0415 - loads the fine-tune room only when used

    cfg = _config(args)
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
        from bigmodel_core.training.trainer import BatchEnd, EpochEnd

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
            print(("\r" if tty else "") + f"epoch {ev.epoch}: train loss {ev.train_loss:.4f} "
                  f"val loss {ev.val_loss:.4f} val {name} {ev.val_metric:.4f} "
                  f"({ev.seconds:.1f}s, {ev.samples_per_sec:,.0f} samples/s)" + " " * 10, file=sys.stderr)

    info_task = dataset_info(cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len).task
    return on_event


def cmd_bench(args: argparse.Namespace) -> int:
    from bigmodel_core.training.bench import run_bench

    result = run_bench(args.presets or ["quickstart_cnn", "textbook_lstm"], seconds=args.seconds)
    if args.json:
        print(json.dumps(result))
    else:
        for name, r in result.items():
            print(f"{name}: engine {r['engine_samples_per_sec']:,.0f} samples/s, plain PyTorch loop "
                  f"{r['plain_samples_per_sec']:,.0f} samples/s, ratio {r['ratio']:.3f} "
                  f"({r['threads']} threads, batch {r['batch_size']})")
    return 0


Command = Callable[[argparse._SubParsersAction], None]


def _add_core(sub: argparse._SubParsersAction) -> None:
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
    p = sub.add_parser("train", help="train a config and write the run folder")
    p.add_argument("config")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true", help="write into an existing non-empty --out folder")
    p.add_argument("--epochs", type=number_arg(int))
    p.add_argument("--device")
    p.add_argument("--seed", type=number_arg(int))
    add_data_arguments(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("distill", help="train a student on a teacher's softened outputs and write the run folder")
    p.add_argument("config", help="the student: a config file or preset name")
    p.add_argument("--teacher", required=True, help="a shipped pretrained name or a run folder (same data)")
    p.add_argument("--temperature", type=number_arg(float, 0.0), default=4.0, help="softening T (default 4)")
    p.add_argument("--alpha", type=number_arg(float, 0.0), default=0.7,
                   help="weight of the teacher's soft targets, 0-1 (default 0.7); 1 - alpha goes to the labels")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true", help="write into an existing non-empty --out folder")
    p.add_argument("--epochs", type=number_arg(int))
    p.add_argument("--device")
    p.add_argument("--seed", type=number_arg(int))
    p.set_defaults(func=cmd_distill)
    p = sub.add_parser("bench", help="engine throughput versus a plain PyTorch loop")
    p.add_argument("presets", nargs="*")
    p.add_argument("--json", action="store_true")
    p.add_argument("--seconds", type=number_arg(float, 0.1), default=4.0, help="time per measurement")
    p.set_defaults(func=cmd_bench)


# Each feature module contributes its subcommands here.
COMMANDS: list[Command] = [_add_core]


def _extra_commands() -> list[Command]:
    extra: list[Command] = []
    for mod_name in ("experiments.compare", "experiments.finetune", "export"):
        try:
            mod = __import__(f"bigmodel_core.{mod_name}", fromlist=["add_cli"])
        except ModuleNotFoundError as exc:
            if exc.name == f"bigmodel_core.{mod_name}":
                continue
            raise
        if hasattr(mod, "add_cli"):
            extra.append(mod.add_cli)
    return extra


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bigmodel_core",
                                     description="bigmodel playground engine: datasets, presets, training")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS + _extra_commands():
        add(sub)
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
