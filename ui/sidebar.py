"""The sidebar every page shares: the device in use, this workspace's jobs, and the workspace itself.

Job states come from the job pool's snapshots, the same ones the pages read, so the sidebar
and a page agree within one refresh. Slot counts are the whole server's (every learner's).

No torch here: on a server that has not trained yet there is no job pool, so there are no jobs
to show, and the device is named once the background warm-up (ui.warmup) has found it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import streamlit as st

from bigmodel_core.limits import current_limits
from ui import state, warmup

if TYPE_CHECKING:
    from bigmodel_core.training.jobs import Snapshot


def _device() -> str:
    label = warmup.device()
    if label is None and "torch" in sys.modules:  # the page loaded the engine before the warm-up got there
        from bigmodel_core.training.trainer import device_label, resolve_device  # noqa: PLC0415 - torch is loaded

        label = device_label(resolve_device("auto"))
    return label or "being detected (the engine is loading)"


def show_device(slot) -> None:
    """Write the device line into ``slot`` (from :func:`render`); app.py calls it again after the page ran,
    so a page that loaded the engine shows the device without another rerun."""
    slot.markdown(f"**Device:** {_device()}")


def status_text(snap: Snapshot, progress: bool = True) -> str:
    """A job's state in a few words; the same words on the sidebar and the pages."""
    if snap.status == "queued":
        return f"queued, position {snap.queue_position}" if snap.queue_position else "queued, starting"
    if snap.status in ("running", "paused") and progress:
        return f"{snap.status}: {snap.progress:.0%}"
    return snap.status


POLL_EVERY = 3.0  # seconds between sidebar refreshes while one of this workspace's jobs is active


def _job_panel(on_train_page: bool) -> None:
    pool = state.pool_if_started()
    owner = state.owner_id()
    if on_train_page:
        # the Train page shows its job's state and the server's slots itself, refreshed with the
        # curves: the sidebar, drawn once with the page and not polled there, points to it rather
        # than repeat numbers that age (a click on Train reruns only the page's panel)
        st.caption("Training job: its state is shown on this page, with this server's training slots.")
        return
    if pool is None:  # nothing has trained on this server since it started
        if not on_train_page:
            st.caption("Training job: interrupted by a server restart (see the Train page)." if state.interrupted()
                       else "No training job in this workspace.")
        st.caption(server_line(None))
        return
    if not on_train_page:
        job = state.train_job(pool)
        snap = pool.snapshot(owner, job.job_id) if job is not None else None
        if snap is not None:
            st.markdown(f"**Training job** · {status_text(snap)}")
            if snap.status in ("running", "paused"):
                st.progress(snap.progress)
        elif state.interrupted():
            st.caption("Training job: interrupted by a server restart (see the Train page).")
        else:
            st.caption("No training job in this workspace.")
    others = [pool.snapshot(owner, j.job_id, touch=False) for j in pool.jobs_of(owner)
              if j.kind != "train" and j.status in state.ACTIVE]
    others = [s for s in others if s is not None]
    if others:
        counts: dict[str, int] = {}
        for s in others:
            counts[s.status] = counts.get(s.status, 0) + 1
        positions = sorted(s.queue_position for s in others if s.queue_position)
        st.caption("Compare and fine-tune jobs: " + ", ".join(f"{n} {k}" for k, n in counts.items())
                   + (f" (queue positions {', '.join(map(str, positions))})" if positions else ""))
    st.caption(server_line(pool))


def server_line(pool) -> str:
    """The whole server's training slots (every learner's jobs), from ``pool`` (None: not started yet)."""
    if pool is None:
        slots = current_limits().max_concurrent_jobs
        return f"All learners on this server: 0 of {slots} training slots busy, 0 waiting."
    return (f"All learners on this server: {pool.running_count} of {pool.max_workers} training slots busy, "
            f"{pool.queued_count} waiting.")


def _fresh() -> None:
    state.start_fresh_workspace()
    state.notify("Started a fresh workspace in this browser.")


def _workspace_box() -> None:
    with st.popover("Start a fresh workspace", width="stretch"):
        st.write("This browser leaves its workspace and starts an empty one: its running jobs stop, and its runs, "
                 "comparison and fine-tunes can no longer be opened from this browser (download what you want "
                 "to keep first). On a shared computer, do this before you leave.")
        st.button("Yes, start a fresh workspace", type="primary", key="workspace_fresh", on_click=_fresh)


def render(live: bool = True):
    """Draw the sidebar. ``live=False`` on a page that shows the job itself (Train): no polling there.

    The panel polls only while one of this workspace's jobs is queued, running or paused: every
    rerun costs the browser and the server CPU that a training on the same machine would use, and
    a workshop server has one such panel per open tab.
    """
    pool = state.pool_if_started()
    active = pool is not None and any(j.status in state.ACTIVE for j in pool.jobs_of(state.owner_id()))
    with st.sidebar:
        slot = st.empty()
        show_device(slot)
        st.fragment(_job_panel, run_every=POLL_EVERY if live and active else None)(not live)
        _workspace_box()
    return slot
