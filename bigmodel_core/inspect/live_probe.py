"""A small look inside the model while it trains, for the Train page's live view.

:class:`LiveProbe` is a trainer callback. Before the first batch, after every epoch, and every
``every_seconds`` inside a long epoch, it measures one fixed validation input and hands a
:class:`LiveFrame` (a few KB) to ``publish``; the job pool's jobs keep the latest one in
``job.extras[LIVE]``, next to the curves, and the page sends it to the browser with them.

- CNN: the input image, the first conv block's feature maps after its activation (the first
  ``channels`` maps), and the predicted class with its probability.
- RNN / LSTM / GRU: the first layer's hidden state over time (the first ``units`` units) and
  the mean of each gate over those units at every step, recomputed from the layer's own
  weights by the equations in :mod:`bigmodel_core.inspect.probes` (checked against PyTorch there).
- Any model: the L2 norm of each layer's gradient at the latest step (before clipping), with the
  layer names of the Build page's table.

Looking never changes training: the maps and states come from a copy of the model in eval mode
under ``no_grad`` (probes.probe_copy), the gradient norms only read ``.grad``, and nothing draws
from a random generator. Measuring takes a few milliseconds (a copy of the weights and one
forward pass of one input), at most once per ``every_seconds`` and once per epoch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch import nn

from bigmodel_core.nn.models import ConvNet, SeqNet
from bigmodel_core.training.trainer import Callback, EpochEnd, Trainer

from . import probes

if TYPE_CHECKING:
    from bigmodel_core.training.jobs import Job

LIVE = "live_probe"  # job.extras key of the latest LiveFrame
EVERY_SECONDS = 3.0  # inside an epoch, at most this often (the page shows it every 3 s)
CHANNELS = 4  # feature maps shown
UNITS = 16  # hidden units shown
MAX_STEPS = 100  # time steps shown; longer sequences are shown every k-th step
MAX_SIDE = 32  # feature maps larger than this are shown every k-th pixel


@dataclass(frozen=True)
class LiveFrame:
    """What the live view shows at one moment of training, measured on one validation input."""

    step: int  # optimizer steps done when measured (0: before the first)
    epoch: int  # epochs finished when measured
    when: str  # "before training", "after epoch 3", "epoch 4, step 1,210"
    family: str
    index: int  # the validation input
    truth: str  # its class name, or its target value
    guess: str  # the prediction, with its probability for a class
    image: np.ndarray | None = None  # CNN: (H, W) the input's first channel
    maps: np.ndarray | None = None  # CNN: (channels, H, W) after the first block's activation
    maps_name: str = ""  # "block 1 after relu"
    maps_total: int = 0  # channels of that block
    hidden: np.ndarray | None = None  # RNN: (steps shown, units shown), layer 1 forward
    time_steps: np.ndarray | None = None  # RNN: the time index of each row of ``hidden``
    units_total: int = 0
    gates: dict[str, np.ndarray] = field(default_factory=dict)  # gate -> mean over the units shown, per step
    grad_layers: tuple[str, ...] = ()
    grad_norms: tuple[float, ...] = ()  # NaN where a layer had no gradient

    @property
    def nbytes(self) -> int:
        arrays = [a for a in (self.image, self.maps, self.hidden, self.time_steps) if a is not None]
        return sum(a.nbytes for a in arrays) + sum(g.nbytes for g in self.gates.values()) + 8 * len(self.grad_norms)


def gradient_norms(model: nn.Module, labels: dict[str, str] | None = None) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Each parameter-owning layer's gradient L2 norm, as it is in ``.grad`` now (NaN: no gradient)."""
    labels = labels or {}
    groups: dict[str, list[torch.Tensor | None]] = {}
    for name, p in model.named_parameters():
        groups.setdefault(name.rpartition(".")[0] or name, []).append(p.grad)
    names, norms = [], []
    for module, grads in groups.items():
        present = [g.detach().float() for g in grads if g is not None]
        names.append(labels.get(module, module))
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in present])))
                     if present else math.nan)
    return tuple(names), tuple(norms)


def _name(info, k: int) -> str:
    return info.class_names[k] if info.class_names and k < len(info.class_names) else str(k)


@torch.no_grad()
def _cnn_view(model: ConvNet, x: torch.Tensor, info, channels: int) -> dict:
    if len(model.blocks) == 0:
        return {}
    grabbed: list[torch.Tensor] = []
    block = model.blocks[0]
    handle = block.act.register_forward_hook(lambda _m, _i, out: grabbed.append(out.detach()))
    try:
        out = model(x.unsqueeze(0))
    finally:
        handle.remove()
    maps = grabbed[0][0]
    stride = max(1, math.ceil(max(maps.shape[1:]) / MAX_SIDE))
    shown = maps[:channels, ::stride, ::stride]
    view = {"image": x[0, ::stride, ::stride].float().cpu().numpy().astype(np.float16),
            "maps": shown.float().cpu().numpy().astype(np.float16),
            "maps_name": f"block 1 after {type(block.act).__name__.lower()}", "maps_total": int(maps.shape[0])}
    view["guess"] = _guess(out, info)
    return view


def _guess(out: torch.Tensor, info) -> str:
    """The model's answer for the probed input: its class and probability, or the predicted number."""
    if info.task == "classification":
        probs = torch.softmax(out[0].float(), dim=0)
        k = int(probs.argmax())
        return f"{_name(info, k)} ({float(probs[k]):.0%})"
    return f"{float(out[0, 0]):.3g}"


@torch.no_grad()
def _sequence_view(model: SeqNet, x: torch.Tensor, info, units: int) -> dict:
    out, states = probes.rnn_states(model, x.unsqueeze(0))
    first = states[0]  # layer 1, forward direction
    t_len = first.h.shape[1]
    steps = np.arange(0, t_len, max(1, math.ceil(t_len / MAX_STEPS)))
    sel = torch.as_tensor(steps, device=first.h.device)
    hidden = first.h[0].index_select(0, sel)[:, :units]
    gates = {g: v[0].index_select(0, sel)[:, :units].mean(dim=1).float().cpu().numpy().astype(np.float16)
             for g, v in first.gates.items() if g != "candidate"}
    view = {"hidden": hidden.float().cpu().numpy().astype(np.float16), "time_steps": steps.astype(np.int32),
            "units_total": int(first.h.shape[2]), "gates": gates}
    view["guess"] = _guess(out, info)
    return view


def measure(trainer: Trainer, index: int = 0, when: str = "", step: int = 0, epoch: int = 0,
            channels: int = CHANNELS, units: int = UNITS, with_gradients: bool = True) -> LiveFrame:
    """One LiveFrame of ``trainer``'s model as it is now (on a copy; training is not touched)."""
    ds = trainer.dataset
    info = ds.info
    index = index if 0 <= index < len(ds.x_val) else 0
    model = probes.probe_copy(trainer.model)
    x = trainer.x_val[index]
    y = ds.y_val[index]
    truth = _name(info, int(y)) if info.task == "classification" else f"{float(y.reshape(-1)[0]):.3g}"
    view: dict = {}
    if isinstance(model, ConvNet):
        view = _cnn_view(model, x, info, channels)
    elif isinstance(model, SeqNet):
        view = _sequence_view(model, x, info, units)
    labels = probes.layer_labels(trainer.config.model, info)
    names, norms = gradient_norms(trainer.model, labels) if with_gradients else ((), ())
    return LiveFrame(step=step, epoch=epoch, when=when, family=trainer.config.model.family, index=index,
                     truth=truth, guess=view.pop("guess", ""), grad_layers=names, grad_norms=norms, **view)


class LiveProbe(Callback):
    """Records a :class:`LiveFrame` before training, after each epoch and every ``every_seconds`` between."""

    def __init__(self, publish: Callable[[LiveFrame], None], index: int = 0, every_seconds: float = EVERY_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.publish = publish
        self.index = index
        self.every_seconds = every_seconds
        self.clock = clock
        self._last = 0.0
        self._epochs = 0
        self._per_epoch = 1

    def _record(self, trainer: Trainer, when: str, step: int, gradients: bool = True) -> None:
        self.publish(measure(trainer, self.index, when, step, self._epochs, with_gradients=gradients))
        self._last = self.clock()

    def on_run_start(self, trainer: Trainer) -> None:
        bs = trainer.config.training.batch_size
        self._per_epoch = max(1, math.ceil(len(trainer.x_train) / bs))
        self._record(trainer, "before training", 0, gradients=False)

    def after_backward(self, trainer: Trainer, step: int) -> None:
        if self.clock() - self._last >= self.every_seconds:
            within = step - self._epochs * self._per_epoch
            self._record(trainer, f"epoch {self._epochs + 1}, step {within:,} of {self._per_epoch:,}", step)

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        self._epochs = event.epoch
        self._record(trainer, f"after epoch {event.epoch}", event.epoch * self._per_epoch)


def attach(trainer: Trainer, publish: Callable[[LiveFrame], None], **kwargs) -> LiveProbe:
    """Plug a LiveProbe into ``trainer`` before it runs; returns it."""
    return trainer.add_callback(LiveProbe(publish, **kwargs))


def make_trainer(job: Job) -> Trainer:
    """The Train page's trainer: the probes of the inspect area (probes.make_trainer) and the live view's frames,
    kept in ``job.extras[LIVE]``. Use as ``Job(make_trainer=live_probe.make_trainer, ...)``."""
    trainer = probes.make_trainer(job)
    attach(trainer, lambda frame: job.set_extra(LIVE, frame))
    return trainer
