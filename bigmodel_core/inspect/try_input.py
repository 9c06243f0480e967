"""A learner's own input for a trained model: a drawing, an image file or an edited sequence, as the exact
tensor the model receives.

Every input goes through the same steps as the training data of the model's dataset, so what the page
shows as "what the model receives" is the tensor that is fed to it:

- a drawing (the canvas sends a square grid of grey levels, bright strokes on black like the built-in
  image sets) and an uploaded picture (checked and decoded by the upload code's own image checks: size
  cap, PNG/JPEG/BMP only, pixel limit, damaged-file messages; grayscale in [0, 1]) are resized to the
  model's input side with the uploads' resize (bilinear, antialiased when shrinking); for
  ``handwritten_digits`` they are first brought to the scans' native 8 x 8 and then upsampled exactly as
  that dataset is (``as_images``), so a drawing looks to the model like one of its training digits;
- a sequence (a validation sequence the learner edited) is checked for its shape and finite values.

Every refusal is a :class:`TryInputError` (a ValueError) whose message names what is wrong. No streamlit.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bigmodel_core.data import DatasetInfo
from bigmodel_core.data.real_digits import as_images
from bigmodel_core.data.uploads.errors import UploadedDataError, file_label
from bigmodel_core.data.uploads.images import IMAGE_EXTENSIONS, decode_image, resize
from bigmodel_core.limits import current_limits

CANVAS_SIDE = 112  # the grid the canvas sends (4 x 28: enough detail for every input side up to 28)
NATIVE_SIDE = {"handwritten_digits": 8}  # datasets whose images are upsampled from a smaller native side
MAX_ABS_VALUE = 1e6  # a value in an edited sequence beyond this is a typo, not an input
MAX_TEXT_CHARS = 200_000  # a pasted sequence
_INVERT_BORDER = 0.5  # an image whose border is brighter than this is dark ink on light paper


class TryInputError(ValueError):
    """An input for "try your model" that cannot be used; the message says what is wrong, as plain text."""


@dataclass(frozen=True)
class Prepared:
    """What the model receives (``x``: C x H x W or T x F, float32) and how it was made, in words."""

    x: torch.Tensor
    steps: tuple[str, ...]


# --- the canvas --------------------------------------------------------------------------------------
def drawing_pixels(payload: object, side: int = CANVAS_SIDE) -> np.ndarray | None:
    """The canvas component's value as a (side, side) float32 grid in [0, 1]; None for an empty canvas.

    The component sends ``{"side": side, "pixels": base64 of side * side bytes (0-255, row by row),
    "strokes": n}``. Anything else (a wrong type, key, side, length or encoding) is refused naming
    what was wrong, before anything large is decoded.
    """
    if payload is None:
        return None
    if not isinstance(payload, Mapping):
        raise TryInputError(f"the drawing must be an object with side and pixels, got {type(payload).__name__}")
    unknown = sorted(str(k)[:40] for k in payload if k not in ("side", "pixels", "strokes"))
    if unknown:
        raise TryInputError(f"the drawing has unknown fields: {', '.join(map(repr, unknown[:5]))}")
    got_side = payload.get("side")
    if isinstance(got_side, bool) or not isinstance(got_side, int) or got_side != side:
        raise TryInputError(f"the drawing must be {side} x {side} pixels, got side {str(got_side)[:20]!r}")
    strokes = payload.get("strokes", 1)
    if isinstance(strokes, bool) or not isinstance(strokes, int) or strokes < 0:
        raise TryInputError(f"the drawing's stroke count must be a whole number of at least 0, "
                            f"got {str(strokes)[:20]!r}")
    pixels = payload.get("pixels")
    if not isinstance(pixels, str):
        raise TryInputError(f"the drawing's pixels must be a base64 text, got {type(pixels).__name__}")
    if len(pixels) > 4 * math.ceil(side * side / 3):
        raise TryInputError(f"the drawing's pixels are {len(pixels):,} characters; {side} x {side} pixels take "
                            f"{4 * math.ceil(side * side / 3):,}")
    try:
        raw = base64.b64decode(pixels, validate=True)
    except (binascii.Error, ValueError):
        raise TryInputError("the drawing's pixels are not valid base64") from None
    if len(raw) != side * side:
        raise TryInputError(f"the drawing has {len(raw):,} pixels; a {side} x {side} drawing has {side * side:,}")
    if strokes == 0:
        return None
    return np.frombuffer(raw, dtype=np.uint8).reshape(side, side).astype(np.float32) / np.float32(255.0)


def encode_drawing(pixels: np.ndarray) -> dict:
    """The canvas's payload for a (side, side) grid in [0, 1] (tests and the benchmark draw with it)."""
    grid = np.clip(np.round(np.asarray(pixels, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    if grid.ndim != 2 or grid.shape[0] != grid.shape[1]:
        raise ValueError(f"a drawing is a square grid, got shape {grid.shape}")
    return {"side": int(grid.shape[0]), "pixels": base64.b64encode(grid.tobytes()).decode("ascii"),
            "strokes": int(bool(grid.any()))}


# --- images ------------------------------------------------------------------------------------------
def image_side(info: DatasetInfo) -> int:
    """The side of the square image the model takes; refuses a sequence model."""
    if info.kind != "image":
        raise TryInputError(f"{info.name} is a sequence dataset: pick and edit a validation sequence instead of "
                            "drawing an image")
    c, h, w = info.input_shape
    if h != w:
        raise TryInputError(f"{info.name} takes {h} x {w} images; drawing is for square inputs")
    return int(h)


def prepare_image(pixels: np.ndarray, info: DatasetInfo) -> Prepared:
    """A grey (H, W) picture in [0, 1] (bright ink on black) as the model's input tensor (C, side, side)."""
    side = image_side(info)
    a = np.asarray(pixels, dtype=np.float32)
    if a.ndim != 2 or min(a.shape) < 1:
        raise TryInputError(f"an image must be a 2-D grid of grey levels, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise TryInputError("the image has values that are not finite numbers")
    a = np.clip(a, 0.0, 1.0)
    h, w = a.shape
    steps = []
    native = NATIVE_SIDE.get(info.name)
    if native is not None and native < side:
        small = a if a.shape == (native, native) else resize(a[None], native)[0]
        x = as_images(torch.from_numpy(small)[None], side)[0]
        steps.append(f"{w} x {h} → {native} x {native} (bilinear, antialiased: the size of the {info.name} scans) "
                     f"-> {side} x {side} (bilinear, as {info.name} is upsampled for training)")
    else:
        x = torch.from_numpy(a if a.shape == (side, side) else resize(a[None], side)[0])[None]
        steps.append(f"{w} x {h} → {side} x {side} (bilinear, antialiased when shrinking, as uploaded images are)"
                     if (h, w) != (side, side) else f"{side} x {side}, unchanged")
    channels = int(info.input_shape[0])
    if channels != 1:
        x = x.expand(channels, side, side)
        steps.append(f"the grey level copied to {channels} channels")
    steps.append("grey levels in [0, 1]: bright ink on a dark background, like the training images")
    return Prepared(x.contiguous().float(), tuple(steps))


def looks_inverted(pixels: np.ndarray) -> bool:
    """Whether a picture is dark ink on light paper (its border is bright), the opposite of the training data."""
    a = np.asarray(pixels, dtype=np.float32)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return bool(border.mean() > _INVERT_BORDER)


def image_file_pixels(data: bytes, filename: str) -> np.ndarray:
    """An uploaded picture as (H, W) grey levels in [0, 1], with the dataset uploads' checks and messages."""
    label = file_label(filename)
    limits = current_limits()
    if not str(filename).lower().endswith(IMAGE_EXTENSIONS):
        raise TryInputError(f"{label} is not a PNG, JPEG or BMP file (by its name)")
    if len(data) > limits.max_upload_bytes:
        raise TryInputError(f"{label} is {_size(len(data))}; the limit is {_size(limits.max_upload_bytes)}")
    if not data:
        raise TryInputError(f"{label} is empty")
    try:
        pixels, _colour = decode_image(data, label, limits.max_image_pixels)
    except UploadedDataError as exc:
        raise TryInputError(str(exc)) from None
    return pixels


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


# --- sequences ---------------------------------------------------------------------------------------
def sequence_shape(info: DatasetInfo) -> tuple[int, int]:
    if info.kind != "sequence":
        raise TryInputError(f"{info.name} is an image dataset: draw or upload a picture instead")
    t, f = info.input_shape
    return int(t), int(f)


def prepare_sequence(values: object, info: DatasetInfo, names: Sequence[str] | None = None) -> Prepared:
    """An edited sequence (rows = time steps, columns = features) as the model's input (T, F).

    Every value must be a finite number of at most ``MAX_ABS_VALUE`` in size; an empty cell, text, NaN
    or infinity is refused naming its step and feature. The sequence keeps the model's length.
    """
    t_len, n_feat = sequence_shape(info)
    names = list(names or [f"feature {k + 1}" for k in range(n_feat)])
    rows = np.asarray(values, dtype=object)
    if rows.ndim == 1 and n_feat == 1:
        rows = rows.reshape(-1, 1)
    if rows.ndim != 2 or rows.shape[1] != n_feat:
        raise TryInputError(f"the sequence must have {n_feat} value(s) per step ({', '.join(names)}), "
                            f"got shape {rows.shape}")
    if rows.shape[0] != t_len:
        raise TryInputError(f"the model reads sequences of {t_len} steps; this one has {rows.shape[0]}")
    out = np.empty((t_len, n_feat), dtype=np.float32)
    for t in range(t_len):
        for k in range(n_feat):
            out[t, k] = _number(rows[t, k], f"step {t}, {names[k]}")
    return Prepared(torch.from_numpy(out), (f"{t_len} steps x {n_feat} feature(s), as edited",))


def _number(v: object, where: str) -> float:
    if v is None or (isinstance(v, str) and not v.strip()):
        raise TryInputError(f"{where} is empty; type a number")
    if isinstance(v, bool):
        raise TryInputError(f"{where} is {v!r}, not a number")
    if isinstance(v, str):
        text = v.strip()
        if len(text) > 40:
            raise TryInputError(f"{where}: {text[:20]!r}... is {len(text)} characters, too long for a number")
        try:
            v = float(text)
        except ValueError:
            raise TryInputError(f"{where}: {text!r} is not a number") from None
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TryInputError(f"{where}: {str(v)[:30]!r} is not a number") from None
    if not math.isfinite(f):
        raise TryInputError(f"{where} is {f}, not a finite number")
    if abs(f) > MAX_ABS_VALUE:
        raise TryInputError(f"{where} is {f:g}; values are limited to ±{MAX_ABS_VALUE:g}")
    return f


def parse_sequence_text(text: str, info: DatasetInfo) -> Prepared:
    """A pasted sequence: one time step per line (or steps separated by ``;``), its features separated by
    commas. With one feature, all values on one line separated by commas work too."""
    t_len, n_feat = sequence_shape(info)
    if not isinstance(text, str):
        raise TryInputError(f"the sequence must be text, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise TryInputError(f"the sequence text is {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}")
    lines = [ln.strip() for ln in re.split(r"[\n;]", text) if ln.strip()]
    if not lines:
        raise TryInputError("the sequence is empty; type one step per line, its values separated by commas")
    cells = [[c.strip() for c in ln.split(",")] for ln in lines]
    if n_feat == 1 and len(cells) == 1:
        cells = [[c] for c in cells[0]]
    for t, row in enumerate(cells):
        if len(row) != n_feat:
            raise TryInputError(f"line {t + 1} has {len(row)} value(s); each step needs {n_feat}, separated by commas")
    return prepare_sequence(cells, info)
