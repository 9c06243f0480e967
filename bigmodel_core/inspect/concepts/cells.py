"""LSTM and GRU cells step by step, every gate value kept, in PyTorch's weight layout.

LSTM gates are ordered (i, f, g, o) and GRU gates (r, z, n) in the weight matrices, as in
PyTorch. The GRU is shown in the textbook convention ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``;
PyTorch's ``z`` is ``1 - z_t`` (see :func:`gru_steps`). The check runs the same weights in
``nn.LSTMCell`` / ``nn.GRUCell``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class CellWeights:
    """Weights in PyTorch's layout: rows stacked by gate (LSTM i,f,g,o; GRU r,z,n)."""

    kind: Literal["lstm", "gru"]
    weight_ih: np.ndarray  # (gates * H, F)
    weight_hh: np.ndarray  # (gates * H, H)
    bias_ih: np.ndarray
    bias_hh: np.ndarray

    @property
    def hidden(self) -> int:
        return self.weight_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    def to_cell(self) -> nn.Module:
        """The same weights in an ``nn.LSTMCell`` / ``nn.GRUCell`` (float64)."""
        cls = nn.LSTMCell if self.kind == "lstm" else nn.GRUCell
        cell = cls(self.input_size, self.hidden).double()
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(torch.from_numpy(getattr(self, name)))
        return cell


def random_cell(kind: Literal["lstm", "gru"], input_size: int, hidden: int, seed: int = 0) -> CellWeights:
    """PyTorch's default initialisation (uniform in +-1/sqrt(hidden)) from a fixed seed."""
    if kind not in ("lstm", "gru"):
        raise ValueError(f"unknown cell {kind!r}; choose lstm or gru")
    if input_size < 1 or hidden < 1:
        raise ValueError(f"input_size and hidden must be at least 1, got {input_size} and {hidden}")
    gen = torch.Generator().manual_seed(seed)
    gates = 4 if kind == "lstm" else 3
    bound = 1.0 / np.sqrt(hidden)

    def draw(*shape: int) -> np.ndarray:
        return ((torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound).numpy()

    return CellWeights(kind, draw(gates * hidden, input_size), draw(gates * hidden, hidden),
                       draw(gates * hidden), draw(gates * hidden))


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _sequence(xs: np.ndarray | list[float], input_size: int) -> np.ndarray:
    arr = np.asarray(xs, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != input_size:
        raise ValueError(f"the sequence must have {input_size} feature(s) per step, got shape {arr.shape}")
    if len(arr) == 0:
        raise ValueError("the sequence is empty")
    if not np.isfinite(arr).all():
        raise ValueError("the sequence contains a value that is not a finite number")
    return arr


@dataclass(frozen=True)
class LSTMStep:
    t: int  # 1-based
    x: np.ndarray
    h_prev: np.ndarray
    c_prev: np.ndarray
    i: np.ndarray  # input gate
    f: np.ndarray  # forget gate
    g: np.ndarray  # candidate cell value
    o: np.ndarray  # output gate
    c: np.ndarray
    h: np.ndarray


def lstm_steps(xs: np.ndarray | list[float], w: CellWeights, h0: np.ndarray | None = None,
               c0: np.ndarray | None = None) -> list[LSTMStep]:
    """Run the LSTM equations over the sequence, keeping every gate value.

    i = s(W_ii x + b_ii + W_hi h + b_hi), f = s(...), g = tanh(...), o = s(...)
    c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)
    """
    if w.kind != "lstm":
        raise ValueError("lstm_steps needs LSTM weights")
    seq = _sequence(xs, w.input_size)
    hid = w.hidden
    h = np.zeros(hid) if h0 is None else np.asarray(h0, dtype=np.float64)
    c = np.zeros(hid) if c0 is None else np.asarray(c0, dtype=np.float64)
    steps = []
    for t, x in enumerate(seq, start=1):
        a = w.weight_ih @ x + w.bias_ih + w.weight_hh @ h + w.bias_hh
        i, f, g, o = (a[k * hid:(k + 1) * hid] for k in range(4))
        i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        steps.append(LSTMStep(t, x, h, c, i, f, g, o, c_new, h_new))
        h, c = h_new, c_new
    return steps


@dataclass(frozen=True)
class GRUStep:
    t: int
    x: np.ndarray
    h_prev: np.ndarray
    r: np.ndarray  # reset gate
    z: np.ndarray  # update gate, textbook convention: share of the new candidate
    n: np.ndarray  # candidate state h~_t
    h: np.ndarray

    @property
    def z_pytorch(self) -> np.ndarray:
        """PyTorch's z: the share of the *old* state kept, 1 - z."""
        return 1.0 - self.z


def gru_steps(xs: np.ndarray | list[float], w: CellWeights, h0: np.ndarray | None = None) -> list[GRUStep]:
    """Run the GRU equations (update and reset gates only) over the sequence.

    r_t = s(W_ir x + b_ir + W_hr h + b_hr)
    z_t = s(-(W_iz x + b_iz + W_hz h + b_hz))        textbook z; PyTorch's z is 1 - z_t
    n_t = tanh(W_in x + b_in + r_t * (W_hn h + b_hn)) the candidate h~_t (reset applied after W_hn, as PyTorch)
    h_t = (1 - z_t) * h_{t-1} + z_t * n_t
    """
    if w.kind != "gru":
        raise ValueError("gru_steps needs GRU weights")
    seq = _sequence(xs, w.input_size)
    hid = w.hidden
    h = np.zeros(hid) if h0 is None else np.asarray(h0, dtype=np.float64)
    steps = []
    for t, x in enumerate(seq, start=1):
        gi = w.weight_ih @ x + w.bias_ih
        gh = w.weight_hh @ h + w.bias_hh
        r = _sigmoid(gi[:hid] + gh[:hid])
        # sigmoid(-a) = 1 - sigmoid(a): the textbook's gate uses PyTorch's update weights negated.
        z = _sigmoid(-(gi[hid:2 * hid] + gh[hid:2 * hid]))
        n = np.tanh(gi[2 * hid:] + r * gh[2 * hid:])
        h_new = (1.0 - z) * h + z * n
        steps.append(GRUStep(t, x, h, r, z, n, h_new))
        h = h_new
    return steps


def check_cell(xs: list[float] | np.ndarray, w: CellWeights, step: LSTMStep | GRUStep) -> float:
    """The hand-computed state after ``xs`` (h_t, and c_t for an LSTM) against nn.LSTMCell / nn.GRUCell
    with the same weights, in float64."""
    cell = w.to_cell()
    seq = _sequence(xs, w.input_size)
    h = torch.zeros(1, w.hidden, dtype=torch.float64)
    c = torch.zeros(1, w.hidden, dtype=torch.float64)
    with torch.no_grad():
        for x in seq:
            xt = torch.tensor(x[None, :], dtype=torch.float64)
            if isinstance(step, LSTMStep):
                h, c = cell(xt, (h, c))
            else:
                h = cell(xt, h)
    diff = float(np.abs(h[0].numpy() - step.h).max())
    if isinstance(step, LSTMStep):
        diff = max(diff, float(np.abs(c[0].numpy() - step.c).max()))
    return diff
