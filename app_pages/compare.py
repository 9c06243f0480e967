"""Compare: fair side-by-side runs of optimizers, regularizers or one setting.

The page only reads widgets and draws: planning, fairness (shared initial weights, the
same batches), running through the shared job pool and the tables live in
``bigmodel_core.experiments.compare``. ``?view=shot`` (or the toggle) shows a layout without controls
that fits the comparison on one screen, for slides and the README.
"""

from __future__ import annotations

import html
import time

import pandas as pd
import streamlit as st

from bigmodel_core.config.presets import load_preset, preset_names
from bigmodel_core.config.specs import OPTIMIZERS, ConfigError, ExperimentConfig
from bigmodel_core.experiments import compare as cmp
from bigmodel_core.experiments.distill import DEFAULT_ALPHA, DEFAULT_TEMPERATURE, DistillError
from bigmodel_core.limits import current_limits
from ui import own_data, state, teachers
from ui.figures.compare import PNG_CONFIG, Series, bars_figure, batch_loss_figure, curves_figure
from ui.figures.scaling import scaling_figure
from ui.lesson import active_lesson, advanced_hidden, render_lesson_banner
from ui.literal import md, sentence
from ui.live_chart import live_chart

CURRENT = "compare_current"  # the Comparison shown on this page (planned, running or re-opened)
SHOT = "compare_shot"  # the screenshot layout toggle
LIVE_EVERY = 3.0  # seconds between updates of the live curves while runs train
FAMILY_NAMES = {"rnn": "plain RNN", "lstm": "LSTM", "gru": "GRU"}
OVERFITTING_LESSON = "overfitting_dropout"  # the lesson the one-click overfitting comparison belongs to
DISTILL_KIND = "student alone vs distilled"
SCALE_KIND = "model size"
WIDTHS = [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]

pool = state.get_pool()
owner = state.owner_id()
if CURRENT not in st.session_state:  # a new tab or a reload: the workspace's comparison, jobs reattached
    st.session_state[CURRENT] = state.load_comparison()
comp: cmp.Comparison | None = st.session_state.get(CURRENT)
shot_mode = st.query_params.get("view") == "shot" or bool(st.session_state.get(SHOT))


def series_of(c: cmp.Comparison) -> list[Series]:
    return [Series(r.name, r.epochs, r.steps, r.batch_losses, r.status) for r in c.runs]


def summary_frame(c: cmp.Comparison, compact: bool = False) -> pd.DataFrame:
    df = pd.DataFrame(cmp.summary_rows(c))
    if compact:
        df = df.drop(columns=["epochs", "final val loss"])
        if not df["message"].astype(bool).any():
            df = df.drop(columns=["message"])
    return df


def as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Numbers as short text for a static table (a screenshot shows 71.5, not 71.500000)."""
    def cell(v: object) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return "–"
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
        return str(v)

    return df.map(cell)


def differing(c: cmp.Comparison) -> str:
    fields = c.differing()
    return ", ".join(fields) if fields else "nothing (identical configs)"


def status_line(c: cmp.Comparison) -> str:
    counts: dict[str, int] = {}
    for r in c.runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    return " · ".join(f"{n} {s}" for s, n in counts.items())


def start(c: cmp.Comparison) -> None:
    cmp.submit(c, pool, owner)
    st.session_state[CURRENT] = c
    st.session_state.pop("compare_done_seen", None)
    state.save_comparison(c)


def finished_once(c: cmp.Comparison) -> None:
    """One full rerun when the last run ends, so buttons and exports reflect the result."""
    if c.started and not c.active and st.session_state.get("compare_done_seen") != c.comparison_id:
        st.session_state["compare_done_seen"] = c.comparison_id
        state.save_comparison(c)  # the finished comparison, with its results, for the next tab or reload
        st.rerun(scope="app")


# --- screenshot layout -----------------------------------------------------------------------------
def shot_view(c: cmp.Comparison | None) -> None:
    # no sidebar, header or toolbar; tight padding so the whole comparison fits one screen
    st.html("<style>[data-testid='stSidebar'],[data-testid='stSidebarCollapsedControl'],"
            "[data-testid='stHeader'],[data-testid='stToolbar']{display:none !important}"
            ".block-container, [data-testid='stMainBlockContainer']{padding-top:1rem !important;"
            "padding-bottom:0.5rem !important}</style>")
    if c is None:
        st.info("No comparison in this session yet: start one on the Compare page.")
    else:
        live = c.active

        def body() -> None:
            cmp.refresh(c, pool, owner)
            title = (c.title or "comparison").strip()
            st.markdown(f"#### {md(title[0].upper() + title[1:], 200)}: {len(c.runs)} runs")
            st.caption(f"**Base:** {cmp.describe_base(c.base)} · **varies:** {differing(c)} · same initial "
                       "weights where the architecture matches, same batches in the same order · "
                       "solid = validation, dashed = train in eval mode (on the training set, after each epoch)")
            st.plotly_chart(curves_figure(series_of(c), c.task, height=400), width="stretch", config=PNG_CONFIG,
                            key="compare_shot_curves")
            st.table(as_text(summary_frame(c, compact=True)).set_index("run"))
            finished_once(c)

        st.fragment(body, run_every=1.0 if live else None)()
    if st.button("Leave the screenshot layout", type="tertiary", key="compare_leave_shot"):
        st.session_state[SHOT] = False
        st.query_params.pop("view", None)
        st.rerun()


if shot_mode:
    shot_view(comp)
    st.stop()

# --- controls -----------------------------------------------------------------------------------------
state.show_notice()
render_lesson_banner(compact=comp is not None)
st.title("Compare")
st.caption("Which optimizer? Does regularization help? Run the options side by side: every run starts from the "
           "same initial weights (where the architecture matches) and sees the same batches in the same order, "
           "so only the setting you vary differs.")
active = comp is not None and comp.active
advanced = not advanced_hidden()
lesson_now = active_lesson()


def export_title(c: cmp.Comparison) -> str:
    """The curves' title, which an exported PNG keeps: what was compared, on what, with which seeds, when."""
    title = (c.title or "comparison").strip()
    seeds = sorted({r.config.seed for r in c.runs})
    data = sorted({r.config.data.name for r in c.runs})
    when = (c.created or time.strftime("%Y-%m-%d %H:%M:%S"))[:16]
    # Plotly reads a few HTML tags in titles (links among them): text from a file is escaped for it
    return (f"{html.escape(title[0].upper() + title[1:120])}: {len(c.runs)} runs<br><sup>varies "
            f"{html.escape(differing(c)[:160])} · {', '.join(data)} · seed{'s' * (len(seeds) > 1)} "
            f"{', '.join(map(str, seeds))} · {html.escape(when)}</sup>")


def distill_plan(b: ExperimentConfig) -> cmp.Comparison | None:
    """The base as the student, trained on labels only and distilled from the chosen teacher."""
    offered = teachers.options()
    keys = list(offered)
    default = keys.index("shipped:digits_cnn") if "shipped:digits_cnn" in keys else 0
    key = st.selectbox("Teacher", keys, default, format_func=lambda k: offered[k], key="compare_teacher",
                       help="A shipped pretrained model or one of your stored runs; its classes and input size "
                            "must be the base experiment's")
    c = st.columns(2)
    temperature = c[0].slider("temperature T", 1.0, 20.0, DEFAULT_TEMPERATURE, 0.5, key="compare_distill_T",
                              help="Softens both models' probabilities so the student sees how the teacher "
                                   "ranks the wrong classes")
    alpha = c[1].slider("alpha", 0.0, 1.0, DEFAULT_ALPHA, 0.05, key="compare_distill_alpha",
                        help="Weight of the teacher's soft targets; 1 - alpha goes to the true labels")
    st.caption("Both runs are the base experiment: the same initial weights, batches, epochs and seed. One learns "
               "from the labels only, the other from T² · KL(teacher ‖ student) · alpha + (1 − alpha) · "
               "cross-entropy.")
    try:
        return cmp.plan_distillation(b, teachers.load(key), temperature, alpha)
    except DistillError as exc:
        raise ConfigError([("teacher", str(exc))]) from None


def scale_plan(b: ExperimentConfig) -> cmp.Comparison | None:
    """The base design at several widths (and depths), for loss against size and compute."""
    widths = st.multiselect("Width multipliers", WIDTHS, [0.25, 0.5, 1.0, 2.0], key="compare_widths",
                            format_func=lambda w: f"x{w:g}",
                            help="Channels of every conv block and units of every dense layer (an RNN's hidden "
                                 "size) times this")
    unit = "conv blocks" if b.model.family == "cnn" else "recurrent layers"
    now = len(b.model.conv) if b.model.family == "cnn" else b.model.layers
    depths = st.multiselect(f"Depths ({unit}; empty: the base's {now})", list(range(1, 9)), [],
                            key="compare_depths",
                            help="Blocks beyond the base's copy its last block without pooling")
    st.caption("Every size trains on the same data in the same order for the same epochs; loss is then plotted "
               "against parameters and training FLOPs on log-log axes with a fitted power law.")
    return cmp.plan_scale(b, sorted(widths), sorted(depths) or None) if widths else None


live, side = st.columns([2.2, 1.2], gap="medium")
with side:
    base_box = st.expander("**1. Base experiment**", expanded=comp is None, icon=":material/science:")
    with base_box:
        source = st.radio("Start from", ["current experiment", "a preset"], key="compare_source", horizontal=True)
        if source == "a preset":
            names = preset_names()
            preset = st.selectbox("Preset", names, names.index("quickstart_cnn") if "quickstart_cnn" in names else 0,
                                  key="compare_preset")
            base: ExperimentConfig = load_preset(preset)
        else:
            base = state.get_config()
            st.caption("The experiment from the Build and Train pages.")
        top = current_limits().max_epochs
        epochs = st.number_input("epochs for every run", 1, top, min(int(base.training.epochs), top),
                                 key="compare_epochs")
        if epochs != base.training.epochs:
            base = base.with_changes({"training.epochs": int(epochs)})
        base, data_error = own_data.choose_for(base, "compare")
        st.caption(f"Base: {cmp.describe_base(base)}")

    kinds = ["optimizer", "regularizer"] + (["model family"] if base.model.family != "cnn" else []) + \
        (["one setting", DISTILL_KIND, SCALE_KIND] if advanced else [])
    if lesson_now is not None and lesson_now.compare and lesson_now.compare not in kinds:
        kinds.append(lesson_now.compare)  # the kind the lesson is about, even with advanced controls hidden
    if st.session_state.get("compare_kind") not in kinds:
        st.session_state["compare_kind"] = kinds[0]
    with st.expander(f"**2. What varies** · {st.session_state['compare_kind']} (up to {cmp.MAX_RUNS} runs)",
                     expanded=comp is None, icon=":material/tune:"):
        kind = st.radio("What varies", kinds, horizontal=True, key="compare_kind", label_visibility="collapsed")
        planned: cmp.Comparison | None = None
        try:
            if kind == "optimizer":
                chosen = st.multiselect("Optimizers", list(OPTIMIZERS), ["sgd", "momentum", "adam"],
                                        key="compare_optimizers", max_selections=cmp.MAX_RUNS)
                cols = st.columns(2)
                choices = [(n, cols[i % 2].number_input(f"{n} lr", 1e-6, 100.0, cmp.DEFAULT_LR[n], format="%g",
                                                        key=f"compare_lr_{n}")) for i, n in enumerate(chosen)]
                planned = cmp.plan_optimizers(base, choices) if choices else None
            elif kind == "regularizer":
                chosen = st.multiselect("Regularizers", list(cmp.REGULARIZERS), ["none", "L2", "dropout",
                                                                                  "augmentation"],
                                        key="compare_regularizers", max_selections=cmp.MAX_RUNS)
                strong = [n for n in chosen if cmp.REGULARIZERS[n][0] is not None]
                cols = st.columns(2)
                strengths = {n: cols[i % 2].number_input(n, 0.0, 1000.0, float(cmp.REGULARIZERS[n][0]), format="%g",
                                                         help=cmp.REGULARIZERS[n][1], key=f"compare_reg_{n}")
                             for i, n in enumerate(strong)}
                st.caption("Every run starts from the base with all regularizers off; each adds one.")
                planned = cmp.plan_regularizers(base, [(n, strengths.get(n)) for n in chosen]) if chosen else None
            elif kind == "model family":
                fams = st.multiselect("Model families", list(FAMILY_NAMES), ["rnn", "lstm"], key="compare_families",
                                      format_func=lambda f: FAMILY_NAMES[f])
                st.caption("The same hidden size, layers and data for each; only the cell differs (their initial "
                           "weights differ too, since the cells have different weights).")
                planned = cmp.plan(base, [{"model.family": f} for f in fams], names=[FAMILY_NAMES[f] for f in fams],
                                   title="model family") if fams else None
            elif kind == DISTILL_KIND:
                planned = distill_plan(base)
            elif kind == SCALE_KIND:
                planned = scale_plan(base)
            else:
                fields = list(cmp.SWEEP_FIELDS) + ["other"]
                picked = st.selectbox("Setting", fields, format_func=lambda f: cmp.SWEEP_FIELDS.get(f, "other field…"),
                                      key="compare_field")
                path = st.text_input("Dotted config path", "regularization.l1", key="compare_path") \
                    if picked == "other" else picked
                if picked != "other":
                    st.text_input("Dotted config path", picked, disabled=True, key=f"compare_path_{picked}")
                values_text = st.text_input("Values, comma separated", "0.1, 0.01, 0.001", key="compare_values")
                values = [cmp.parse_value(v) for v in cmp.split_values(values_text) if v]
                planned = cmp.plan_sweep(base, path, values) if values else None
        except ConfigError as exc:
            st.error(f"Cannot plan this comparison: {md(sentence(exc, capital=False), 2000)}", icon=":material/error:")
            planned = None

        if data_error is not None:
            planned = None  # the data settings are at fault: said beside the data choice
        if planned is not None and comp is not None:
            st.markdown("What differs between the planned runs (from their configs):")
            st.dataframe(pd.DataFrame(planned.differs()), hide_index=True, width="stretch")

    # the one-click overfitting comparison is that lesson's (and the free playground's), not every lesson's
    lesson = False
    if lesson_now is None or lesson_now.name == OVERFITTING_LESSON:
        lesson = st.button("Overfitting lesson (one click)", key="compare_lesson", disabled=active,
                           icon=":material/school:", width="stretch",
                           help="100 training digits, trained with no regularization, L2, dropout and augmentation")

with live:
    b = st.columns([1.5, 1, 1.5] if advanced else [1.5, 1, 0.01])
    go_start = b[0].button("Start comparison", type="primary", disabled=planned is None or active,
                           key="compare_start", width="stretch", icon=":material/play_arrow:")
    if b[1].button("Stop all", disabled=not active, key="compare_stop", width="stretch"):
        n = cmp.stop(comp, pool, owner)
        state.notify(f"Stopped {n} run(s) of the comparison.", "warning")
        st.rerun()
    if advanced and b[2].button("Screenshot layout", key="compare_to_shot", icon=":material/photo_camera:",
                                width="stretch",
                                help="A layout without controls that fits the comparison on one screen (or open "
                                     "?view=shot)"):
        st.session_state[SHOT] = True
        st.rerun()
    if active:
        st.caption(f"The server trains {pool.max_workers} run(s) at a time; the others wait in the queue.")

if lesson:
    start(cmp.overfitting_lesson())
    st.rerun()
if go_start and planned is not None:
    start(planned)
    st.rerun()

# --- results -----------------------------------------------------------------------------------------
if comp is None:
    with live:
        st.info("Choose what varies (beside) and press **Start comparison**" +
                (", or upload a comparison JSON below." if advanced else "."))
        if planned is not None:  # the plan, in the room the curves will take
            st.markdown(f"**Planned: {len(planned.runs)} runs.** What differs between them (from their configs):")
            st.dataframe(pd.DataFrame(planned.differs()), hide_index=True, width="stretch")
else:
    # the results below are of `comp`; when the controls above plan something else, say so
    previous = planned is not None and [r.config.to_dict() for r in planned.runs] != \
        [r.config.to_dict() for r in comp.runs]

    def curves() -> None:
        """Status and the live curves (updated in place in the browser, every LIVE_EVERY s while runs train)."""
        cmp.refresh(comp, pool, owner)
        if previous:
            st.info("These are the results of the previous comparison: the settings beside describe another one "
                    "(press **Start comparison** to run it).", icon=":material/history:")
        # the comparison's name and what varies are the curves' title (an exported PNG keeps them)
        st.caption(f"**{status_line(comp)}** · base: {cmp.describe_base(comp.base)}")
        for r in comp.runs:
            if r.status == "diverged":
                st.error(f"{md(r.name)} diverged: {md(sentence(r.message, capital=False))}", icon=":material/warning:")
            elif r.status in ("failed", "lost"):
                st.error(f"{md(r.name)} {md(r.status)}: {md(sentence(r.message, capital=False))}",
                         icon=":material/error:")
        log = bool(st.session_state.get("compare_log"))
        fig = curves_figure(series_of(comp), comp.task, log_loss=log, title=export_title(comp), height=360)
        live_chart([fig.to_plotly_json()], key="compare_curves", config=PNG_CONFIG,
                   revision=f"{comp.comparison_id}-{log}", poll_every=LIVE_EVERY if comp.active else 0)
        st.toggle("log-scale loss", key="compare_log")
        finished_once(comp)

    with live:
        st.fragment(curves)()

    def tables() -> None:
        cmp.refresh(comp, pool, owner)
        st.markdown("**Summary** (best epoch = the epoch of the best validation metric; the train-val gap uses the "
                    "train metric in eval mode on the training set, without dropout or augmentation, at the last "
                    "epoch; the dashed train curves are that clean value too)")
        frame = summary_frame(comp, compact=True)
        st.dataframe(frame, hide_index=True, width="stretch")
        with st.expander("Every column of the summary"):
            st.dataframe(summary_frame(comp), hide_index=True, width="stretch")
        rows = cmp.summary_rows(comp)
        unit = cmp.metric_label(comp.task)
        series = series_of(comp)
        log = bool(st.session_state.get("compare_log"))
        c1, c2 = st.columns(2)
        c1.plotly_chart(bars_figure(comp.names, [r[f"best val {unit}"] for r in rows],
                                    [r[f"train-val gap {unit}"] for r in rows], comp.task),
                        width="stretch", config=PNG_CONFIG, key="compare_bars")
        if any(s.steps for s in series):
            c2.plotly_chart(batch_loss_figure(series, log_y=log), width="stretch", config=PNG_CONFIG,
                            key="compare_batches")
        st.markdown("**What differs** (computed by diffing the run configs) and the fairness evidence")
        differs = pd.DataFrame(comp.differs()).merge(pd.DataFrame(cmp.fairness_rows(comp)), on="run")
        st.dataframe(differs, hide_index=True, width="stretch")
        st.caption("Equal digests mean bit-identical initial weights, the same samples in the same batches "
                   "(order), and bit-identical inputs for every batch of the first epoch (augmentation transforms "
                   "the inputs, so only its order digest matches).")

    def scaling() -> None:
        """Loss against parameters and training FLOPs, log-log, with the power law fitted on the points."""
        cmp.refresh(comp, pool, owner)
        points = cmp.scale_points(comp)
        st.markdown("**Loss against size and compute** (each point a finished run; the dashed line is "
                    "loss ≈ a · x^(−b), least squares in log space)")
        if len({p.params for p in points}) < 2:
            st.info("The fit needs at least two finished sizes.", icon=":material/hourglass_top:")
            return
        c1, c2 = st.columns(2)
        for col, against in ((c1, "params"), (c2, "train_flops")):
            fit = cmp.fit_points(points, against)
            col.plotly_chart(scaling_figure(points, fit, against), width="stretch", config=PNG_CONFIG,
                             key=f"compare_scaling_{against}")
            if fit is not None:
                col.caption(f"Exponent b = {fit.b:.3f}: {fit.describe('N' if against == 'params' else 'C')}.")
        st.caption(cmp.FIT_NOTE.format(n=len(points)) + " Training FLOPs are estimated as 3 × the counted forward "
                   "FLOPs × samples trained (backward ≈ 2 × forward); validation passes are not counted.")
        big = ("parameters", "forward FLOPs / sample", "training FLOPs (est.)")  # 1,075,392,000, not 1075392000
        st.dataframe(pd.DataFrame(cmp.scale_rows(points)), hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(format="localized") for c in big})

    st.divider()
    if comp.kind == "scale":
        st.fragment(scaling, run_every=LIVE_EVERY if active else None)()
    st.fragment(tables, run_every=LIVE_EVERY if active else None)()

    st.markdown("**Export**")
    e = st.columns(4)
    e[0].download_button("Table (.csv)", cmp.to_csv(cmp.summary_rows(comp)), file_name="comparison_summary.csv",
                         mime="text/csv", key="compare_dl_table", width="stretch")
    e[1].download_button("Curves (.csv)", cmp.to_csv(cmp.curve_rows(comp)), file_name="comparison_curves.csv",
                         mime="text/csv", key="compare_dl_curves", width="stretch")
    e[2].download_button("Comparison (.json)", comp.to_json(), file_name=f"{comp.comparison_id}.json",
                         mime="application/json", key="compare_dl_json", width="stretch",
                         help="Upload it here later to re-open the comparison")
    e[3].caption("Figures: the camera icon in each chart's toolbar saves a PNG with its title (what was compared, "
                 "the data, the seeds and the date).")

if advanced:  # a lesson hides it until the learner asks for the advanced controls
    with st.expander("Re-open a comparison (.json)"):
        up = st.file_uploader("Comparison JSON", type=["json"], key="compare_upload", disabled=active)
        if up is not None and st.session_state.get("compare_loaded") != up.file_id:
            try:
                loaded = cmp.Comparison.from_json(up.getvalue())
            except ConfigError as exc:
                st.error(f"Cannot open {md(up.name)}: {md(sentence(exc, capital=False), 2000)}")
            else:
                st.session_state["compare_loaded"] = up.file_id
                st.session_state[CURRENT] = loaded
                # it is finished already: no extra "last run ended" rerun, which would wipe the notice
                st.session_state["compare_done_seen"] = loaded.comparison_id
                state.save_comparison(loaded)
                name = md(loaded.title or loaded.comparison_id, 200)
                state.notify(f"Opened the comparison {name} ({len(loaded.runs)} runs).")
                st.rerun()
