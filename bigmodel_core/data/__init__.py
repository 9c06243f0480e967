"""Datasets: every dataset the playground can train on, generated offline and deterministically.

Nothing is downloaded. The synthetic image sets are rendered from fonts shipped in
``assets/fonts`` (so they look the same on every machine) and from drawn geometric
shapes; the real handwritten digits are the 8x8 scans that scikit-learn installs with
itself. Randomness always comes from a ``torch.Generator`` seeded from
``(dataset name, split, seed)``; the global torch and numpy RNGs are never used or
touched. Each split has its own generator, so the validation set never depends on
``train_size``, which keeps comparisons between training runs fair.

One module per job:

- ``registry``: names, ``DatasetInfo``, ``build_dataset`` (cached), option checks;
- ``seeding``: the seeded generators and the small draws every generator uses;
- ``warps``, ``glyphs``, ``shapes``, ``sequences``, ``real_digits``: the generator families;
- ``augment``: random shifts and rotations during training;
- ``budgets``: label budgets (a stratified subset per class);
- ``uploads``: a learner's own files (image zips and npz, sequence CSV), checked, normalised,
  kept per owner and served by the registry under ``upload-<content hash>``.

The generator modules, ``seeding`` and ``augment`` import only the standard library,
torch, numpy, Pillow, scikit-learn and each other: the exported training scripts copy
their source.
"""

from .augment import augment_images
from .budgets import sample_indices_per_class
from .glyphs import DIGIT_CHARS, FONT_FILES, LETTER_CHARS
from .real_digits import REAL_DIGITS_SIZE
from .registry import (
    DATASET_NAMES,
    FONT_DIR,
    SEQ_LEN_RANGE,
    Dataset,
    DatasetError,
    DatasetInfo,
    build_dataset,
    clear_dataset_cache,
    dataset_info,
    is_upload_name,
)
from .shapes import SHAPE_NAMES

__all__ = [
    "DATASET_NAMES",
    "DIGIT_CHARS",
    "FONT_DIR",
    "FONT_FILES",
    "LETTER_CHARS",
    "REAL_DIGITS_SIZE",
    "SEQ_LEN_RANGE",
    "SHAPE_NAMES",
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "augment_images",
    "build_dataset",
    "clear_dataset_cache",
    "dataset_info",
    "is_upload_name",
    "sample_indices_per_class",
]
