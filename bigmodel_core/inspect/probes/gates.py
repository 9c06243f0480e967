"""RNN, LSTM and GRU probes: hidden and cell states and every gate over time, by the equations.

The states are recomputed from each layer's own weights step by step (PyTorch's cell
equations; the tests check them against ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``), which also
gives the gradient of the loss with respect to the hidden state at every step: how far back
the training signal reaches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bigmodel_core.data import Dataset
from bigmodel_core.nn.models import SeqNet

from .common import check_index, family_name, model_device, probe_copy, to_numpy
from .results import GATE_NAMES, HIDDEN_GRAD_BATCH, MAX_MAPS, MAX_STEPS, ProbeError, RNNTrace, SequenceProbe


@dataclass
class DirectionStates:
    """One layer and direction, as tensors in input time order: h and c are (N, T, H)."""

    layer: int  # 0-based
    direction: str
    h: torch.Tensor
    c: torch.Tensor | None
    gates: dict[str, torch.Tensor]
    h_steps: list[torch.Tensor]  # the per-step tensors of h, in input order (for gradients)


def _family(module: nn.RNNBase) -> str:
    if isinstance(module, nn.LSTM):
        return "lstm"
    if isinstance(module, nn.GRU):
        return "gru"
    return "rnn"


def _run_direction(family: str, nonlinearity: str, x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
                   b_ih: torch.Tensor | None, b_hh: torch.Tensor | None, reverse: bool,
                   h0: torch.Tensor, c0: torch.Tensor | None) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                                                       dict[str, list[torch.Tensor]]]:
    """PyTorch's cell equations step by step; returns per-step h, c and gates in input order."""
    n, t_len, _ = x.shape
    xw = x @ w_ih.T + (b_ih if b_ih is not None else 0.0)  # the input part of every gate at once
    bh = b_hh if b_hh is not None else 0.0
    names = GATE_NAMES[family]
    hs: list[torch.Tensor] = [h0] * t_len
    cs: list[torch.Tensor] = [h0] * t_len
    gates: dict[str, list[torch.Tensor]] = {g: [h0] * t_len for g in names}
    h, c = h0, c0
    order = range(t_len - 1, -1, -1) if reverse else range(t_len)
    for t in order:
        gh = h @ w_hh.T + bh
        if family == "lstm":
            i, f, g, o = (xw[:, t] + gh).chunk(4, dim=1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            cs[t] = c
            vals = (i, f, g, o)
        elif family == "gru":
            xr, xz, xn = xw[:, t].chunk(3, dim=1)
            hr, hz, hn = gh.chunk(3, dim=1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            cand = torch.tanh(xn + r * hn)  # PyTorch puts the reset gate after W_hn h + b_hn
            h = (1 - z) * cand + z * h  # PyTorch's convention: z near 1 keeps the old state
            vals = (r, z, cand)
        else:
            pre = xw[:, t] + gh
            h = torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)
            vals = ()
        hs[t] = h
        for name, v in zip(names, vals):
            gates[name][t] = v
    return hs, (cs if family == "lstm" else []), gates


def recompute_rnn(module: nn.RNNBase, x: torch.Tensor,
                  layer_offset: int = 0) -> tuple[torch.Tensor, list[DirectionStates]]:
    """Recompute an ``nn.RNN``/``nn.LSTM``/``nn.GRU`` from its weights by the explicit equations.

    Returns the module's output sequence (same layout as ``module(x)[0]``) and the states of
    every layer and direction. Zero initial states, as the models here use.
    """
    if getattr(module, "proj_size", 0):
        raise ProbeError("LSTMs with a projection (proj_size) are not supported by the gate probe")
    family = _family(module)
    nonlin = getattr(module, "nonlinearity", "tanh")
    seq = x if module.batch_first else x.transpose(0, 1)
    n = seq.shape[0]
    hidden = module.hidden_size
    dirs = 2 if module.bidirectional else 1
    states: list[DirectionStates] = []
    for k in range(module.num_layers):
        outs = []
        for d in range(dirs):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            h0 = seq.new_zeros(n, hidden)
            hs, cs, gates = _run_direction(
                family, nonlin, seq, getattr(module, "weight_ih" + sfx), getattr(module, "weight_hh" + sfx),
                getattr(module, "bias_ih" + sfx, None) if module.bias else None,
                getattr(module, "bias_hh" + sfx, None) if module.bias else None,
                reverse=bool(d), h0=h0, c0=seq.new_zeros(n, hidden) if family == "lstm" else None)
            h_all = torch.stack(hs, dim=1)
            states.append(DirectionStates(layer_offset + k, "backward" if d else "forward", h_all,
                                          torch.stack(cs, dim=1) if cs else None,
                                          {g: torch.stack(v, dim=1) for g, v in gates.items()}, hs))
            outs.append(h_all)
        seq = torch.cat(outs, dim=2)
        # nn.RNNBase's own inter-layer dropout only acts in train mode; probes run in eval mode
    return (seq if module.batch_first else seq.transpose(0, 1)), states


def rnn_states(model: SeqNet, x: torch.Tensor) -> tuple[torch.Tensor, list[DirectionStates]]:
    """The model's output for ``x`` (N, T, F) computed through :func:`recompute_rnn`, and all states.

    Mirrors ``SeqNet.forward`` (eval mode): stacked layers, the dropout between them, the
    final state (forward direction's last step, backward direction's first), head, classifier.
    """
    if not isinstance(model, SeqNet):
        raise ProbeError(f"hidden states and gates need an RNN, LSTM or GRU; this model is a {family_name(model)}")
    states: list[DirectionStates] = []
    seq = x
    for i, layer in enumerate(model.rnn):
        if i > 0:
            seq = model.between[i - 1](seq)
        seq, st = recompute_rnn(layer, seq, layer_offset=i)
        states += st
    last = [s for s in states if s.layer == len(model.rnn) - 1]
    final = last[0].h[:, -1]
    if model.bidirectional:
        final = torch.cat([final, last[1].h[:, 0]], dim=1)
    return model.classifier(model.head(final)), states


def _stride_steps(t_len: int, max_steps: int) -> np.ndarray:
    return np.arange(0, t_len, max(1, math.ceil(t_len / max_steps)))


def _loss(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, y) if task == "classification" else F.mse_loss(out, y)


def hidden_state_gradients(model: SeqNet, dataset: Dataset, indices: torch.Tensor) -> dict[str, np.ndarray]:
    """Mean over the given validation sequences of ||dL_i/dh_t||, per layer and direction, (T,) each.

    L_i is each sequence's own training loss (no penalties): the gradient of the batch-mean loss
    would be 1/N of it, and shrink as the batch grows. Runs autograd on ``model`` itself (pass a
    :func:`probe_copy`): its parameters need not require gradients, the input is made to,
    and ``torch.autograd.grad`` leaves every ``.grad`` untouched.
    """
    dev = model_device(model)
    x = dataset.x_val[indices].to(dev).clone().requires_grad_(True)
    y = dataset.y_val[indices].to(dev)
    with torch.enable_grad():
        out, states = rnn_states(model, x)
        steps = [h for s in states for h in s.h_steps]
        # the batch mean times N is the sum of the sequences' own losses; h_t of one sequence only
        # reaches its own loss, so each gradient is that sequence's dL_i/dh_t
        total = _loss(dataset.info.task, out, y) * len(indices)
        grads = torch.autograd.grad(total, steps, allow_unused=True)
    result: dict[str, np.ndarray] = {}
    t_len = x.shape[1]
    for k, s in enumerate(states):
        g = grads[k * t_len:(k + 1) * t_len]
        norms = [gi.norm(dim=1).mean() if gi is not None else torch.zeros((), device=dev) for gi in g]
        result[f"layer {s.layer + 1} {s.direction}"] = to_numpy(torch.stack(norms))
    return result


def probe_sequence_copy(model: nn.Module, dataset: Dataset, index: int) -> SequenceProbe:
    if not isinstance(model, SeqNet):
        raise ProbeError(f"hidden states and gates need an RNN, LSTM or GRU; this model is a {family_name(model)}")
    dev = model_device(model)
    x = dataset.x_val[index]
    with torch.no_grad():
        out, states = rnn_states(model, x.unsqueeze(0).to(dev))
    t_len = x.shape[0]
    steps = _stride_steps(t_len, MAX_STEPS)
    notes: list[str] = []
    if len(steps) < t_len:
        notes.append(f"{t_len} time steps: showing every {steps[1] - steps[0]}th step")
    hidden = states[0].h.shape[2]
    if hidden > MAX_MAPS:
        notes.append(f"hidden size {hidden}: showing the first {MAX_MAPS} units")
    sel = torch.as_tensor(steps, device=dev)

    def cut(t: torch.Tensor) -> np.ndarray:
        return to_numpy(t[0].index_select(0, sel)[:, :MAX_MAPS])

    traces = tuple(RNNTrace(s.layer + 1, s.direction, steps, cut(s.h), cut(s.c) if s.c is not None else None,
                            {g: cut(v) for g, v in s.gates.items()}, hidden) for s in states)
    classification = dataset.info.task == "classification"
    output = torch.softmax(out, dim=1)[0] if classification else out[0]
    n = len(dataset.x_val)
    batch = torch.arange(index, index + min(HIDDEN_GRAD_BATCH, n)) % n  # the chosen one and its neighbours
    grads = hidden_state_gradients(model, dataset, batch)
    return SequenceProbe(model.family, index, to_numpy(x), np.asarray(dataset.y_val[index].cpu().numpy()),
                         to_numpy(output), dataset.info.class_names, traces, grads, tuple(notes), len(batch))


def probe_sequence(model: nn.Module, dataset: Dataset, index: int = 0) -> SequenceProbe:
    """Hidden states, cell states, gates and hidden-state gradients for validation sequence ``index``."""
    return probe_sequence_copy(probe_copy(model), dataset, check_index(dataset, index))
