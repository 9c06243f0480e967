"""Look inside a model while it trains: feature maps, filters, RNN states and gates, gradients, errors.

This module owns every measurement the Train page's "inspect" area shows:

- CNN: the feature maps of every conv block after its activation and after its pooling
  (forward hooks on a copy, removed afterwards, like timm's ``FeatureHooks``), the
  first layer's filters and the class probabilities for one validation input.
- RNN/LSTM/GRU: the hidden state, the LSTM cell state and the gate activations over time,
  recomputed from each layer's own weights by the textbook equations (tests check them
  against ``nn.LSTM``/``nn.GRU``), and the gradient of the loss with respect to the hidden
  state at every step (how far back the training signal reaches).
- Any model: per-layer gradient norms over training (from ``Trainer.grad_norms``), weight
  histograms at the start and now, and the confusion matrix with the most confidently
  wrong validation examples (or predictions against targets for regression).

Probing never changes training: it works on a deep copy of the weights in eval mode,
under ``no_grad`` except for the hidden-state gradient (autograd on the copy only), and
draws nothing from the global random generators. Large layers are capped (``MAX_MAPS``
maps or units, ``MAX_STEPS`` time steps) so a big model cannot freeze the browser; a note
says what was left out. Anything that does not apply (feature maps of an LSTM, a
confusion matrix for regression) becomes a note, not an error.

Integration: ``Job(make_trainer=make_trainer, epoch_hooks=[epoch_hook])`` stores a
:class:`ProbeResult` in ``job.extras["probes"]`` after every epoch; :func:`compute_probes`
and :func:`probes_for_run` compute the same on demand from a model or a stored run.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from bigmodel_core.config.specs import CNNSpec, RNNSpec
from bigmodel_core.data import Dataset
from bigmodel_core.nn.models import ConvNet, SeqNet, build_model
from bigmodel_core.nn.shapes import infer_layers
from bigmodel_core.training.plain_loop import EVAL_CHUNK
from bigmodel_core.training.trainer import Callback, EpochEnd, GradNormLog, Trainer, load_data

if TYPE_CHECKING:
    from bigmodel_core.training.jobs import Job
    from bigmodel_core.training.store import StoredRun

MAX_MAPS = 64  # feature maps, filters or hidden units drawn per layer
MAX_STEPS = 500  # time steps kept per sequence; longer ones are shown every k-th step
MAX_WRONG = 12  # confidently wrong examples in the gallery
MAX_POINTS = 1000  # validation points in the regression scatter
HIDDEN_GRAD_BATCH = 32  # sequences averaged for the hidden-state gradient
HIST_BINS = 40
HIST_SAMPLE = 50_000  # weights per layer kept for the starting histogram
GRAD_EVERY = 10  # default steps between gradient-norm measurements

PROBES = "probes"  # job.extras key of the latest ProbeResult
PROBE_REQUEST = "probe_request"  # job.extras key the page sets to choose the probed input

GATE_NAMES = {
    "lstm": ("input", "forget", "candidate", "output"),
    "gru": ("reset", "update", "candidate"),
    "rnn": (),
}


class ProbeError(ValueError):
    """A probe that does not apply to this model or task; the message says why."""


# --- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureMaps:
    block: int  # 1-based conv block
    stage: str  # "activation" | "pool"
    name: str  # "block 1 after relu"
    shape: tuple[int, int, int]  # full (C, H, W), before capping
    maps: np.ndarray  # (min(C, MAX_MAPS), H, W)

    @property
    def capped(self) -> bool:
        return self.maps.shape[0] < self.shape[0]


@dataclass(frozen=True)
class CNNProbe:
    index: int  # validation index
    image: np.ndarray  # (C, H, W)
    label: int
    probs: np.ndarray  # (K,)
    class_names: tuple[str, ...]
    layers: tuple[FeatureMaps, ...]
    filters: np.ndarray | None  # first conv layer, (min(O, MAX_MAPS), I, k, k)
    filter_count: int
    notes: tuple[str, ...] = ()

    @property
    def prediction(self) -> int:
        return int(np.argmax(self.probs))


@dataclass(frozen=True)
class RNNTrace:
    """One layer and direction over time; arrays are (steps shown, units shown)."""

    layer: int  # 1-based
    direction: str  # "forward" | "backward"
    steps: np.ndarray  # time indices shown (0-based)
    hidden: np.ndarray
    cell: np.ndarray | None  # LSTM only
    gates: dict[str, np.ndarray]  # name -> values, see GATE_NAMES
    units: int  # hidden size before capping

    @property
    def label(self) -> str:
        return f"layer {self.layer} {self.direction}"


@dataclass(frozen=True)
class SequenceProbe:
    family: str
    index: int
    x: np.ndarray  # (T, F)
    target: np.ndarray  # class label (shape ()) or regression target (shape (1,))
    output: np.ndarray  # class probabilities (K,) or prediction (1,)
    class_names: tuple[str, ...]
    traces: tuple[RNNTrace, ...]
    hidden_grads: dict[str, np.ndarray]  # trace label -> mean |dL/dh_t| over a batch, (T,)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class WrongExample:
    index: int
    true: int
    pred: int
    confidence: float
    x: np.ndarray


@dataclass(frozen=True)
class Confusion:
    matrix: np.ndarray  # (K, K) int64, rows true class, columns predicted
    class_names: tuple[str, ...]
    wrong: tuple[WrongExample, ...]

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.matrix) / max(1, self.matrix.sum()))


@dataclass(frozen=True)
class Regression:
    predictions: np.ndarray  # first MAX_POINTS validation samples
    targets: np.ndarray
    mae: float  # over the whole validation split
    total: int


@dataclass(frozen=True)
class WeightHistogram:
    module: str
    label: str
    edges: np.ndarray  # (HIST_BINS + 1,)
    start: np.ndarray | None  # counts, None when the starting weights are unknown
    now: np.ndarray


@dataclass(frozen=True)
class ProbeResult:
    epoch: int | None
    family: str
    task: str
    dataset: str
    index: int
    cnn: CNNProbe | None = None
    sequence: SequenceProbe | None = None
    confusion: Confusion | None = None
    regression: Regression | None = None
    grad_steps: list[int] = field(default_factory=list)
    grad_norms: dict[str, list[float]] = field(default_factory=dict)  # layer label -> norms
    weights: tuple[WeightHistogram, ...] = ()
    notes: tuple[str, ...] = ()


# --- helpers -----------------------------------------------------------------------------------
def probe_copy(model: nn.Module) -> nn.Module:
    """A detached copy in eval mode: what every probe runs on, so training never notices."""
    clone = copy.deepcopy(model)
    clone.eval()
    clone.requires_grad_(False)
    return clone


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def layer_labels(spec: CNNSpec | RNNSpec | None, info: Any = None) -> dict[str, str]:
    """Module name -> the layer's name in the Build page's table ("1. conv 3x3, 16")."""
    if spec is None or info is None:
        return {}
    try:
        return {r.module: f"{r.index}. {r.name}" for r in infer_layers(spec, info) if r.module}
    except ValueError:
        return {}


def _check_index(dataset: Dataset, index: int) -> int:
    n = len(dataset.x_val)
    if not 0 <= int(index) < n:
        raise ProbeError(f"input index {index} is outside the validation split (0 to {n - 1})")
    return int(index)


def examples_per_class(dataset: Dataset, seed: int = 0) -> dict[int, int]:
    """One random validation index per class present (class -> index), reproducible from ``seed``."""
    if dataset.info.task != "classification":
        return {}
    y = dataset.y_val.detach().cpu()
    gen = torch.Generator().manual_seed(int(seed))
    out: dict[int, int] = {}
    for k in range(dataset.info.num_outputs):
        idx = torch.nonzero(y == k).flatten()
        if len(idx):
            out[k] = int(idx[torch.randint(len(idx), (1,), generator=gen)])
    return out


# --- CNN -------------------------------------------------------------------------------------------
def feature_maps(model: nn.Module, image: torch.Tensor, max_maps: int = MAX_MAPS) -> list[FeatureMaps]:
    """Feature maps of every conv block of ``model`` for one image (C, H, W).

    Runs the model as it is (callers pass a :func:`probe_copy`); the hooks are removed
    before returning even if the forward pass fails.
    """
    return _maps_and_output(model, image, max_maps)[0]


@torch.no_grad()
def _maps_and_output(model: nn.Module, image: torch.Tensor,
                     max_maps: int = MAX_MAPS) -> tuple[list[FeatureMaps], torch.Tensor]:
    if not isinstance(model, ConvNet):
        raise ProbeError(f"feature maps need a CNN; this model is a {_family_name(model)}")
    if len(model.blocks) == 0:
        raise ProbeError("this CNN has no conv layers, so there are no feature maps or filters to show")
    captured: list[tuple[int, str, str, torch.Tensor]] = []
    handles = []

    def grab(block: int, stage: str, name: str):
        def hook(_module: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            captured.append((block, stage, name, out.detach()))
        return hook

    try:
        for i, blk in enumerate(model.blocks):
            act = type(blk.act).__name__.lower()
            handles.append(blk.act.register_forward_hook(grab(i + 1, "activation", f"block {i + 1} after {act}")))
            if not isinstance(blk.pool, nn.Identity):
                pool = type(blk.pool).__name__.replace("Pool2d", "").lower()
                handles.append(blk.pool.register_forward_hook(grab(i + 1, "pool", f"block {i + 1} after {pool} pool")))
        out = model(image.unsqueeze(0).to(_device(model)))
    finally:
        for h in handles:
            h.remove()
    return [FeatureMaps(b, stage, name, tuple(t.shape[1:]), _np(t[0, :max_maps]))  # type: ignore[arg-type]
            for b, stage, name, t in captured], out


def first_filters(model: nn.Module, max_maps: int = MAX_MAPS) -> tuple[np.ndarray, int]:
    """The first conv layer's kernels (out, in, k, k), capped, and how many there are."""
    if not isinstance(model, ConvNet) or len(model.blocks) == 0:
        raise ProbeError("filters need a CNN with at least one conv layer")
    w = model.blocks[0].conv.weight
    return _np(w[:max_maps]), int(w.shape[0])


def _family_name(model: nn.Module) -> str:
    if isinstance(model, SeqNet):
        return {"rnn": "plain RNN", "lstm": "LSTM", "gru": "GRU"}[model.family]
    return type(model).__name__


@torch.no_grad()
def _probe_cnn(model: nn.Module, dataset: Dataset, index: int) -> CNNProbe:
    x = dataset.x_val[index]
    layers, out = _maps_and_output(model, x)
    filters, count = first_filters(model)
    probs = torch.softmax(out, dim=1)[0]
    notes = [f"{fm.name}: showing the first {fm.maps.shape[0]} of {fm.shape[0]} maps" for fm in layers if fm.capped]
    if count > filters.shape[0]:
        notes.append(f"first-layer filters: showing {filters.shape[0]} of {count}")
    return CNNProbe(index, _np(x), int(dataset.y_val[index]), _np(probs), dataset.info.class_names,
                    tuple(layers), filters, count, tuple(notes))


def probe_cnn(model: nn.Module, dataset: Dataset, index: int = 0) -> CNNProbe:
    """Feature maps, first-layer filters and class probabilities for validation input ``index``."""
    return _probe_cnn(probe_copy(model), dataset, _check_index(dataset, index))


# --- RNN, LSTM, GRU by their equations -------------------------------------------------------------
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
        raise ProbeError(f"hidden states and gates need an RNN, LSTM or GRU; this model is a {_family_name(model)}")
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
    """Mean over the given validation sequences of ||dL/dh_t||, per layer and direction, (T,) each.

    The loss is the training loss (no penalties). Runs autograd on ``model`` itself (pass a
    :func:`probe_copy`): its parameters need not require gradients, the input is made to,
    and ``torch.autograd.grad`` leaves every ``.grad`` untouched.
    """
    dev = _device(model)
    x = dataset.x_val[indices].to(dev).clone().requires_grad_(True)
    y = dataset.y_val[indices].to(dev)
    with torch.enable_grad():
        out, states = rnn_states(model, x)
        steps = [h for s in states for h in s.h_steps]
        grads = torch.autograd.grad(_loss(dataset.info.task, out, y), steps, allow_unused=True)
    result: dict[str, np.ndarray] = {}
    t_len = x.shape[1]
    for k, s in enumerate(states):
        g = grads[k * t_len:(k + 1) * t_len]
        norms = [gi.norm(dim=1).mean() if gi is not None else torch.zeros((), device=dev) for gi in g]
        result[f"layer {s.layer + 1} {s.direction}"] = _np(torch.stack(norms))
    return result


def _probe_sequence(model: nn.Module, dataset: Dataset, index: int) -> SequenceProbe:
    if not isinstance(model, SeqNet):
        raise ProbeError(f"hidden states and gates need an RNN, LSTM or GRU; this model is a {_family_name(model)}")
    dev = _device(model)
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
        return _np(t[0].index_select(0, sel)[:, :MAX_MAPS])

    traces = tuple(RNNTrace(s.layer + 1, s.direction, steps, cut(s.h), cut(s.c) if s.c is not None else None,
                            {g: cut(v) for g, v in s.gates.items()}, hidden) for s in states)
    classification = dataset.info.task == "classification"
    output = torch.softmax(out, dim=1)[0] if classification else out[0]
    n = len(dataset.x_val)
    batch = torch.arange(index, index + min(HIDDEN_GRAD_BATCH, n)) % n  # the chosen one and its neighbours
    grads = hidden_state_gradients(model, dataset, batch)
    return SequenceProbe(model.family, index, _np(x), np.asarray(dataset.y_val[index].cpu().numpy()), _np(output),
                         dataset.info.class_names, traces, grads, tuple(notes))


def probe_sequence(model: nn.Module, dataset: Dataset, index: int = 0) -> SequenceProbe:
    """Hidden states, cell states, gates and hidden-state gradients for validation sequence ``index``."""
    return _probe_sequence(probe_copy(model), dataset, _check_index(dataset, index))


# --- errors ------------------------------------------------------------------------------------------
@torch.no_grad()
def validation_outputs(model: nn.Module, dataset: Dataset, chunk: int = EVAL_CHUNK) -> torch.Tensor:
    """The model's outputs on the whole validation split (eval mode, on a copy)."""
    m = probe_copy(model)
    dev = _device(m)
    return torch.cat([m(dataset.x_val[i:i + chunk].to(dev)) for i in range(0, len(dataset.x_val), chunk)])


def confusion(outputs: torch.Tensor, dataset: Dataset, max_wrong: int = MAX_WRONG) -> Confusion:
    """Confusion matrix (rows true, columns predicted) and the most confidently wrong examples."""
    if dataset.info.task != "classification":
        raise ProbeError(f"a confusion matrix needs a classification task; {dataset.info.name} is regression")
    # numpy from here on: a few thousand numbers, and no tiny torch ops that wake a busy thread pool
    out = _np(outputs)
    y = dataset.y_val.detach().cpu().numpy()
    if len(out) != len(y):
        raise ProbeError(f"{len(out)} outputs for {len(y)} validation samples")
    k = dataset.info.num_outputs
    e = np.exp(out - out.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    pred = probs.argmax(axis=1)
    conf = probs[np.arange(len(pred)), pred]
    matrix = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype(np.int64)
    wrong_idx = np.flatnonzero(pred != y)
    order = wrong_idx[np.argsort(-conf[wrong_idx], kind="stable")[:max_wrong]]
    wrong = tuple(WrongExample(int(i), int(y[i]), int(pred[i]), float(conf[i]), _np(dataset.x_val[int(i)]))
                  for i in order)
    return Confusion(matrix, dataset.info.class_names, wrong)


def regression(outputs: torch.Tensor, dataset: Dataset, max_points: int = MAX_POINTS) -> Regression:
    if dataset.info.task != "regression":
        raise ProbeError(f"prediction-vs-target plots are for regression; {dataset.info.name} is classification")
    out, y = _np(outputs)[:, 0], dataset.y_val.detach().cpu().numpy()[:, 0]
    return Regression(out[:max_points], y[:max_points], float(np.abs(out - y).mean()), len(y))


# --- weights -------------------------------------------------------------------------------------------
def weight_samples(model: nn.Module, max_values: int = HIST_SAMPLE) -> dict[str, np.ndarray]:
    """Each layer's weights (tensors of 2 or more dimensions; not biases), flattened.

    Layers with more than ``max_values`` weights keep an evenly strided subset (no randomness).
    """
    groups: dict[str, list[np.ndarray]] = {}
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            groups.setdefault(name.rpartition(".")[0] or name, []).append(_np(p).ravel())
    out = {}
    for module, arrays in groups.items():
        flat = np.concatenate(arrays)  # always a copy: a sample must not follow the live weights
        if flat.size > max_values:
            flat = flat[:: math.ceil(flat.size / max_values)].copy()
        out[module] = flat
    return out


def weight_histograms(model: nn.Module | dict[str, np.ndarray], start: dict[str, np.ndarray] | None,
                      labels: dict[str, str] | None = None, bins: int = HIST_BINS) -> tuple[WeightHistogram, ...]:
    """Per-layer histograms of the weights now (a model, or its :func:`weight_samples`) and, if
    known, at the start, on shared bins."""
    labels = labels or {}
    hists = []
    now_samples = model if isinstance(model, dict) else weight_samples(model)
    for module, now in now_samples.items():
        before = start.get(module) if start else None
        now = now[np.isfinite(now)]  # a diverged run's NaN/inf weights cannot be binned
        if before is not None:
            before = before[np.isfinite(before)]
        both = now if before is None else np.concatenate([now, before])
        if both.size == 0:
            continue
        lo, hi = float(both.min()), float(both.max())
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        hists.append(WeightHistogram(module, labels.get(module, module), edges,
                                     None if before is None else np.histogram(before, edges)[0],
                                     np.histogram(now, edges)[0]))
    return tuple(hists)


# --- all together ---------------------------------------------------------------------------------------
def compute_probes(model: nn.Module, dataset: Dataset, *, spec: CNNSpec | RNNSpec | None = None, index: int = 0,
                   epoch: int | None = None, grad_log: GradNormLog | dict[str, Any] | None = None,
                   start_weights: dict[str, np.ndarray] | None = None,
                   val_outputs: torch.Tensor | None = None) -> ProbeResult:
    """Every probe that applies to this model and task, on a copy of ``model``.

    ``val_outputs`` (the trainer's kept validation outputs) saves a validation pass;
    ``grad_log`` is ``Trainer.grad_norms``; ``start_weights`` come from :func:`weight_samples`
    of the initial model. What does not apply becomes a note.
    """
    index = _check_index(dataset, index)
    info = dataset.info
    m = probe_copy(model)
    family = spec.family if spec is not None else ("cnn" if isinstance(model, ConvNet) else
                                                   getattr(model, "family", type(model).__name__))
    labels = layer_labels(spec, info)
    notes: list[str] = []
    samples = weight_samples(m)
    if not all(np.isfinite(v).all() for v in samples.values()):
        notes.append("some weights are NaN or infinite (the run diverged), so these pictures show where it broke; "
                     "lower the learning rate or turn on gradient clipping")
    cnn = seq = None
    try:
        if isinstance(m, ConvNet):
            cnn = _probe_cnn(m, dataset, index)
        elif isinstance(m, SeqNet):
            seq = _probe_sequence(m, dataset, index)
        else:
            notes.append(f"feature maps and gates are shown for this playground's CNNs and RNNs; "
                         f"this model is a {type(model).__name__}")
    except ProbeError as exc:
        notes.append(str(exc))
    if val_outputs is None or len(val_outputs) != len(dataset.y_val):
        val_outputs = validation_outputs(m, dataset)
    conf = reg = None
    if info.task == "classification":
        conf = confusion(val_outputs.detach(), dataset)
    else:
        reg = regression(val_outputs.detach(), dataset)
        notes.append(f"{info.name} is a regression task: there is no confusion matrix; "
                     "predictions are compared with targets instead")
    log = grad_log.copy() if isinstance(grad_log, GradNormLog) else (grad_log or {"steps": [], "norms": {}})
    return ProbeResult(
        epoch=epoch, family=family, task=info.task, dataset=info.name, index=index, cnn=cnn, sequence=seq,
        confusion=conf, regression=reg, grad_steps=list(log["steps"]),
        grad_norms={labels.get(k, k): list(v) for k, v in log["norms"].items()},
        weights=weight_histograms(samples, start_weights, labels), notes=tuple(notes))


def probes_for_run(run: StoredRun, index: int = 0) -> ProbeResult:
    """Probes of a finished run from the store (its final weights; no gradient history)."""
    info_ds = load_data(run.config)
    model = build_model(run.config.model, info_ds.info)
    try:
        model.load_state_dict(run.load_state())
    except RuntimeError as exc:
        raise ProbeError(f"run {run.run_id}: its saved weights do not fit the model its config describes "
                         f"({str(exc).splitlines()[0]})") from None
    res = compute_probes(model, info_ds, spec=run.config.model, index=index,
                         epoch=int(run.summary.get("epochs_run") or 0) or None)
    note = "gradient norms are measured during training only; this run was loaded from the store"
    return replace(res, notes=res.notes + (note,))


# --- the Train page's hooks ---------------------------------------------------------------------------------
class ProbeRecorder(Callback):
    """What the inspect area needs from a running trainer, plugged into its hooks: the starting
    weights (for the histograms), gradient norms every ``grad_every`` steps and the outputs of the
    last validation pass (for the confusion matrix, without a second pass)."""

    def __init__(self, trainer: Trainer, start_weights: dict[str, np.ndarray] | None, start_note: str = "",
                 grad_every: int = GRAD_EVERY):
        trainer.grad_every = trainer.grad_every or grad_every
        trainer.keep_val_outputs = True
        self.start_weights = start_weights
        self.start_note = start_note


def attach(trainer: Trainer, grad_every: int = GRAD_EVERY) -> Trainer:
    """Turn on the trainer's probe recording before it runs: gradient norms every ``grad_every``
    steps, kept validation outputs, and the starting weights for the histograms."""
    trainer.grad_every = grad_every
    trainer.add_callback(ProbeRecorder(trainer, weight_samples(trainer.model), grad_every=grad_every))
    return trainer


def make_trainer(job: Job) -> Trainer:
    """The job pool's default trainer with probes attached: ``Job(make_trainer=make_trainer, ...)``."""
    return attach(Trainer(job.config, control=job.control, init_state=job.init_state))


def probes_for_trainer(trainer: Trainer, index: int = 0, epoch: int | None = None) -> ProbeResult:
    """On-demand probes of a live or finished trainer's current weights (a copy), with its gradient log."""
    rec = trainer.callback(ProbeRecorder)
    return compute_probes(trainer.model, trainer.dataset, spec=trainer.config.model, index=index, epoch=epoch,
                          grad_log=trainer.grad_norms.copy(), start_weights=rec.start_weights if rec else None)


def request_index(job: Job, index: int) -> None:
    """Ask the epoch hook to probe validation input ``index`` from the next epoch on."""
    job.set_extra(PROBE_REQUEST, {"index": int(index)})


def _late_recorder(job: Job, trainer: Trainer) -> ProbeRecorder:
    """Recording was not attached before training: start now, and find the starting weights if exact."""
    start: dict[str, np.ndarray] | None = None
    note = ""
    if job.make_trainer is None or job.make_trainer is make_trainer:
        # the default factory builds exactly this: the seeded model, then init_state if any
        m = build_model(job.config.model, trainer.info, seed=job.config.seed)
        if job.init_state is not None:
            m.load_state_dict(job.init_state)
        start = weight_samples(m)
    else:
        note = "the starting weights were not recorded for this run (attach probes when building the trainer)"
    if trainer.grad_norms.steps == []:
        note = (note + "; " if note else "") + "gradient norms are recorded from the second epoch on"
    # added between two epochs, on the training thread: the next hook call already sees it
    return trainer.add_callback(ProbeRecorder(trainer, start_weights=start, start_note=note))


def epoch_hook(job: Job, trainer: Trainer, ev: EpochEnd) -> None:
    """An EpochHook for ``Job(epoch_hooks=[epoch_hook])``: stores a ProbeResult in ``job.extras["probes"]``.

    Cheap by design: one input's feature maps or states, the validation outputs the
    trainer already computed (when attached), capped sizes.
    """
    state = trainer.callback(ProbeRecorder) or _late_recorder(job, trainer)
    request = job.extras.get(PROBE_REQUEST) or {}
    index = int(request.get("index", 0))
    if not 0 <= index < len(trainer.dataset.x_val):
        index = 0
    res = compute_probes(trainer.model, trainer.dataset, spec=trainer.config.model, index=index, epoch=ev.epoch,
                         grad_log=trainer.grad_norms, start_weights=state.start_weights,
                         val_outputs=trainer.val_outputs)
    if state.start_note:
        res = replace(res, notes=res.notes + (state.start_note,))
    job.set_extra(PROBES, res)


# --- the numbers behind the figures, for CSV download --------------------------------------------------------
def maps_frame(maps: np.ndarray, what: str = "map") -> pd.DataFrame:
    """Long table (map, row, col, value) of a (C, H, W) stack of maps or filters."""
    c, h, w = maps.shape
    idx = np.indices((c, h, w)).reshape(3, -1)
    return pd.DataFrame({what: idx[0] + 1, "row": idx[1], "col": idx[2], "value": maps.reshape(-1)})


def filters_frame(filters: np.ndarray) -> pd.DataFrame:
    o, i, kh, kw = filters.shape
    idx = np.indices(filters.shape).reshape(4, -1)
    return pd.DataFrame({"filter": idx[0] + 1, "in_channel": idx[1] + 1, "row": idx[2], "col": idx[3],
                         "weight": filters.reshape(-1)})


def probabilities_frame(probs: np.ndarray, class_names: tuple[str, ...]) -> pd.DataFrame:
    names = list(class_names) or [str(i) for i in range(len(probs))]
    return pd.DataFrame({"class": names, "probability": probs})


def trace_frame(trace: RNNTrace) -> pd.DataFrame:
    """Long table (step, unit, hidden, cell, one column per gate) for one layer and direction."""
    steps, units = trace.hidden.shape
    cols: dict[str, Any] = {"step": np.repeat(trace.steps, units), "unit": np.tile(np.arange(1, units + 1), steps),
                            "hidden": trace.hidden.reshape(-1)}
    if trace.cell is not None:
        cols["cell"] = trace.cell.reshape(-1)
    for g, v in trace.gates.items():
        cols[f"{g}_gate" if g != "candidate" else "candidate"] = v.reshape(-1)
    return pd.DataFrame(cols)


def grad_norms_frame(steps: list[int], norms: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame({"step": steps, **norms})


def hidden_grads_frame(grads: dict[str, np.ndarray]) -> pd.DataFrame:
    t_len = len(next(iter(grads.values()))) if grads else 0
    return pd.DataFrame({"step": np.arange(t_len), **grads})


def weights_frame(hists: tuple[WeightHistogram, ...]) -> pd.DataFrame:
    rows = []
    for h in hists:
        for b in range(len(h.now)):
            rows.append({"layer": h.label, "bin_low": h.edges[b], "bin_high": h.edges[b + 1],
                         "count_start": None if h.start is None else int(h.start[b]), "count_now": int(h.now[b])})
    return pd.DataFrame(rows)


def confusion_frame(c: Confusion) -> pd.DataFrame:
    names = list(c.class_names) or [str(i) for i in range(len(c.matrix))]
    return pd.DataFrame(c.matrix, index=pd.Index(names, name="true \\ predicted"), columns=names)


def wrong_frame(c: Confusion) -> pd.DataFrame:
    name = (lambda k: c.class_names[k]) if c.class_names else str
    return pd.DataFrame([{"val_index": w.index, "true": name(w.true), "predicted": name(w.pred),
                          "confidence": w.confidence} for w in c.wrong],
                        columns=["val_index", "true", "predicted", "confidence"])


def regression_frame(r: Regression) -> pd.DataFrame:
    return pd.DataFrame({"target": r.targets, "prediction": r.predictions})
