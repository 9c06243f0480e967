"""Train: the live view first (buttons, progress, curves, the model's inside), the settings beside it.

On a laptop screen the buttons, the progress and the curves are in view without scrolling; the
settings sit in a column on the right, each group a compact expander whose label sums it up
("adam lr 0.001 · batch 64 · 10 epochs"). On a phone the columns stack: the live view comes first.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from bigmodel_core.config.specs import ConfigError, parse_config
from bigmodel_core.data import build_dataset, dataset_info, is_upload_name
from bigmodel_core.experiments.compare import describe_base, differing_fields
from bigmodel_core.export import export_script
from bigmodel_core.inspect import live_probe, probes
from bigmodel_core.limits import current_limits
from bigmodel_core.nn.shapes import SpecError, check_design
from bigmodel_core.training.jobs import ACTIVE, Job
from bigmodel_core.training.sharing import shared_note
from bigmodel_core.training.store import LABEL_MAX, clean_label, save_weights_bytes
from bigmodel_core.training.trainer import load_data
from ui import labels, own_data, sidebar, state, widgets
from ui.figures.live_probe import gradients_figure, inside_figure
from ui.figures.training import PNG_CONFIG, image_gallery, loss_figure, metric_figure, sequence_gallery
from ui.inspect import render_inspect
from ui.lesson import advanced_hidden, render_lesson_banner
from ui.literal import md, sentence
from ui.live_chart import live_chart
from ui.try_model import render_try_model

# Every browser redraw takes CPU from training on a small machine (the browser often runs on
# the same cores; each update of the panel costs it 0.2-0.3 s CPU on two slow cores, most of it
# Streamlit's own work per rerun): the panel (curves, the live probe, progress) refreshes every
# LIVE_EVERY seconds, and the whole page (results, probes of the newest epoch) when the job
# ends, or at most every REDRAW_EVERY seconds when new epochs have landed.
LIVE_EVERY = 4.0
REDRAW_EVERY = 30.0
FIRST_POINT_WAIT = 2.0
STOP_WAIT = 3.0
PAGE = "_train_page"  # (job id, status, epochs, monotonic time) as of the last whole-page draw
INSIDE_NOW = "_train_inside_now"  # the job whose inspect area and Try-your-model the learner asked for mid-run
LABEL = "train_label"  # the run label in the settings column, for the Train button's callback
# On a phone Streamlit stacks columns, which would put the four buttons one under another and push
# the curves a screen down: keep them side by side (the log-scale switch gets its own line).
PHONE_BUTTONS = ("<style>@media (max-width: 640px) {"
                 ".st-key-train_buttons [data-testid='stHorizontalBlock']{flex-wrap:wrap !important;"
                 "gap:0.4rem !important}"
                 ".st-key-train_buttons [data-testid='stColumn']{min-width:0 !important;width:auto !important;"
                 "flex:1 1 20% !important}"
                 ".st-key-train_buttons [data-testid='stColumn']:last-child{flex:1 1 100% !important}}</style>")

st.html(PHONE_BUTTONS)
state.show_notice()
job = state.train_job(state.get_pool())
render_lesson_banner(compact=job is not None)
st.title("Train")
advanced = not advanced_hidden()
pool = state.get_pool()
owner = state.owner_id()
cfg = state.get_config()
d = cfg.to_dict()
family = d["model"]["family"]


@st.cache_data(max_entries=32, show_spinner=False)
def preview(name: str, image_size: int | None, seq_len: int | None, seed: int):
    # an uploaded set puts every class in both parts, so it is asked for at least one sample of each
    classes = dataset_info(name).num_outputs if is_upload_name(name) else 1
    ds = build_dataset(name, train_size=max(16, classes), val_size=classes, seed=seed, image_size=image_size,
                       seq_len=seq_len)
    info = ds.info
    y = ds.y_train
    titles = [info.class_names[int(v)] if info.task == "classification" else f"target {float(v):.2f}" for v in y]
    if info.kind == "image" and is_upload_name(name):  # class names of a file: longer, fewer to a row
        return image_gallery(ds.x_train[:12, 0].numpy(), [t[:10] for t in titles[:12]], cols=4)
    if info.kind == "image":
        return image_gallery(ds.x_train[:, 0].numpy(), titles)
    names = ["value", "marker"] if name == "adding_problem" else None
    return sequence_gallery(ds.x_train[:8].numpy(), titles[:8], names)


def now(key: str, default):
    """A widget's value as the learner just set it (a summary drawn above the widget is current)."""
    return st.session_state.get(key, default)


live, side = st.columns([2.5, 1], gap="medium")

# --- the experiment, beside the live view --------------------------------------------------------
with side:
    limits = current_limits()
    data_kind = "image" if family == "cnn" else "sequence"
    options, uploaded = own_data.options(widgets.datasets_for(family), data_kind, d["data"]["name"], "train",
                                         widgets.key("t_dataset"))
    ds = uploaded or now(widgets.key("t_dataset"), d["data"]["name"])
    ds = ds if ds in options else d["data"]["name"] if d["data"]["name"] in options else options[0]
    data = d["data"] if ds == d["data"]["name"] else widgets.default_data(ds)
    train_key, val_key, seed_key = widgets.key("t_train", ds), widgets.key("t_val", ds), widgets.key("t_seed")
    summary = (f"{md(own_data.option_label(ds), 60)} · {int(now(train_key, data['train_size'])):,} train / "
               f"{int(now(val_key, data['val_size'])):,} validation · seed {int(now(seed_key, d['seed']))}")
    # open while the learner's own data is chosen: its description and any cap applied are in it
    with st.expander(f"**Data** · {summary}", icon=":material/dataset:", expanded=is_upload_name(ds)):
        ds = own_data.choice(st, "Dataset", options, ds, widgets.key("t_dataset"))
        info = dataset_info(ds, image_size=data["image_size"], seq_len=data["seq_len"])
        cap = info.max_size
        data = dict(data)
        c = st.columns(2)
        top_train, top_val = (limits.max_train_size, limits.max_val_size) if cap is None else (
            min(limits.max_train_size, cap - 1), min(limits.max_val_size, cap - 1))
        data["train_size"] = c[0].number_input("train samples", 1, top_train, min(int(data["train_size"]), top_train),
                                               key=train_key)
        data["val_size"] = c[1].number_input("validation samples", 1, top_val, min(int(data["val_size"]), top_val),
                                             key=val_key)
        seed = st.number_input("seed", 0, 2**31 - 1, int(d["seed"]), key=seed_key)
        data_error = own_data.describe(ds, data, int(seed)) if is_upload_name(ds) else None
        if not is_upload_name(ds):
            st.caption(info.description + (f" ({cap:,} samples in all.)" if cap else ""))
        if st.toggle("Preview samples", key="train_preview_on", disabled=data_error is not None):
            st.plotly_chart(preview(ds, data["image_size"], data["seq_len"], int(seed)), width="stretch",
                            config=PNG_CONFIG, key="train_preview")
        own_data.upload_box("train", data_kind)

    o = d["optimizer"]
    name = now(widgets.key("opt", "name"), o["name"])
    lr = now(widgets.key("opt", "lr"), o["lr"])
    epochs_now = int(now(widgets.key("t_epochs"), d["training"]["epochs"]))
    batch_now = int(now(widgets.key("t_bs"), d["training"]["batch_size"]))
    with st.expander(f"**Optimizer** · {name} lr {float(lr):g} · batch {batch_now} · {epochs_now} epochs",
                     icon=":material/tune:"):
        opt = widgets.optimizer_options(d["optimizer"], advanced, columns=1)
        c = st.columns(2)
        epochs = c[0].number_input("epochs", 1, limits.max_epochs, min(int(d["training"]["epochs"]), limits.max_epochs),
                                   key=widgets.key("t_epochs"))
        batch = c[1].number_input("batch size", 1, limits.max_batch_size,
                                  min(int(d["training"]["batch_size"]), limits.max_batch_size), key=widgets.key("t_bs"))

    if advanced:
        with st.expander(f"**Regularization** · {widgets.regularization_summary(d['regularization'], d['data'])}",
                         icon=":material/shield:"):
            reg, data = widgets.regularization_options(d["regularization"], info.task, info.kind == "image", data,
                                                       columns=2)
    else:
        reg = d["regularization"]

    label = st.text_input("Run label", value=f"{family} on {ds}", max_chars=LABEL_MAX,
                          key=widgets.key("t_label", family, ds),
                          help="The name of the next run on this page and the Runs page (you can rename a stored "
                               "run there too).")
    st.session_state[LABEL] = label

try:
    cfg = parse_config({**d, "seed": seed, "data": data, "optimizer": opt, "regularization": reg,
                        "training": {**d["training"], "epochs": epochs, "batch_size": batch}})
except ConfigError as exc:
    live.error(f"These settings are not valid: {md(sentence(exc, capital=False), 2000)}")
    st.stop()
design_error = None
if data_error is None:
    state.set_config(cfg)
    # build (and cache) the dataset now, not after the click on Train; the batch rules count the
    # samples it really gives (an uploaded file may hold fewer than train_size)
    try:
        check_design(cfg, info, train_samples=len(load_data(cfg).y_train))
    except SpecError as exc:
        design_error = labels.design_message(exc)
else:  # the uploaded data cannot be used with these sizes (the message is in the data settings)
    design_error = f"The data settings do not work: {sentence(data_error, capital=False)}"


# --- controls -------------------------------------------------------------------------------
def start_training() -> None:
    # a button callback runs before the rerun, so the page draws the new job in one pass; the
    # probes (inspect area, once per epoch) and the live view's frames ride along
    cfg = state.get_config()
    name = clean_label(st.session_state.get(LABEL) or "") or f"{cfg.model.family} on {cfg.data.name}"
    job = pool.submit(Job(cfg, owner=owner, kind="train", label=name, make_trainer=live_probe.make_trainer,
                          epoch_hooks=[probes.epoch_hook]))
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
    if snap is None and design_error:
        st.warning("Train is disabled until the design fits the data: the error above says which block to change.",
                   icon=":material/block:")
    elif snap is None:
        st.info("Press **Train** to start. Training runs in the background: you can switch pages and come back.")
    elif snap.status == "queued":
        st.warning(f"Queued: {sidebar.status_text(snap).removeprefix('queued, ')} (the server trains "
                   f"{pool.max_workers} model(s) at a time, for all learners).", icon=":material/hourglass_top:")
    elif snap.status == "running":
        st.progress(snap.progress, text=f"running · step {snap.step:,} of {snap.total_steps:,} · "
                                        f"ETA {fmt_eta(snap.eta_seconds)}")
    elif snap.status == "paused":
        st.progress(snap.progress, text=f"paused · step {snap.step:,} of {snap.total_steps:,} · no ETA while paused "
                                        "(press Resume)")
    elif snap.status == "completed":
        st.success(f"Completed. {md(sentence(snap.message))}".strip(), icon=":material/check_circle:")
    elif snap.status == "diverged":
        st.error(f"Diverged: {md(sentence(snap.message, capital=False))}", icon=":material/warning:")
    elif snap.status == "failed":
        st.error(f"Failed: {md(sentence(snap.message, capital=False))}", icon=":material/error:")
    else:
        msg = snap.message or ""
        # the engine says "stopped during epoch 6": said once, as a sentence
        text = sentence(msg) if msg.lower().startswith("stopped") else ("Stopped. " + sentence(msg)).strip()
        st.warning(md(text), icon=":material/stop_circle:")
    if snap is not None and snap.status in ACTIVE and (snap.joined or snap.shared_with):
        # an identical training shared with other learners (bigmodel_core.training.sharing): plain text
        st.text(shared_note(snap.joined, snap.shared_with))


def numbers_line(snap, task: str) -> str:
    epochs = snap.epochs if snap is not None else []
    last = epochs[-1] if epochs else None
    parts = [f"validation {labels.metric_word(task)} " + (f"{last['val_metric']:.3f}" if last else "–"),
             f"{snap.samples_per_sec:,.0f} samples/s" if snap and snap.samples_per_sec else "– samples/s",
             f"epoch {snap.epoch_seconds:.1f} s" if snap and snap.epoch_seconds else "epoch – s",
             f"lr {snap.lr:.3g}" if snap and snap.lr is not None else "lr –",
             snap.device if snap and snap.device else ""]
    return " · ".join(p for p in parts if p)


def live_view(snap, job_family: str) -> None:
    status_line(snap)
    # The same elements before and after the click (empty until the first point), so the browser
    # updates charts it already drew instead of building them while training has started.
    task = (snap.task if snap is not None else "") or info.task
    epochs = snap.epochs if snap is not None else []
    # the server's slots here, refreshed with the panel (the sidebar is drawn once per page draw)
    st.caption(numbers_line(snap, task) + "  \n" + sidebar.server_line(pool))
    log_y = bool(st.session_state.get("train_log_y"))
    frame = snap.extras.get(live_probe.LIVE) if snap is not None else None
    smoothing = snap.config.regularization.label_smoothing if snap is not None else 0.0
    figures = [loss_figure(snap.steps if snap else [], snap.batch_losses if snap else [], epochs, log_y=log_y,
                           smoothing=smoothing),
               metric_figure(epochs, task), inside_figure(frame, job_family), gradients_figure(frame)]
    live_chart(figures, key="train_curves", config=PNG_CONFIG, revision=f"{snap.job_id if snap else ''}-{log_y}",
               poll_every=LIVE_EVERY if snap is not None and snap.status in ACTIVE else 0,
               height=figures[0]["layout"]["height"] + figures[2]["layout"]["height"] + 12)
    if epochs and snap.finished:  # a table widget mid-run would load its large script while training
        with st.expander("Epoch table"):
            st.dataframe(pd.DataFrame(labels.human_rows(epochs, task)), hide_index=True, width="stretch")


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
    elif (epochs != page_epochs and time.monotonic() - drawn_at >= REDRAW_EVERY
          and st.session_state.get(INSIDE_NOW) == job.job_id):
        st.rerun(scope="app")  # the inspect area the learner opened shows the probes of the newest epoch


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
    b = st.container(key="train_buttons").columns([1.25, 1, 1, 1, 1.5], vertical_alignment="center")
    b[0].button("Train", type="primary", disabled=active or design_error is not None, key="train_start",
                width="stretch", on_click=start_training, icon=":material/play_arrow:",
                help="Fix the design first: see the error below" if design_error else None)
    b[1].button("Pause", disabled=status != "running", key="train_pause", width="stretch",
                on_click=control, args=("pause",))
    b[2].button("Resume", disabled=status != "paused", key="train_resume", width="stretch",
                on_click=control, args=("resume",))
    b[3].button("Stop", disabled=not active, key="train_stop", width="stretch", on_click=control, args=("stop",))
    b[4].toggle("log-scale loss", key="train_log_y")
    if design_error and data_error:
        st.error(f"{md(design_error, 2000)} Change it in the data settings.", icon=":material/error:")
    elif design_error:
        st.error(f"{md(design_error, 2000)} Fix it on the Build page.", icon=":material/error:")
        st.page_link("app_pages/build.py", label="Go to Build", icon=":material/construction:")
    if job is not None:
        st.caption(f"Job: {md(job.label, 100)} · {job.config.training.epochs} epochs · "
                   f"batch {job.config.training.batch_size} · {job.config.optimizer.name} "
                   f"lr {job.config.optimizer.lr:g}")
        differs_note(job.config)
    live_view(snap, job.config.model.family if job is not None else family)


if (st.session_state.pop(state.AUTOSTART, False) and design_error is None
        and not (job is not None and job.status in ACTIVE)):
    start_training()  # Home's "Train your first CNN": the learner lands on a running training
job = state.train_job(pool)
lost = state.interrupted() if job is None else []
if lost:
    live.warning("The server restarted while this workspace was training, and these jobs were interrupted "
                 "(nothing of them was saved): " + "; ".join(f"{md(r['label'] or r['kind'], 100)} (started "
                                                            f"{r['started']})" for r in lost)
                 + ". Press Train to start again.", icon=":material/restart_alt:")
    live.button("Dismiss", key="train_dismiss_interrupted", on_click=state.dismiss_interrupted)
snap = job.snapshot(pool.position(job)) if job is not None else None  # one copy of the job's record per whole-page draw
st.session_state[PAGE] = ((snap.job_id, snap.status, len(snap.epochs)) if snap is not None else
                          (None, None, 0)) + (time.monotonic(),)
# (the panel reruns the whole page if the job ends after this snapshot, so the results below
# are drawn from a snapshot of the finished job)
with live:
    st.fragment(panel)()

if job is not None and job.status in ("completed", "stopped", "diverged") and job.final_state is not None:
    st.subheader("Results")
    other = differing_fields([job.config, cfg])
    st.caption(f"Of the job {md(job.label, 100)}: {describe_base(job.config)} · "
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
        st.caption(labels.final_line(snap.summary["final"])
                   + f" · {snap.summary['params']:,} parameters · {snap.summary['wall_seconds']:.1f} s"
                   + labels.repeat_note(snap.summary))

if job is not None and job.status in ACTIVE and st.session_state.get(INSIDE_NOW) != job.job_id:
    # While it trains, the full inspect area and Try your model are drawn on demand: each whole-page
    # draw of their figures costs the browser about a core-second, which a small machine's training
    # pays for when the browser runs beside it. The look inside beside the curves keeps moving.
    st.divider()
    c = st.columns([3, 1], vertical_alignment="center")
    c[0].caption("While it trains, the look inside beside the curves follows the model. The full inspect area "
                 "and Try your model show this job's model when it ends, or now on request.")
    c[1].button("Show inside the model now", key="train_inside_now", icon=":material/visibility:",
                on_click=st.session_state.__setitem__, args=(INSIDE_NOW, job.job_id), width="stretch")
else:
    render_try_model(job)  # draw or upload an input, see the answer and why (attributions)
    if job is not None:
        st.divider()
        st.caption(f"Inspect: the model of the job {md(job.label, 100)} ({describe_base(job.config)}).")
        render_inspect(job)
