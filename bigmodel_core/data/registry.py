"""Dataset registry: every dataset the playground can train on.

This module owns the list of datasets (``DATASET_NAMES``), their metadata
(``DatasetInfo``) and how each one is built (``build_dataset``, cached). The generators
themselves live one family per module beside it (glyphs, shapes, sequences,
real_digits). A learner's own data (``data/uploads``) is added while the process runs with
:func:`add_dataset` under a name ``upload-<16 hex>`` and served by the same functions; it is
not in ``DATASET_NAMES``, which lists the built-in sets.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from .glyphs import DIGIT_CHARS, FONT_FILES, LETTER_CHARS, glyph_templates, sample_glyphs
from .real_digits import REAL_DIGITS_SIZE, as_images, load_sklearn_digits, split_real_digits
from .seeding import split_samples
from .sequences import sample_adding_problem, sample_sine_wave
from .shapes import SHAPE_NAMES, sample_shapes, shape_templates
from .warps import OUT_SIZE

FONT_DIR = Path(__file__).resolve().parents[2] / "assets" / "fonts"
SEQ_LEN_RANGE = (5, 1000)
# An uploaded dataset is named by its content: "upload-" and 16 hex digits of a sha256.
UPLOAD_NAME = re.compile(r"upload-[0-9a-f]{16}\Z")  # \Z, not $: $ also matches before a final newline


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset looks like, without building it."""

    name: str
    kind: Literal["image", "sequence"]
    task: Literal["classification", "regression"]
    input_shape: tuple[int, ...]  # (C, H, W) for images, (T, F) for sequences
    num_outputs: int  # classes for classification, 1 for regression
    class_names: tuple[str, ...]  # () for regression
    description: str  # one or two sentences for learners
    max_size: int | None  # total samples available, None = unlimited


@dataclass(frozen=True)
class Dataset:
    """A built dataset: train and validation tensors plus their description.

    ``x_*`` are float32 (N x C x H x W or N x T x F); ``y_*`` are int64 labels of shape
    (N,) for classification and float32 of shape (N, 1) for regression. The tensors may
    be shared with the build cache: treat them as read-only.
    """

    info: DatasetInfo
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    # plain-text sentences about how the data was taken (an uploaded set capped to what it holds)
    notes: tuple[str, ...] = ()


class DatasetError(ValueError):
    """A dataset was asked for by a wrong name or with invalid options."""


@dataclass(frozen=True)
class _Params:
    """Resolved optional parameters (defaults filled in)."""

    image_size: int | None = None
    seq_len: int | None = None


# --------------------------------------------------------------------------
# Builders: (name, train_size, val_size, seed, params) -> x_train, y_train, x_val, y_val
# --------------------------------------------------------------------------

# Rendering templates is the slow part (Pillow), so each is drawn once per process.
_glyph_templates = functools.lru_cache(maxsize=4)(glyph_templates)
_shape_templates = functools.lru_cache(maxsize=1)(shape_templates)
_sklearn_digits = functools.lru_cache(maxsize=1)(load_sklearn_digits)

# A builder returns x_train, y_train, x_val, y_val, and may add a tuple of notes as a fifth item.
_Builder = Callable[[str, int, int, int, _Params], tuple]


def _glyphs(chars: str) -> _Builder:
    def build(name: str, train_size: int, val_size: int, seed: int, params: _Params) -> tuple[torch.Tensor, ...]:
        templates = _glyph_templates(chars, FONT_DIR)
        return split_samples(lambda n, gen: sample_glyphs(templates, n, gen), name, train_size, val_size, seed)

    return build


def _build_shapes(name: str, train_size: int, val_size: int, seed: int, params: _Params) -> tuple[torch.Tensor, ...]:
    templates = _shape_templates()
    return split_samples(lambda n, gen: sample_shapes(templates, n, gen), name, train_size, val_size, seed)


def _sequences(sampler: Callable[[int, torch.Generator, int], tuple[torch.Tensor, torch.Tensor]]) -> _Builder:
    def build(name: str, train_size: int, val_size: int, seed: int, params: _Params) -> tuple[torch.Tensor, ...]:
        assert params.seq_len is not None
        seq_len = params.seq_len
        return split_samples(lambda n, gen: sampler(n, gen, seq_len), name, train_size, val_size, seed)

    return build


def _build_handwritten_digits(
    name: str, train_size: int, val_size: int, seed: int, params: _Params
) -> tuple[torch.Tensor, ...]:
    assert params.image_size is not None
    x_train, y_train, x_val, y_val = split_real_digits(name, train_size, val_size, seed, _sklearn_digits())
    return as_images(x_train, params.image_size), y_train, as_images(x_val, params.image_size), y_val


def _build_sequential_digits(
    name: str, train_size: int, val_size: int, seed: int, params: _Params
) -> tuple[torch.Tensor, ...]:
    # An 8x8 image read top to bottom: 8 time steps of 8 pixel features.
    return split_real_digits(name, train_size, val_size, seed, _sklearn_digits())


@dataclass(frozen=True)
class _Entry:
    builder: _Builder
    kind: Literal["image", "sequence"]
    task: Literal["classification", "regression"]
    class_names: tuple[str, ...]
    description: str
    input_shape: Callable[[_Params], tuple[int, ...]]
    max_size: int | None = None
    # Allowed image_size values, the first being the default; () = not accepted.
    image_sizes: tuple[int, ...] = ()
    default_seq_len: int | None = None  # None = seq_len not accepted


_DIGIT_NAMES = tuple(DIGIT_CHARS)

_REGISTRY: dict[str, _Entry] = {
    "synthetic_digits": _Entry(
        builder=_glyphs(DIGIT_CHARS),
        kind="image",
        task="classification",
        class_names=_DIGIT_NAMES,
        description="Printed digits 0-9 rendered from three fonts in four weights, randomly "
        "rotated, scaled, sheared and shifted, with noise. Generated on the fly, so any size works.",
        input_shape=lambda p: (1, OUT_SIZE, OUT_SIZE),
    ),
    "shapes": _Entry(
        builder=_build_shapes,
        kind="image",
        task="classification",
        class_names=SHAPE_NAMES,
        description="Eight geometric shapes (circle, square, triangle, cross, star, crescent, arrow, "
        "heart), filled or outlined, at random size, position and rotation, with noise.",
        input_shape=lambda p: (1, OUT_SIZE, OUT_SIZE),
    ),
    "handwritten_digits": _Entry(
        builder=_build_handwritten_digits,
        kind="image",
        task="classification",
        class_names=_DIGIT_NAMES,
        description="1,797 real handwritten digits (8x8 scans shipped with scikit-learn), "
        "upsampled to 28x28 by default or kept at their native 8x8.",
        input_shape=lambda p: (1, p.image_size or 28, p.image_size or 28),
        max_size=REAL_DIGITS_SIZE,
        image_sizes=(28, 8),
    ),
    "sine_wave": _Entry(
        builder=_sequences(sample_sine_wave),
        kind="sequence",
        task="regression",
        class_names=(),
        description="Forecasting: given the last T noisy steps of a sine wave with random "
        "frequency, phase and amplitude, predict the next value.",
        input_shape=lambda p: (p.seq_len or 40, 1),
        default_seq_len=40,
    ),
    "adding_problem": _Entry(
        builder=_sequences(sample_adding_problem),
        kind="sequence",
        task="regression",
        class_names=(),
        description="The adding problem: T random numbers, two of them marked (one in each half); "
        "output their sum. Long sequences test whether a model can remember across many steps.",
        input_shape=lambda p: (p.seq_len or 50, 2),
        default_seq_len=50,
    ),
    "sequential_digits": _Entry(
        builder=_build_sequential_digits,
        kind="sequence",
        task="classification",
        class_names=_DIGIT_NAMES,
        description="The 1,797 real 8x8 handwritten digits read one row at a time: a sequence "
        "of 8 steps with 8 pixel values each, classified after the last row.",
        input_shape=lambda p: (8, 8),
        max_size=REAL_DIGITS_SIZE,
    ),
    "synthetic_letters": _Entry(
        builder=_glyphs(LETTER_CHARS),
        kind="image",
        task="classification",
        class_names=tuple(LETTER_CHARS),
        description="Capital letters A-Z rendered exactly like synthetic_digits: a related task "
        "to pretrain on before transferring to digits.",
        input_shape=lambda p: (1, OUT_SIZE, OUT_SIZE),
    ),
}

DATASET_NAMES: tuple[str, ...] = tuple(_REGISTRY)

# Datasets added while the process runs (uploads), by name; never one of DATASET_NAMES.
_ADDED: dict[str, _Entry] = {}


def is_upload_name(name: object) -> bool:
    """Whether ``name`` has the form of an uploaded dataset's name (``upload-`` and 16 hex digits)."""
    return isinstance(name, str) and bool(UPLOAD_NAME.match(name))


def add_dataset(name: str, *, kind: Literal["image", "sequence"], task: Literal["classification", "regression"],
                class_names: tuple[str, ...], description: str, input_shape: tuple[int, ...],
                builder: _Builder) -> None:
    """Serve an uploaded dataset under ``name`` from now on (again: replaces the earlier entry).

    ``builder(name, train_size, val_size, seed, params)`` returns the four tensors and a tuple
    of notes. ``train_size`` and ``val_size`` are caps for such a set (its ``max_size`` is None;
    the notes say what was used). Its names are content hashes, so an entry added again under
    the same name holds the same data and the build cache stays valid.
    """
    if not is_upload_name(name):
        raise DatasetError(f"{name!r} is not a name for an uploaded dataset (upload- and 16 hex digits)")
    shape = tuple(input_shape)
    _ADDED[name] = _Entry(builder=builder, kind=kind, task=task, class_names=tuple(class_names),
                          description=description, input_shape=lambda p: shape)


def remove_dataset(name: str) -> None:
    """Stop serving the uploaded dataset ``name`` (nothing happens if it is not served)."""
    _ADDED.pop(name, None)


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _entry(name: str) -> _Entry:
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    if isinstance(name, str) and name in _ADDED:
        return _ADDED[name]
    if is_upload_name(name):
        raise DatasetError(f"the uploaded dataset {name} is not loaded here; upload its file again, or open "
                           "the stored run that keeps it")
    raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")


def as_int(value: object, what: str) -> int:
    """``value`` as an int (bools refused), else DatasetError naming ``what``."""
    if isinstance(value, bool):
        raise DatasetError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise DatasetError(f"{what} must be an integer, got {value!r}") from None


def _resolve_params(name: str, entry: _Entry, image_size: int | None, seq_len: int | None) -> _Params:
    """Check the optional parameters against what ``name`` accepts; fill defaults."""
    if image_size is not None:
        if not entry.image_sizes:
            takers = [n for n, e in _REGISTRY.items() if e.image_sizes]
            raise DatasetError(
                f"image_size is not a parameter of {name!r}; it is only accepted by "
                + ", ".join(f"{n} ({' or '.join(map(str, _REGISTRY[n].image_sizes))})" for n in takers)
            )
        image_size = as_int(image_size, "image_size")
        if image_size not in entry.image_sizes:
            allowed = " or ".join(str(s) for s in sorted(entry.image_sizes))
            raise DatasetError(f"image_size for {name} must be {allowed}, got {image_size}")
    elif entry.image_sizes:
        image_size = entry.image_sizes[0]

    low, high = SEQ_LEN_RANGE
    if seq_len is not None:
        if entry.default_seq_len is None:
            takers = ", ".join(n for n, e in _REGISTRY.items() if e.default_seq_len is not None)
            raise DatasetError(
                f"seq_len is not a parameter of {name!r}; it is only accepted by {takers} ({low} to {high})"
            )
        seq_len = as_int(seq_len, "seq_len")
        if not low <= seq_len <= high:
            raise DatasetError(f"seq_len for {name} must be between {low} and {high}, got {seq_len}")
    else:
        seq_len = entry.default_seq_len
    return _Params(image_size=image_size, seq_len=seq_len)


def _make_info(name: str, entry: _Entry, params: _Params) -> DatasetInfo:
    return DatasetInfo(
        name=name,
        kind=entry.kind,
        task=entry.task,
        input_shape=entry.input_shape(params),
        num_outputs=len(entry.class_names) if entry.task == "classification" else 1,
        class_names=entry.class_names,
        description=entry.description,
        max_size=entry.max_size,
    )


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def dataset_info(name: str, *, image_size: int | None = None, seq_len: int | None = None) -> DatasetInfo:
    """Describe dataset ``name`` (with these options) without building anything.

    Raises DatasetError for an unknown name or an option the dataset does not take or
    allow.
    """
    entry = _entry(name)
    return _make_info(name, entry, _resolve_params(name, entry, image_size, seq_len))


def build_dataset(
    name: str,
    *,
    train_size: int,
    val_size: int,
    seed: int,
    image_size: int | None = None,
    seq_len: int | None = None,
) -> Dataset:
    """Build (or fetch from the cache) dataset ``name``.

    The result depends only on the arguments: the same arguments give bit-identical
    tensors, a different seed gives different data. Results are kept in a small LRU cache
    (8 entries), so the returned tensors are shared between callers: treat them as
    read-only (clone before modifying them in place).

    Raises DatasetError for an unknown name, sizes below 1, sizes beyond what a real
    dataset holds, or options the dataset does not take.
    """
    entry = _entry(name)
    params = _resolve_params(name, entry, image_size, seq_len)
    train_size = as_int(train_size, "train_size")
    val_size = as_int(val_size, "val_size")
    seed = as_int(seed, "seed")
    if train_size < 1 or val_size < 1:
        raise DatasetError(
            f"train_size and val_size must both be at least 1, got train_size={train_size}, val_size={val_size}"
        )
    if entry.max_size is not None and train_size + val_size > entry.max_size:
        raise DatasetError(
            f"{name} has only {entry.max_size:,} samples, but train_size + val_size = "
            f"{train_size:,} + {val_size:,} = {train_size + val_size:,}; "
            f"choose sizes that add up to at most {entry.max_size:,}"
        )
    return _build_cached(name, train_size, val_size, seed, params)


@functools.lru_cache(maxsize=8)
def _build_cached(name: str, train_size: int, val_size: int, seed: int, params: _Params) -> Dataset:
    entry = _entry(name)
    x_train, y_train, x_val, y_val, *rest = entry.builder(name, train_size, val_size, seed, params)
    return Dataset(info=_make_info(name, entry, params), x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                   notes=tuple(rest[0]) if rest else ())


def clear_dataset_cache() -> None:
    """Forget every cached dataset (and rendered template), e.g. to free memory."""
    _build_cached.cache_clear()
    _glyph_templates.cache_clear()
    _shape_templates.cache_clear()


__all__ = ["DATASET_NAMES", "FONT_DIR", "FONT_FILES", "UPLOAD_NAME", "Dataset", "DatasetError", "DatasetInfo",
           "add_dataset", "as_int", "build_dataset", "clear_dataset_cache", "dataset_info", "is_upload_name",
           "remove_dataset"]  # fmt: skip
