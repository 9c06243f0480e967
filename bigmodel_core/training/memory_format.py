"""The memory format a CNN trains in: channels_last on CPUs with oneDNN, the usual NCHW elsewhere.

oneDNN (``torch.backends.mkldnn``), which runs PyTorch's CPU convolutions, works natively in
NHWC: given NCHW tensors it reorders every activation and gradient around every convolution.
Stored channels_last, the model and its batches skip those reorders; on the 2-core development
CPU the same training then runs about 1.4x the samples per second of NCHW (README, "Measured
figures"). The values are the same up to float rounding: only the order of the numbers in
memory changes, not their logical positions (the tests train both ways and compare).

The rule: channels_last when the model has 2-D convolutions and trains on a CPU with oneDNN
enabled. On CUDA and MPS it stays off: there cuDNN picks its own layouts, and no GPU was at hand
to measure whether channels_last helps these small float32 networks (it mainly helps half
precision on tensor cores). Sequence models and dense-only networks have nothing to convert.

The model is converted once and the dataset once, before training, never per batch: indexing
a channels_last tensor with a batch of indices gives a channels_last batch. Only a batch made
anew per step (augmentation) is converted per batch.

Self-contained (torch only): the exported training scripts copy this module.
"""

import torch
from torch import nn


def channels_last_wanted(model, device, choice=None):
    """Whether ``model`` trains in channels_last on ``device``; ``choice`` (True/False) overrides the rule."""
    if choice is not None:
        return bool(choice)
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    mkldnn = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
    return has_conv and torch.device(device).type == "cpu" and mkldnn


def memory_format_name(channels_last):
    """How the summary names the format a run trained in."""
    return "channels_last" if channels_last else "contiguous (NCHW)"


def to_channels_last(tensor):
    """A 4-D image batch in channels_last (no copy if it already is); any other tensor as it is."""
    if tensor.dim() == 4:
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def model_to_channels_last(model):
    """The model's 4-D weights (convolutions) in channels_last, in place; returns the model."""
    return model.to(memory_format=torch.channels_last)
