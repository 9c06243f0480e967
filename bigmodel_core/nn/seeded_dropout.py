"""Dropout that draws its masks from a per-run generator.

Self-contained (torch only): the exported training scripts copy this module.
"""

import torch
from torch import nn


class SeededDropout(nn.Module):
    """Dropout drawing its mask from a per-run generator.

    ``nn.Dropout`` draws from the process-global RNG, which concurrent trainings in one
    server would share; that would make runs irreproducible. The training loop sets
    ``generator`` before training.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        if self.generator is not None and self.generator.device == x.device:
            # a contiguous mask: drawn in the tensor's logical order, so a channels_last batch
            # gets the same mask as the same batch in NCHW (empty_like would follow its strides)
            mask = torch.empty(x.shape, dtype=x.dtype, device=x.device).bernoulli_(keep, generator=self.generator)
        elif self.generator is not None:
            mask = torch.empty(x.shape, device=self.generator.device).bernoulli_(keep, generator=self.generator)
            mask = mask.to(x.device, x.dtype)
        else:
            mask = torch.empty(x.shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
