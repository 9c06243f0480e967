"""The sidebar every page shares: the device in use and this session's training job."""

from __future__ import annotations

from functools import lru_cache

import streamlit as st

from bigmodel_core.jobs import ACTIVE
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


POLL_EVERY = 3.0  # seconds between sidebar refreshes while this session's job is active


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


def render(live: bool = True) -> None:
    """Draw the sidebar. ``live=False`` on a page that shows the job itself (Train): no polling.

    The panel polls only while this session's job is queued, running or paused: every rerun
    costs the browser and the server CPU that a training on the same machine would use, and a
    workshop server has one such panel per open tab.
    """
    job_id = st.session_state.get(state.TRAIN_JOB)
    job = state.get_pool().get(state.owner_id(), job_id) if job_id else None
    active = job is not None and job.status in ACTIVE
    with st.sidebar:
        st.markdown(f"**Device:** {_device()}")
        st.fragment(_job_panel, run_every=POLL_EVERY if live and active else None)()
