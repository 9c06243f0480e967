"""The "inside the model" area of the Train page: feature maps, filters, states, gates, gradients, errors.

Call ``render_inspect(source, trainer=None)`` below the training curves, where ``source`` is
the Train page's ``Job`` (what app_pages/train.py passes), a job ``Snapshot`` (then pass the
trainer too, or it is looked up in the job pool), or a ``StoredRun`` from the run store.

While the job trains, the area shows the probes the job's epoch hook
(``bigmodel_core.inspect.probes.epoch_hook``) stored after the last epoch; the Train page redraws it
when new epochs land, at most every 30 s. Choosing another input computes the probes for it
at once, on a copy of the current weights, and asks the hook to follow that input from the
next epoch on.
Sections, each under an ``st.subheader`` a learner can find: "Feature maps", "Filters",
"Hidden state", "Gates", "Gradients", "Confusion matrix" (only those that apply; a
regression task gets "Predictions vs targets" instead of the confusion matrix). Every
figure downloads as PNG from its toolbar and its numbers as CSV. Widget keys start
with ``inspect_``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch

from bigmodel_core.data import Dataset
from bigmodel_core.inspect import attributions, probes
from bigmodel_core.nn.models import build_model
from bigmodel_core.training.jobs import ACTIVE, Job, Snapshot
from bigmodel_core.training.store import StoredRun
from bigmodel_core.training.trainer import Trainer, load_data
from ui import state
from ui.figures import attributions as attribution_figs
from ui.figures import probes as figs
from ui.literal import md, sentence

CACHE = "inspect_cache"  # session key: (cache key, ProbeResult) of the last on-demand computation
WHY_CACHE = "inspect_why_cache"  # session key: (cache key, explanations) of the wrong examples' attributions
SEED = "inspect_seed"  # session key: seed of the "one per class" draw
FEATURE_NAMES = {"adding_problem": ["value", "marker"], "sine_wave": ["value"]}


def render_inspect(source: Job | Snapshot | StoredRun | None, trainer: Trainer | None = None) -> None:
    """Draw the inspect area for a training job (live or finished) or a stored run."""
    if source is None:
        return
    if isinstance(source, StoredRun):
        _body(source=source, trainer=None)
        return
    job = source if isinstance(source, Job) else _find_job(source)
    snap = source.snapshot() if isinstance(source, Job) else source
    trainer = trainer or (job.trainer if job is not None else None)
    # Drawn with the page, not as a polling fragment: the probes change once per epoch, and the
    # Train page's live view reruns the page when new epochs have landed (at most every 30 s).
    # Redrawing these figures every few seconds cost the training thread a large share of a
    # small machine's CPU.
    _body(source=snap, trainer=trainer, job=job)


def _find_job(snap: Snapshot) -> Job | None:
    try:
        return state.get_pool().get(state.owner_id(), snap.job_id)
    except Exception:  # noqa: BLE001 - without the pool the area still shows what the snapshot holds
        return None


# --- choosing the input -----------------------------------------------------------------------------
def _dataset(source: Snapshot | StoredRun, trainer: Trainer | None) -> Dataset:
    if trainer is not None:
        return trainer.dataset
    return load_data(source.config)


def _choose_input(ds: Dataset, default: int) -> tuple[int, bool]:
    """Widgets for the probed validation input; returns (index, refresh pressed)."""
    n = len(ds.x_val)
    classification = ds.info.task == "classification"
    cols = st.columns([1.3, 1.6, 1, 1])
    how = "by index"
    if classification:
        how = cols[0].radio("Pick the input", ["by index", "one per class"], horizontal=True, key="inspect_pick")
    if how == "by index":
        index = int(cols[1].number_input(f"Validation example (0 to {n - 1})", min_value=0, max_value=n - 1,
                                         value=min(default, n - 1), step=1, key="inspect_index"))
    else:
        if cols[2].button("New random examples", key="inspect_reroll", help="Draw another example of each class"):
            st.session_state[SEED] = st.session_state.get(SEED, 0) + 1
        picks = probes.examples_per_class(ds, st.session_state.get(SEED, 0))
        names = ds.info.class_names
        choice = cols[1].selectbox("Class", list(picks), format_func=lambda k: f"{names[k]} (example #{picks[k]})",
                                   key="inspect_class")
        index = picks[choice]
    refresh = cols[3].button("Refresh now", key="inspect_refresh",
                             help="Probe the current weights now instead of waiting for the end of the epoch")
    return index, refresh


# --- getting results --------------------------------------------------------------------------------
def _result(source: Snapshot | StoredRun, trainer: Trainer | None, job: Job | None, ds: Dataset, index: int,
            refresh: bool) -> tuple[probes.ProbeResult | None, str]:
    """The probes to show for ``index`` and a caption saying where they come from."""
    if isinstance(source, StoredRun):
        key = ("run", source.run_id, index)
        return _cached(key, lambda: probes.probes_for_run(source, index)), f"final weights of run {source.run_id}"
    epoch_res = source.extras.get(probes.PROBES)
    if job is not None and source.status in ACTIVE:
        current = (source.extras.get(probes.PROBE_REQUEST) or {}).get("index", 0)
        if current != index:
            probes.request_index(job, index)  # later epochs follow the learner's choice
    latest_epoch = len(source.epochs)
    if refresh and trainer is not None:
        key = ("job", source.job_id, index, time.time())
        return _cached(key, lambda: probes.probes_for_trainer(trainer, index, latest_epoch)), \
            f"probed on demand at step {source.step}"
    cached = st.session_state.get(CACHE)
    if cached and cached[0][:3] == ("job", source.job_id, index) and (
            epoch_res is None or (cached[1].epoch or 0) >= (epoch_res.epoch or 0)):
        return cached[1], "probed on demand"
    if isinstance(epoch_res, probes.ProbeResult) and epoch_res.index == index:
        return epoch_res, f"measured after epoch {epoch_res.epoch}"
    if trainer is not None and (epoch_res is not None or source.finished):
        key = ("job", source.job_id, index, latest_epoch)
        what = "final weights" if source.finished else f"weights after epoch {latest_epoch}"
        return _cached(key, lambda: probes.probes_for_trainer(trainer, index, latest_epoch)), what
    return None, ""


def _cached(key: tuple, compute: Any) -> probes.ProbeResult:
    cached = st.session_state.get(CACHE)
    if cached and cached[0] == key:
        return cached[1]
    with st.spinner("Probing the model..."):
        res = compute()
    st.session_state[CACHE] = (key, res)
    return res


# --- drawing ----------------------------------------------------------------------------------------
def _chart(fig: Any, name: str) -> None:
    st.plotly_chart(fig, width="stretch", config=figs.png_config(name), key=f"inspect_chart_{name}")


def _csv(df: pd.DataFrame, label: str, name: str, index: bool = False) -> None:
    st.download_button(f"{label} (CSV)", df.to_csv(index=index), file_name=f"{name}.csv", mime="text/csv",
                       key=f"inspect_csv_{name}", icon=":material/download:")


def _body(source: Snapshot | StoredRun, trainer: Trainer | None, job: Job | None = None) -> None:
    st.header("Inside the model")
    if isinstance(source, Snapshot) and not source.epochs and (trainer is None or source.status == "queued"):
        st.caption("Nothing to inspect: the run ended before its first epoch." if source.finished else
                   "Feature maps, states, gates and gradients appear here after the first epoch.")
        return
    try:
        ds = _dataset(source, trainer)
    except Exception as exc:  # noqa: BLE001 - the page goes on without the inspect area
        st.warning(f"Cannot load the data to inspect this model: {md(sentence(exc, capital=False))}")
        return
    epoch_res = source.extras.get(probes.PROBES) if isinstance(source, Snapshot) else None
    default = epoch_res.index if isinstance(epoch_res, probes.ProbeResult) else 0
    index, refresh = _choose_input(ds, default)
    try:
        res, origin = _result(source, trainer, job, ds, index, refresh)
    except probes.ProbeError as exc:
        st.warning(md(sentence(exc)))
        return
    except Exception as exc:  # noqa: BLE001 - a probe that breaks must not take the Train page with it
        st.warning(f"Could not probe this model: {type(exc).__name__}: {md(sentence(exc, capital=False))}")
        return
    if res is None:
        st.info("The probes appear after the first epoch; press **Refresh now** to look at the weights as they are.")
        return
    st.caption(f"Validation example #{res.index} · {origin} · computed on a copy of the weights in eval mode, "
               "so looking never changes training."
               + (" While it trains this area is redrawn at most every 30 s (each redraw takes CPU from "
                  "training); **Refresh now** shows the weights as they are." if isinstance(source, Snapshot)
                  and source.status in ACTIVE else ""))
    if res.cnn is not None:
        _cnn_sections(res.cnn)
    if res.sequence is not None:
        _sequence_sections(res.sequence, res.dataset, res.task)
    _gradient_section(res)
    if res.confusion is not None:
        _confusion_section(res.confusion, source, trainer, res.epoch)
    if res.regression is not None:
        _regression_section(res.regression)
    for note in res.notes:
        st.caption(f"Note: {note}")
    hook_error = source.extras.get("hook_error") if isinstance(source, Snapshot) else None
    if hook_error:
        st.caption(f"The per-epoch probe failed ({hook_error}); training was not affected.")


def _cnn_sections(cnn: probes.CNNProbe) -> None:
    st.subheader("Feature maps")
    c1, c2 = st.columns([1, 2])
    with c1:
        title = f"Input #{cnn.index} (true {cnn.class_names[cnn.label] if cnn.class_names else cnn.label})"
        _chart(figs.input_figure(cnn.image, title), "input")
    with c2:
        _chart(figs.probabilities_figure(cnn.probs, cnn.class_names, cnn.label), "class_probabilities")
    scaling = st.radio("Colour scale", ["one per layer", "one per map"], horizontal=True, key="inspect_scaling",
                       help="One per layer compares maps with each other; one per map shows the pattern of weak maps")
    mode = "layer" if scaling == "one per layer" else "map"
    blocks = sorted({fm.block for fm in cnn.layers})
    for b in blocks:
        stages = [fm for fm in cnn.layers if fm.block == b]
        cols = st.columns(len(stages))
        for col, fm in zip(cols, stages):
            with col:
                _chart(figs.feature_maps_figure(fm.maps, fm.name, scaling=mode, total=fm.shape[0]),
                       f"feature_maps_block{fm.block}_{fm.stage}")
    frames = [probes.maps_frame(fm.maps).assign(layer=fm.name) for fm in cnn.layers]
    d1, d2, d3 = st.columns(3)
    with d1:
        _csv(pd.concat(frames, ignore_index=True)[["layer", "map", "row", "col", "value"]], "Feature maps",
             "feature_maps")
    with d2:
        _csv(probes.probabilities_frame(cnn.probs, cnn.class_names), "Class probabilities", "class_probabilities")
    with d3:
        _csv(probes.maps_frame(cnn.image, "channel"), f"Input #{cnn.index}", "input")
    for note in cnn.notes:
        st.caption(f"Note: {note}")
    if cnn.filters is not None:
        st.subheader("Filters")
        _chart(figs.filters_figure(cnn.filters, cnn.filter_count), "filters_layer1")
        st.caption("Each tile is one 3-D kernel of the first conv layer slid over the image: red weights add, "
                   "blue weights subtract. Early filters often become edge and stroke detectors.")
        _csv(probes.filters_frame(cnn.filters), "First-layer filters", "filters_layer1")


def _sequence_sections(seq: probes.SequenceProbe, dataset: str, task: str) -> None:
    st.subheader("Hidden state")
    x = seq.x
    if x.shape[1] > 2:
        names = seq.class_names
        pred = int(np.argmax(seq.output)) if task == "classification" else None
        title = f"Input sequence #{seq.index}" + (
            f": true {names[int(seq.target)]}, predicted {names[pred]} ({seq.output[pred]:.0%})"
            if pred is not None and names else "")
        _chart(figs.input_figure(x, title), "input_sequence")
    else:
        _chart(figs.sequence_figure(x, seq.target, seq.output, task, FEATURE_NAMES.get(dataset), seq.class_names),
               "input_sequence")
    labels = [t.label for t in seq.traces]
    choice = st.selectbox("Layer and direction", labels, key="inspect_trace") if len(labels) > 1 else labels[0]
    trace = seq.traces[labels.index(choice)]
    _chart(figs.hidden_state_figure(trace), "hidden_state")
    if trace.cell is not None:
        _chart(figs.hidden_state_figure(trace, "cell"), "cell_state")
        st.caption("The LSTM's cell state c_t is its long-term memory: unlike h_t it is not squashed by tanh, "
                   "so a unit can carry a value across many steps.")
    if seq.family == "rnn":
        st.caption("A plain RNN has no gates: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh) overwrites the "
                   "whole state every step.")
    d1, d2 = st.columns(2)
    with d1:
        _csv(probes.trace_frame(trace), f"States and gates of {trace.label}", f"states_{trace.label.replace(' ', '_')}")
    with d2:
        names = FEATURE_NAMES.get(dataset) or [f"feature_{k + 1}" for k in range(x.shape[1])]
        _csv(pd.DataFrame(x, columns=names).rename_axis("step").reset_index(), f"Input sequence #{seq.index}",
             "input_sequence")
    for note in seq.notes:
        st.caption(f"Note: {note}")
    if trace.gates:
        st.subheader("Gates")
        _chart(figs.gates_figure(trace, seq.family), "gates")
        _chart(figs.gate_means_figure(trace, seq.family), "gate_means")
        if seq.family == "gru":
            st.caption(figs.GRU_CONVENTION + " A GRU has only these two gates: no forget or output gate.")
        else:
            st.caption(f"LSTM: {figs.LSTM_EQUATIONS}. Forget gate near 1 keeps memory; input gate near 1 writes; "
                       "output gate near 1 exposes it. Recomputed from the layer's own weights; the tests check "
                       "these equations against PyTorch's nn.LSTM and nn.GRU.")


def _gradient_section(res: probes.ProbeResult) -> None:
    st.subheader("Gradients")
    if res.grad_steps:
        _chart(figs.grad_norms_figure(res.grad_steps, res.grad_norms), "gradient_norms")
        _csv(probes.grad_norms_frame(res.grad_steps, res.grad_norms), "Gradient norms", "gradient_norms")
    else:
        st.caption("Gradient norms are measured while training, every few steps; none were recorded for this run.")
    if res.sequence is not None and res.sequence.hidden_grads:
        _chart(figs.hidden_grads_figure(res.sequence.hidden_grads, res.sequence.hidden_grad_count),
               "hidden_state_gradients")
        st.caption("How strongly the loss reaches back to each time step (log scale). On a long sequence it falls "
                   "off steeply towards the first steps at the start of training (vanishing gradients). A plain RNN "
                   "stays that way; an LSTM or GRU can learn to keep the signal alive (forget gate near 1, or GRU "
                   "update gate z near 1), so watch the curve lift over the epochs.")
        _csv(probes.hidden_grads_frame(res.sequence.hidden_grads), "Hidden-state gradients", "hidden_state_gradients")
    if res.weights:
        _chart(figs.weight_hist_figure(res.weights), "weight_histograms")
        _csv(probes.weights_frame(res.weights), "Weight histograms", "weight_histograms")


def _confusion_section(conf: probes.Confusion, source: Snapshot | StoredRun | None = None,
                       trainer: Trainer | None = None, epoch: int | None = None) -> None:
    st.subheader("Confusion matrix")
    _chart(figs.confusion_figure(conf.matrix, conf.class_names), "confusion_matrix")
    _chart(figs.wrong_gallery_figure(conf.wrong, conf.class_names), "confidently_wrong")
    if conf.wrong and source is not None:
        _why_wrong(conf, source, trainer, epoch)
    c1, c2 = st.columns(2)
    with c1:
        _csv(probes.confusion_frame(conf), "Confusion matrix", "confusion_matrix", index=True)
    with c2:
        _csv(probes.wrong_frame(conf), "Confidently wrong examples", "confidently_wrong")


def _why_wrong(conf: probes.Confusion, source: Snapshot | StoredRun, trainer: Trainer | None,
               epoch: int | None) -> None:
    """Each confidently wrong example next to the attribution of its (wrong) predicted class."""
    image = conf.wrong[0].x.ndim == 3
    methods = ["grad-cam", "integrated gradients", "saliency"] if image else ["integrated gradients", "saliency"]
    c = st.columns([1, 2.4], vertical_alignment="center")
    show = c[0].toggle("Why? Attributions", value=True, key="inspect_why",
                       help="What each example's pixels (or time steps) did for the wrong answer, by Captum")
    method = c[1].radio("Attribution", methods, horizontal=True, key="inspect_why_method", disabled=not show,
                        label_visibility="collapsed")
    if not show:
        return
    ident = source.run_id if isinstance(source, StoredRun) else source.job_id
    key = (ident, epoch, method, tuple(w.index for w in conf.wrong))
    cached = st.session_state.get(WHY_CACHE)
    if cached and cached[0] == key:
        explanations = cached[1]
    else:
        try:
            model = _model_copy(source, trainer)
            x = torch.stack([torch.from_numpy(w.x) for w in conf.wrong])
            explanations = attributions.explain_batch(model, x, "classification", [w.pred for w in conf.wrong],
                                                      methods=(method,))
        except (ValueError, RuntimeError, OSError) as exc:
            st.caption(f"The attributions could not be computed: {md(sentence(exc, capital=False))}")
            return
        st.session_state[WHY_CACHE] = (key, explanations)
    _chart(attribution_figs.wrong_attributions_figure(conf.wrong, explanations, conf.class_names, method),
           "confidently_wrong_why")
    live = isinstance(source, Snapshot) and source.status in ACTIVE
    st.caption("Right of each example: what drove the wrong answer (the predicted class's score), from "
               + ("a copy of the weights as they are now" if live else "the same weights") + ". Grad-CAM: where the "
               "last conv block saw evidence; integrated gradients: warm pixels pushed towards the wrong class, blue "
               "ones against it; saliency: where a small change moves that score most.")


def _model_copy(source: Snapshot | StoredRun, trainer: Trainer | None) -> torch.nn.Module:
    """A probe copy of the model the area shows: the trainer's weights as they are, or a stored run's."""
    if trainer is not None:
        return probes.probe_copy(trainer.model)
    if not isinstance(source, StoredRun):
        raise ValueError("this job's model is no longer in memory")
    model = build_model(source.config.model, load_data(source.config).info)
    model.load_state_dict(source.load_state())
    return probes.probe_copy(model)


def _regression_section(reg: probes.Regression) -> None:
    st.subheader("Predictions vs targets")
    _chart(figs.prediction_scatter_figure(reg.predictions, reg.targets, reg.mae, reg.total), "predictions_vs_targets")
    _csv(probes.regression_frame(reg), "Predictions and targets", "predictions_vs_targets")
