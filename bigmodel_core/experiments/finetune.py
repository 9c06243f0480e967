"""Transfer learning: pretrained weights with cards, freeze strategies, label budgets, safe uploads.

What this module owns:

- **Pretrained assets** in ``assets/pretrained/``: ``NAME.safetensors`` plus ``NAME.json``
  (the card: config, training data, metrics, sha256, reproduce command, suggested target).
  ``RECIPES`` says how each one is made; ``pretrain(NAME)`` remakes it bit for bit on CPU
  (fixed seed, fixed torch thread count). ``load_pretrained`` checks the sha256 first.
- **Strategies** (``Strategy.parse``): ``head`` (frozen feature extractor + a new linear
  head, a linear probe), ``last:N`` (also train the last N backbone blocks), ``full`` (train
  everything, the backbone at ``backbone_lr_scale`` times the head's learning rate) and
  ``scratch`` (the same network from its seeded random init: the baseline). Frozen blocks
  are kept in eval mode, so their BatchNorm running statistics never move and their
  dropout is off.
- **Label budgets**: K labelled examples per class (K examples in all for regression),
  repeated within an epoch so that every strategy at a budget takes the same steps.
- **Uploads**: only safetensors, size-checked and header-checked before parsing; never
  pickle (``torch.load`` is not called anywhere here). Tensors are then checked shape by
  shape against the model, and the first mismatch is named.
- ``FinetuneTrainer``: a Trainer built from (target config, pretrained weights, plan), so
  the job pool runs fine-tuning like any other job; the CLI's ``pretrain`` and ``finetune``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import platform
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from bigmodel_core.config.presets import ASSETS, load_config_arg
from bigmodel_core.config.specs import ExperimentConfig, parse_config, parse_config_here
from bigmodel_core.data import Dataset, DatasetError, DatasetInfo, dataset_info, sample_indices_per_class
from bigmodel_core.limits import current_limits
from bigmodel_core.nn.models import ConvNet, SeqNet, build_model
from bigmodel_core.safejson import JSONInputError, loads, number_arg
from bigmodel_core.training.store import (
    atomic_write_bytes,
    atomic_write_text,
    check_out_dir,
    history_rows,
    save_weights_bytes,
    write_run,
)
from bigmodel_core.training.trainer import Callback, Control, EpochEnd, ParamGroup, Trainer, load_data

PRETRAINED_DIR = ASSETS / "pretrained"
# Pretraining pins torch's intra-op threads: CPU convolution backward splits its reductions by
# thread count (1, 2 and 3 threads give three different CNNs), and the shipped weights must not
# depend on the machine's cores. One thread also never stalls on a busy shared machine.
PRETRAIN_THREADS = 1
DEFAULT_BACKBONE_LR_SCALE = 0.1
DEFAULT_EPOCH_SAMPLES = 512
CLASSIFIER = "classifier."
_NAME = re.compile(r"^[a-z0-9_]{1,40}$")


class FinetuneError(ValueError):
    """A fine-tuning request that cannot be honoured; the message says what and why."""


class UploadError(FinetuneError):
    """Weights that were refused (format, size, integrity or shape)."""


# --------------------------------------------------------------------------------------------
# Recipes: how each shipped pretrained model is made, and what it is meant to transfer to
# --------------------------------------------------------------------------------------------

_CNN = {"family": "cnn",
        "conv": [{"channels": 16, "kernel": 3, "padding": "same", "activation": "relu", "batchnorm": True,
                  "pool": "max"},
                 {"channels": 32, "kernel": 3, "padding": "same", "activation": "relu", "batchnorm": True,
                  "pool": "max"}],
        "dense": [{"units": 64, "activation": "relu"}]}
_LSTM = {"family": "lstm", "hidden": 32, "layers": 1, "dense": [{"units": 32, "activation": "relu"}]}


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    description: str
    config: dict[str, Any]  # the pretraining ExperimentConfig (device cpu: the bit-identical claim is CPU's)
    target: dict[str, Any]  # the suggested target ExperimentConfig (same model, another dataset)
    target_title: str
    lesson: str  # what a learner should see on the target, and why
    strategy: str = "head"
    labels_per_class: int = 5


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe(
        name="letters_cnn",
        title="CNN pretrained on printed capital letters",
        description="Two conv blocks (16 and 32 channels, BatchNorm, max pool) and a dense layer of 64, "
                    "trained on 15,000 synthetic_letters (A-Z).",
        config={"seed": 0, "data": {"name": "synthetic_letters", "train_size": 15000, "val_size": 2000},
                "model": _CNN, "optimizer": {"name": "adam", "lr": 0.002},
                "training": {"epochs": 6, "batch_size": 64, "device": "cpu"}},
        target={"seed": 0, "data": {"name": "synthetic_digits", "train_size": 2000, "val_size": 1000},
                "model": _CNN, "optimizer": {"name": "adam", "lr": 0.003},
                "training": {"epochs": 8, "batch_size": 32, "device": "auto"}},
        target_title="New classes, same domain: printed digits 0-9 with a few labels",
        lesson="Letters and digits are drawn with the same fonts, strokes and noise, so edge and stroke "
               "detectors learned on 26 letters also separate 10 digits. With 5 labelled digits per "
               "class a new linear head on the frozen letter features beats the same network trained "
               "from scratch by a wide margin; the gap closes as labels grow.",
    ),
    Recipe(
        name="digits_cnn",
        title="CNN pretrained on printed digits",
        description="The same CNN as letters_cnn, trained on 15,000 synthetic_digits (printed 0-9 from fonts).",
        config={"seed": 0, "data": {"name": "synthetic_digits", "train_size": 15000, "val_size": 2000},
                "model": _CNN, "optimizer": {"name": "adam", "lr": 0.002},
                "training": {"epochs": 6, "batch_size": 64, "device": "cpu"}},
        target={"seed": 0, "data": {"name": "handwritten_digits", "image_size": 28, "train_size": 1297,
                                    "val_size": 500},
                "model": _CNN, "optimizer": {"name": "adam", "lr": 0.003},
                "training": {"epochs": 8, "batch_size": 32, "device": "auto"}},
        target_title="Domain shift: printed digits to real handwritten digits",
        lesson="Same ten classes, different look: the real digits are 8x8 scans blown up to 28x28 (blurry, "
               "thick, no noise) while the pretrained features were tuned to sharp printed strokes. The "
               "real digits are also easy: a small network learns them from scratch with few labels, so "
               "transfer helps less here, and can lose. That is a result too: pretraining pays off when the "
               "source looks like the target and the target is hard to learn alone.",
    ),
    Recipe(
        name="adding_lstm",
        title="LSTM pretrained on the adding problem (50 steps)",
        description="One LSTM layer of 32 units and a dense layer of 32, trained on 8,000 adding-problem "
                    "sequences of 50 steps: remember the two marked numbers and output their sum.",
        config={"seed": 0, "data": {"name": "adding_problem", "train_size": 8000, "val_size": 1000, "seq_len": 50},
                "model": _LSTM, "optimizer": {"name": "adam", "lr": 0.003},
                "regularization": {"grad_clip": 1.0},
                "training": {"epochs": 12, "batch_size": 64, "device": "cpu"}},
        target={"seed": 0, "data": {"name": "adding_problem", "train_size": 2000, "val_size": 500, "seq_len": 100},
                "model": _LSTM, "optimizer": {"name": "adam", "lr": 0.003},
                "regularization": {"grad_clip": 1.0},
                "training": {"epochs": 8, "batch_size": 32, "device": "auto"}},
        target_title="Related task: the adding problem with sequences twice as long (100 steps)",
        lesson="An LSTM from scratch sits on the plateau of the adding problem (always answering about 1.0, "
               "mean absolute error about 0.33) until it has seen thousands of examples. The pretrained LSTM "
               "already knows how to store a marked number in its cell and keep it: with a few dozen labelled "
               "sequences a new linear head reads the sum off its final state.",
        labels_per_class=50,
    ),
)}


def pretrained_names() -> list[str]:
    return list(RECIPES)


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise FinetuneError(f"unknown pretrained model {name!r}; choose one of: {', '.join(RECIPES)}")
    return RECIPES[name]


def weights_path(name: str, root: Path = PRETRAINED_DIR) -> Path:
    return Path(root) / f"{_recipe(name).name}.safetensors"


def card_path(name: str, root: Path = PRETRAINED_DIR) -> Path:
    return Path(root) / f"{_recipe(name).name}.json"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_card(name: str, root: Path = PRETRAINED_DIR) -> dict[str, Any]:
    path = card_path(name, root)
    if not path.is_file():
        raise FinetuneError(f"the card {path} is missing; recreate it with: python -m bigmodel_core pretrain {name}")
    return json.loads(path.read_text())


def suggested_target(name: str) -> ExperimentConfig:
    return parse_config(_recipe(name).target)


@dataclass(frozen=True)
class Source:
    """Pretrained weights to start from: a shipped card's or an uploaded file's."""

    label: str  # "letters_cnn" or "my_weights.safetensors (upload)"
    state: dict[str, torch.Tensor]
    sha256: str
    card: dict[str, Any] | None = None  # shipped weights only

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.label, "sha256": self.sha256}
        if self.card is not None:
            out["trained_on"] = self.card.get("trained_on")
        return out


def load_pretrained(name: str, root: Path = PRETRAINED_DIR) -> Source:
    """The shipped weights of ``name``, after checking their sha256 against the card."""
    card = load_card(name, root)
    path = weights_path(name, root)
    if not path.is_file():
        raise FinetuneError(f"{path} is missing; recreate it with: python -m bigmodel_core pretrain {name}")
    data = path.read_bytes()
    digest = sha256_bytes(data)
    if digest != card.get("sha256"):
        raise FinetuneError(f"{path.name} does not match its card: sha256 {digest[:12]}... but the card says "
                            f"{str(card.get('sha256'))[:12]}...; the file was changed or damaged. Recreate it "
                            f"with: python -m bigmodel_core pretrain {name}")
    state = read_safetensors(data, path.name, limit=None)
    cfg = parse_config(card["config"])
    check_weights(build_model(cfg.model, _info(cfg)), state, keep_classifier=True)
    return Source(label=name, state=state, sha256=digest, card=card)


# --------------------------------------------------------------------------------------------
# Reading weights safely
# --------------------------------------------------------------------------------------------

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar", ".npy", ".npz", ".h5")
_CONVERT = ("only .safetensors files are accepted, because loading a pickle can run any code hidden in it; "
            "convert it where you trust it with: from safetensors.torch import save_file; "
            "save_file(model.state_dict(), 'weights.safetensors')")


def _looks_like_pickle(data: bytes) -> str | None:
    if data[:4] == b"PK\x03\x04":
        return "a zip archive (what torch.save writes: a pickle inside)"
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "a Python pickle"
    return None


MAX_HEADER_BYTES = 1_000_000  # a header of 10,000 tensors fits; our largest model has a few dozen
MAX_TENSORS = 1_000
MAX_KEY_CHARS = 300


def _precheck(data: bytes, name: str, max_elements: int | None) -> None:
    """Refuse a file whose header would be costly to parse or to load, before anything is built.

    Counted on the raw bytes first (header length, number of entries), so a header of hundreds of
    thousands of tiny tensors is refused without decoding it; then the (now small) header is read
    with the bounded JSON rule and each entry's key, dtype and shape checked, and the total number
    of elements compared with what the target model holds. safetensors itself then does the loading
    (and its own offset checks)."""
    if len(data) < 8:
        raise UploadError(f"{name} is {len(data)} bytes: too short to be a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise UploadError(f"{name} is not a valid safetensors file: " + (  # a JSON header follows the size
            f"its header claims {n:,} bytes but only {len(data) - 8:,} follow (truncated)" if data[8:9] == b"{" else
            "it is not safetensors at all (that starts with the size of a header; this starts with other data, "
            "such as text)"))
    if n > MAX_HEADER_BYTES:
        raise UploadError(f"{name}: its header is {n:,} bytes; weights for these models need far less "
                          f"(limit {MAX_HEADER_BYTES:,})")
    raw = data[8:8 + n]
    entries = raw.count(b'"data_offsets"')
    if entries > MAX_TENSORS:
        raise UploadError(f"{name} lists {entries:,} tensors; the limit is {MAX_TENSORS:,} (these models have "
                          "a few dozen)")
    if not raw.lstrip().startswith(b"{"):
        raise UploadError(f"{name} is not a valid safetensors file: the header is not a JSON object")
    try:
        header = loads(raw, "its header")
    except JSONInputError as exc:
        raise UploadError(f"{name} is not a valid safetensors file: {exc}") from None
    if not isinstance(header, dict):
        raise UploadError(f"{name} is not a valid safetensors file: the header is not a JSON object")
    total, end_max, body = 0, 0, len(data) - 8 - n
    for key, entry in header.items():
        shown = key if len(key) <= 60 else key[:60] + f"... ({len(key):,} characters)"
        if len(key) > MAX_KEY_CHARS:
            raise UploadError(f"{name}: tensor name {shown!r} is longer than {MAX_KEY_CHARS} characters")
        if key == "__metadata__":
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
            raise UploadError(f"{name}: tensor {shown!r} has a malformed header entry")
        if entry.get("dtype") not in _DTYPE_BYTES:
            raise UploadError(f"{name}: tensor {shown!r} has unsupported dtype {str(entry.get('dtype'))[:20]!r}")
        shape = entry["shape"]
        if len(shape) > 8 or not all(isinstance(d, int) and 0 <= d <= 2**40 for d in shape):
            raise UploadError(f"{name}: tensor {shown!r} has a malformed shape")
        total += math.prod(shape)
        offsets = entry.get("data_offsets")
        if isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets):
            end_max = max(end_max, offsets[1])
        if end_max > body:
            raise UploadError(f"{name}: tensor {shown!r} points outside the file's {body:,} data bytes "
                              "(the file is truncated or corrupted)")
        if max_elements is not None and total > max_elements:
            raise UploadError(f"{name} holds more than {max_elements:,} numbers, more than this model can "
                              "take; they were saved from a different architecture")
    if end_max < body:
        raise UploadError(f"{name}: the file has {body - end_max:,} bytes after its last tensor "
                          "(corrupted, or two files joined)")


def read_safetensors(data: bytes, name: str = "the file", limit: int | None = -1,
                     max_elements: int | None = None) -> dict[str, torch.Tensor]:
    """Tensors from safetensors bytes, refusing anything else with a message that says why.

    ``limit`` is the size cap in bytes (-1: ``limits.max_upload_bytes``; None: no cap, for
    shipped assets); ``max_elements`` the most numbers the target model can take. Pickles and
    torch.save archives are refused by name and by content; nothing but the safetensors parser
    ever reads the tensor bytes, so no code in a file can run.
    """
    if limit == -1:
        limit = current_limits().max_upload_bytes
    if limit is not None and len(data) > limit:
        raise UploadError(f"{name} is {len(data):,} bytes; the upload limit is {limit:,} bytes")
    if name.lower().endswith(_PICKLE_SUFFIXES):
        raise UploadError(f"{name} has a pickle-based extension ({Path(name).suffix}); {_CONVERT}")
    kind = _looks_like_pickle(data)
    if kind:
        raise UploadError(f"{name} is {kind}, not safetensors; {_CONVERT}")
    _precheck(data, name, max_elements)
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError, TypeError, OverflowError) as exc:
        raise UploadError(f"{name} is not a valid safetensors file: {str(exc)[:300]}") from None
    if not tensors:
        raise UploadError(f"{name} holds no tensors")
    return tensors


def accept_upload(data: bytes, name: str, arch: ExperimentConfig) -> Source:
    """Uploaded weights, checked in order (size, format, header, then every tensor's shape against
    ``arch``'s model); raises UploadError with the first problem and keeps nothing."""
    model = build_model(arch.model, _info(arch))
    # a new classifier may have more outputs than this one: allow the head's input width times 1,000
    head = max((t.shape[-1] for k, t in model.state_dict().items() if k.startswith(CLASSIFIER) and t.dim() == 2),
               default=0)
    # no model here may exceed max_params, so more numbers than that (or than this model) cannot fit;
    # a mismatch below the cap is left to check_weights, which names the tensor and both shapes
    budget = max(sum(t.numel() for t in model.state_dict().values()) + 1_001 * head, current_limits().max_params)
    tensors = read_safetensors(data, name, max_elements=budget)
    check_weights(model, tensors)
    return Source(f"{name} (upload)", tensors, sha256_bytes(data))


def _shape(t: torch.Tensor | torch.Size | tuple[int, ...]) -> str:
    dims = tuple(t.shape) if isinstance(t, torch.Tensor) else tuple(t)
    return "x".join(map(str, dims)) if dims else "a scalar"


def check_weights(model: nn.Module, tensors: dict[str, torch.Tensor], keep_classifier: bool = False) -> None:
    """Raise UploadError naming the first tensor that does not fit ``model``.

    Tensors are checked in the model's own order. The classifier is replaced when fine-tuning,
    so unless ``keep_classifier`` its number of outputs may differ (its inputs must match) and
    it may be missing.
    """
    expected = model.state_dict()
    for key, want in expected.items():
        got = tensors.get(key)
        is_head = key.startswith(CLASSIFIER) and not keep_classifier
        if got is None:
            if is_head:
                continue
            raise UploadError(f"tensor {key!r} (shape {_shape(want)}) is missing from the weights; "
                              "they were saved from a different architecture")
        if want.is_floating_point() != got.is_floating_point():
            raise UploadError(f"tensor {key!r} has dtype {got.dtype}; this model needs {want.dtype}")
        if is_head and key.endswith("weight"):
            if got.dim() != 2 or got.shape[1] != want.shape[1]:
                raise UploadError(f"tensor {key!r} has shape {_shape(got)}; this model's classifier takes "
                                  f"{want.shape[1]} inputs (N x {want.shape[1]})")
            continue
        if is_head:
            if got.dim() != 1:
                raise UploadError(f"tensor {key!r} has shape {_shape(got)}; a classifier bias is a vector")
            continue
        if got.shape != want.shape:
            raise UploadError(f"tensor {key!r} has shape {_shape(got)}; this model needs {_shape(want)}")
    for key in tensors:
        if key not in expected:
            raise UploadError(f"the weights have a tensor {key!r} that this model does not have; "
                              "they were saved from a different architecture")
    check_values(tensors)


def check_values(tensors: dict[str, torch.Tensor]) -> None:
    """Refuse weights that are not numbers (NaN, inf) or statistics that cannot be (a negative
    BatchNorm running variance), naming the tensor: they would otherwise load and the run would
    "diverge" with a misleading hint about the learning rate."""
    for key, t in tensors.items():
        if not t.is_floating_point():
            continue
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise UploadError(f"tensor {key!r} has {bad:,} value(s) that are not finite numbers (NaN or "
                              "infinity); these weights cannot be used")
        if key.endswith("running_var") and bool((t < 0).any()):
            raise UploadError(f"tensor {key!r} is a BatchNorm running variance with negative values "
                              f"(smallest {float(t.min()):.3g}); a variance cannot be negative")


# --------------------------------------------------------------------------------------------
# Strategies: what trains, at which learning rate, and what stays in eval mode
# --------------------------------------------------------------------------------------------

STRATEGY_KINDS = ("head", "last", "full", "scratch")
STRATEGY_HELP = {
    "head": "frozen feature extractor + new linear head (linear probe)",
    "last": "new head + the last N backbone blocks trained",
    "full": "everything trained; the backbone at a lower learning rate than the new head",
    "scratch": "same network from random initial weights (the baseline)",
}


@dataclass(frozen=True)
class Strategy:
    kind: str
    n: int = 0  # last:N only

    @staticmethod
    def parse(text: str | Strategy) -> Strategy:
        if isinstance(text, Strategy):
            return text
        t = str(text).strip().lower()
        if t in ("head", "full", "scratch"):
            return Strategy(t)
        m = re.fullmatch(r"last:(\d+)", t)
        if m and int(m.group(1)) >= 1:
            return Strategy("last", int(m.group(1)))
        raise FinetuneError(f"unknown strategy {text!r}; choose head, last:N (N >= 1), full or scratch")

    def __str__(self) -> str:
        return f"last:{self.n}" if self.kind == "last" else self.kind

    @property
    def uses_pretrained(self) -> bool:
        return self.kind != "scratch"

    @property
    def label(self) -> str:
        return {"head": "head only (linear probe)", "last": f"last {self.n} block{'s' if self.n > 1 else ''} + head",
                "full": "full fine-tune", "scratch": "from scratch"}[self.kind]


@dataclass(frozen=True)
class Unit:
    """One backbone block as the learner sees it: a conv block, an RNN layer or a dense layer."""

    name: str
    module: str  # qualified module name


def backbone_units(model: nn.Module) -> list[Unit]:
    """The blocks before the classifier, input to output (``last:N`` counts from the end)."""
    units: list[Unit] = []
    if isinstance(model, ConvNet):
        units += [Unit(f"conv block {i + 1}", f"blocks.{i}") for i in range(len(model.blocks))]
    elif isinstance(model, SeqNet):
        units += [Unit(f"{model.family} layer {i + 1}", f"rnn.{i}") for i in range(len(model.rnn))]
    else:
        raise FinetuneError(f"fine-tuning works on the playground's ConvNet and SeqNet, not {type(model).__name__}")
    dense = [i for i, m in enumerate(model.head) if isinstance(m, nn.Linear)]
    units += [Unit(f"dense {model.head[i].out_features}", f"head.{i}") for i in dense]
    return units


class KeepFrozenInEval(Callback):
    """Frozen blocks stay in eval mode whenever the trainer puts the model in training mode:
    BatchNorm keeps its pretrained running statistics (and normalises with them) and dropout
    stays off, so a frozen block computes exactly what it did before fine-tuning."""

    def __init__(self, modules: list[str]):
        self.modules = modules

    def on_train_mode(self, trainer: Trainer) -> None:
        for name in self.modules:
            trainer.model.get_submodule(name).eval()


def frozen_modules(model: nn.Module, strategy: Strategy | str) -> list[str]:
    """The backbone blocks ``strategy`` freezes (module names)."""
    train = {u.module for u in trainable_units(model, Strategy.parse(strategy))}
    return [u.module for u in backbone_units(model) if u.module not in train]


def trainable_units(model: nn.Module, strategy: Strategy) -> list[Unit]:
    units = backbone_units(model)
    if strategy.kind == "last" and strategy.n > len(units):
        names = ", ".join(u.name for u in units)
        raise FinetuneError(f"last:{strategy.n}: this model has only {len(units)} backbone blocks ({names}); "
                            f"choose N from 1 to {len(units)}, or full")
    return {"head": [], "last": units[len(units) - strategy.n:] if strategy.n else [],
            "full": units, "scratch": units}[strategy.kind]


def apply_strategy(model: nn.Module, strategy: Strategy | str,
                   backbone_lr_scale: float = DEFAULT_BACKBONE_LR_SCALE) -> list[ParamGroup]:
    """Freeze what the strategy freezes and return the optimizer's parameter groups.

    Pretrained blocks that train get ``backbone_lr_scale`` times the learning rate (so large
    early gradients from the random new head do not wreck them); the new head gets 1x.
    """
    strategy = Strategy.parse(strategy)
    if not 0 < backbone_lr_scale <= 10:
        raise FinetuneError(f"backbone_lr_scale must be in (0, 10], got {backbone_lr_scale}")
    units = backbone_units(model)
    train = {u.module for u in trainable_units(model, strategy)}
    backbone: list[nn.Parameter] = []
    for unit in units:
        module = model.get_submodule(unit.module)
        on = unit.module in train
        for p in module.parameters():
            p.requires_grad_(on)
        if on:
            backbone += list(module.parameters())
        else:
            module.eval()  # and a trainer keeps it so (KeepFrozenInEval)
    head = list(model.classifier.parameters())
    for p in head:
        p.requires_grad_(True)
    if strategy.kind == "scratch":
        return [ParamGroup(backbone + head, 1.0, "all")]
    groups = [ParamGroup(head, 1.0, "new head")]
    if backbone:
        groups.insert(0, ParamGroup(backbone, backbone_lr_scale, "backbone"))
    return groups


@dataclass(frozen=True)
class LayerRow:
    block: str
    module: str
    params: int
    trainable: bool
    lr_scale: float | None  # None when frozen
    batchnorm: str  # "" | "eval: running stats frozen" | "train: batch stats, running stats update"


def layer_table(model: nn.Module, strategy: Strategy | str,
                backbone_lr_scale: float = DEFAULT_BACKBONE_LR_SCALE) -> list[LayerRow]:
    """Which blocks train and which are frozen under ``strategy`` (on a throwaway copy of the model)."""
    strategy = Strategy.parse(strategy)
    train = {u.module for u in trainable_units(model, strategy)}
    rows = []
    for unit in backbone_units(model):
        module = model.get_submodule(unit.module)
        on = unit.module in train
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
        bn = ("train: batch statistics, running stats update" if on else "eval: running stats frozen") if has_bn else ""
        scale = (1.0 if strategy.kind == "scratch" else backbone_lr_scale) if on else None
        rows.append(LayerRow(unit.name, unit.module, sum(p.numel() for p in module.parameters()), on, scale, bn))
    rows.append(LayerRow("new head (classifier)" if strategy.uses_pretrained else "classifier", "classifier",
                         sum(p.numel() for p in model.classifier.parameters()), True, 1.0, ""))
    return rows


# --------------------------------------------------------------------------------------------
# Building the fine-tune model and its labelled subset
# --------------------------------------------------------------------------------------------

def _info(config: ExperimentConfig) -> DatasetInfo:
    d = config.data
    return dataset_info(d.name, image_size=d.image_size, seq_len=d.seq_len)


def build_finetune_model(config: ExperimentConfig, info: DatasetInfo, source: Source | None,
                         strategy: Strategy) -> nn.Module:
    """The target model: seeded init (so every strategy shares the new head's initial weights),
    then the pretrained backbone loaded over it unless the strategy is ``scratch``."""
    model = build_model(config.model, info, seed=config.seed)
    if not strategy.uses_pretrained:
        return model
    if source is None:
        raise FinetuneError(f"strategy {strategy} needs pretrained weights; pick a pretrained model or upload some")
    check_weights(model, source.state)
    want = model.state_dict()
    backbone = {k: v.to(want[k].dtype) for k, v in source.state.items() if not k.startswith(CLASSIFIER)}
    missing, unexpected = model.load_state_dict(backbone, strict=False)
    assert all(k.startswith(CLASSIFIER) for k in missing) and not unexpected
    return model


def budget_unit(info: DatasetInfo) -> str:
    return "labels per class" if info.task == "classification" else "labelled sequences"


def budget_indices(dataset: Dataset, per_class: int | None, seed: int,
                   epoch_samples: int = DEFAULT_EPOCH_SAMPLES) -> torch.Tensor | None:
    """Training indices for a label budget, repeated to at least ``epoch_samples`` per epoch.

    ``per_class`` is labelled examples per class for classification and labelled examples in
    all for regression; None means every training example. A bigger budget contains every
    smaller one for the same seed. Repeating a tiny labelled set inside an epoch keeps the
    number of optimizer steps the same for every strategy at a budget without validating
    after every handful of steps.
    """
    y = dataset.y_train
    n = len(y)
    if per_class is None:
        base = torch.arange(n)
    elif per_class < 1:
        raise FinetuneError(f"labels per class must be at least 1, got {per_class}")
    elif dataset.info.task == "classification":
        try:
            base = sample_indices_per_class(y, per_class, seed)
        except DatasetError as exc:
            raise FinetuneError(f"label budget {per_class} per class: {exc}") from None
    else:
        if per_class > n:
            raise FinetuneError(f"label budget {per_class}: the training pool has only {n} examples")
        gen = torch.Generator().manual_seed(seed * 7919 + 17)
        base = torch.sort(torch.randperm(n, generator=gen)[:per_class]).values
    repeats = max(1, math.ceil(epoch_samples / len(base)))
    if per_class is None and repeats == 1:
        return None
    return base.repeat(repeats)


@dataclass(frozen=True)
class Plan:
    """How to fine-tune: strategy, label budget and the backbone's learning-rate scale."""

    strategy: Strategy
    labels_per_class: int | None = None  # None = all
    backbone_lr_scale: float = DEFAULT_BACKBONE_LR_SCALE
    epoch_samples: int = DEFAULT_EPOCH_SAMPLES

    @staticmethod
    def make(strategy: str | Strategy, labels_per_class: int | None = None,
             backbone_lr_scale: float = DEFAULT_BACKBONE_LR_SCALE,
             epoch_samples: int = DEFAULT_EPOCH_SAMPLES) -> Plan:
        return Plan(Strategy.parse(strategy), labels_per_class, backbone_lr_scale, epoch_samples)


class FinetuneTrainer(Trainer):
    """A Trainer whose model, parameter groups and training subset come from a fine-tune plan.

    Everything else (events, evaluation, stopping, determinism) is the plain Trainer's, so the
    same seed gives every strategy the same data order and the same new-head init.
    """

    def __init__(self, config: ExperimentConfig, plan: Plan, source: Source | None = None, *,
                 control: Control | None = None, dataset: Dataset | None = None):
        dataset = dataset if dataset is not None else load_data(config)
        model = build_finetune_model(config, dataset.info, source, plan.strategy)
        # the weights training starts from, for the before/after feature maps
        self.start_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        groups = apply_strategy(model, plan.strategy, plan.backbone_lr_scale)
        indices = budget_indices(dataset, plan.labels_per_class, config.seed, plan.epoch_samples)
        super().__init__(config, dataset=dataset, model=model, control=control, param_groups=groups,
                         train_indices=indices, callbacks=[KeepFrozenInEval(frozen_modules(model, plan.strategy))])
        self.plan = plan
        self.source = source if plan.strategy.uses_pretrained else None
        self.labelled = len(dataset.y_train) if indices is None else int(torch.unique(indices).numel())
        self.trainable_params = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def summary(self) -> dict[str, Any]:
        s = super().summary()
        s["finetune"] = {
            "strategy": str(self.plan.strategy),
            "labels_per_class": self.plan.labels_per_class,
            "labelled_examples": self.labelled,
            "backbone_lr_scale": self.plan.backbone_lr_scale,
            "trainable_params": self.trainable_params,
            "frozen_params": self.params - self.trainable_params,
            "pretrained": self.source.describe() if self.source is not None else None,
        }
        return s


def finetuned_card(config: ExperimentConfig, summary: dict[str, Any], weights: bytes) -> dict[str, Any]:
    """The card that goes with a fine-tuned model's weights (what, from what, how well, sha256)."""
    ft = summary.get("finetune") or {}
    pre = ft.get("pretrained") or {}
    src = pre.get("source")
    cmd = [f"python -m bigmodel_core finetune config.json --strategy {ft.get('strategy')}"]
    if src:
        cmd.append(f"--pretrained {src if src in RECIPES else 'YOUR_WEIGHTS.safetensors'}")
    k = ft.get("labels_per_class")
    cmd.append(f"--labels-per-class {k if k is not None else 'all'} --out OUT")
    return {
        "kind": "finetuned",
        "config": config.to_dict(),
        "pretrained": pre or None,
        "strategy": ft.get("strategy"),
        "labels_per_class": k,
        "trained_on": {"dataset": config.data.name, "labelled_examples": ft.get("labelled_examples"),
                       "seed": config.seed},
        "metrics": summary.get("final"),
        "trainable_params": ft.get("trainable_params"),
        "frozen_params": ft.get("frozen_params"),
        "sha256": sha256_bytes(weights),
        "command": " ".join(cmd),
    }


def finetuned_files(config: ExperimentConfig, summary: dict[str, Any],
                    state: dict[str, torch.Tensor]) -> dict[str, bytes]:
    """model.safetensors and card.json for a fine-tuned model (download or --out)."""
    weights = save_weights_bytes(state)
    card = finetuned_card(config, summary, weights)
    return {"model.safetensors": weights, "card.json": (json.dumps(card, indent=2) + "\n").encode()}


def finetuned_zip(config: ExperimentConfig, summary: dict[str, Any], state: dict[str, torch.Tensor],
                  rows: list[dict[str, Any]]) -> bytes:
    """A zip with model.safetensors, card.json, config.json, metrics.csv and summary.json."""
    import io
    import zipfile

    from bigmodel_core.training.store import metrics_csv

    files = finetuned_files(config, summary, state)
    files["config.json"] = config.to_json().encode()
    files["metrics.csv"] = metrics_csv(rows).encode()
    files["summary.json"] = json.dumps(summary, indent=2, default=str).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(f"finetuned/{name}", data)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Experiments through the job pool: every strategy at several budgets, fairly
# --------------------------------------------------------------------------------------------

MAX_EXPERIMENT_RUNS = 36


@dataclass(frozen=True)
class PlannedRun:
    strategy: Strategy
    labels_per_class: int | None
    seed: int

    @property
    def budget_text(self) -> str:
        return "all" if self.labels_per_class is None else str(self.labels_per_class)


def plan_experiment(strategies: list[str | Strategy], budgets: list[int | None], seeds: list[int]) -> list[PlannedRun]:
    """Every strategy x budget x seed. Within a budget and seed every run gets the same labelled
    examples, data order, steps and new-head init, so only the strategy differs."""
    parsed = list(dict.fromkeys(Strategy.parse(s) for s in strategies))
    if not parsed or not budgets or not seeds:
        raise FinetuneError("choose at least one strategy, one label budget and one seed")
    runs = [PlannedRun(s, b, seed) for b in dict.fromkeys(budgets) for seed in dict.fromkeys(seeds) for s in parsed]
    if len(runs) > MAX_EXPERIMENT_RUNS:
        raise FinetuneError(f"{len(runs)} runs is more than the {MAX_EXPERIMENT_RUNS} one experiment may queue "
                            "on a shared server; choose fewer strategies, budgets or seeds")
    return runs


def make_job(config: ExperimentConfig, run: PlannedRun, source: Source | None, owner: str, *,
             backbone_lr_scale: float = DEFAULT_BACKBONE_LR_SCALE, epoch_samples: int = DEFAULT_EPOCH_SAMPLES,
             group: str | None = None, save: bool = True) -> Any:
    """A pool Job (kind "finetune") that trains one planned run."""
    from bigmodel_core.training.jobs import Job

    cfg = config.with_changes({"seed": run.seed}) if run.seed != config.seed else config
    plan = Plan(run.strategy, run.labels_per_class, backbone_lr_scale, epoch_samples)
    src = source if run.strategy.uses_pretrained else None
    if run.strategy.uses_pretrained and src is None:
        raise FinetuneError(f"strategy {run.strategy} needs pretrained weights")

    def make_trainer(job: Job) -> Trainer:
        return FinetuneTrainer(cfg, plan, src, control=job.control)

    unit = "/class" if _info(cfg).task == "classification" else " seqs"
    label = f"{run.strategy.label} · {run.budget_text}{unit} · seed {run.seed}"
    return Job(cfg, owner=owner, label=label, group=group, kind="finetune", make_trainer=make_trainer, save=save)


# --------------------------------------------------------------------------------------------
# Feature maps before and after fine-tuning
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MapPair:
    """One layer's activations for the same input before and after fine-tuning."""

    layer: str  # "conv block 1" or "lstm layer 1"
    kind: str  # "maps": (C, H, W) feature maps after the activation; "states": (T, H) hidden states
    before: np.ndarray
    after: np.ndarray

    @property
    def max_change(self) -> float:
        return float(np.abs(self.after - self.before).max()) if self.before.size else 0.0


def _layer_activations(model: nn.Module, x: torch.Tensor) -> list[tuple[str, str, np.ndarray]]:
    from bigmodel_core.inspect.probes import feature_maps, probe_copy, rnn_states

    copy = probe_copy(model)  # eval mode, no grad: the model being shown is never touched
    if isinstance(copy, ConvNet):
        return [(f"conv block {m.block}", "maps", m.maps) for m in feature_maps(copy, x) if m.stage == "activation"]
    if isinstance(copy, SeqNet):
        with torch.no_grad():
            _, states = rnn_states(copy, x.unsqueeze(0).to(next(copy.parameters()).device))
        return [(f"{copy.family} layer {s.layer + 1}" + (" (backward)" if s.direction == "backward" else ""),
                 "states", s.h[0].detach().float().cpu().numpy()) for s in states]
    raise FinetuneError(f"no feature maps for {type(model).__name__}")


def maps_before_after(config: ExperimentConfig, info: DatasetInfo, before: dict[str, torch.Tensor],
                      after: dict[str, torch.Tensor], x: torch.Tensor) -> list[MapPair]:
    """Feature maps (CNN, via ``probes.feature_maps``) or hidden states (RNN, via ``probes.rnn_states``)
    of one input ``x`` under the weights at the start of fine-tuning and at the end."""
    model = build_model(config.model, info)
    out = []
    model.load_state_dict(before)
    first = _layer_activations(model, x)
    model.load_state_dict(after)
    second = _layer_activations(model, x)
    for (name, kind, a), (_, _, b) in zip(first, second):
        out.append(MapPair(name, kind, a, b))
    return out


# --------------------------------------------------------------------------------------------
# Pretraining (the shipped assets and their reproduction)
# --------------------------------------------------------------------------------------------

def cpu_fingerprint() -> dict[str, str]:
    """The processor and kernel set that made a file: float kernels (BLAS, oneDNN) differ between
    processors, so "the same command gives the same bytes" holds on the same kind of CPU only."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux: the platform's own name for the processor
        pass
    return {"cpu": model or platform.processor() or platform.machine(),
            "capability": str(torch.backends.cpu.get_cpu_capability()),
            "torch": torch.__version__.split("+")[0]}


@contextlib.contextmanager
def fixed_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pretrain(name: str, out_dir: Path | str = PRETRAINED_DIR, epochs: int | None = None,
             on_event: Any = None) -> dict[str, Any]:
    """Train recipe ``name`` on CPU with a fixed seed and thread count; write weights + card.

    ``epochs`` shortens the recipe (for quick reproduction checks): the first epochs of a
    constant-rate recipe are bit-identical to the full run's, and the card records the sha256
    of the weights after each epoch so a short run can be checked against it.
    """
    recipe = _recipe(name)
    cfg = parse_config(recipe.config)
    if epochs is not None:
        if not 1 <= epochs <= cfg.training.epochs:
            raise FinetuneError(f"--epochs for {name} must be 1 to {cfg.training.epochs}, got {epochs}")
        cfg = cfg.with_changes({"training.epochs": epochs})
    epoch_hashes: list[str] = []
    with fixed_threads(PRETRAIN_THREADS):
        trainer = Trainer(cfg)
        for ev in trainer.run():
            if isinstance(ev, EpochEnd):
                epoch_hashes.append(sha256_bytes(save_weights_bytes(trainer.model.state_dict())))
            if on_event is not None:
                on_event(ev)
    if trainer.result.status != "completed":
        raise FinetuneError(f"pretraining {name} did not complete: {trainer.result.status} {trainer.result.message}")
    weights = save_weights_bytes(trainer.model.state_dict())
    summary = trainer.summary()
    info = trainer.info
    target = parse_config(recipe.target)
    card = {
        "name": name,
        "title": recipe.title,
        "description": recipe.description,
        "config": cfg.to_dict(),
        "trained_on": {"dataset": cfg.data.name, "train_size": cfg.data.train_size, "val_size": cfg.data.val_size,
                       "seq_len": cfg.data.seq_len, "classes": list(info.class_names), "seed": cfg.seed},
        "metrics": {**summary["final"], "epochs": summary["epochs_run"],
                    "history": history_rows_for_card(trainer)},
        "params": summary["params"],
        "tensors": {k: list(v.shape) for k, v in trainer.model.state_dict().items()},
        "sha256": sha256_bytes(weights),
        "bytes": len(weights),
        "epoch_sha256": epoch_hashes,
        "command": f"python -m bigmodel_core pretrain {name}",
        "reproducibility": (f"CPU, torch {torch.__version__.split('+')[0]}, {PRETRAIN_THREADS} intra-op thread, "
                            f"seed {cfg.seed}: the same command on the same kind of processor gives the same "
                            "bytes (another processor's float kernels round differently: the metrics agree, "
                            "the last bits of the weights may not)"),
        "made_on": cpu_fingerprint(),
        "suggested_target": {"title": recipe.target_title, "config": target.to_dict(),
                             "strategy": recipe.strategy, "labels_per_class": recipe.labels_per_class,
                             "lesson": recipe.lesson},
    }
    out = Path(out_dir)
    atomic_write_bytes(out / f"{name}.safetensors", weights)
    atomic_write_text(out / f"{name}.json", json.dumps(card, indent=2) + "\n")
    for suffix in (".safetensors", ".json"):
        (out / f"{name}{suffix}").chmod(0o644)  # assets are for everyone to read (mkstemp makes 0600)
    return card


def history_rows_for_card(trainer: Trainer) -> list[dict[str, float]]:
    keep = ("epoch", "train_loss", "val_loss", "train_metric", "val_metric")
    return [{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items() if k in keep}
            for row in history_rows(trainer.result.history)]


# --------------------------------------------------------------------------------------------
# CLI: pretrain NAME, finetune CONFIG --pretrained NAME_OR_FILE ...
# --------------------------------------------------------------------------------------------

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


def parse_budget(text: str | int | None) -> int | None:
    if text is None or str(text).strip().lower() == "all":
        return None
    try:
        k = int(text)
    except ValueError:
        raise FinetuneError(f"--labels-per-class must be a whole number or 'all', got {text!r}") from None
    if k < 1:
        raise FinetuneError(f"--labels-per-class must be at least 1, got {k}")
    return k


def _cmd_pretrain(args: argparse.Namespace) -> int:
    name = args.name
    _recipe(name)
    shipped = load_card(name) if card_path(name).is_file() else None

    def on_event(ev: Any) -> None:
        if isinstance(ev, EpochEnd):
            print(f"epoch {ev.epoch}: train loss {ev.train_loss:.4f} val loss {ev.val_loss:.4f} "
                  f"val metric {ev.val_metric:.4f} ({ev.seconds:.1f}s)", file=sys.stderr, flush=True)

    card = pretrain(name, Path(args.out), epochs=args.epochs, on_event=on_event)
    print(f"wrote {Path(args.out) / (name + '.safetensors')} ({card['bytes']:,} bytes) and its card")
    print(f"sha256 {card['sha256']}")
    if shipped is not None:
        if args.epochs is None:
            same = card["sha256"] == shipped["sha256"]
            print("matches the shipped card: " + ("yes" if same else "NO"))
        else:
            ref = shipped.get("epoch_sha256", [])
            same = len(ref) >= args.epochs and card["epoch_sha256"][-1] == ref[args.epochs - 1]
            print(f"matches the shipped card's epoch {args.epochs}: " + ("yes" if same else "NO"))
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    strategy = Strategy.parse(args.strategy)
    if args.config in RECIPES:
        cfg = suggested_target(args.config)
    else:
        cfg = load_config_arg(args.config)
    changes: dict[str, Any] = {}
    if args.epochs is not None:
        changes["training.epochs"] = args.epochs
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.device is not None:
        changes["training.device"] = args.device
    if changes:
        cfg = cfg.with_changes(changes)
    if strategy.uses_pretrained and args.pretrained is None:
        raise FinetuneError(f"--strategy {strategy} needs --pretrained NAME_OR_FILE (shipped: {', '.join(RECIPES)})")
    source = resolve_source(args.pretrained) if strategy.uses_pretrained else None
    plan = Plan.make(strategy, parse_budget(args.labels_per_class), args.backbone_lr_scale)
    cfg = parse_config_here(cfg)  # a device missing here is refused before anything trains
    out = check_out_dir(args.out, args.overwrite)
    trainer = FinetuneTrainer(cfg, plan, source)  # every check (weights, budget, strategy) happens here
    metric = "acc" if trainer.classification else "mae"
    for ev in trainer.run():
        if isinstance(ev, EpochEnd):
            print(f"epoch {ev.epoch}: train loss {ev.train_loss:.4f} val loss {ev.val_loss:.4f} "
                  f"val {metric} {ev.val_metric:.4f}", file=sys.stderr, flush=True)
    summary = trainer.summary()
    files = finetuned_files(cfg, summary, trainer.model.state_dict())
    write_run(out, cfg, history_rows(trainer.result.history), summary, None, extra_files=files)
    print(json.dumps(summary, indent=2))
    return 0 if summary["status"] in ("completed", "stopped") else 1


def add_cli(sub: argparse._SubParsersAction) -> None:
    names = ", ".join(RECIPES)
    p = sub.add_parser("pretrain", help=f"remake a shipped pretrained model ({names})")
    p.add_argument("name", choices=list(RECIPES))
    p.add_argument("--out", default=str(PRETRAINED_DIR), help="folder for NAME.safetensors and NAME.json")
    p.add_argument("--epochs", type=number_arg(int, 1), help="stop after this many epochs (checked against the card's "
                                              "per-epoch sha256)")
    p.set_defaults(func=_cmd_pretrain)
    p = sub.add_parser("finetune", help="fine-tune pretrained weights on a target task with a label budget")
    p.add_argument("config", help=f"target config (JSON file or preset), or a pretrained name ({names}) for "
                                  "its suggested target")
    p.add_argument("--pretrained", help=f"a shipped model ({names}) or a .safetensors file")
    p.add_argument("--strategy", default="head", help="head | last:N | full | scratch")
    p.add_argument("--labels-per-class", default="all",
                   help="labelled examples per class (in all, for regression), or 'all'")
    p.add_argument("--backbone-lr-scale", type=number_arg(float, 0), default=DEFAULT_BACKBONE_LR_SCALE,
                   help="learning-rate factor for trained pretrained blocks (last:N, full)")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true", help="write into an existing non-empty --out folder")
    p.add_argument("--epochs", type=number_arg(int, 1))
    p.add_argument("--seed", type=number_arg(int, 0))
    p.add_argument("--device")
    p.set_defaults(func=_cmd_finetune)
