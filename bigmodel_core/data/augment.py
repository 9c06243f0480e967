"""Training-time image augmentation: random small shifts and rotations.

Self-contained (stdlib and torch only): the exported training scripts copy it.
"""

import math

import torch
import torch.nn.functional as F


def augment_images(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Randomly shift (up to ~2 px) and rotate (up to ~10 degrees) a batch of images.

    ``x`` is N x C x H x W (floating point) on any device; the result is a new tensor of
    the same shape, dtype and device, zero-filled where the shift uncovers the border. The
    random numbers are drawn on the generator's own device and then moved to x's, so a CPU
    generator also drives CUDA/MPS batches, and the result is deterministic given the
    generator's state.
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
    # affine_grid works in normalised [-1, 1] coordinates per axis; the H/W factors keep
    # the rotation a true rotation on non-square images.
    theta = torch.stack(
        [
            torch.stack([cos, -sin * height / width, shift_px[:, 0] * 2 / width], dim=1),
            torch.stack([sin * width / height, cos, shift_px[:, 1] * 2 / height], dim=1),
        ],
        dim=1,
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
