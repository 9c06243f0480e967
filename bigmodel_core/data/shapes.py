"""Eight geometric shapes, filled or outlined, at random size, position and rotation: shapes.

Self-contained (numpy, Pillow, torch and the seeding/warp modules only): the exported
training scripts copy it.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from .seeding import balanced_labels, uniform
from .warps import TEMPLATE_SIZE, ink_and_noise, inverse_affine, warp_templates

# No diamond or ellipse class: with free rotation and stretching they would be
# indistinguishable from square and circle.
SHAPE_NAMES = ("circle", "square", "triangle", "cross", "star", "crescent", "arrow", "heart")
SHAPE_SUPERSAMPLE = 4  # polygons are drawn at 4x and box-filtered: Pillow does not anti-alias them
SHAPE_RADIUS = 0.85  # shape extent, in half-canvas units


def regular_polygon(count: int, radius: float, phase: float) -> list[tuple[float, float]]:
    return [
        (radius * math.cos(phase + 2 * math.pi * k / count), radius * math.sin(phase + 2 * math.pi * k / count))
        for k in range(count)
    ]


def shape_outline(name: str) -> list[tuple[float, float]] | None:
    """Polygon vertices in [-1, 1]^2 (y down), or None for round shapes."""
    if name == "square":
        return [(-0.78, -0.78), (0.78, -0.78), (0.78, 0.78), (-0.78, 0.78)]
    if name == "triangle":
        return regular_polygon(3, 1.0, -math.pi / 2)
    if name == "cross":
        a, w = 0.9, 0.28
        return [(-w, -a), (w, -a), (w, -w), (a, -w), (a, w), (w, w), (w, a), (-w, a), (-w, w), (-a, w), (-a, -w),
                (-w, -w)]  # fmt: skip
    if name == "star":
        outer = regular_polygon(5, 1.0, -math.pi / 2)
        inner = regular_polygon(5, 0.42, -math.pi / 2 + math.pi / 5)
        return [p for pair in zip(outer, inner, strict=True) for p in pair]
    if name == "arrow":
        return [(-0.95, -0.22), (0.15, -0.22), (0.15, -0.62), (0.95, 0.0), (0.15, 0.62), (0.15, 0.22),
                (-0.95, 0.22)]  # fmt: skip
    if name == "heart":
        ts = np.linspace(0.0, 2 * math.pi, 96, endpoint=False)
        xs = 16 * np.sin(ts) ** 3
        ys = -(13 * np.cos(ts) - 5 * np.cos(2 * ts) - 2 * np.cos(3 * ts) - np.cos(4 * ts))
        return [(float(x) / 17.0, (float(y) - 2.5) / 17.0) for x, y in zip(xs, ys, strict=True)]
    return None


def shape_templates() -> torch.Tensor:
    """(len(SHAPE_NAMES), 3 styles, 56, 56): filled, thin outline, thick outline."""
    big = TEMPLATE_SIZE * SHAPE_SUPERSAMPLE
    half = big / 2
    radius = SHAPE_RADIUS * half

    def to_px(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(half + radius * x, half + radius * y) for x, y in points]

    def disc(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill: int) -> None:
        draw.ellipse(to_px([(cx - r, cy - r), (cx + r, cy + r)]), fill=fill)

    masks = []
    for name in SHAPE_NAMES:
        img = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(img)
        polygon = shape_outline(name)
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
    return F.avg_pool2d(stacked, SHAPE_SUPERSAMPLE).contiguous()


def sample_shapes(templates: torch.Tensor, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n noisy shapes at random scale, position, rotation and stretch, with their labels."""
    num_classes, num_styles = templates.shape[:2]
    y = balanced_labels(n, num_classes, gen)
    style = torch.randint(0, num_styles, (n,), generator=gen)
    scale = uniform(gen, n, 0.6, 1.0)
    # Shift as far as the scaled shape still fits on the canvas.
    reach = (0.97 - SHAPE_RADIUS * 1.25 * scale).clamp(min=0.0)
    theta = inverse_affine(
        angle=uniform(gen, n, -math.pi, math.pi),
        scale=scale,
        aspect=torch.exp(uniform(gen, n, -0.15, 0.15)),
        shear=uniform(gen, n, -0.15, 0.15),
        shift_x=uniform(gen, n, -1.0, 1.0) * reach,
        shift_y=uniform(gen, n, -1.0, 1.0) * reach,
    )
    flat = templates.reshape(num_classes * num_styles, TEMPLATE_SIZE, TEMPLATE_SIZE)
    x = warp_templates(flat, y * num_styles + style, theta)
    return ink_and_noise(x, gen), y
