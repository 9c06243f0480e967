"""A residual connection (He et al., 2016): a block's body plus a skip path from its input, added.

Self-contained (torch only): the exported scripts copy this module as it is.
"""

import torch
from torch import nn


class Residual(nn.Module):
    """``body(x) + skip(x)``. The skip is ``nn.Identity()`` when the body keeps the input's shape,
    else a 1x1 convolution with the body's stride that maps the input onto the body's output."""

    def __init__(self, body: nn.Module, skip: nn.Module):
        super().__init__()
        self.body = body
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)
