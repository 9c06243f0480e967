"""Resource limits that protect a shared server from one experiment.

The engine enforces these (validation, builder, store), not only the widgets, so a
config arriving by URL, upload or CLI meets the same bounds. Each limit can be raised
or lowered with an environment variable, e.g. ``BIGMODEL_MAX_EPOCHS=500``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limits:
    max_epochs: int = 100
    max_train_size: int = 60_000
    max_val_size: int = 20_000
    max_params: int = 5_000_000
    max_channels: int = 512
    max_units: int = 4096
    max_conv_blocks: int = 8
    max_dense_layers: int = 6
    max_rnn_layers: int = 4
    max_batch_size: int = 4096
    max_seq_len: int = 1000
    max_runs_per_session: int = 50
    max_config_bytes: int = 64_000
    max_upload_bytes: int = 20_000_000
    # a learner's own dataset (data/uploads): checked before anything is unpacked or decoded
    max_archive_members: int = 20_000  # files and folders in a .zip (or arrays in an .npz)
    max_unpacked_bytes: int = 100_000_000  # all members together, once decompressed
    max_image_pixels: int = 20_000_000  # one image's width x height, read from its header before decoding
    max_upload_samples: int = 50_000  # images or sequences in one file
    max_csv_rows: int = 200_000
    max_upload_classes: int = 200
    max_seq_features: int = 256  # feature columns of a long-format sequence CSV
    max_datasets_per_owner: int = 20  # uploaded datasets one workspace keeps
    max_concurrent_jobs: int = max(1, (os.cpu_count() or 2) // 2)
    threads_per_job: int = max(1, (os.cpu_count() or 2) // max(1, (os.cpu_count() or 2) // 2))
    idle_stop_seconds: float = 120.0


def current_limits() -> Limits:
    """Limits with any ``BIGMODEL_<NAME>`` environment overrides applied."""
    overrides: dict[str, float | int] = {}
    for f in fields(Limits):
        raw = os.environ.get(f"BIGMODEL_{f.name.upper()}")
        if raw is None:
            continue
        kind = float if f.type in (float, "float") else int
        try:
            value = kind(raw)
        except ValueError as exc:
            raise ValueError(f"BIGMODEL_{f.name.upper()}={raw!r} is not a number") from exc
        if value <= 0:
            raise ValueError(f"BIGMODEL_{f.name.upper()} must be positive, got {raw!r}")
        overrides[f.name] = value
    return Limits(**overrides)
