"""The command line's ``pretrain NAME`` and ``finetune CONFIG --pretrained NAME_OR_FILE ...``.

Argument parsing is the CLI's (:mod:`bigmodel_core.cli`); these are what the commands do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bigmodel_core.config.presets import load_config_arg
from bigmodel_core.config.specs import parse_config_here
from bigmodel_core.config.uploaded_data import use_data_file
from bigmodel_core.limits import current_limits
from bigmodel_core.training.store import check_out_dir, history_rows, write_run
from bigmodel_core.training.trainer import EpochEnd

from .base import DEFAULT_BACKBONE_LR_SCALE, FinetuneError, UploadError, config_info
from .outputs import finetuned_files
from .plan import FinetuneTrainer, Plan, parse_budget
from .recipes import (
    PRETRAINED_DIR,
    RECIPES,
    card_path,
    find_recipe,
    load_card,
    load_pretrained,
    pretrain,
    suggested_target,
)
from .strategies import Strategy
from .target_data import label_budget
from .weights import Source, read_safetensors, sha256_bytes


def resolve_source(arg: str | None) -> Source | None:
    """A shipped pretrained name, or a path to a .safetensors file (checked like an upload)."""
    if arg is None:
        return None
    if arg in RECIPES:
        return load_pretrained(arg)
    path = Path(arg)
    if not path.is_file():
        raise FinetuneError(f"--pretrained {arg!r} is neither a shipped model ({', '.join(RECIPES)}) nor a file")
    limit = current_limits().max_upload_bytes
    size = path.stat().st_size
    if size > limit:  # checked before reading, so a huge file is never loaded into memory
        raise UploadError(f"{path.name} is {size:,} bytes; the upload limit is {limit:,} bytes")
    data = path.read_bytes()
    return Source(label=f"{path.name} (file)", state=read_safetensors(data, path.name), sha256=sha256_bytes(data))


def run_pretrain(name: str, out: str | Path = PRETRAINED_DIR, epochs: int | None = None) -> int:
    """Remake shipped model ``name`` into ``out`` and say whether it matches the shipped card."""
    find_recipe(name)
    shipped = load_card(name) if card_path(name).is_file() else None

    def on_event(ev: Any) -> None:
        if isinstance(ev, EpochEnd):
            print(f"epoch {ev.epoch}: train loss {ev.train_loss:.4f} val loss {ev.val_loss:.4f} "
                  f"val metric {ev.val_metric:.4f} ({ev.seconds:.1f}s)", file=sys.stderr, flush=True)

    card = pretrain(name, Path(out), epochs=epochs, on_event=on_event)
    print(f"wrote {Path(out) / (name + '.safetensors')} ({card['bytes']:,} bytes) and its card")
    print(f"sha256 {card['sha256']}")
    if shipped is not None:
        if epochs is None:
            same = card["sha256"] == shipped["sha256"]
            print("matches the shipped card: " + ("yes" if same else "NO"))
        else:
            ref = shipped.get("epoch_sha256", [])
            same = len(ref) >= epochs and card["epoch_sha256"][-1] == ref[epochs - 1]
            print(f"matches the shipped card's epoch {epochs}: " + ("yes" if same else "NO"))
    return 0


def run_finetune(config: str, out: str, *, pretrained: str | None = None, strategy: str = "head",
                 labels_per_class: str = "all", backbone_lr_scale: float = DEFAULT_BACKBONE_LR_SCALE,
                 overwrite: bool = False, overrides: dict[str, Any] | None = None,
                 data_file: str | None = None, task: str | None = None) -> int:
    """Fine-tune ``pretrained`` on ``config`` (a config, a preset, or a shipped name for its suggested
    target) and write the run folder with the weights and their card; 0 when it completed or stopped.

    ``overrides`` are dotted-path changes to the target (the shared ``--epochs``, ``--device``,
    ``--seed``)."""
    parsed = Strategy.parse(strategy)
    if config in RECIPES:
        cfg = suggested_target(config)
    else:
        cfg = load_config_arg(config)
    if data_file is not None:  # the learner's own data file (``--data``)
        # pretrained CNN weights read the image size of the data they were made for: images of
        # another size are resized to it (for every strategy, so scratch is compared on the same data)
        shape = config_info(cfg).input_shape
        side = shape[1] if len(shape) == 3 and shape[1] == shape[2] else None
        cfg = use_data_file(cfg, data_file, task, log=lambda line: print(line, file=sys.stderr), image_side=side)
    if overrides:
        cfg = cfg.with_changes(overrides)
    if parsed.uses_pretrained and pretrained is None:
        raise FinetuneError(f"--strategy {parsed} needs --pretrained NAME_OR_FILE (shipped: {', '.join(RECIPES)})")
    source = resolve_source(pretrained) if parsed.uses_pretrained else None
    plan = Plan.make(parsed, parse_budget(labels_per_class), backbone_lr_scale)
    cfg = parse_config_here(cfg)  # a device missing here is refused before anything trains
    folder = check_out_dir(out, overwrite)
    trainer = FinetuneTrainer(cfg, plan, source)  # every check (weights, budget, strategy) happens here
    if data_file is not None:
        for line in label_budget(trainer.dataset).sentences():
            print(f"  {line}", file=sys.stderr)
        print(f"  training on {trainer.labelled:,} labelled examples "
              f"({'all' if plan.labels_per_class is None else plan.labels_per_class} per class)"
              if trainer.classification else f"  training on {trainer.labelled:,} labelled sequences",
              file=sys.stderr)
    metric = "acc" if trainer.classification else "mae"
    for ev in trainer.run():
        if isinstance(ev, EpochEnd):
            print(f"epoch {ev.epoch}: train loss {ev.train_loss:.4f} val loss {ev.val_loss:.4f} "
                  f"val {metric} {ev.val_metric:.4f}", file=sys.stderr, flush=True)
    summary = trainer.summary()
    files = finetuned_files(cfg, summary, trainer.model.state_dict())
    write_run(folder, cfg, history_rows(trainer.result.history), summary, None, extra_files=files)
    print(json.dumps(summary, indent=2))
    return 0 if summary["status"] in ("completed", "stopped") else 1
