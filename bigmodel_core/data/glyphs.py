"""Printed digits and capital letters rendered from fonts: synthetic_digits, synthetic_letters.

Each character is drawn once per font and weight into a 56 x 56 template (Pillow, the
slow part); every sample is then a randomly warped, inked and noised template.

Self-contained (numpy, Pillow, torch and the seeding/warp modules only): the exported
training scripts copy it, and read the same DejaVu fonts (shipped in assets/fonts).
"""

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from .seeding import balanced_labels, uniform
from .warps import TEMPLATE_SIZE, ink_and_noise, inverse_affine, warp_templates

DIGIT_CHARS = "0123456789"
LETTER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Three visually distinct families (sans, serif, monospace); bold and light weights are
# made from them below by stroking and eroding the glyphs.
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")

# Glyphs are drawn at 112 px, then halved to the 56 px template.
GLYPH_RENDER = 2 * TEMPLATE_SIZE
GLYPH_HEIGHT = 76  # ink height of a digit/capital at 112 px (~19 px at 28, like MNIST)
GLYPH_MAX = 92  # no glyph (plus stroke) may exceed this box, so rotations still fit
# (stroke_width in px at 112 px, erode): light, regular, bold, heavy. The extra resolution
# lets erosion thin strokes by a quarter pixel (at 28 px) per side without wiping out the
# hairlines of the serif font.
GLYPH_WEIGHTS = ((0, True), (0, False), (2, False), (4, False))


def find_fonts_dir(candidates: list) -> Path:
    """The first folder in ``candidates`` that holds every file of FONT_FILES."""
    for candidate in candidates:
        if all((Path(candidate) / f).is_file() for f in FONT_FILES):
            return Path(candidate)
    where = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"fonts {', '.join(FONT_FILES)} not found in {where}")


def render_glyph(font: ImageFont.FreeTypeFont, char: str, stroke: int) -> np.ndarray:
    """One glyph, ink-box centred on a 112 x 112 canvas, values in [0, 1]."""
    big = Image.new("L", (3 * GLYPH_RENDER, 3 * GLYPH_RENDER), 0)
    ImageDraw.Draw(big).text(
        (GLYPH_RENDER // 2, GLYPH_RENDER // 4), char, font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    bbox = big.getbbox()
    if bbox is None:  # pragma: no cover - every shipped font has digits and A-Z
        raise RuntimeError(f"font {font.path} has no glyph for {char!r}")
    ink = big.crop(bbox)
    width, height = ink.size
    if max(width, height) > GLYPH_MAX:  # e.g. W, M: shrink instead of clipping
        factor = GLYPH_MAX / max(width, height)
        ink = ink.resize((max(1, round(width * factor)), max(1, round(height * factor))), Image.LANCZOS)
        width, height = ink.size
    canvas = Image.new("L", (GLYPH_RENDER, GLYPH_RENDER), 0)
    canvas.paste(ink, ((GLYPH_RENDER - width) // 2, (GLYPH_RENDER - height) // 2))
    return np.asarray(canvas, dtype=np.float32) / 255.0


def glyph_templates(chars: str, fonts_dir: Path) -> torch.Tensor:
    """Templates for ``chars``: (len(chars), 12 styles, 56, 56), three fonts x four weights."""
    fonts_dir = find_fonts_dir([fonts_dir])
    per_char = [[] for _ in chars]
    for file in FONT_FILES:
        path = str(fonts_dir / file)
        # BASIC layout: no dependency on whether Pillow was built with raqm.
        probe = ImageFont.truetype(path, 200, layout_engine=ImageFont.Layout.BASIC)
        # Size the font so an "H" (cap height, same as digit height) is GLYPH_HEIGHT tall.
        probe_img = Image.new("L", (400, 400), 0)
        ImageDraw.Draw(probe_img).text((40, 40), "H", font=probe, fill=255)
        _, top, _, bottom = probe_img.getbbox() or (0, 0, 0, 200)
        size = max(8, round(200 * GLYPH_HEIGHT / (bottom - top)))
        font = ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)
        for i, char in enumerate(chars):
            for stroke, _erode in GLYPH_WEIGHTS:
                per_char[i].append(render_glyph(font, char, stroke))
    templates = torch.from_numpy(np.stack([np.stack(styles) for styles in per_char]))
    erode = torch.tensor([e for _ in FONT_FILES for _, e in GLYPH_WEIGHTS])
    # Light weight: a 3x3 min-filter thins every stroke by 1 px per side (at 112 px).
    templates[:, erode] = -F.max_pool2d(-templates[:, erode], 3, stride=1, padding=1)
    return F.avg_pool2d(templates, 2).contiguous()


def sample_glyphs(templates: torch.Tensor, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n noisy, randomly rotated, scaled, sheared and shifted glyphs with their labels."""
    num_classes, num_styles = templates.shape[:2]
    y = balanced_labels(n, num_classes, gen)
    style = torch.randint(0, num_styles, (n,), generator=gen)
    # Moderate rotation keeps 6 and 9 (and M/W) apart; shear doubles as italics.
    theta = inverse_affine(
        angle=uniform(gen, n, -15.0, 15.0) * (math.pi / 180.0),
        scale=uniform(gen, n, 0.8, 1.15),
        aspect=torch.exp(uniform(gen, n, -0.15, 0.15)),
        shear=uniform(gen, n, -0.3, 0.3),
        shift_x=uniform(gen, n, -0.12, 0.12),
        shift_y=uniform(gen, n, -0.12, 0.12),
    )
    flat = templates.reshape(num_classes * num_styles, TEMPLATE_SIZE, TEMPLATE_SIZE)
    x = warp_templates(flat, y * num_styles + style, theta)
    return ink_and_noise(x, gen), y
