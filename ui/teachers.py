"""Teachers for distillation, as the Fine-tune and Compare pages offer them: the shipped pretrained
models and this workspace's own stored runs.

An option is a plain key (``shipped:NAME`` or ``run:RUN_ID``) so that widgets hold strings. A
shipped model is loaded once per server (its sha256 checked against its card) and only ever read;
a stored run is looked up through the run store with the workspace as owner, so a page can never
reach another learner's run.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from bigmodel_core.experiments import finetune as ft
from bigmodel_core.experiments.distill import DistillError, Teacher, load_teacher
from bigmodel_core.training.store import StoreError
from ui import state

SHIPPED = "shipped:"
RUN = "run:"
MAX_RUN_OPTIONS = 20  # the newest stored runs of the workspace offered as teachers
HELD = "_teacher_held"  # (option key, Teacher) of the stored run last loaded in this session


@st.cache_resource(show_spinner="Checking the teacher's weights against their card…")
def _shipped(name: str) -> Teacher:
    # shared by every session: the tensors are only ever copied into a frozen network
    return load_teacher(name)


def options() -> dict[str, str]:
    """Option key -> label: the shipped models, then the workspace's newest stored runs."""
    out = {f"{SHIPPED}{n}": f"{n} (shipped): {ft.RECIPES[n].title}" for n in ft.pretrained_names()}
    for run in state.get_store().list(state.owner_id())[:MAX_RUN_OPTIONS]:
        label = str(run.summary.get("label") or run.run_id)
        final = run.summary.get("final") if isinstance(run.summary.get("final"), dict) else {}
        acc = final.get("val_accuracy")
        score = f", val acc {acc:.3f}" if isinstance(acc, (int, float)) else ""
        out[f"{RUN}{run.run_id}"] = f"your run {label[:60]} ({run.config.data.name}{score})"
    return out


def load(key: str) -> Teacher:
    """The teacher behind an option key; DistillError (with what is wrong) if it cannot be used."""
    if key.startswith(SHIPPED):
        name = key.removeprefix(SHIPPED)
        if name not in ft.RECIPES:
            raise DistillError(f"no shipped model {name!r}")
        return _shipped(name)
    if key.startswith(RUN):
        held = st.session_state.get(HELD)
        if held is not None and held[0] == key:  # one run's weights per session, not read at every rerun
            return held[1]
        run_id = key.removeprefix(RUN)
        try:
            run = state.get_store().load(run_id, owner=state.owner_id())
        except (StoreError, ValueError) as exc:
            raise DistillError(f"that run cannot be opened: {exc}") from None
        teacher = load_teacher(run.path)
        label = str(run.summary.get("label") or run.run_id)[:60]
        teacher = dataclasses.replace(teacher, label=f"your run {label}")
        st.session_state[HELD] = (key, teacher)
        return teacher
    raise DistillError(f"unknown teacher {key[:80]!r}")
