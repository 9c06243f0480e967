"""Train: pick data and optimizer, train in the background, watch the curves live."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from bigmodel_core.config.specs import ConfigError, parse_config
from bigmodel_core.data import build_dataset, dataset_info
from bigmodel_core.experiments.compare import describe_base, differing_fields
from bigmodel_core.export import export_script
from bigmodel_core.inspect import probes
from bigmodel_core.nn.shapes import SpecError, check_design
from bigmodel_core.training.jobs import ACTIVE, Job
from bigmodel_core.training.store import save_weights_bytes
from bigmodel_core.training.trainer import load_data
from ui import sidebar, state, widgets
from ui.figures.training import PNG_CONFIG, image_gallery, loss_figure, metric_figure, sequence_gallery
from ui.inspect import render_inspect
from ui.lesson import advanced_hidden, render_lesson_banner
from ui.live_chart import live_chart

# Every browser redraw takes CPU from training on a small machine (the browser often runs on
# the same cores; each update of the panel costs it 0.2-0.3 s CPU on two slow cores, most of it
# Streamlit's own work per rerun): the panel (curves, progress, metrics) refreshes every
# LIVE_EVERY seconds, and the whole page (results, probes of the newest epoch) when the job
# ends, or at most every REDRAW_EVERY seconds when new epochs have landed.
LIVE_EVERY = 3.0
REDRAW_EVERY = 30.0
FIRST_POINT_WAIT = 2.0
STOP_WAIT = 3.0
PAGE = "_train_page"  # (job id, status, epochs, monotonic time) as of the last whole-page draw

state.show_notice()
render_lesson_banner()
st.title("Train")
advanced = not advanced_hidden()
pool = state.get_pool()
owner = state.owner_id()
cfg = state.get_config()
d = cfg.to_dict()
family = d["model"]["family"]


@st.cache_data(max_entries=32, show_spinner=False)
def preview(name: str, image_size: int | None, seq_len: int | None, seed: int):
    ds = build_dataset(name, train_size=16, val_size=1, seed=seed, image_size=image_size, seq_len=seq_len)
    info = ds.info
    y = ds.y_train
    titles = [info.class_names[int(v)] if info.task == "classification" else f"target {float(v):.2f}" for v in y]
    if info.kind == "image":
        return image_gallery(ds.x_train[:, 0].numpy(), titles)
    names = ["value", "marker"] if name == "adding_problem" else None
    return sequence_gallery(ds.x_train[:8].numpy(), titles[:8], names)


# --- the experiment --------------------------------------------------------------------------
with st.container(border=True):
    st.markdown("**Data**")
    c = st.columns([2, 1, 1, 1])
    options = widgets.datasets_for(family)
    ds = c[0].selectbox("Dataset", options, options.index(d["data"]["name"]), key=widgets.key("t_dataset"))
    data = d["data"] if ds == d["data"]["name"] else widgets.default_data(ds)
    info = dataset_info(ds, image_size=data["image_size"], seq_len=data["seq_len"])
    cap = info.max_size
    data = dict(data)
    data["train_size"] = c[1].number_input("train samples", 1, 60000 if cap is None else cap - 1,
                                           int(data["train_size"]), key=widgets.key("t_train", ds))
    data["val_size"] = c[2].number_input("validation samples", 1, 20000 if cap is None else cap - 1,
                                         int(data["val_size"]), key=widgets.key("t_val", ds))
    seed = c[3].number_input("seed", 0, 2**31 - 1, int(d["seed"]), key=widgets.key("t_seed"))
    st.caption(info.description + (f" ({cap:,} samples in all.)" if cap else ""))
    with st.expander("Preview samples", expanded=False):
        st.plotly_chart(preview(ds, data["image_size"], data["seq_len"], int(seed)), width="stretch",
                        config=PNG_CONFIG, key="train_preview")

with st.container(border=True):
    st.markdown("**Optimizer**")
    opt = widgets.optimizer_options(d["optimizer"], advanced)
    c = st.columns(3)
    epochs = c[0].number_input("epochs", 1, 100, int(d["training"]["epochs"]), key=widgets.key("t_epochs"))
    batch = c[1].number_input("batch size", 1, 4096, int(d["training"]["batch_size"]), key=widgets.key("t_bs"))

if advanced:
    with st.container(border=True):
        st.markdown("**Regularization**")
        reg, data = widgets.regularization_options(d["regularization"], info.task, info.kind == "image", data)
else:
    reg = d["regularization"]

try:
    cfg = parse_config({**d, "seed": seed, "data": data, "optimizer": opt, "regularization": reg,
                        "training": {**d["training"], "epochs": epochs, "batch_size": batch}})
except ConfigError as exc:
    st.error(f"These settings are not valid: {exc}")
    st.stop()
state.set_config(cfg)
load_data(cfg)  # build (and cache) the dataset now, not after the click on Train
design_error = None
try:
    check_design(cfg, info)
except SpecError as exc:
    design_error = str(exc)

# --- controls -------------------------------------------------------------------------------
def start_training() -> None:
    # a button callback runs before the rerun, so the page draws the new job in one pass
    # probes (feature maps, gates, gradients) ride along: measured once per epoch on a copy
    cfg = state.get_config()
    job = pool.submit(Job(cfg, owner=owner, kind="train", label=f"{cfg.model.family} on {cfg.data.name}",
                          make_trainer=probes.make_trainer, epoch_hooks=[probes.epoch_hook]))
    st.session_state[state.TRAIN_JOB] = job.job_id
    state.dismiss_interrupted()  # a new training answers the report of the interrupted one


def control(action: str) -> None:
    job = state.train_job(pool)
    if job is not None:
        getattr(job, action)()
        if action == "stop":  # a training stops within one batch: draw the page as it ends
            job.wait_until_finished(timeout=STOP_WAIT)


# --- live view ------------------------------------------------------------------------------
def fmt_eta(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def status_line(snap) -> None:
    if snap is None:
        st.info("Press **Train** to start. Training runs in the background: you can switch pages and come back.")
    elif snap.status == "queued":
        st.warning(f"Queued: {sidebar.status_text(snap).removeprefix('queued, ')} (the server trains "
                   f"{pool.max_workers} model(s) at a time, for all learners).", icon=":material/hourglass_top:")
    elif snap.status in ("running", "paused"):
        st.progress(snap.progress, text=f"{snap.status} · step {snap.step} of {snap.total_steps} · "
                                        f"ETA {fmt_eta(snap.eta_seconds)}")
    elif snap.status == "completed":
        st.success(f"Completed. {snap.message}".strip(), icon=":material/check_circle:")
    elif snap.status == "diverged":
        st.error(f"Diverged: {snap.message}", icon=":material/warning:")
    elif snap.status == "failed":
        st.error(f"Failed: {snap.message}", icon=":material/error:")
    else:
        st.warning(f"Stopped. {snap.message}", icon=":material/stop_circle:")


def live_view(snap) -> None:
    status_line(snap)
    # The same elements before and after the click (empty until the first point), so the browser
    # updates charts it already drew instead of building them while training has started.
    task = (snap.task if snap is not None else "") or info.task
    epochs = snap.epochs if snap is not None else []
    k = st.columns(5)
    last = epochs[-1] if epochs else None
    k[0].metric("val accuracy" if task == "classification" else "val MAE",
                f"{last['val_metric']:.3f}" if last else "–")
    k[1].metric("samples/s", f"{snap.samples_per_sec:,.0f}" if snap and snap.samples_per_sec else "–")
    k[2].metric("epoch time", f"{snap.epoch_seconds:.1f} s" if snap and snap.epoch_seconds else "–")
    k[3].metric("learning rate", f"{snap.lr:.3g}" if snap and snap.lr is not None else "–")
    k[4].metric("device", snap.device if snap and snap.device else "–")
    log_y = st.toggle("log scale (loss)", key="train_log_y")
    live_chart([loss_figure(snap.steps if snap else [], snap.batch_losses if snap else [], epochs, log_y=log_y),
                metric_figure(epochs, task)], key="train_curves", config=PNG_CONFIG,
               revision=f"{snap.job_id if snap else ''}-{log_y}",
               poll_every=LIVE_EVERY if snap is not None and snap.status in ACTIVE else 0)
    if epochs and snap.finished:  # a table widget mid-run would load its large script while training
        with st.expander("Epoch table"):
            st.dataframe(pd.DataFrame(epochs), hide_index=True, width="stretch")


def redraw_page(job, snap) -> None:
    """Rerun the whole page when what lies outside the panel no longer matches the job."""
    page_job, page_status, page_epochs, drawn_at = st.session_state[PAGE]
    if snap.status not in ACTIVE and (page_job != job.job_id or page_status in ACTIVE):
        st.rerun(scope="app")  # the job has ended: results and probes below, no more polling
    epochs = len(snap.epochs)
    if not epochs or snap.status not in ACTIVE:
        return
    if page_job != job.job_id:
        # the page below still shows the previous job's results (or none): replace them at the
        # first epoch, or leave the empty area until the job has run for REDRAW_EVERY seconds
        if page_job is not None or time.time() - job.created >= REDRAW_EVERY:
            st.rerun(scope="app")
    elif epochs != page_epochs and time.monotonic() - drawn_at >= REDRAW_EVERY:
        st.rerun(scope="app")  # the inspect area shows the probes of the newest epoch


def differs_note(job_config) -> None:
    """Say so when the job's experiment is not the current one (the numbers shown are the job's)."""
    fields = differing_fields([job_config, state.get_config()])
    if fields:
        shown = ", ".join(fields[:8]) + (f" and {len(fields) - 8} more" if len(fields) > 8 else "")
        st.warning(f"The numbers and pictures of this job are its own experiment's, not the current one's: they "
                   f"differ in {shown}. Press Train to run the current experiment.", icon=":material/difference:")


def panel() -> None:
    """Buttons and live view in one fragment. A click reruns only this fragment, not the whole
    page, so starting a training does not make the browser redraw every widget while the first
    batches run; while a job is active the chart asks for the next rerun every LIVE_EVERY s."""
    job = state.train_job(pool)
    if job is not None and (job.status == "running" or (job.status == "queued" and
                                                         pool.running_count < pool.max_workers)):
        # right after the click: draw the job with its first point rather than polling fast for it
        job.wait_for_first_step(timeout=FIRST_POINT_WAIT)
    # the pool's snapshot, not the job's: it holds the queue position and tells the pool that
    # someone still watches (a job nobody polls for a while is stopped)
    snap = pool.snapshot(owner, job.job_id) if job is not None else None
    if job is not None:
        redraw_page(job, snap)
    status = snap.status if snap is not None else None
    active = status in ACTIVE
    b = st.columns([1.2, 1, 1, 1, 4])
    b[0].button("Train", type="primary", disabled=active or design_error is not None, key="train_start",
                width="stretch", on_click=start_training)
    b[1].button("Pause", disabled=status != "running", key="train_pause", width="stretch",
                on_click=control, args=("pause",))
    b[2].button("Resume", disabled=status != "paused", key="train_resume", width="stretch",
                on_click=control, args=("resume",))
    b[3].button("Stop", disabled=not active, key="train_stop", width="stretch", on_click=control, args=("stop",))
    if design_error:
        b[4].error(f"{design_error} Fix it on the Build page.", icon=":material/error:")
        st.page_link("app_pages/build.py", label="Go to Build", icon=":material/construction:")
    if job is not None:
        st.caption(f"Job: {job.label} · {job.config.training.epochs} epochs · "
                   f"batch {job.config.training.batch_size} · {job.config.optimizer.name} "
                   f"lr {job.config.optimizer.lr:g}")
        differs_note(job.config)
    live_view(snap)


job = state.train_job(pool)
lost = state.interrupted() if job is None else []
if lost:
    st.warning("The server restarted while this workspace was training, and these jobs were interrupted "
               "(nothing of them was saved): " + "; ".join(f"{r['label'] or r['kind']} (started {r['started']})"
                                                          for r in lost) + ". Press Train to start again.",
               icon=":material/restart_alt:")
    st.button("Dismiss", key="train_dismiss_interrupted", on_click=state.dismiss_interrupted)
snap = job.snapshot(pool.position(job)) if job is not None else None  # one copy of the job's record per whole-page draw
st.session_state[PAGE] = ((snap.job_id, snap.status, len(snap.epochs)) if snap is not None else
                          (None, None, 0)) + (time.monotonic(),)
# (the panel reruns the whole page if the job ends after this snapshot, so the results below
# are drawn from a snapshot of the finished job)
st.fragment(panel)()

if job is not None and job.status in ("completed", "stopped", "diverged") and job.final_state is not None:
    st.subheader("Results")
    other = differing_fields([job.config, cfg])
    st.caption(f"Of the job {job.label}: {describe_base(job.config)} · "
               + (f"not the current experiment ({len(other)} setting(s) differ, listed above)" if other
                  else "the current experiment"))
    c = st.columns(4)
    c[0].download_button("Download model (.safetensors)", save_weights_bytes(job.final_state),
                         file_name="model.safetensors", key="train_dl_model", width="stretch")
    c[1].download_button("Download config (.json)", job.config.to_json(), file_name="config.json",
                         key="train_dl_config", width="stretch")
    if snap.epochs:
        c[2].download_button("Download metrics (.csv)", pd.DataFrame(snap.epochs).to_csv(index=False),
                             file_name="metrics.csv", key="train_dl_metrics", width="stretch")
    c[3].download_button("Export as PyTorch script", export_script(job.config), file_name="train_model.py",
                             key="train_export", width="stretch")
    if snap.run_id:
        st.caption(f"Saved as run `{snap.run_id}` (see the Runs page).")
    if snap.summary:
        fin = snap.summary["final"]
        st.caption(" · ".join(f"{k} {v:.4f}" for k, v in fin.items() if isinstance(v, (int, float)))
                   + f" · {snap.summary['params']:,} parameters · {snap.summary['wall_seconds']:.1f} s")

if job is not None:
    st.divider()
    st.caption(f"Inspect: the model of the job {job.label} ({describe_base(job.config)}).")
    render_inspect(job)

