"""What every part of fine-tuning shares: its errors, its defaults, and a config's dataset info."""

from __future__ import annotations

from bigmodel_core.config.specs import ExperimentConfig
from bigmodel_core.data import DatasetInfo, dataset_info

DEFAULT_BACKBONE_LR_SCALE = 0.1
DEFAULT_EPOCH_SAMPLES = 512
CLASSIFIER = "classifier."  # the new head's parameter prefix: replaced when fine-tuning, never loaded


class FinetuneError(ValueError):
    """A fine-tuning request that cannot be honoured; the message says what and why."""


class UploadError(FinetuneError):
    """Weights that were refused (format, size, integrity or shape)."""


def config_info(config: ExperimentConfig) -> DatasetInfo:
    """The info of the dataset ``config`` trains on."""
    d = config.data
    return dataset_info(d.name, image_size=d.image_size, seq_len=d.seq_len)
