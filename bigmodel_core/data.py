"""Dataset registry: every dataset the playground can train on.

This module owns the list of datasets (``DATASET_NAMES``), their metadata
(``DatasetInfo``) and how each one is built (``build_dataset``), plus two
helpers used by training code: ``augment_images`` (random shifts and
rotations) and ``sample_indices_per_class`` (label budgets).

Everything is generated offline and deterministically: nothing is downloaded.
The synthetic image sets are rendered from fonts shipped in ``assets/fonts``
(so they look the same on every machine) and from drawn geometric shapes; the
real handwritten digits are the 8x8 scans that scikit-learn installs with
itself. Randomness always comes from a ``torch.Generator`` seeded from
``(dataset name, split, seed)``; the global torch and numpy RNGs are never used
or touched.

Each split has its own generator, so for the synthetic datasets the
validation set depends only on ``(name, val_size, seed, ...)``: changing
``train_size`` leaves the validation set unchanged, which keeps comparisons
between training runs fair. For the real digits the validation set is the
first ``val_size`` samples of a seeded class-interleaved order and the
training set the next ``train_size``, which has the same property.
"""

from __future__ import annotations

import functools
import hashlib
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "augment_images",
    "build_dataset",
    "clear_dataset_cache",
    "dataset_info",
    "sample_indices_per_class",
]

FONT_DIR = Path(__file__).resolve().parent.parent / "assets" / "fonts"
# Three visually distinct families (sans, serif, monospace); bold and light
# weights are made from them below by stroking and eroding the glyphs.
FONT_FILES: tuple[str, ...] = (
    "DejaVuSans.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansMono.ttf",
)


# --------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------


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

    ``x_*`` are float32 (N x C x H x W or N x T x F); ``y_*`` are int64 labels
    of shape (N,) for classification and float32 of shape (N, 1) for
    regression. The tensors may be shared with the build cache: treat them
    as read-only.
    """

    info: DatasetInfo
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


class DatasetError(ValueError):
    """A dataset was asked for by a wrong name or with invalid options."""


# --------------------------------------------------------------------------
# Seeding and small helpers
# --------------------------------------------------------------------------


def _generator(name: str, split: str, seed: int) -> torch.Generator:
    """A CPU generator seeded from (name, split, seed).

    hashlib rather than hash(): Python salts str hashes per process, and the
    data must be identical across processes and machines.
    """
    digest = hashlib.sha256(f"{name}|{split}|{seed}".encode()).digest()
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    return gen


def _uniform(gen: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def _balanced_labels(n: int, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """Labels as equal as possible per class, in random order.

    Balanced rather than i.i.d. so every class appears once n >= num_classes
    and a majority-class guess never looks good.
    """
    labels = torch.arange(n, dtype=torch.int64) % num_classes
    return labels[torch.randperm(n, generator=gen)]


def _class_interleaved_order(y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A seeded permutation of range(len(y)) that cycles through the classes.

    Within a seeded shuffle, each sample gets its rank among the samples of
    its class; sorting by (rank, position) puts one sample of every class
    first, then a second of every class, and so on. Any prefix is therefore
    (almost) stratified, which gives stratified splits and label budgets.
    """
    n = y.numel()
    perm = torch.randperm(n, generator=gen)
    y_perm = y[perm]
    rank = torch.empty(n, dtype=torch.int64)
    for cls in torch.unique(y_perm):
        where = (y_perm == cls).nonzero(as_tuple=True)[0]
        rank[where] = torch.arange(where.numel())
    key = rank * n + torch.arange(n)
    return perm[torch.argsort(key)]


def _inverse_affine(
    angle: torch.Tensor,
    scale: torch.Tensor,
    aspect: torch.Tensor,
    shear: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
) -> torch.Tensor:
    """Batch of 2x3 ``affine_grid`` matrices for the forward transform
    ``p_out = R(angle) @ Shear @ diag(scale*aspect, scale/aspect) @ p_in + shift``.

    affine_grid maps *output* coordinates to *input* coordinates, so the
    forward transform is inverted here: p_in = M^-1 (p_out - shift).
    """
    cos, sin = torch.cos(angle), torch.sin(angle)
    sx, sy = scale * aspect, scale / aspect
    # M = R @ [[1, shear], [0, 1]] @ diag(sx, sy)
    m00, m01 = cos * sx, (cos * shear - sin) * sy
    m10, m11 = sin * sx, (sin * shear + cos) * sy
    det = m00 * m11 - m01 * m10
    i00, i01, i10, i11 = m11 / det, -m01 / det, -m10 / det, m00 / det
    t0 = -(i00 * shift_x + i01 * shift_y)
    t1 = -(i10 * shift_x + i11 * shift_y)
    return torch.stack(
        [torch.stack([i00, i01, t0], dim=1), torch.stack([i10, i11, t1], dim=1)], dim=1
    )


_TEMPLATE_SIZE = 56  # templates are drawn at 2x the output resolution ...
_OUT_SIZE = 28  # ... and warped at 2x, then 2x2-averaged: cheap anti-aliasing.
_WARP_CHUNK = 2048  # bounds the memory of the sampling grid for huge requests


def _affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Same result as ``F.affine_grid(theta, (N, C, H, W), align_corners=False)``.

    Built by broadcasting the separable x and y terms instead of a batched
    matmul over every pixel, which is several times faster on CPU.
    """
    like = {"dtype": theta.dtype, "device": theta.device}
    # Pixel centres in normalised coordinates (align_corners=False convention).
    xs = (2 * torch.arange(width, **like) + 1) / width - 1
    ys = (2 * torch.arange(height, **like) + 1) / height - 1
    # theta[:, :, 0] * x varies along W, theta[:, :, 1] * y + theta[:, :, 2] along H.
    along_w = theta[:, :, 0, None, None] * xs  # N x 2 x 1 x W
    along_h = theta[:, :, 1, None, None] * ys[:, None] + theta[:, :, 2, None, None]
    return (along_w + along_h).permute(0, 2, 3, 1)  # N x H x W x 2


def _warp_templates(
    templates: torch.Tensor, index: torch.Tensor, theta: torch.Tensor
) -> torch.Tensor:
    """Warp ``templates[index]`` (K x 56 x 56) by ``theta`` into N x 1 x 28 x 28."""
    out = torch.empty(index.numel(), 1, _OUT_SIZE, _OUT_SIZE)
    for start in range(0, index.numel(), _WARP_CHUNK):
        idx = index[start : start + _WARP_CHUNK]
        src = templates[idx].unsqueeze(1)
        grid = _affine_grid(
            theta[start : start + _WARP_CHUNK], _TEMPLATE_SIZE, _TEMPLATE_SIZE
        )
        warped = F.grid_sample(
            src, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        out[start : start + idx.numel()] = F.avg_pool2d(warped, 2)
    return out


def _ink_and_noise(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random ink intensity, a faint background and Gaussian noise, clipped to [0, 1].

    The noise level varies per image so some samples are clean and some are
    hard; the upper end is chosen so digits stay readable to a person.
    """
    n = x.shape[0]
    ink = _uniform(gen, n, 0.7, 1.0).view(n, 1, 1, 1)
    background = _uniform(gen, n, 0.0, 0.12).view(n, 1, 1, 1)
    sigma = _uniform(gen, n, 0.02, 0.2).view(n, 1, 1, 1)
    noise = torch.randn(x.shape, generator=gen) * sigma
    return (background + (ink - background) * x + noise).clamp_(0.0, 1.0)


# --------------------------------------------------------------------------
# Font glyphs: synthetic_digits and synthetic_letters
# --------------------------------------------------------------------------

# Glyphs are drawn at 112 px, then halved to the 56 px template.
_GLYPH_RENDER = 2 * _TEMPLATE_SIZE
_GLYPH_HEIGHT = 76  # ink height of a digit/capital at 112 px (~19 px at 28, like MNIST)
_GLYPH_MAX = 92  # no glyph (plus stroke) may exceed this box, so rotations still fit
# (stroke_width in px at 112 px, erode): light, regular, bold, heavy. The extra
# resolution lets erosion thin strokes by a quarter pixel (at 28 px) per side
# without wiping out the hairlines of the serif font.
_GLYPH_WEIGHTS: tuple[tuple[int, bool], ...] = (
    (0, True),
    (0, False),
    (2, False),
    (4, False),
)


def _render_glyph(font: ImageFont.FreeTypeFont, char: str, stroke: int) -> np.ndarray:
    """One glyph, ink-box centred on a 112 x 112 canvas, values in [0, 1]."""
    big = Image.new("L", (3 * _GLYPH_RENDER, 3 * _GLYPH_RENDER), 0)
    ImageDraw.Draw(big).text(
        (_GLYPH_RENDER // 2, _GLYPH_RENDER // 4),
        char,
        font=font,
        fill=255,
        stroke_width=stroke,
        stroke_fill=255,
    )
    bbox = big.getbbox()
    if bbox is None:  # pragma: no cover - every shipped font has digits and A-Z
        raise RuntimeError(f"font {font.path} has no glyph for {char!r}")
    ink = big.crop(bbox)
    width, height = ink.size
    if max(width, height) > _GLYPH_MAX:  # e.g. W, M: shrink instead of clipping
        factor = _GLYPH_MAX / max(width, height)
        ink = ink.resize(
            (max(1, round(width * factor)), max(1, round(height * factor))),
            Image.LANCZOS,
        )
        width, height = ink.size
    canvas = Image.new("L", (_GLYPH_RENDER, _GLYPH_RENDER), 0)
    canvas.paste(ink, ((_GLYPH_RENDER - width) // 2, (_GLYPH_RENDER - height) // 2))
    return np.asarray(canvas, dtype=np.float32) / 255.0


@functools.lru_cache(maxsize=4)
def _glyph_templates(chars: str) -> torch.Tensor:
    """Templates for ``chars``: (len(chars), styles, 56, 56), rendered once per process.

    Styles are every font x weight. Rendering is the slow part (Pillow), so it
    is cached; the per-sample variation is done later by one batched warp.
    """
    missing = [f for f in FONT_FILES if not (FONT_DIR / f).is_file()]
    if missing:
        raise FileNotFoundError(f"fonts missing from {FONT_DIR}: {', '.join(missing)}")
    per_char: list[list[np.ndarray]] = [[] for _ in chars]
    for file in FONT_FILES:
        path = str(FONT_DIR / file)
        # BASIC layout: no dependency on whether Pillow was built with raqm.
        probe = ImageFont.truetype(path, 200, layout_engine=ImageFont.Layout.BASIC)
        # Size the font so an "H" (cap height, same as digit height) is _GLYPH_HEIGHT tall.
        probe_img = Image.new("L", (400, 400), 0)
        ImageDraw.Draw(probe_img).text((40, 40), "H", font=probe, fill=255)
        _, top, _, bottom = probe_img.getbbox() or (0, 0, 0, 200)
        size = max(8, round(200 * _GLYPH_HEIGHT / (bottom - top)))
        font = ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)
        for i, char in enumerate(chars):
            for stroke, _erode in _GLYPH_WEIGHTS:
                per_char[i].append(_render_glyph(font, char, stroke))
    templates = torch.from_numpy(np.stack([np.stack(styles) for styles in per_char]))
    erode = torch.tensor([e for _ in FONT_FILES for _, e in _GLYPH_WEIGHTS])
    # Light weight: a 3x3 min-filter thins every stroke by 1 px per side (at 112 px).
    templates[:, erode] = -F.max_pool2d(-templates[:, erode], 3, stride=1, padding=1)
    return F.avg_pool2d(templates, 2).contiguous()


def _sample_glyphs(
    chars: str, n: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """n noisy, randomly transformed renderings of ``chars`` with their labels."""
    templates = _glyph_templates(chars)
    num_classes, num_styles = templates.shape[:2]
    y = _balanced_labels(n, num_classes, gen)
    style = torch.randint(0, num_styles, (n,), generator=gen)
    # Moderate rotation keeps 6 and 9 (and M/W) apart; shear doubles as italics.
    theta = _inverse_affine(
        angle=_uniform(gen, n, -15.0, 15.0) * (math.pi / 180.0),
        scale=_uniform(gen, n, 0.8, 1.15),
        aspect=torch.exp(_uniform(gen, n, -0.15, 0.15)),
        shear=_uniform(gen, n, -0.3, 0.3),
        shift_x=_uniform(gen, n, -0.12, 0.12),
        shift_y=_uniform(gen, n, -0.12, 0.12),
    )
    flat = templates.reshape(num_classes * num_styles, _TEMPLATE_SIZE, _TEMPLATE_SIZE)
    x = _warp_templates(flat, y * num_styles + style, theta)
    return _ink_and_noise(x, gen), y


DIGIT_CHARS = "0123456789"
LETTER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _sample_synthetic_digits(
    n: int, gen: torch.Generator, params: _Params
) -> tuple[torch.Tensor, torch.Tensor]:
    return _sample_glyphs(DIGIT_CHARS, n, gen)


def _sample_synthetic_letters(
    n: int, gen: torch.Generator, params: _Params
) -> tuple[torch.Tensor, torch.Tensor]:
    return _sample_glyphs(LETTER_CHARS, n, gen)


# --------------------------------------------------------------------------
# Geometric shapes
# --------------------------------------------------------------------------

SHAPE_NAMES: tuple[str, ...] = (
    "circle", "square", "triangle", "cross", "star", "crescent", "arrow", "heart",
)  # fmt: skip
# No diamond or ellipse class: with free rotation and stretching they would be
# indistinguishable from square and circle.

# Polygons are drawn at 4x and box-filtered: Pillow does not anti-alias them.
_SHAPE_SUPERSAMPLE = 4
_SHAPE_RADIUS = 0.85  # shape extent, in half-canvas units


def _regular_polygon(
    count: int, radius: float, phase: float
) -> list[tuple[float, float]]:
    return [
        (
            radius * math.cos(phase + 2 * math.pi * k / count),
            radius * math.sin(phase + 2 * math.pi * k / count),
        )
        for k in range(count)
    ]


def _shape_outline(name: str) -> list[tuple[float, float]] | None:
    """Polygon vertices in [-1, 1]^2 (y down), or None for round shapes."""
    if name == "square":
        return [(-0.78, -0.78), (0.78, -0.78), (0.78, 0.78), (-0.78, 0.78)]
    if name == "triangle":
        return _regular_polygon(3, 1.0, -math.pi / 2)
    if name == "cross":
        a, w = 0.9, 0.28
        return [
            (-w, -a),
            (w, -a),
            (w, -w),
            (a, -w),
            (a, w),
            (w, w),
            (w, a),
            (-w, a),
            (-w, w),
            (-a, w),
            (-a, -w),
            (-w, -w),
        ]
    if name == "star":
        outer = _regular_polygon(5, 1.0, -math.pi / 2)
        inner = _regular_polygon(5, 0.42, -math.pi / 2 + math.pi / 5)
        return [p for pair in zip(outer, inner, strict=True) for p in pair]
    if name == "arrow":
        return [
            (-0.95, -0.22),
            (0.15, -0.22),
            (0.15, -0.62),
            (0.95, 0.0),
            (0.15, 0.62),
            (0.15, 0.22),
            (-0.95, 0.22),
        ]
    if name == "heart":
        ts = np.linspace(0.0, 2 * math.pi, 96, endpoint=False)
        xs = 16 * np.sin(ts) ** 3
        ys = -(
            13 * np.cos(ts) - 5 * np.cos(2 * ts) - 2 * np.cos(3 * ts) - np.cos(4 * ts)
        )
        return [
            (float(x) / 17.0, (float(y) - 2.5) / 17.0)
            for x, y in zip(xs, ys, strict=True)
        ]
    return None


@functools.lru_cache(maxsize=1)
def _shape_templates() -> torch.Tensor:
    """(len(SHAPE_NAMES), 3 styles, 56, 56): filled, thin outline, thick outline."""
    big = _TEMPLATE_SIZE * _SHAPE_SUPERSAMPLE
    half = big / 2
    radius = _SHAPE_RADIUS * half

    def to_px(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(half + radius * x, half + radius * y) for x, y in points]

    def disc(
        draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill: int
    ) -> None:
        draw.ellipse(to_px([(cx - r, cy - r), (cx + r, cy + r)]), fill=fill)

    masks = []
    for name in SHAPE_NAMES:
        img = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(img)
        polygon = _shape_outline(name)
        if polygon is not None:
            draw.polygon(to_px(polygon), fill=255)
        elif name == "circle":
            disc(draw, 0.0, 0.0, 0.9, 255)
        elif name == "crescent":
            disc(draw, 0.0, 0.0, 0.95, 255)
            disc(draw, 0.42, -0.18, 0.78, 0)
        else:  # pragma: no cover - guarded by SHAPE_NAMES
            raise AssertionError(name)
        masks.append(np.asarray(img, dtype=np.float32) / 255.0)
    filled = torch.from_numpy(np.stack(masks)).unsqueeze(1)  # K x 1 x big x big
    styles = [filled]
    # Outlines = mask minus its erosion; ring widths ~1.75 and ~2.75 px at 28 px.
    for ring in (14, 22):
        # A square min-filter is separable: two 1-D passes instead of one k x k.
        eroded = -F.max_pool2d(-filled, (2 * ring + 1, 1), stride=1, padding=(ring, 0))
        eroded = -F.max_pool2d(-eroded, (1, 2 * ring + 1), stride=1, padding=(0, ring))
        styles.append(filled - eroded)
    stacked = torch.cat(styles, dim=1)  # K x 3 x big x big
    return F.avg_pool2d(stacked, _SHAPE_SUPERSAMPLE).contiguous()


def _sample_shapes(
    n: int, gen: torch.Generator, params: _Params
) -> tuple[torch.Tensor, torch.Tensor]:
    templates = _shape_templates()
    num_classes, num_styles = templates.shape[:2]
    y = _balanced_labels(n, num_classes, gen)
    style = torch.randint(0, num_styles, (n,), generator=gen)
    scale = _uniform(gen, n, 0.6, 1.0)
    # Shift as far as the scaled shape still fits on the canvas.
    reach = (0.97 - _SHAPE_RADIUS * 1.25 * scale).clamp(min=0.0)
    theta = _inverse_affine(
        angle=_uniform(gen, n, -math.pi, math.pi),
        scale=scale,
        aspect=torch.exp(_uniform(gen, n, -0.15, 0.15)),
        shear=_uniform(gen, n, -0.15, 0.15),
        shift_x=_uniform(gen, n, -1.0, 1.0) * reach,
        shift_y=_uniform(gen, n, -1.0, 1.0) * reach,
    )
    flat = templates.reshape(num_classes * num_styles, _TEMPLATE_SIZE, _TEMPLATE_SIZE)
    x = _warp_templates(flat, y * num_styles + style, theta)
    return _ink_and_noise(x, gen), y


# --------------------------------------------------------------------------
# Sequences
# --------------------------------------------------------------------------


def _sample_sine_wave(
    n: int, gen: torch.Generator, params: _Params
) -> tuple[torch.Tensor, torch.Tensor]:
    """T noisy steps of A*sin(w*t + phi); target is the clean value at step T+1.

    A clean target means the irreducible error is only what the input noise
    hides, so a good LSTM gets close to zero while the mean predictor stays
    near E[A^2]/2 (about 0.5).
    """
    assert params.seq_len is not None
    steps = params.seq_len
    t = torch.arange(steps + 1, dtype=torch.float32)
    # Periods between 6 and 30 steps: several cycles fit in the default window.
    freq = _uniform(gen, n, 2 * math.pi / 30.0, 2 * math.pi / 6.0).unsqueeze(1)
    phase = _uniform(gen, n, 0.0, 2 * math.pi).unsqueeze(1)
    amplitude = _uniform(gen, n, 0.5, 1.5).unsqueeze(1)
    clean = amplitude * torch.sin(freq * t + phase)
    noisy = clean[:, :steps] + 0.05 * torch.randn(n, steps, generator=gen)
    return noisy.unsqueeze(2).contiguous(), clean[:, steps:].contiguous()


def _sample_adding_problem(
    n: int, gen: torch.Generator, params: _Params
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hochreiter & Schmidhuber's adding problem (1997).

    Feature 0 is uniform noise in [0, 1]; feature 1 marks one step in each
    half of the sequence; the target is the sum of the two marked values. The
    mean predictor (always 1.0) has MSE 1/6, the bar a model must beat.
    """
    assert params.seq_len is not None
    steps = params.seq_len
    half = steps // 2
    values = torch.rand(n, steps, generator=gen)
    first = (torch.rand(n, generator=gen) * half).long().clamp_(max=half - 1)
    second = half + (torch.rand(n, generator=gen) * (steps - half)).long().clamp_(
        max=steps - half - 1
    )
    markers = torch.zeros(n, steps)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return torch.stack([values, markers], dim=2), target.unsqueeze(1)


# --------------------------------------------------------------------------
# Real handwritten digits (scikit-learn's 8x8 scans)
# --------------------------------------------------------------------------

REAL_DIGITS_SIZE = 1797


@functools.lru_cache(maxsize=1)
def _sklearn_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 images as (N, 8, 8) floats in [0, 1] and their int64 labels."""
    # Imported lazily: scikit-learn is slow to import and only these two datasets need it.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32) / 16.0
    return images, torch.as_tensor(bunch.target, dtype=torch.int64)


def _split_real_digits(
    name: str, train_size: int, val_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    images, labels = _sklearn_digits()
    order = _class_interleaved_order(labels, _generator(name, "split", seed))
    val_idx = order[:val_size]
    train_idx = order[val_size : val_size + train_size]
    return images[train_idx], labels[train_idx], images[val_idx], labels[val_idx]


def _build_handwritten_digits(
    name: str, train_size: int, val_size: int, seed: int, params: _Params
) -> tuple[torch.Tensor, ...]:
    x_train, y_train, x_val, y_val = _split_real_digits(
        name, train_size, val_size, seed
    )

    def resize(x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)  # N x 1 x 8 x 8
        if params.image_size != 8:
            # Bilinear is a convex combination, so values stay in [0, 1].
            size = (params.image_size, params.image_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x.contiguous()

    return resize(x_train), y_train, resize(x_val), y_val


def _build_sequential_digits(
    name: str, train_size: int, val_size: int, seed: int, params: _Params
) -> tuple[torch.Tensor, ...]:
    # An 8x8 image read top to bottom: 8 time steps of 8 pixel features.
    return _split_real_digits(name, train_size, val_size, seed)


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Params:
    """Resolved optional parameters (defaults filled in)."""

    image_size: int | None = None
    seq_len: int | None = None


_Sampler = Callable[[int, torch.Generator, _Params], tuple[torch.Tensor, torch.Tensor]]
_Builder = Callable[[str, int, int, int, _Params], tuple[torch.Tensor, ...]]


def _from_sampler(sampler: _Sampler) -> _Builder:
    """Builder for generated data: independent generators for val and train."""

    def build(
        name: str, train_size: int, val_size: int, seed: int, params: _Params
    ) -> tuple[torch.Tensor, ...]:
        x_val, y_val = sampler(val_size, _generator(name, "val", seed), params)
        x_train, y_train = sampler(train_size, _generator(name, "train", seed), params)
        return x_train, y_train, x_val, y_val

    return build


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


SEQ_LEN_RANGE = (5, 1000)
_DIGIT_NAMES = tuple(DIGIT_CHARS)

_REGISTRY: dict[str, _Entry] = {
    "synthetic_digits": _Entry(
        builder=_from_sampler(_sample_synthetic_digits),
        kind="image",
        task="classification",
        class_names=_DIGIT_NAMES,
        description="Printed digits 0-9 rendered from three fonts in four weights, randomly "
        "rotated, scaled, sheared and shifted, with noise. Generated on the fly, so any size works.",
        input_shape=lambda p: (1, _OUT_SIZE, _OUT_SIZE),
    ),
    "shapes": _Entry(
        builder=_from_sampler(_sample_shapes),
        kind="image",
        task="classification",
        class_names=SHAPE_NAMES,
        description="Eight geometric shapes (circle, square, triangle, cross, star, crescent, arrow, "
        "heart), filled or outlined, at random size, position and rotation, with noise.",
        input_shape=lambda p: (1, _OUT_SIZE, _OUT_SIZE),
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
        builder=_from_sampler(_sample_sine_wave),
        kind="sequence",
        task="regression",
        class_names=(),
        description="Forecasting: given the last T noisy steps of a sine wave with random "
        "frequency, phase and amplitude, predict the next value.",
        input_shape=lambda p: (p.seq_len or 40, 1),
        default_seq_len=40,
    ),
    "adding_problem": _Entry(
        builder=_from_sampler(_sample_adding_problem),
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
        builder=_from_sampler(_sample_synthetic_letters),
        kind="image",
        task="classification",
        class_names=tuple(LETTER_CHARS),
        description="Capital letters A-Z rendered exactly like synthetic_digits: a related task "
        "to pretrain on before transferring to digits.",
        input_shape=lambda p: (1, _OUT_SIZE, _OUT_SIZE),
    ),
}

DATASET_NAMES: tuple[str, ...] = tuple(_REGISTRY)


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _entry(name: str) -> _Entry:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise DatasetError(
            f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}"
        )
    return _REGISTRY[name]


def _as_int(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise DatasetError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise DatasetError(f"{what} must be an integer, got {value!r}") from None


def _resolve_params(
    name: str, entry: _Entry, image_size: int | None, seq_len: int | None
) -> _Params:
    """Check the optional parameters against what ``name`` accepts; fill defaults."""
    if image_size is not None:
        if not entry.image_sizes:
            takers = [n for n, e in _REGISTRY.items() if e.image_sizes]
            raise DatasetError(
                f"image_size is not a parameter of {name!r}; it is only accepted by "
                + ", ".join(
                    f"{n} ({' or '.join(map(str, _REGISTRY[n].image_sizes))})"
                    for n in takers
                )
            )
        image_size = _as_int(image_size, "image_size")
        if image_size not in entry.image_sizes:
            allowed = " or ".join(str(s) for s in sorted(entry.image_sizes))
            raise DatasetError(
                f"image_size for {name} must be {allowed}, got {image_size}"
            )
    elif entry.image_sizes:
        image_size = entry.image_sizes[0]

    low, high = SEQ_LEN_RANGE
    if seq_len is not None:
        if entry.default_seq_len is None:
            takers = ", ".join(
                n for n, e in _REGISTRY.items() if e.default_seq_len is not None
            )
            raise DatasetError(
                f"seq_len is not a parameter of {name!r}; it is only accepted by {takers} ({low} to {high})"
            )
        seq_len = _as_int(seq_len, "seq_len")
        if not low <= seq_len <= high:
            raise DatasetError(
                f"seq_len for {name} must be between {low} and {high}, got {seq_len}"
            )
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


def dataset_info(
    name: str, *, image_size: int | None = None, seq_len: int | None = None
) -> DatasetInfo:
    """Describe dataset ``name`` (with these options) without building anything.

    Raises DatasetError for an unknown name or an option the dataset does not
    take or allow.
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

    The result depends only on the arguments: the same arguments give
    bit-identical tensors, a different seed gives different data. Results
    are kept in a small LRU cache (8 entries), so the returned tensors are
    shared between callers: treat them as read-only (clone before modifying
    them in place).

    Raises DatasetError for an unknown name, sizes below 1, sizes beyond what
    a real dataset holds, or options the dataset does not take.
    """
    entry = _entry(name)
    params = _resolve_params(name, entry, image_size, seq_len)
    train_size = _as_int(train_size, "train_size")
    val_size = _as_int(val_size, "val_size")
    seed = _as_int(seed, "seed")
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
def _build_cached(
    name: str, train_size: int, val_size: int, seed: int, params: _Params
) -> Dataset:
    entry = _REGISTRY[name]
    x_train, y_train, x_val, y_val = entry.builder(
        name, train_size, val_size, seed, params
    )
    return Dataset(
        info=_make_info(name, entry, params),
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
    )


def clear_dataset_cache() -> None:
    """Forget every cached dataset (and rendered template), e.g. to free memory."""
    _build_cached.cache_clear()
    _glyph_templates.cache_clear()
    _shape_templates.cache_clear()


def augment_images(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Randomly shift (up to ~2 px) and rotate (up to ~10 degrees) a batch of images.

    ``x`` is N x C x H x W (floating point) on any device; the result is a new
    tensor of the same shape, dtype and device, zero-filled where the shift
    uncovers the border. The random numbers are drawn on the generator's own
    device and then moved to x's, so a CPU generator also drives CUDA/MPS
    batches, and the result is deterministic given the generator's state.
    """
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(
            f"augment_images expects a float N x C x H x W tensor, got {x.dtype} of shape {tuple(x.shape)}"
        )
    n, _, height, width = x.shape
    if n == 0:
        return x.clone()
    draws = torch.rand(n, 3, generator=generator, device=generator.device)
    draws = draws.to(device=x.device, dtype=torch.float32)
    angle = (draws[:, 0] * 2 - 1) * (10.0 * math.pi / 180.0)
    shift_px = (draws[:, 1:] * 2 - 1) * 2.0
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid works in normalised [-1, 1] coordinates per axis; the H/W
    # factors keep the rotation a true rotation on non-square images.
    theta = torch.stack(
        [
            torch.stack(
                [cos, -sin * height / width, shift_px[:, 0] * 2 / width], dim=1
            ),
            torch.stack(
                [sin * width / height, cos, shift_px[:, 1] * 2 / height], dim=1
            ),
        ],
        dim=1,
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(
        x, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )


def sample_indices_per_class(
    y: torch.Tensor, per_class: int, seed: int
) -> torch.Tensor:
    """Indices of ``per_class`` examples of every class in ``y`` (a label budget).

    The examples are the first ``per_class`` of each class in a permutation
    seeded by ``seed``, so a bigger budget contains every smaller one. Returns
    a sorted int64 tensor of len(classes) * per_class indices on y's device.
    Raises DatasetError if per_class < 1 or some class has fewer examples.
    """
    per_class = _as_int(per_class, "per_class")
    if per_class < 1:
        raise DatasetError(f"per_class must be at least 1, got {per_class}")
    labels = y.detach().to("cpu", torch.int64).reshape(-1)
    classes, counts = torch.unique(labels, return_counts=True)
    if counts.numel() and int(counts.min()) < per_class:
        short = int(classes[counts.argmin()])
        raise DatasetError(
            f"per_class={per_class} but class {short} has only {int(counts.min())} examples; "
            f"per_class can be at most {int(counts.min())} here"
        )
    digest = hashlib.sha256(f"label_budget|{_as_int(seed, 'seed')}".encode()).digest()
    gen = torch.Generator().manual_seed(
        int.from_bytes(digest[:8], "little") & (2**63 - 1)
    )
    order = _class_interleaved_order(labels, gen)
    chosen = order[: per_class * classes.numel()]
    return torch.sort(chosen).values.to(y.device)
