"""The training loop: a plain loop that yields typed events.

``Trainer.run()`` is a generator; the CLI prints its events, the app's worker thread
stores them for the page to draw. Everything random draws from per-run generators
seeded from the config, so the same config and seed give identical metrics on CPU, even
with several trainings running in one process.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence, TypeVar, Union

import torch
import torch.nn.functional as F
from torch import nn

from bigmodel_core.config.specs import ExperimentConfig, OptimizerSpec, device_problem
from bigmodel_core.data import Dataset, augment_images, build_dataset
from bigmodel_core.nn.models import SeededDropout, build_model, count_params
from bigmodel_core.nn.shapes import check_design

from .plain_loop import EVAL_CHUNK, pick_device
from .plain_loop import lr_factor as schedule_factor


# --- events -------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchEnd:
    epoch: int  # 1-based
    batch: int  # 1-based within the epoch
    batches_per_epoch: int
    step: int  # 1-based over the run
    loss: float  # data loss of this batch (per-sample mean), without L1/L2 penalties
    lr: float
    elapsed: float  # seconds since the run started


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    train_loss: float  # per-sample mean over the epoch, train mode, without penalties
    train_metric: float  # accuracy or MAE over the epoch's batches
    val_loss: float  # eval mode on the held-out split
    val_metric: float
    lr: float
    seconds: float  # this epoch's training + validation time
    samples_per_sec: float  # training samples per second of training time
    is_best: bool


@dataclass(frozen=True)
class RunEnd:
    status: str  # completed | stopped | diverged | failed
    message: str
    epochs_run: int
    best_epoch: int | None
    wall_seconds: float
    samples_per_sec: float


Event = Union[BatchEnd, EpochEnd, RunEnd]

# A batch loss this many times the first one counts as diverged even if still finite: with
# ReLUs a blown-up network can die and report a deceptively ordinary loss afterwards.
EXPLODED = 1e4


class Control:
    """Thread-safe stop/pause switches a trainer checks before every batch."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run must wake up to notice the stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_if_paused(self) -> float:
        """Block while paused; returns seconds spent paused."""
        if self._running.is_set():
            return 0.0
        t0 = time.perf_counter()
        self._running.wait()
        return time.perf_counter() - t0


def resolve_device(name: str) -> torch.device:
    """The device ``name`` names ("auto": CUDA, then MPS, then CPU); a clear error if it is not here."""
    if name != "auto":
        problem = device_problem(name)
        if problem:
            raise ValueError(f"training.device {problem}")
    return pick_device(name)


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    return {"mps": "Apple MPS", "cpu": "CPU"}.get(device.type, str(device))


def load_data(config: ExperimentConfig) -> Dataset:
    d = config.data
    return build_dataset(d.name, train_size=d.train_size, val_size=d.val_size, seed=config.seed,
                         image_size=d.image_size, seq_len=d.seq_len)


def split_decay(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Weights (2-D and up) are decayed and penalised; biases and norm scales are not (as nanoGPT)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return decay, no_decay


@dataclass
class ParamGroup:
    params: list[nn.Parameter]
    lr_scale: float = 1.0
    name: str = "all"


def build_optimizer(spec: OptimizerSpec, model: nn.Module,
                    groups: list[ParamGroup] | None = None) -> torch.optim.Optimizer:
    """The named optimizer over trainable parameters; ``groups`` give per-group lr scales."""
    if groups is None:
        groups = [ParamGroup([p for p in model.parameters() if p.requires_grad])]
    torch_groups: list[dict[str, Any]] = []
    for g in groups:
        ids = {id(p) for p in g.params if p.requires_grad}
        for decayed in (True, False):
            ps = [p for p in g.params if id(p) in ids and (p.dim() >= 2) == decayed]
            if ps:
                torch_groups.append({"params": ps, "lr": spec.lr * g.lr_scale, "name": g.name,
                                     "weight_decay": spec.weight_decay if decayed else 0.0})
    if not torch_groups:
        raise ValueError("no trainable parameters: every layer is frozen")
    m = spec.effective_momentum
    name = spec.name
    if name in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD(torch_groups, lr=spec.lr, momentum=0.0 if name == "sgd" else m,
                               nesterov=name == "nesterov")
    if name == "adagrad":
        return torch.optim.Adagrad(torch_groups, lr=spec.lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(torch_groups, lr=spec.lr, momentum=m)
    if name == "adam":
        return torch.optim.Adam(torch_groups, lr=spec.lr)
    if name == "adamw":
        return torch.optim.AdamW(torch_groups, lr=spec.lr)
    raise ValueError(f"unknown optimizer {name!r}")


def lr_factor(spec: OptimizerSpec, epoch: int, step: int, total_steps: int, epochs: int) -> float:
    """Schedule multiplier at a 0-based ``epoch`` and ``step`` (steps count over the whole run)."""
    settings = {"schedule": spec.schedule, "step_size": spec.step_size, "gamma": spec.gamma}
    return schedule_factor(settings, epoch, step, total_steps, epochs)


class GradNormLog:
    """Per-layer gradient L2 norms, measured after backward and before clipping.

    Layers are the modules that own parameters ("blocks.0.conv", "rnn.1", "classifier");
    a layer without gradients at a step (frozen) reads NaN there. When the log grows past
    ``max_points`` every other measurement is dropped and later ones are kept half as often,
    so a long run stays a few thousand points (measured values only, never interpolated).
    """

    def __init__(self, max_points: int = 2000):
        self.max_points = max_points
        self.steps: list[int] = []
        self.norms: dict[str, list[float]] = {}
        self._stride = 1
        self._calls = 0

    def record(self, step: int, model: nn.Module) -> None:
        self._calls += 1
        if (self._calls - 1) % self._stride:
            return
        groups: dict[str, list[torch.Tensor]] = {}
        for name, p in model.named_parameters():
            if p.grad is not None:
                groups.setdefault(name.rpartition(".")[0] or name, []).append(p.grad.detach())
        if not groups:
            return
        per_layer = torch.stack([torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gs]))
                                 for gs in groups.values()])
        values = dict(zip(groups, per_layer.float().cpu().tolist()))  # one device sync per record
        for name in values:
            if name not in self.norms:
                self.norms[name] = [math.nan] * len(self.steps)
        self.steps.append(step)
        for name, series in self.norms.items():
            series.append(values.get(name, math.nan))
        if len(self.steps) > self.max_points:
            self.steps = self.steps[::2]
            self.norms = {k: v[::2] for k, v in self.norms.items()}
            self._stride *= 2

    def copy(self) -> dict[str, Any]:
        """A consistent copy, safe to take from another thread while the trainer records."""
        steps, norms = list(self.steps), {k: list(v) for k, v in list(self.norms.items())}
        n = min([len(steps), *(len(v) for v in norms.values())])
        return {"steps": steps[:n], "norms": {k: v[:n] for k, v in norms.items()}}


@dataclass
class RunResult:
    """What a finished run leaves behind, for the store and the summary."""

    status: str = "running"
    message: str = ""
    history: list[EpochEnd] = field(default_factory=list)
    best_epoch: int | None = None
    wall_seconds: float = 0.0
    samples_per_sec: float = 0.0


class Callback:
    """Named points of :meth:`Trainer.run` where probes, fairness checks and fine-tuning plug in.

    Every hook does nothing here; a subclass overrides the ones it needs (``Trainer(callbacks=[...])``,
    or :meth:`Trainer.add_callback` before the run starts). Hooks run on the training thread, in the
    order the callbacks were given, and see the trainer itself.
    """

    def on_run_start(self, trainer: Trainer) -> None:
        """Before the first batch."""

    def on_train_mode(self, trainer: Trainer) -> None:
        """Right after the trainer put the model in training mode (at the start, after each evaluation)."""

    def on_batch(self, trainer: Trainer, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """A training batch as the model is about to see it (after augmentation)."""

    def after_backward(self, trainer: Trainer, step: int) -> None:
        """The gradients of ``step`` (1-based over the run) are in ``.grad``, before clipping."""

    def on_validation(self, trainer: Trainer, outputs: torch.Tensor) -> None:
        """The model's outputs over the whole validation split of the evaluation that just ran."""

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        """An epoch was trained and validated; ``event`` is what run() yields next."""

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        """The run ended (any status); ``event`` is its last event."""


C = TypeVar("C", bound=Callback)


class _Loop:
    """The counters of one run, shared by the named steps of :meth:`Trainer.run`."""

    def __init__(self, trainer: Trainer):
        cfg = trainer.config
        self.epochs = cfg.training.epochs
        self.n = len(trainer.x_train)
        self.batches = math.ceil(self.n / cfg.training.batch_size)
        self.total_steps = self.epochs * self.batches
        self.augment = cfg.data.augment and trainer.info.kind == "image"
        self.best_val = math.inf
        self.since_best = 0
        self.step = 0
        self.first_loss: float | None = None
        self.t_start = time.perf_counter()
        self.paused_total = 0.0
        self.train_time = 0.0
        self.samples_seen = 0
        self.status, self.message = "completed", ""
        # per epoch
        self.t_epoch = self.t_start
        self.paused_epoch = 0.0
        self.epoch_train_time = 0.0
        self.loss_acc = self.metric_acc = torch.zeros(())
        self.seen = 0
        self.lr = 0.0


class Trainer:
    """Trains one experiment.

    ``init_state`` loads given initial weights (fair comparisons, fine-tuning);
    ``param_groups`` replace the default single group (discriminative learning rates).
    Probes (both off by default, and free when off): ``grad_every`` records per-layer
    gradient norms into ``grad_norms`` at step 1 and every ``grad_every`` steps;
    ``keep_val_outputs`` keeps the model outputs of the last validation pass in
    ``val_outputs`` so a confusion matrix needs no second pass. ``callbacks`` plug into the
    loop's named points (:class:`Callback`).
    """

    def __init__(self, config: ExperimentConfig, *, dataset: Dataset | None = None,
                 model: nn.Module | None = None, control: Control | None = None,
                 init_state: dict[str, torch.Tensor] | None = None,
                 param_groups: list[ParamGroup] | None = None,
                 train_indices: torch.Tensor | None = None,
                 grad_every: int | None = None, keep_val_outputs: bool = False,
                 callbacks: Sequence[Callback] = ()):
        self.config = config
        self.callbacks: list[Callback] = list(callbacks)
        if grad_every is not None and grad_every < 1:
            raise ValueError(f"grad_every must be a positive number of steps, got {grad_every}")
        self.grad_every = grad_every
        self.grad_norms = GradNormLog()
        self.keep_val_outputs = keep_val_outputs
        self.val_outputs: torch.Tensor | None = None
        self.control = control or Control()
        self.device = resolve_device(config.training.device)
        self.dataset = dataset if dataset is not None else load_data(config)
        self.info = self.dataset.info
        check_design(config, self.info)  # a design that cannot train on this data fails here, naming the layer
        self.model = model if model is not None else build_model(config.model, self.info, seed=config.seed)
        if init_state is not None:
            self.model.load_state_dict(init_state)
        self.model.to(self.device)
        self.classification = self.info.task == "classification"
        # the whole toy dataset goes to the device once, not per batch
        xt, yt = self.dataset.x_train, self.dataset.y_train
        if train_indices is not None:
            xt, yt = xt[train_indices], yt[train_indices]
        self.x_train, self.y_train = xt.to(self.device), yt.to(self.device)
        self.x_val, self.y_val = self.dataset.x_val.to(self.device), self.dataset.y_val.to(self.device)
        self.param_groups = param_groups
        self.optimizer = build_optimizer(config.optimizer, self.model, param_groups)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        seed = config.seed
        self.shuffle_gen = torch.Generator().manual_seed(seed * 4 + 1)
        self.augment_gen = torch.Generator().manual_seed(seed * 4 + 2)
        dropout_gen = torch.Generator(device=self.device).manual_seed(seed * 4 + 3)
        for m in self.model.modules():
            if isinstance(m, SeededDropout):
                m.generator = dropout_gen
        self.decay_params, _ = split_decay(self.model)
        self.result = RunResult()
        self.best_state: dict[str, torch.Tensor] | None = None
        self.params = count_params(self.model)

    def add_callback(self, callback: C) -> C:
        """Plug ``callback`` into this trainer's hooks (before the run starts); returns it."""
        self.callbacks.append(callback)
        return callback

    def callback(self, kind: type[C]) -> C | None:
        """The first plugged-in callback of type ``kind``, or None."""
        return next((cb for cb in self.callbacks if isinstance(cb, kind)), None)

    # --- pieces ---------------------------------------------------------------------------
    def loss_fn(self, out: torch.Tensor, y: torch.Tensor, smoothing: float | None = None) -> torch.Tensor:
        if self.classification:
            ls = self.config.regularization.label_smoothing if smoothing is None else smoothing
            return F.cross_entropy(out, y, label_smoothing=ls)
        return F.mse_loss(out, y)

    def metric_sum(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Sum over the batch of correct predictions (classification) or absolute errors."""
        if self.classification:
            return (out.argmax(1) == y).sum()
        return (out - y).abs().sum()

    def penalty(self) -> torch.Tensor | None:
        reg = self.config.regularization
        if reg.l1 == 0 and reg.l2 == 0:
            return None
        total = torch.zeros((), device=self.device)
        for p in self.decay_params:
            if reg.l1:
                total = total + reg.l1 * p.abs().sum()
            if reg.l2:
                total = total + reg.l2 * p.pow(2).sum()
        return total

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor | None = None, y: torch.Tensor | None = None,
                 chunk: int = EVAL_CHUNK) -> tuple[float, float]:
        """Mean loss (no label smoothing, no penalty) and metric in eval mode."""
        x = self.x_val if x is None else x
        y = self.y_val if y is None else y
        was = self.model.training
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        metric_sum = torch.zeros((), device=self.device)
        on_val = x is self.x_val
        keep = on_val and (self.keep_val_outputs or bool(self.callbacks))
        outs: list[torch.Tensor] = []
        for i in range(0, len(x), chunk):
            out = self.model(x[i:i + chunk])
            if keep:
                outs.append(out)
            yb = y[i:i + chunk]
            loss_sum += self.loss_fn(out, yb, smoothing=0.0) * len(yb)
            metric_sum += self.metric_sum(out, yb)
        if keep:
            outputs = torch.cat(outs) if outs else torch.empty(0)
            if self.keep_val_outputs:
                self.val_outputs = outputs
            self._notify("on_validation", outputs)
        if was:
            self._train_mode()
        n = max(1, len(x))
        return loss_sum.item() / n, metric_sum.item() / n

    def set_lr(self, factor: float) -> float:
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * factor
        return self.optimizer.param_groups[-1]["lr"]

    # --- the loop ---------------------------------------------------------------------------
    def run(self) -> Iterator[Event]:
        """Train epoch by epoch, yielding a BatchEnd per batch, an EpochEnd per epoch, one RunEnd."""
        loop = _Loop(self)
        self._notify("on_run_start")
        self._train_mode()
        try:
            for epoch in range(loop.epochs):
                perm = self._start_epoch(loop, epoch)
                for b in range(loop.batches):
                    if self._should_stop(loop, epoch):
                        break
                    ev = self._train_batch(loop, epoch, b, perm)
                    if ev is None:  # diverged
                        break
                    yield ev
                self._end_epoch_clock(loop)
                if loop.status != "completed":
                    break
                ev = self._validate(loop, epoch)
                if ev is None:  # diverged on the validation set
                    break
                self._notify("on_epoch_end", ev)
                yield ev
                if self._early_stop(loop):
                    break
        except Exception as exc:  # noqa: BLE001 - a failed run is reported, not raised into the UI
            loop.status, loop.message = "failed", f"{type(exc).__name__}: {exc}"
        end = self._finish(loop)
        self._notify("on_run_end", end)
        yield end

    def _notify(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def _train_mode(self) -> None:
        self.model.train()
        self._notify("on_train_mode")

    def _start_epoch(self, loop: _Loop, epoch: int) -> torch.Tensor:
        loop.t_epoch = time.perf_counter()
        loop.paused_epoch = 0.0
        loop.loss_acc = torch.zeros((), device=self.device)
        loop.metric_acc = torch.zeros((), device=self.device)
        loop.seen = 0
        loop.lr = self.set_lr(lr_factor(self.config.optimizer, epoch, loop.step, loop.total_steps, loop.epochs))
        return torch.randperm(loop.n, generator=self.shuffle_gen).to(self.device)

    def _should_stop(self, loop: _Loop, epoch: int) -> bool:
        """Wait here while paused; True once a stop was asked for."""
        loop.paused_epoch += self.control.wait_if_paused()
        if self.control.stopped:
            loop.status, loop.message = "stopped", f"stopped during epoch {epoch + 1}"
            return True
        return False

    def _train_batch(self, loop: _Loop, epoch: int, b: int, perm: torch.Tensor) -> BatchEnd | None:
        """One optimizer step on batch ``b``; None when the loss diverged."""
        cfg = self.config
        if cfg.optimizer.schedule == "cosine":
            loop.lr = self.set_lr(lr_factor(cfg.optimizer, epoch, loop.step, loop.total_steps, loop.epochs))
        bs = cfg.training.batch_size
        idx = perm[b * bs:(b + 1) * bs]
        xb, yb = self.x_train[idx], self.y_train[idx]
        if loop.augment:
            xb = augment_images(xb, self.augment_gen)
        self._notify("on_batch", xb, yb)
        out = self.model(xb)
        loss = self.loss_fn(out, yb)
        objective = loss
        pen = self.penalty()
        if pen is not None:
            objective = loss + pen
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if self.grad_every and (loop.step == 0 or (loop.step + 1) % self.grad_every == 0):
            self.grad_norms.record(loop.step + 1, self.model)
        self._notify("after_backward", loop.step + 1)
        if cfg.regularization.grad_clip is not None:
            # clipping the global norm keeps one exploding step (common in RNNs) from
            # throwing the weights far away
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.regularization.grad_clip)
        self.optimizer.step()
        loss_value = loss.item()
        loop.step += 1
        if loop.first_loss is None:
            loop.first_loss = max(loss_value, 1e-3)
        if not math.isfinite(loss_value) or loss_value > EXPLODED * loop.first_loss:
            loop.status = "diverged"
            what = f"became {loss_value}" if not math.isfinite(loss_value) else \
                f"exploded to {loss_value:.3g} (it started at {loop.first_loss:.3g})"
            loop.message = (f"the loss {what} at epoch {epoch + 1}, batch {b + 1}: "
                            f"the learning rate {cfg.optimizer.lr:g} is probably too high; lower it "
                            "(try 10x smaller) or turn on gradient clipping")
            return None
        k = len(idx)
        loop.loss_acc += loss.detach() * k
        loop.metric_acc += self.metric_sum(out.detach(), yb)
        loop.seen += k
        return BatchEnd(epoch + 1, b + 1, loop.batches, loop.step, loss_value, loop.lr,
                        time.perf_counter() - loop.t_start - loop.paused_total - loop.paused_epoch)

    def _end_epoch_clock(self, loop: _Loop) -> None:
        loop.paused_total += loop.paused_epoch
        loop.epoch_train_time = time.perf_counter() - loop.t_epoch - loop.paused_epoch
        loop.train_time += loop.epoch_train_time
        loop.samples_seen += loop.seen

    def _validate(self, loop: _Loop, epoch: int) -> EpochEnd | None:
        """Evaluate on the held-out split and record the epoch; None when the validation loss diverged."""
        val_loss, val_metric = self.evaluate()
        if not math.isfinite(val_loss):
            loop.status = "diverged"
            loop.message = (f"the validation loss became {val_loss} after epoch {epoch + 1}; "
                            "lower the learning rate or turn on gradient clipping")
            return None
        es = self.config.regularization.early_stopping
        is_best = val_loss < loop.best_val
        if is_best:
            loop.best_val, loop.since_best = val_loss, 0
            self.result.best_epoch = epoch + 1
            if es is not None and es.restore_best:
                self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            loop.since_best += 1
        seconds = time.perf_counter() - loop.t_epoch - loop.paused_epoch
        seen = max(1, loop.seen)
        ev = EpochEnd(epoch + 1, loop.loss_acc.item() / seen, loop.metric_acc.item() / seen, val_loss, val_metric,
                      loop.lr, seconds, loop.seen / max(loop.epoch_train_time, 1e-9), is_best)
        self.result.history.append(ev)
        return ev

    def _early_stop(self, loop: _Loop) -> bool:
        es = self.config.regularization.early_stopping
        if es is not None and loop.since_best >= es.patience:
            loop.message = (f"early stopping: validation loss did not improve for {es.patience} epochs "
                            f"(best at epoch {self.result.best_epoch})")
            return True
        return False

    def _finish(self, loop: _Loop) -> RunEnd:
        es = self.config.regularization.early_stopping
        if es is not None and es.restore_best and self.best_state is not None and \
                loop.status in ("completed", "stopped"):
            self.model.load_state_dict(self.best_state)
            if loop.message:
                loop.message += "; restored the weights of the best epoch"
        self.result.status = loop.status
        self.result.message = loop.message
        self.result.wall_seconds = time.perf_counter() - loop.t_start - loop.paused_total
        self.result.samples_per_sec = loop.samples_seen / max(loop.train_time, 1e-9)
        return RunEnd(loop.status, loop.message, len(self.result.history), self.result.best_epoch,
                      self.result.wall_seconds, self.result.samples_per_sec)

    def fit(self) -> RunResult:
        """Run to the end, discarding events."""
        for _ in self.run():
            pass
        return self.result

    def summary(self) -> dict[str, Any]:
        """The summary.json contents for this run (see DESIGN.md)."""
        h = self.result.history
        final: dict[str, float | None] = {"train_loss": None, "val_loss": None}
        metric_key = "val_accuracy" if self.classification else "val_mae"
        final[metric_key] = None
        if h:
            last = h[-1]
            if self.best_state is not None and self.result.best_epoch is not None:
                last = h[self.result.best_epoch - 1]
            final = {"train_loss": last.train_loss, "val_loss": last.val_loss, metric_key: last.val_metric}
        return {
            "status": self.result.status,
            "message": self.result.message,
            "epochs_run": len(h),
            "best_epoch": self.result.best_epoch,
            "final": final,
            "params": self.params,
            "device": device_label(self.device),
            "wall_seconds": round(self.result.wall_seconds, 3),
            "samples_per_sec": round(self.result.samples_per_sec, 1),
            "task": self.info.task,
        }
