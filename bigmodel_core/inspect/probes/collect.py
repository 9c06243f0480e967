"""Every probe that applies, together, and the hooks that collect them while a job trains.

``Job(make_trainer=make_trainer, epoch_hooks=[epoch_hook])`` stores a :class:`ProbeResult` in
``job.extras["probes"]`` after every epoch; :func:`compute_probes` and :func:`probes_for_run`
compute the same on demand from a model or a stored run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from bigmodel_core.config.specs import CNNSpec, RNNSpec
from bigmodel_core.data import Dataset
from bigmodel_core.nn.models import ConvNet, SeqNet, build_model
from bigmodel_core.training.trainer import Callback, EpochEnd, GradNormLog, Trainer, load_data

from .common import check_index, layer_labels, probe_copy
from .gates import probe_sequence_copy
from .maps import probe_cnn_copy
from .predictions import confusion, regression, validation_outputs
from .results import GRAD_EVERY, PROBE_REQUEST, PROBES, ProbeError, ProbeResult
from .weights import weight_histograms, weight_samples

if TYPE_CHECKING:
    from bigmodel_core.training.job import Job
    from bigmodel_core.training.store import StoredRun

def compute_probes(model: nn.Module, dataset: Dataset, *, spec: CNNSpec | RNNSpec | None = None, index: int = 0,
                   epoch: int | None = None, grad_log: GradNormLog | dict[str, Any] | None = None,
                   start_weights: dict[str, np.ndarray] | None = None,
                   val_outputs: torch.Tensor | None = None) -> ProbeResult:
    """Every probe that applies to this model and task, on a copy of ``model``.

    ``val_outputs`` (the trainer's kept validation outputs) saves a validation pass;
    ``grad_log`` is ``Trainer.grad_norms``; ``start_weights`` come from :func:`weight_samples`
    of the initial model. What does not apply becomes a note.
    """
    index = check_index(dataset, index)
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
            cnn = probe_cnn_copy(m, dataset, index)
        elif isinstance(m, SeqNet):
            seq = probe_sequence_copy(m, dataset, index)
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
