"""What the probes measure: the result types, the caps that keep them small, and ProbeError.

Every result is a frozen dataclass of numpy arrays (never tensors), so a page can draw it, a
test can compare it and the job pool can hand it from the training thread to the page thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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
    hidden_grads: dict[str, np.ndarray]  # trace label -> mean over sequences of |dL_i/dh_t|, (T,)
    notes: tuple[str, ...] = ()
    hidden_grad_count: int = 0  # how many validation sequences the gradients are averaged over


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
