"""An experiment config moved onto a learner's own data file (the CLI's ``--data FILE``).

The model keeps its design; its input size (channels and image size, or steps and features)
and its outputs (the number of classes, or one number) follow the file's dataset, as they do
for every dataset: the builder reads them from the DatasetInfo.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Literal

from bigmodel_core.data import build_dataset
from bigmodel_core.data.uploads import UploadedDataError, read_upload_file, serve_for_process

from .specs import ExperimentConfig


def use_data_file(cfg: ExperimentConfig, file: str | os.PathLike,
                  task: Literal["classification", "regression"] | None = None,
                  log: Callable[[str], None] | None = None) -> ExperimentConfig:
    """``cfg`` trained on the dataset in ``file`` (.zip, .npz or .csv), served for the rest of the process.

    Raises UploadedDataError for a file that cannot be used and ConfigError when the model cannot
    take that kind of data (a CNN on sequences); ``log`` gets plain sentences about the data.
    """
    data = read_upload_file(file, task=task)
    name = serve_for_process(data)
    moved = cfg.with_changes({"data.name": name, "data.image_size": None, "data.seq_len": None})
    if log is not None:
        d = moved.data
        built = build_dataset(name, train_size=d.train_size, val_size=d.val_size, seed=moved.seed)
        log(f"data: {name} from {data.source}")
        for note in (*data.notes, *built.notes):
            log(f"  {note}")
        log(f"  training on {len(built.y_train):,} samples, validating on {len(built.y_val):,}")
    return moved


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data FILE`` and ``--task`` on a CLI command (train, compare, finetune)."""
    parser.add_argument("--data", metavar="FILE", help="your own dataset: a .zip of class folders of images, an "
                                                       ".npz with arrays x and y, or a .csv of sequences")
    parser.add_argument("--task", choices=("classification", "regression"),
                        help="with a .csv --data: classify its labels (the default) or predict them as numbers")


def apply_data_arguments(cfg: ExperimentConfig, args: argparse.Namespace) -> ExperimentConfig:
    """``cfg`` on the ``--data`` file when one was given (what it did is told on stderr), else ``cfg``."""
    if getattr(args, "data", None) is None:
        if getattr(args, "task", None) is not None:
            raise UploadedDataError("--task goes with --data FILE")
        return cfg
    return use_data_file(cfg, args.data, args.task, log=lambda line: print(line, file=sys.stderr))
