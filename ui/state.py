"""Session state keys and the process-wide resources every page shares.

``st.cache_resource`` objects (the job pool, the run store) are shared by all users of
the server; they are thread-safe and hand out per-owner views only. Everything that
belongs to one learner (current config, current job id, owner token) lives in
``st.session_state``.
"""

from __future__ import annotations

import secrets

import streamlit as st

from bigmodel_core.jobs import JobPool
from bigmodel_core.presets import load_preset
from bigmodel_core.specs import ExperimentConfig
from bigmodel_core.store import RunStore, default_store, sweep_unfinished

CONFIG = "config"  # the current ExperimentConfig
OWNER = "owner"  # unguessable per-session token that owns jobs and runs
TRAIN_JOB = "train_job_id"  # the Train page's current job
NOTICE = "notice"  # one-shot message shown at the top of the next page render


@st.cache_resource
def get_store() -> RunStore:
    store = default_store()
    sweep_unfinished(store.root)  # once per server: half-written runs of a crash do not pile up
    return store


@st.cache_resource
def get_pool() -> JobPool:
    return JobPool(store=get_store())


def owner_id() -> str:
    if OWNER not in st.session_state:
        st.session_state[OWNER] = secrets.token_urlsafe(16)
    return st.session_state[OWNER]


def get_config() -> ExperimentConfig:
    if CONFIG not in st.session_state:
        st.session_state[CONFIG] = load_preset("quickstart_cnn")
    return st.session_state[CONFIG]


def set_config(cfg: ExperimentConfig) -> None:
    st.session_state[CONFIG] = cfg


def notify(message: str, kind: str = "success") -> None:
    """Show ``message`` once, at the top of the next render (survives st.rerun)."""
    st.session_state[NOTICE] = (kind, message)


def show_notice() -> None:
    kind, message = st.session_state.pop(NOTICE, (None, None))
    if message:
        getattr(st, kind, st.info)(message)
