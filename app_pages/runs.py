"""Runs: every run this session stored (Train, Compare, Fine-tune), to reopen, compare, delete or download."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from bigmodel_core.data import dataset_info
from bigmodel_core.experiments import compare as cmp
from bigmodel_core.training.store import LABEL_MAX, StoredRun, StoreError, owns, public_summary, zip_run
from ui import labels, state, widgets
from ui.figures.compare import PNG_CONFIG, Series, curves_figure
from ui.literal import md, sentence
from ui.share import run_url
from ui.try_model import render_try_model

SELECTED = "runs_selected"

state.show_notice()
st.title("Runs")
store = state.get_store()
owner = state.owner_id()
runs = store.list(owner)


def metric_of(r: StoredRun) -> str:
    final = r.summary.get("final") or {}
    if final.get("val_accuracy") is not None:
        return f"acc {100 * final['val_accuracy']:.1f}%"
    if final.get("val_mae") is not None:
        return f"MAE {final['val_mae']:.4g}"
    return "–"


def title_of(r: StoredRun) -> str:
    label = r.summary.get("label") or f"{r.config.model.family} on {r.config.data.name}"
    return f"{label} · {r.summary.get('kind', 'train')} · {r.summary.get('created', '')}"


def comparison_of(r: StoredRun) -> str:
    info = r.summary.get("comparison")
    return info.get("id", "") if isinstance(info, dict) else ""


def show_linked(run_id: str) -> None:
    """A run opened by its link (``/runs?run=ID``): this session's own, or one its owner shared."""
    try:
        run = store.load(run_id, owner=owner)
    except StoreError:
        # the same words whether the run is missing, malformed or someone else's unshared run
        st.error(f"Cannot open the run in this link ({md(repr(run_id[:60]))}): the link is mistyped, or the run was "
                 "deleted, or its owner has not shared it.", icon=":material/link_off:")
        return
    mine = owns(run.summary, owner)
    with st.container(border=True):
        st.subheader(f"{'Your run' if mine else 'Shared run'}: {md(title_of(run))}")
        st.caption(f"{metric_of(run)} · {run.summary.get('epochs_run', '–')} epochs · status "
                   f"{run.summary.get('status', '–')}" + ("" if mine else " · read-only: it stays its owner's"))
        comp = cmp.Comparison.from_stored([run])
        st.plotly_chart(curves_figure([Series(r.name, r.epochs, status=r.status) for r in comp.runs], comp.task),
                        width="stretch", config=PNG_CONFIG, key="runs_linked_curves")
        c = st.columns(3)
        if c[0].button("Open as current experiment", key="runs_linked_reopen", width="stretch",
                       help="Copy this run's config into your Build and Train pages"):
            state.set_config(run.config)
            widgets.bump()
            state.notify(f"Loaded the config of {md(title_of(run))} as the current experiment: see Build or Train.")
            st.rerun()
        c[1].download_button("Download run (.zip)", zip_run(run.path), file_name=f"{run.run_id}.zip",
                             mime="application/zip", key="runs_linked_download", width="stretch")
        c[2].download_button("Download config (.json)", run.config.to_json(), file_name=f"{run.run_id}-config.json",
                             mime="application/json", key="runs_linked_config", width="stretch")
        if mine:  # the owner opening their own link keeps the owner's controls
            owner_controls(run)
        with st.expander("Config and summary"):
            st.code(run.config.to_json(), language="json")
            st.code(json.dumps(public_summary(run.summary), indent=2, default=str), language="json")


def share_keys(run: StoredRun) -> tuple[str, str]:
    """The two switches of one run's sharing (in its link's box and in Details), kept in step."""
    shared = bool(run.summary.get("shared"))
    keys = (f"runs_share_{run.run_id}", f"runs_linked_share_{run.run_id}")
    for k in keys:
        st.session_state.setdefault(k, shared)
    return keys


def set_sharing(run_id: str, key: str, keys: tuple[str, str]) -> None:
    share = bool(st.session_state[key])
    try:
        store.set_shared(run_id, owner, share)
    except (StoreError, OSError) as exc:
        state.notify(f"Could not change sharing: {md(exc)}", "error")
        share = not share
    else:
        state.notify("Sharing is on: the link opens this run read-only." if share else
                     "Sharing is off: its link now opens nothing for anyone else.")
    for k in keys:
        st.session_state[k] = share


def owner_controls(run: StoredRun) -> None:
    keys = share_keys(run)
    c = st.columns([2, 1])
    c[0].toggle("Shared as a link", key=keys[1], on_change=set_sharing, args=(run.run_id, keys[1], keys),
                help="Turn off to stop sharing: the link then opens nothing for anyone else.")
    with c[1].popover("Delete this run", width="stretch"):
        st.write("Delete this run for good?")
        if st.button("Yes, delete", type="primary", key="runs_linked_delete"):
            try:
                store.delete(run.run_id, owner=owner)
            except StoreError as exc:
                st.error(md(sentence(exc)))
            else:
                st.query_params.pop("run", None)
                state.notify("Deleted the run.", "warning")
                st.rerun()


linked = st.query_params.get("run")
if linked:
    show_linked(linked)


st.caption("Every run this workspace finished on the Train, Compare and Fine-tune pages (newest first). This "
           "browser finds them again after a reload or in a new tab; another browser or device does not. Download "
           "the ones you want to keep for good.")
if not runs:
    st.info("No stored runs yet. Train a model or start a comparison; finished runs appear here.")
    st.stop()

by_id = {r.run_id: r for r in runs}


table = pd.DataFrame([{
    "label": r.summary.get("label", ""),
    "final val": metric_of(r),
    "status": r.summary.get("status", ""),
    "dataset": r.config.data.name,
    "model, optimizer": f"{r.config.model.family} · {r.config.optimizer.name} "
                        f"lr={cmp.fmt_value(r.config.optimizer.lr)}",
    "epochs": r.summary.get("epochs_run"),
    "time (s)": r.summary.get("wall_seconds"),
    "kind": r.summary.get("kind", "train"),
    "best epoch": r.summary.get("best_epoch"),
    "created": r.summary.get("created", ""),
    "comparison": comparison_of(r),
    "run id": r.run_id,
} for r in runs])
# the columns a learner looks for first, each about as wide as its content, fit a laptop screen;
# the rest (kind, best epoch, when, which comparison, the id) are there to scroll to
WIDTHS = {"label": 210, "final val": 90, "status": 90, "dataset": 140, "model, optimizer": 170, "epochs": 60,
          "time (s)": 70}
st.dataframe(table, hide_index=True, width="stretch",
             column_config={c: st.column_config.Column(width=w) for c, w in WIDTHS.items()})
st.caption("Scroll the table sideways for each run's kind, best epoch, date, comparison and id.")

# --- selection -------------------------------------------------------------------------------------
st.session_state[SELECTED] = [i for i in st.session_state.get(SELECTED, []) if i in by_id]
groups = sorted({comparison_of(r) for r in runs} - {""})


def pick_group() -> None:
    g = st.session_state.get("runs_group")
    if g:
        st.session_state[SELECTED] = [r.run_id for r in cmp.comparison_order(runs) if comparison_of(r) == g]


c = st.columns([3, 1.2])
selected: list[str] = c[0].multiselect("Selected runs", list(by_id), key=SELECTED,
                                       format_func=lambda i: title_of(by_id[i]), max_selections=cmp.MAX_RUNS,
                                       help=f"Pick up to {cmp.MAX_RUNS} runs to compare, delete or download")
if groups:
    c[1].selectbox("Select a whole comparison", [""] + groups, key="runs_group", on_change=pick_group,
                   format_func=lambda g: g or "…")
chosen = [by_id[i] for i in selected]

b = st.columns(4)
if b[0].button("Reopen as current experiment", disabled=len(chosen) != 1, key="runs_reopen", width="stretch",
               help="Load this run's config into Build and Train"):
    state.set_config(chosen[0].config)
    widgets.bump()
    state.notify(f"Loaded the config of {md(title_of(chosen[0]))} as the current experiment: see Build or Train.")
    st.rerun()
if b[1].button("Open in Compare", disabled=not chosen, key="runs_to_compare", width="stretch",
               help="Show the selected runs side by side on the Compare page"):
    st.session_state["compare_current"] = opened = cmp.Comparison.from_stored(chosen)
    state.save_comparison(opened)
    st.session_state["compare_done_seen"] = opened.comparison_id  # finished runs: no "just ended" rerun
    st.session_state["compare_shot"] = False
    try:
        st.switch_page("app_pages/compare.py")
    except Exception:  # noqa: BLE001 - without the app's navigation (tests) stay here
        state.notify("Opened in the Compare page.")
        st.rerun()
with b[2].popover("Delete selected", disabled=not chosen, width="stretch"):
    st.write(f"Delete {len(chosen)} run(s) for good?")
    if st.button("Yes, delete", type="primary", key="runs_delete"):
        for r in chosen:
            try:
                store.delete(r.run_id, owner=owner)
            except StoreError as exc:
                st.error(md(sentence(exc), 2000))
        state.notify(f"Deleted {len(chosen)} run(s).", "warning")
        st.rerun()

# --- overlay of the selected runs ------------------------------------------------------------------
if chosen:
    comp = cmp.Comparison.from_stored(chosen)
    task = comp.task
    tasks = {dataset_info(r.config.data.name, image_size=r.config.data.image_size,
                          seq_len=r.config.data.seq_len).task for r in chosen}
    if len(tasks) > 1:
        st.warning("The selected runs mix classification and regression; their metric panels are not comparable.")
    st.plotly_chart(curves_figure([Series(r.name, r.epochs, status=r.status) for r in comp.runs], task),
                    width="stretch", config=PNG_CONFIG, key="runs_curves")
    st.dataframe(pd.DataFrame(cmp.summary_rows(comp)), hide_index=True, width="stretch")
    if len(chosen) > 1:
        st.markdown("What differs between their configs:")
        st.dataframe(pd.DataFrame(comp.differs()), hide_index=True, width="stretch")

# --- details and download ----------------------------------------------------------------------------
st.subheader("Details")
detail_id = st.selectbox("Run", selected or list(by_id), format_func=lambda i: title_of(by_id[i]), key="runs_detail")
run = by_id[detail_id]
d = st.columns(2)
d[0].download_button("Download run (.zip)", zip_run(run.path), file_name=f"{run.run_id}.zip",
                     mime="application/zip", key="runs_download", width="stretch",
                     help="config.json, metrics.csv, summary.json and model.safetensors")
d[1].download_button("Download config (.json)", run.config.to_json(), file_name=f"{run.run_id}-config.json",
                     mime="application/json", key="runs_download_config", width="stretch")
keys = share_keys(run)
share = st.toggle("Share as a link", key=keys[0], on_change=set_sharing, args=(run.run_id, keys[0], keys),
                  help="Anyone with the link can view and download this run; only you can delete it. "
                       "It is never listed on anyone else's Runs page.")
if share:
    st.code(run_url(run.run_id), language=None)
    st.caption("Send this link: it opens the run read-only on the Runs page. Turn the switch off to stop sharing.")
with st.form(f"runs_rename_{run.run_id}", border=False):
    c = st.columns([3, 1], vertical_alignment="bottom")
    new_label = c[0].text_input("Label", run.summary.get("label") or "", max_chars=LABEL_MAX,
                                key=f"runs_label_{run.run_id}", help="The name this run goes by on these pages")
    if c[1].form_submit_button("Rename", width="stretch"):
        try:
            stored = store.set_label(run.run_id, owner, new_label)
        except (StoreError, OSError) as exc:
            state.notify(f"Could not rename the run: {md(sentence(exc, capital=False))}", "error")
        else:
            state.notify(f"Renamed the run to {md(stored, 100)}." if stored else "The run's label is now empty.")
        st.rerun()
if run.summary.get("message"):
    st.caption(md(sentence(run.summary["message"])))
t1, t2, t3 = st.tabs(["Metrics", "Config", "Summary"])
t1.dataframe(pd.DataFrame(labels.human_rows(run.metrics, run.summary.get("task") or "classification")),
             hide_index=True, width="stretch")
t2.code(run.config.to_json(), language="json")
t3.code(json.dumps(public_summary(run.summary), indent=2, default=str), language="json")

render_try_model(run)  # draw or upload an input for this run's model, see the answer and why
