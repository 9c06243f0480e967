"""Random affine warps of 56 x 56 templates into noisy 28 x 28 images.

The glyph and shape generators draw their templates once, then make every sample with one
batched warp (rotation, scale, aspect, shear, shift) plus ink, background and noise.

Self-contained (torch and the seeding module only): the exported training scripts copy it.
"""

import torch
import torch.nn.functional as F

from .seeding import uniform

TEMPLATE_SIZE = 56  # templates are drawn at 2x the output resolution ...
OUT_SIZE = 28  # ... and warped at 2x, then 2x2-averaged: cheap anti-aliasing.
WARP_CHUNK = 2048  # bounds the memory of the sampling grid for huge requests


def inverse_affine(
    angle: torch.Tensor,
    scale: torch.Tensor,
    aspect: torch.Tensor,
    shear: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
) -> torch.Tensor:
    """Batch of 2x3 ``affine_grid`` matrices for the forward transform
    ``p_out = R(angle) @ Shear @ diag(scale*aspect, scale/aspect) @ p_in + shift``.

    affine_grid maps *output* coordinates to *input* coordinates, so the forward
    transform is inverted here: p_in = M^-1 (p_out - shift).
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
    return torch.stack([torch.stack([i00, i01, t0], dim=1), torch.stack([i10, i11, t1], dim=1)], dim=1)


def affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Same result as ``F.affine_grid(theta, (N, C, H, W), align_corners=False)``.

    Built by broadcasting the separable x and y terms instead of a batched matmul over
    every pixel, which is several times faster on CPU.
    """
    like = {"dtype": theta.dtype, "device": theta.device}
    # Pixel centres in normalised coordinates (align_corners=False convention).
    xs = (2 * torch.arange(width, **like) + 1) / width - 1
    ys = (2 * torch.arange(height, **like) + 1) / height - 1
    # theta[:, :, 0] * x varies along W, theta[:, :, 1] * y + theta[:, :, 2] along H.
    along_w = theta[:, :, 0, None, None] * xs  # N x 2 x 1 x W
    along_h = theta[:, :, 1, None, None] * ys[:, None] + theta[:, :, 2, None, None]
    return (along_w + along_h).permute(0, 2, 3, 1)  # N x H x W x 2


def warp_templates(templates: torch.Tensor, index: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Warp ``templates[index]`` (K x 56 x 56) by ``theta`` into N x 1 x 28 x 28."""
    out = torch.empty(index.numel(), 1, OUT_SIZE, OUT_SIZE)
    for start in range(0, index.numel(), WARP_CHUNK):
        idx = index[start : start + WARP_CHUNK]
        src = templates[idx].unsqueeze(1)
        grid = affine_grid(theta[start : start + WARP_CHUNK], TEMPLATE_SIZE, TEMPLATE_SIZE)
        warped = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out[start : start + idx.numel()] = F.avg_pool2d(warped, 2)
    return out


def ink_and_noise(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random ink intensity, a faint background and Gaussian noise, clipped to [0, 1].

    The noise level varies per image so some samples are clean and some are hard; the
    upper end is chosen so digits stay readable to a person.
    """
    n = x.shape[0]
    ink = uniform(gen, n, 0.7, 1.0).view(n, 1, 1, 1)
    background = uniform(gen, n, 0.0, 0.12).view(n, 1, 1, 1)
    sigma = uniform(gen, n, 0.02, 0.2).view(n, 1, 1, 1)
    noise = torch.randn(x.shape, generator=gen) * sigma
    return (background + (ink - background) * x + noise).clamp_(0.0, 1.0)
