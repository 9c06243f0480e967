"""An experiment config moved onto a learner's own data file (the CLI's ``--data FILE``).

The model keeps its design; its input size (channels and image size, or steps and features)
and its outputs (the number of classes, or one number) follow the file's dataset, as they do
for every dataset: the builder reads them from the DatasetInfo.
"""

from __future__ import annotations

import os
from typing import Callable, Literal

from bigmodel_core.data import build_dataset
from bigmodel_core.data.uploads import fit_images, read_upload_file, serve_for_process

from .specs import ExperimentConfig


def use_data_file(cfg: ExperimentConfig, file: str | os.PathLike,
                  task: Literal["classification", "regression"] | None = None,
                  log: Callable[[str], None] | None = None, image_side: int | None = None) -> ExperimentConfig:
    """``cfg`` trained on the dataset in ``file`` (.zip, .npz or .csv), served for the rest of the process.

    ``image_side``: resize images to that side first (pretrained weights read one image size).

    Raises UploadedDataError for a file that cannot be used and ConfigError when the model cannot
    take that kind of data (a CNN on sequences); ``log`` gets plain sentences about the data.
    """
    data = read_upload_file(file, task=task)
    if image_side is not None and data.kind == "image":
        data = fit_images(data, image_side)
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
