"""The training loop: a plain loop that yields typed events.

``Trainer.run()`` is a generator; the CLI prints its events, the app's worker thread
stores them for the page to draw. Everything random draws from per-run generators
seeded from the config, so the same config and seed give identical metrics on CPU at the same
thread count (``torch.get_num_threads()``, recorded in the summary), even with several
trainings running in one process. Another thread count splits the float sums differently:
the metrics then agree to a few digits, not to the last bit.

Each epoch measures the training set twice over: the running mean of the batches as trained
(dropout on, augmented, smoothed loss) and the clean value, in eval mode on the training set
(at most ``TRAIN_EVAL_MAX`` samples of it, drawn from the seed) with the plain loss.

The loop's vocabulary lives beside it, one job a module: :mod:`.events` (what a run
reports), :mod:`.callbacks` (the named points where probes and fine-tuning plug in),
:mod:`.control` (stop and pause), :mod:`.devices`, :mod:`.optim` (optimizers, parameter
groups, schedules), :mod:`.gradnorms`, :mod:`.memory_format` (channels_last on CPU) and
:mod:`.loop_state` (the run's counters, the batch losses read in groups). This module
re-exports them, so callers import the loop and its vocabulary from one place.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bigmodel_core.config.specs import ExperimentConfig
from bigmodel_core.data import Dataset, augment_images, build_dataset
from bigmodel_core.nn.models import SeededDropout, build_model, count_params
from bigmodel_core.nn.shapes import check_design

from .callbacks import C, Callback
from .control import Control
from .devices import device_label, resolve_device
from .events import BatchEnd, EpochEnd, Event, RunEnd, RunResult
from .gradnorms import GradNormLog
from .loop_state import LoopState
from .memory_format import channels_last_wanted, model_to_channels_last, to_channels_last
from .optim import ParamGroup, build_optimizer, lr_factor, split_decay
from .plain_loop import EVAL_CHUNK, TRAIN_EVAL_MAX, loss_read_every, metric_part, running_metric, train_eval_indices
from .summary import run_summary

__all__ = [
    "EXPLODED", "BatchEnd", "Callback", "Control", "EpochEnd", "Event", "GradNormLog", "ParamGroup", "RunEnd",
    "RunResult", "TRAIN_EVAL_MAX", "Trainer", "build_optimizer", "device_label", "load_data", "lr_factor",
    "resolve_device", "split_decay",
]


# A batch loss this many times the first one counts as diverged even if still finite: with
# ReLUs a blown-up network can die and report a deceptively ordinary loss afterwards.
EXPLODED = 1e4


def load_data(config: ExperimentConfig) -> Dataset:
    """The dataset ``config`` describes (built once per process and shared: see ``build_dataset``)."""
    d = config.data
    return build_dataset(d.name, train_size=d.train_size, val_size=d.val_size, seed=config.seed,
                         image_size=d.image_size, seq_len=d.seq_len)


class Trainer:
    """Trains one experiment.

    ``init_state`` loads given initial weights (fair comparisons, fine-tuning);
    ``param_groups`` replace the default single group (discriminative learning rates).
    Probes (both off by default, and free when off): ``grad_every`` records per-layer
    gradient norms into ``grad_norms`` at step 1 and every ``grad_every`` steps;
    ``keep_val_outputs`` keeps the model outputs of the last validation pass in
    ``val_outputs`` so a confusion matrix needs no second pass. ``callbacks`` plug into the
    loop's named points (:class:`Callback`). ``channels_last`` (True/False) overrides the
    memory-format rule of :func:`channels_last_wanted` (tests, benchmarks), ``fused_optimizer``
    the fused-step rule of :func:`.plain_loop.fused_wanted` (the pretraining recipes, benchmarks).
    """

    def __init__(self, config: ExperimentConfig, *, dataset: Dataset | None = None,
                 model: nn.Module | None = None, control: Control | None = None,
                 init_state: dict[str, torch.Tensor] | None = None,
                 param_groups: list[ParamGroup] | None = None,
                 train_indices: torch.Tensor | None = None,
                 grad_every: int | None = None, keep_val_outputs: bool = False,
                 callbacks: Sequence[Callback] = (), channels_last: bool | None = None,
                 fused_optimizer: bool | None = None):
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
        # a design that cannot train on this data fails here, naming the layer; the batches are cut
        # from the samples it really trains on (an uploaded file may hold fewer than train_size)
        n_train = len(train_indices) if train_indices is not None else len(self.dataset.y_train)
        check_design(config, self.info, train_samples=n_train)
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
        # memory format: the model and the data are converted once, here (before the optimizer's state exists)
        self.channels_last = channels_last_wanted(self.model, self.device, channels_last)
        if self.channels_last:
            model_to_channels_last(self.model)
            self.x_train, self.x_val = to_channels_last(self.x_train), to_channels_last(self.x_val)
        clean = train_eval_indices(len(self.x_train), config.seed)
        # the samples of the clean train metric (all of a small training set), never augmented
        if clean is None:
            self.x_train_eval, self.y_train_eval = self.x_train, self.y_train
        else:
            clean = clean.to(self.device)
            self.x_train_eval, self.y_train_eval = self.x_train[clean], self.y_train[clean]
        self.param_groups = param_groups
        self.optimizer = build_optimizer(config.optimizer, self.model, param_groups, fused=fused_optimizer)
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
        loop = LoopState(self, loss_read_every(self.device))
        self._notify("on_run_start")
        self._train_mode()
        try:
            for epoch in range(loop.epochs):
                perm = self._start_epoch(loop, epoch)
                for b in range(loop.batches):
                    if self._should_stop(loop, epoch):
                        break
                    self._train_batch(loop, epoch, b, perm)
                    if loop.losses.due(b == loop.batches - 1):
                        yield from self._read_losses(loop)
                        if loop.status != "completed":  # diverged
                            break
                yield from self._read_losses(loop)  # what a stop left unread
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

    def _start_epoch(self, loop: LoopState, epoch: int) -> torch.Tensor:
        loop.t_epoch = time.perf_counter()
        loop.paused_epoch = 0.0
        loop.loss_sum, loop.metric_parts, loop.metric_targets = 0.0, [], []
        loop.seen = 0
        loop.lr = self.set_lr(lr_factor(self.config.optimizer, epoch, loop.step, loop.total_steps, loop.epochs))
        return torch.randperm(loop.n, generator=self.shuffle_gen).to(self.device)

    def _should_stop(self, loop: LoopState, epoch: int) -> bool:
        """Wait here while paused; True once a stop was asked for."""
        loop.paused_epoch += self.control.wait_if_paused()
        if self.control.stopped:
            loop.status, loop.message = "stopped", f"stopped during epoch {epoch + 1}"
            return True
        return False

    def _train_batch(self, loop: LoopState, epoch: int, b: int, perm: torch.Tensor) -> None:
        """One optimizer step on batch ``b``; its loss waits in ``loop.losses`` to be read."""
        cfg = self.config
        if cfg.optimizer.schedule == "cosine":
            loop.lr = self.set_lr(lr_factor(cfg.optimizer, epoch, loop.step, loop.total_steps, loop.epochs))
        bs = cfg.training.batch_size
        idx = perm[b * bs:(b + 1) * bs]
        xb, yb = self.x_train[idx], self.y_train[idx]
        if loop.augment:
            xb = augment_images(xb, self.augment_gen)
            if self.channels_last:  # a new batch each step: the only per-batch conversion
                xb = to_channels_last(xb)
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
        loop.step += 1
        # the running metric is summed at the end of the epoch, the running loss as the losses are read
        loop.metric_parts.append(metric_part(out, self.classification))
        loop.metric_targets.append(yb)
        loop.seen += len(idx)
        loop.losses.add(loss, BatchEnd(epoch + 1, b + 1, loop.batches, loop.step, math.nan, loop.lr,
                                       time.perf_counter() - loop.t_start - loop.paused_total - loop.paused_epoch))

    def _read_losses(self, loop: LoopState) -> Iterator[BatchEnd]:
        """The queued batches' events, up to the first whose loss diverged (which ends the run)."""
        if loop.status == "diverged":
            return
        for ev in loop.losses.read():
            if loop.diverged(ev, EXPLODED, self.config.optimizer.lr):
                return
            loop.loss_sum += ev.loss * loop.samples_in(ev.batch)
            yield ev

    def _end_epoch_clock(self, loop: LoopState) -> None:
        loop.paused_total += loop.paused_epoch
        loop.epoch_train_time = time.perf_counter() - loop.t_epoch - loop.paused_epoch
        loop.train_time += loop.epoch_train_time
        loop.samples_seen += loop.seen

    def _validate(self, loop: LoopState, epoch: int) -> EpochEnd | None:
        """Evaluate on the training set (clean) and the held-out split, and record the epoch; None when
        the validation loss diverged."""
        self.model.eval()  # for both passes, then back to training once
        train_eval_loss, train_eval_metric = self.evaluate(self.x_train_eval, self.y_train_eval)
        val_loss, val_metric = self.evaluate()
        self._train_mode()
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
        train_metric = running_metric(loop.metric_parts, loop.metric_targets, self.classification)
        ev = EpochEnd(epoch + 1, loop.loss_sum / seen, train_metric / seen, val_loss, val_metric,
                      loop.lr, seconds, loop.seen / max(loop.epoch_train_time, 1e-9), is_best,
                      train_eval_loss, train_eval_metric)
        self.result.history.append(ev)
        return ev

    def _early_stop(self, loop: LoopState) -> bool:
        es = self.config.regularization.early_stopping
        if es is not None and loop.since_best >= es.patience:
            loop.message = (f"early stopping: validation loss did not improve for {es.patience} epochs "
                            f"(best at epoch {self.result.best_epoch})")
            return True
        return False

    def _finish(self, loop: LoopState) -> RunEnd:
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
        """The summary.json contents for this run (see DESIGN.md and :func:`.summary.run_summary`)."""
        return run_summary(self)
