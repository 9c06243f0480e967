"""The "Try your model" section: draw, upload or edit an input, see the model's answer and why.

Call ``render_try_model(source)`` on a page, where ``source`` is the Train page's ``Job`` (its final
weights once it has finished; while it trains, a copy of its weights taken after the latest finished
epoch) or a ``StoredRun`` (its saved weights). Image models take a drawing (ui/canvas), an uploaded
picture or a validation example; sequence models a validation sequence the learner edits. Beside the
input: the exact tensor the model receives (bigmodel_core.inspect.try_input), the class probabilities,
and below, the attributions (bigmodel_core.inspect.attributions: saliency, integrated gradients,
Grad-CAM for CNNs; over time steps for RNNs) and the feature maps or hidden state and gates for that
input (the probes of bigmodel_core.inspect.probes).

The section is a fragment: a stroke reruns only it, and its charts stay mounted in the browser
(ui/live_chart) and change in place, so the answer follows a stroke within a fraction of a second.
One model copy per browser session is kept (``try_model_cache``). Widget keys start with ``try_``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
import torch
from torch import nn

from bigmodel_core.config.specs import ExperimentConfig
from bigmodel_core.data import Dataset
from bigmodel_core.inspect import attributions, probes, try_input
from bigmodel_core.nn.models import build_model
from bigmodel_core.training.jobs import ACTIVE, Job
from bigmodel_core.training.store import StoredRun
from bigmodel_core.training.trainer import load_data
from ui.canvas import drawing_canvas
from ui.figures import attributions as figs
from ui.figures.training import PNG_CONFIG
from ui.inspect import FEATURE_NAMES
from ui.literal import md, sentence
from ui.live_chart import live_chart

CACHE = "try_model_cache"  # session key: (source key, TryModel) of the model last tried
MAPS_SHOWN = 16  # feature maps per block for a drawn input
UNITS_SHOWN = 32
_warmed = threading.Event()


@dataclass(frozen=True)
class TryModel:
    """A model ready to be tried: a probe copy of its weights, its data, and where the weights come from."""

    model: nn.Module
    dataset: Dataset
    config: ExperimentConfig
    origin: str


def _warm_captum() -> None:
    """Import Captum in the background the first time the section is drawn (about 2 s, once per server)."""
    if not _warmed.is_set():
        _warmed.set()
        threading.Thread(target=attributions.warm, name="captum-warmup", daemon=True).start()


def render_try_model(source: Job | StoredRun | None) -> None:
    """Draw the "Try your model" section for a Train page job or a stored run (nothing for None)."""
    if source is None:
        return
    _warm_captum()
    _section(source)


# --- the model -------------------------------------------------------------------------------------------
def _from_state(config: ExperimentConfig, state: dict[str, torch.Tensor], ds: Dataset) -> nn.Module:
    model = build_model(config.model, ds.info)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"the saved weights do not fit the model its config describes "
                         f"({str(exc).splitlines()[0]})") from None
    return probes.probe_copy(model)


def _cached(key: tuple, make) -> TryModel:
    cached = st.session_state.get(CACHE)
    if cached is not None and cached[0] == key:
        return cached[1]
    st.session_state.pop(CACHE, None)  # one model per session: let the previous one go first
    tm = make()
    st.session_state[CACHE] = (key, tm)
    return tm


def model_for(source: Job | StoredRun) -> TryModel | str:
    """The model to try, or a sentence saying why there is none yet."""
    if isinstance(source, StoredRun):
        def make_run() -> TryModel:
            ds = load_data(source.config)
            return TryModel(_from_state(source.config, source.load_state(), ds), ds, source.config,
                            f"the saved weights of run {source.run_id}")
        return _cached(("run", source.run_id), make_run)
    job = source
    snap = job.snapshot()
    if job.final_state is not None and snap.finished:
        def make_final() -> TryModel:
            ds = job.trainer.dataset if job.trainer is not None else load_data(job.config)
            return TryModel(_from_state(job.config, job.final_state, ds), ds, job.config,
                            "the final weights of the job" + (f" {job.label}" if job.label else ""))
        return _cached(("job", job.job_id, "final"), make_final)
    trainer = job.trainer
    if snap.status in ACTIVE and trainer is not None and snap.epochs:
        done, total = len(snap.epochs), job.config.training.epochs

        def make_live() -> TryModel:
            return TryModel(probes.probe_copy(trainer.model), trainer.dataset, job.config,
                            f"a copy of the weights taken at step {job.snapshot().step:,}, after epoch {done} of "
                            f"{total} (training goes on: the next stroke after the next epoch uses newer weights)")
        return _cached(("job", job.job_id, done), make_live)
    if snap.status in ACTIVE:
        return "Try your model becomes available at the end of the first epoch, on a copy of the weights as they are."
    return f"This job ended without weights to try ({snap.status})."


# --- the input ---------------------------------------------------------------------------------------------
def _image_input(ds: Dataset, model_key: str) -> tuple[torch.Tensor | None, tuple[str, ...], int | None, str]:
    """The chosen picture as the model's input; returns (x or None, how it was made, true class, message)."""
    info = ds.info
    mode = st.radio("Input", ["Draw", "Upload", "Validation example"], horizontal=True, key="try_mode",
                    label_visibility="collapsed")
    if mode == "Draw":
        payload = drawing_canvas(key="try_canvas", hint=f"draw a {_what(info)} with the mouse or a finger")
        try:
            pixels = try_input.drawing_pixels(payload)
        except try_input.TryInputError as exc:
            return None, (), None, f"The drawing could not be read: {sentence(exc, capital=False)}"
        if pixels is None:
            return None, (), None, f"Draw a {_what(info)} on the black pad; the answer appears when you lift the pen."
        prep = try_input.prepare_image(pixels, info)
        return prep.x, ("canvas " + prep.steps[0],) + prep.steps[1:], None, ""
    if mode == "Upload":
        up = st.file_uploader("A picture (PNG, JPEG or BMP)", type=["png", "jpg", "jpeg", "bmp"], key="try_upload")
        if up is None:
            return None, (), None, "Upload a PNG, JPEG or BMP picture; colour becomes grey."
        try:
            pixels = try_input.image_file_pixels(up.getvalue(), up.name)
        except try_input.TryInputError as exc:
            return None, (), None, f"That picture cannot be used: {sentence(exc, capital=False)}"
        dark_ink = st.checkbox("Dark ink on a light background (invert it)", value=try_input.looks_inverted(pixels),
                               key=f"try_invert_{up.file_id}",
                               help="The training images are bright ink on black; a photo of paper is the opposite. "
                                    "Ticked by itself when the picture's border is bright.")
        prep = try_input.prepare_image(1.0 - pixels if dark_ink else pixels, info)
        return prep.x, prep.steps + (("inverted",) if dark_ink else ()), None, ""
    n = len(ds.x_val)
    index = int(st.number_input(f"Validation example (0 to {n - 1})", 0, n - 1, 0, key=f"try_index_{model_key}"))
    x = ds.x_val[index].detach().cpu().float()
    return x, (f"validation example #{index}, as stored",), int(ds.y_val[index]), ""


def _sequence_input(ds: Dataset, model_key: str) -> tuple[torch.Tensor | None, tuple[str, ...], object, str]:
    info = ds.info
    names = FEATURE_NAMES.get(info.name) or [f"feature {k + 1}" for k in range(info.input_shape[1])]
    n = len(ds.x_val)
    index = int(st.number_input(f"Validation sequence (0 to {n - 1})", 0, n - 1, 0, key=f"try_seq_{model_key}"))
    base = ds.x_val[index].detach().cpu().numpy()
    frame = pd.DataFrame(base.astype(np.float64), columns=names).rename_axis("step")
    st.caption("Edit any value (a cell per time step and feature); the answer follows each edit.")
    edited = st.data_editor(frame, key=f"try_editor_{model_key}_{index}", num_rows="fixed", width="stretch",
                            height=min(320, 38 + 35 * len(frame)))
    try:
        prep = try_input.prepare_sequence(edited.to_numpy(dtype=object), info, names)
    except try_input.TryInputError as exc:
        return None, (), None, f"This sequence cannot be used: {sentence(exc, capital=False)}"
    changed = not np.array_equal(prep.x.numpy(), base.astype(np.float32))
    truth = ds.y_val[index].detach().cpu().numpy() if not changed else None
    steps = (f"validation sequence #{index}" + (", edited" if changed else ", as stored"),)
    return prep.x, steps, truth, ""


def _what(info) -> str:
    return "digit" if "digit" in info.name else ("letter" if "letter" in info.name else
                                                  "shape" if info.name == "shapes" else "picture")


# --- the section ---------------------------------------------------------------------------------------------
@st.fragment
def _section(source: Job | StoredRun) -> None:
    st.header("Try your model")
    try:
        tm = model_for(source)
    except Exception as exc:  # noqa: BLE001 - the page goes on without this section
        st.warning(f"Cannot load this model to try it: {md(sentence(exc, capital=False))}")
        return
    if isinstance(tm, str):
        st.caption(tm)
        return
    info = tm.dataset.info
    st.caption(f"Using {md(tm.origin, 300)}, in eval mode; trying it never changes training.")
    model_key = f"{tm.config.data.name}_{'x'.join(map(str, info.input_shape))}"
    left, right = st.columns([1, 2.2], gap="medium")
    with left:
        if info.kind == "image":
            x, steps, truth, message = _image_input(tm.dataset, model_key)
        else:
            x, steps, truth, message = _sequence_input(tm.dataset, model_key)
    with right:
        target = None
        if info.task == "classification":
            names = list(info.class_names)
            choice = st.selectbox("Explain", ["the predicted class"] + names, key=f"try_target_{model_key}",
                                  help="Whose score the attributions explain: the model's answer, or any class "
                                       "(why not a 7?)")
            target = None if choice == "the predicted class" else names.index(choice)
        if x is None:
            _placeholders(message)
            return
        drawn = _draw_answer(tm, x, steps, truth, target)
    if drawn is not None:
        _draw_why(tm, x, *drawn)


def _placeholders(message: str) -> None:
    """The charts before there is an input: the same number as after, so the first answer is an update."""
    st.caption(md(message, 300))
    live_chart([figs.empty_figure("What the model receives", "no input yet"),
                figs.empty_figure("The model's answer", "no input yet")], key="try_answer", config=PNG_CONFIG)


def _draw_answer(tm: TryModel, x: torch.Tensor, steps: tuple[str, ...], truth: object,
                 target: int | None) -> tuple[attributions.Explanation, object] | None:
    """The exact input and the model's answer, beside the input widgets; returns what the rest needs."""
    info = tm.dataset.info
    t0 = time.perf_counter()
    try:
        ex = attributions.explain(tm.model, x, info.task, target)
        inside = _inside(tm.model, x)
    except (attributions.AttributionError, probes.ProbeError) as exc:
        st.warning(md(sentence(exc)))
        return None
    ms = 1000 * (time.perf_counter() - t0)
    names = list(info.class_names)
    live_chart([figs.model_input_figure(x.detach().cpu().numpy()), figs.answer_figure(ex, names)], key="try_answer",
               config=PNG_CONFIG)
    verdict = ""
    if truth is not None and info.task == "classification":
        t = int(np.ravel(truth)[0])
        verdict = f" True class: {names[t]}, so the answer is " + ("right." if t == ex.prediction else "wrong.")
    st.caption("What the model receives: " + md(" · ".join(steps), 500) + f".{verdict} Answer, attributions and "
               f"{'feature maps' if info.kind == 'image' else 'states'} computed in {ms:.0f} ms on the server.")
    return ex, inside


def _draw_why(tm: TryModel, x: torch.Tensor, ex: attributions.Explanation, inside: object) -> None:
    """The attributions and the model's inside for this input, across the section's width."""
    info = tm.dataset.info
    names = list(info.class_names)
    explained = (names[ex.target] if names else str(ex.target)) if info.task == "classification" else "the prediction"
    x_np = x.detach().cpu().numpy()
    if info.kind == "image":
        why = figs.attribution_figures(x_np[0] if x_np.shape[0] == 1 else x_np.mean(axis=0), ex, explained)
        why += [figs.feature_maps_figure(fm) for fm in inside]  # type: ignore[union-attr]
    else:
        feat = FEATURE_NAMES.get(info.name)
        why = [figs.steps_figure(ex, feat, explained),
               figs.sequence_grid_figure(ex.integrated, "integrated gradients", feat)]
        if inside is not None:
            why.append(inside)  # type: ignore[arg-type]
    st.subheader(f"Why {explained}?" if info.task == "classification" else "Why this prediction?")
    live_chart(why, key="try_why", config=PNG_CONFIG)
    what = "pixel" if info.kind == "image" else "value"
    st.caption(f"The attributions explain the score (logit) of {explained}. Saliency: how much a small change of each "
               f"{what} moves it. Integrated gradients: each {what}'s share of the score's change from an "
               f"all-{'black' if info.kind == 'image' else 'zero'} input, warm for and blue against (they add up to "
               f"{ex.ig_total:.4g}; the change is {ex.ig_expected:.4g})."
               + (" Grad-CAM: the last conv block's maps weighted by their mean gradient, ReLU, upsampled: where that "
                  "block saw evidence." if ex.grad_cam is not None else ""))


def _inside(model: nn.Module, x: torch.Tensor):
    """The feature maps after each block's activation (CNN), or layer 1's states figure (RNN)."""
    if x.dim() == 3:
        return [fm for fm in probes.feature_maps(model, x, max_maps=MAPS_SHOWN) if fm.stage == "activation"]
    with torch.no_grad():
        _out, states = probes.rnn_states(model, x.unsqueeze(0).to(next(model.parameters()).device))
    first = states[0]
    hidden = first.h[0, :, :UNITS_SHOWN].float().cpu().numpy()
    gates = {g: v[0, :, :UNITS_SHOWN].mean(dim=1).float().cpu().numpy() for g, v in first.gates.items()
             if g != "candidate"}
    return figs.states_figure(hidden, gates, getattr(model, "family", ""), int(first.h.shape[2]))
