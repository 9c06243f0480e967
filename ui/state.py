"""Session state keys, the learner's workspace, and the process-wide resources every page shares.

``st.cache_resource`` objects (the job pool, the run store, the token issuer) are shared by
all users of the server; they are thread-safe and hand out per-owner views only.

The owner of jobs and runs is the learner's workspace, not the websocket: the browser keeps
a signed token in a cookie (ui.workspace), so a reload, a new tab, a lesson link or a share
link opened in the same browser starts a session in the same workspace. What a page needs to
find its work again (the current experiment, each model family's design, the comparison, the
fine-tunes) is saved in the workspace's folder in the run store (bigmodel_core.training.workspace);
running jobs live in the job pool and are found again by owner. A browser that refuses the
cookie gets a workspace per tab, as a session.

This module loads no torch: Home and the sidebar use it before the engine is warm (ui.warmup).
The job pool and the comparison model are imported where they are first needed.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

import streamlit as st

from bigmodel_core.config.presets import load_preset
from bigmodel_core.config.specs import ConfigError, ExperimentConfig, parse_config
from bigmodel_core.training import workspace as ws
from bigmodel_core.training.store import RunStore, default_store, sweep_unfinished
from ui.workspace import cookie_token, store_token

if TYPE_CHECKING:
    from bigmodel_core.experiments.compare import Comparison
    from bigmodel_core.training.jobs import Job, JobPool

# the job states of bigmodel_core.training.jobs.ACTIVE, here so that reading a saved comparison loads no torch
ACTIVE = ("queued", "running", "paused")

CONFIG = "config"  # the current ExperimentConfig
OWNER = "owner"  # the workspace id that owns jobs and runs (derived from the browser's token)
TRAIN_JOB = "train_job_id"  # the Train page's current job
AUTOSTART = "train_autostart"  # set by Home's first-step button: the Train page starts the training on arrival
NOTICE = "notice"  # one-shot message shown at the top of the next page render
PENDING = "_workspace_pending"  # (token, nonce) of a token this session issued for the browser to keep
SAVED_CONFIG = "_workspace_saved_config"  # the config JSON last written to the workspace
FINETUNE_KEEP = 64  # fine-tune runs a workspace remembers for the Fine-tune page


@st.cache_resource
def get_store() -> RunStore:
    store = default_store()
    sweep_unfinished(store.root)  # once per server: half-written runs of a crash do not pile up
    return store


_POOL_MADE = False  # set once get_pool has built the process's pool (a process-wide fact, like the pool)


@st.cache_resource
def get_pool() -> JobPool:
    global _POOL_MADE
    from bigmodel_core.training.jobs import JobPool  # noqa: PLC0415 - loads torch: not for pages that never train
    from bigmodel_core.training.sharing import sharing_on  # noqa: PLC0415 - beside the pool it configures

    # the executor comes from BIGMODEL_EXECUTOR (threads in this process unless it says ray)
    pool = JobPool(store=get_store(), share_identical=sharing_on())
    _POOL_MADE = True
    return pool


def pool_if_started() -> JobPool | None:
    """The job pool if this process has one, else None (then no workspace has jobs): lets the sidebar
    show the state of jobs without loading torch on a server that has not trained yet."""
    return get_pool() if _POOL_MADE else None


@st.cache_resource
def get_issuer() -> ws.TokenIssuer:
    return ws.TokenIssuer(get_store().root)


# --- the workspace ------------------------------------------------------------------------------
def _new_workspace() -> str:
    try:
        token = get_issuer().issue()
    except OSError:  # the store root is not writable: no lasting workspace, one per tab
        return "tab-" + secrets.token_urlsafe(16)
    st.session_state[PENDING] = (token, secrets.token_hex(8))
    return ws.workspace_id(token)


def owner_id() -> str:
    """This browser's workspace id: from its cookie, or a fresh workspace (garbled, forged, foreign,
    oversized or no token). The token itself stays in the cookie and in this session only."""
    if OWNER not in st.session_state:
        try:
            owner = get_issuer().verify(cookie_token())
        except OSError:
            owner = None
        st.session_state[OWNER] = owner or _new_workspace()
    return st.session_state[OWNER]


def sync_cookie() -> None:
    """Hand a newly issued token to the browser (the component writes it once per token and says
    itself if the browser refused it); drawn on every run of the session that issued it."""
    pending = st.session_state.get(PENDING)
    if pending is None:
        return
    token, nonce = pending
    with st.sidebar:
        store_token(token, nonce)


def start_fresh_workspace() -> None:
    """Leave the current workspace in this browser: stop its jobs and start an empty one."""
    pool, owner = pool_if_started(), owner_id()
    for job in pool.jobs_of(owner) if pool is not None else []:
        if job.status in ACTIVE:
            job.stop()
    st.session_state.clear()
    st.session_state[OWNER] = _new_workspace()


def recall(name: str) -> Any:
    """An entry saved in this workspace (None if there is none)."""
    return ws.read_state(get_store().root, owner_id()).get(name)


def remember(**entries: Any) -> None:
    try:
        ws.update_state(get_store().root, owner_id(), **entries)
    except (OSError, ValueError):
        pass  # a full or read-only disk costs the workspace its memory, never the page


# --- the current experiment and each family's design ---------------------------------------------
def get_config() -> ExperimentConfig:
    if CONFIG not in st.session_state:
        cfg = None
        saved = recall("config")
        if saved is not None:
            try:
                cfg = parse_config(_served(saved))
            except ConfigError:
                cfg = None  # saved by an older version with other rules: start from the preset
        st.session_state[CONFIG] = cfg or load_preset("quickstart_cnn")
        st.session_state[SAVED_CONFIG] = st.session_state[CONFIG].to_json()
    return st.session_state[CONFIG]


def _served(saved: Any) -> Any:
    """A saved experiment on an uploaded dataset, with that dataset served again from the workspace's
    own store (a restarted server has not read it yet); if the workspace no longer keeps it, the
    experiment takes a built-in dataset of its kind and the next page says so."""
    data = saved.get("data") if isinstance(saved, dict) else None
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name.startswith("upload-"):
        return saved
    from bigmodel_core.data import DatasetError, dataset_info  # noqa: PLC0415 - parse_config loads torch anyway
    from bigmodel_core.data.uploads import UploadStore  # noqa: PLC0415

    try:
        dataset_info(name)
        return saved
    except DatasetError:
        pass
    try:
        UploadStore(get_store().root, owner_id()).register(name)
        return saved
    except (DatasetError, OSError):
        family = (saved.get("model") or {}).get("family") if isinstance(saved.get("model"), dict) else None
        fallback = "synthetic_digits" if family in (None, "cnn") else "sequential_digits"
        notify(f"The uploaded dataset {name} of your last experiment is no longer kept in this workspace, so the "
               f"experiment now trains on {fallback}. Upload the file again to use it.", "warning")
        return {**saved, "data": {**data, "name": fallback, "image_size": None, "seq_len": None}}


def set_config(cfg: ExperimentConfig) -> None:
    st.session_state[CONFIG] = cfg
    text = cfg.to_json()
    if st.session_state.get(SAVED_CONFIG) != text:
        st.session_state[SAVED_CONFIG] = text
        designs = recall("designs")
        designs = dict(designs) if isinstance(designs, dict) else {}
        designs[cfg.model.family] = cfg.to_dict()["model"]
        remember(config=cfg.to_dict(), designs=designs)


def design_of(family: str) -> dict[str, Any] | None:
    """The model this workspace last had for ``family`` (so switching families keeps each design)."""
    designs = recall("designs")
    model = designs.get(family) if isinstance(designs, dict) else None
    return model if isinstance(model, dict) and model.get("family") == family else None


# --- jobs -----------------------------------------------------------------------------------------
def train_job(pool: JobPool | None = None) -> Job | None:
    """The workspace's current Train job: the newest one it started, in any tab (None if none)."""
    pool = pool or get_pool()
    jobs = pool.jobs_of_kind(owner_id(), "train")
    job = jobs[-1] if jobs else None
    if job is not None:
        st.session_state[TRAIN_JOB] = job.job_id
    return job


def interrupted() -> list[dict[str, str]]:
    return ws.interrupted_jobs(get_store().root, owner_id())


def dismiss_interrupted() -> None:
    ws.dismiss_interrupted(get_store().root, owner_id())


# --- the comparison and the fine-tunes a page shows ------------------------------------------------
def save_comparison(comp: Comparison | None) -> None:
    if comp is None:
        remember(compare=None)
        return
    remember(compare={"comparison": json.loads(comp.to_json()), "jobs": [r.job_id for r in comp.runs],
                      "statuses": [r.status for r in comp.runs]})


def load_comparison() -> Comparison | None:
    rec = recall("compare")
    if not isinstance(rec, dict):
        return None
    from bigmodel_core.experiments.compare import Comparison  # noqa: PLC0415 - loads torch: the Compare page only

    try:
        comp = Comparison.from_dict(rec.get("comparison"))
    except (ConfigError, TypeError, ValueError):
        return None
    jobs, statuses = rec.get("jobs") or [], rec.get("statuses") or []
    for run, job_id, status in zip(comp.runs, jobs, statuses):
        if isinstance(job_id, str):
            run.job_id = job_id
            if status in ACTIVE:
                run.status = "queued"  # the next refresh reads the job from the pool, or reports it lost
    return comp


def save_finetunes(runs: list[dict]) -> None:
    remember(finetune=runs[-FINETUNE_KEEP:])


def load_finetunes() -> list[dict]:
    runs = recall("finetune")
    return [r for r in runs if isinstance(r, dict) and isinstance(r.get("job_id"), str)] \
        if isinstance(runs, list) else []


# --- notices ---------------------------------------------------------------------------------------
def notify(message: str, kind: str = "success") -> None:
    """Show ``message`` once, at the top of the next render (survives st.rerun)."""
    st.session_state[NOTICE] = (kind, message)


def show_notice() -> None:
    kind, message = st.session_state.pop(NOTICE, (None, None))
    if message:
        getattr(st, kind, st.info)(message)
