"""Generated sequences: sine_wave (forecasting) and adding_problem (long memory).

Self-contained (torch and the seeding module only): the exported training scripts copy
the sampler they need.
"""

import math

import torch

from .seeding import uniform


def sample_sine_wave(n: int, gen: torch.Generator, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """seq_len noisy steps of A*sin(w*t + phi) (N x T x 1); the target is the clean value one step later (N x 1).

    A clean target means the irreducible error is only what the input noise hides, so a
    good LSTM gets close to zero while the mean predictor stays near E[A^2]/2 (about 0.5).
    """
    t = torch.arange(seq_len + 1, dtype=torch.float32)
    # Periods between 6 and 30 steps: several cycles fit in the default window.
    freq = uniform(gen, n, 2 * math.pi / 30.0, 2 * math.pi / 6.0).unsqueeze(1)
    phase = uniform(gen, n, 0.0, 2 * math.pi).unsqueeze(1)
    amplitude = uniform(gen, n, 0.5, 1.5).unsqueeze(1)
    clean = amplitude * torch.sin(freq * t + phase)
    noisy = clean[:, :seq_len] + 0.05 * torch.randn(n, seq_len, generator=gen)
    return noisy.unsqueeze(2).contiguous(), clean[:, seq_len:].contiguous()


def sample_adding_problem(n: int, gen: torch.Generator, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hochreiter & Schmidhuber's adding problem (1997): N x T x 2 inputs, N x 1 targets.

    Feature 0 is uniform noise in [0, 1]; feature 1 marks one step in each half of the
    sequence; the target is the sum of the two marked values. The mean predictor (always
    1.0) has MSE 1/6, the bar a model must beat.
    """
    half = seq_len // 2
    values = torch.rand(n, seq_len, generator=gen)
    first = (torch.rand(n, generator=gen) * half).long().clamp_(max=half - 1)
    second = half + (torch.rand(n, generator=gen) * (seq_len - half)).long().clamp_(max=seq_len - half - 1)
    markers = torch.zeros(n, seq_len)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return torch.stack([values, markers], dim=2), target.unsqueeze(1)
