"""Reading weights safely: safetensors only, checked for size, header, shapes and values before use.

Only safetensors is read, size-checked and header-checked before parsing; pickles and
``torch.save`` archives are refused by name and by content (``torch.load`` is not called
anywhere here). Tensors are then checked shape by shape against the model, and the first
mismatch is named; NaN, infinities and negative BatchNorm variances are refused.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from torch import nn

from bigmodel_core.config.specs import ExperimentConfig
from bigmodel_core.limits import current_limits
from bigmodel_core.nn.models import build_model
from bigmodel_core.safejson import JSONInputError, loads

from .base import CLASSIFIER, UploadError, config_info


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
    try:
        tensors = load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError, TypeError, OverflowError) as exc:
        raise UploadError(f"{name} is not a valid safetensors file: {str(exc)[:300]}") from None
    if not tensors:
        raise UploadError(f"{name} holds no tensors")
    return tensors


def accept_upload(data: bytes, name: str, arch: ExperimentConfig) -> Source:
    """Uploaded weights, checked in order (size, format, header, then every tensor's shape against
    ``arch``'s model); raises UploadError with the first problem and keeps nothing."""
    model = build_model(arch.model, config_info(arch))
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
