"""The sidebar every page shares: the device in use and this session's training job."""

from __future__ import annotations

from functools import lru_cache

import streamlit as st

from bigmodel_core.train import device_label, resolve_device
from ui import state


@lru_cache(maxsize=1)
def _device() -> str:
    return device_label(resolve_device("auto"))


def _status_line(snap) -> str:
    if snap.status == "queued":
        return f"queued, position {snap.queue_position}"
    if snap.status in ("running", "paused"):
        return f"{snap.status}: {snap.progress:.0%}"
    return snap.status


@st.fragment(run_every=2.0)
def _job_panel() -> None:
    pool = state.get_pool()
    job_id = st.session_state.get(state.TRAIN_JOB)
    snap = pool.snapshot(state.owner_id(), job_id) if job_id else None
    if snap is None:
        st.caption("No training job in this session.")
    else:
        st.markdown(f"**Training job** · {_status_line(snap)}")
        if snap.status in ("running", "paused"):
            st.progress(snap.progress)
    st.caption(f"Server: {pool.running_count} of {pool.max_workers} training slots busy, "
               f"{pool.queued_count} queued")


def render() -> None:
    with st.sidebar:
        st.markdown(f"**Device:** {_device()}")
        _job_panel()
