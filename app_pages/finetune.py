"""Fine-tune: start from pretrained weights, choose what trains and how many labels, compare with scratch.

The page reads widgets and draws; cards, strategies, budgets, uploads and jobs live in
``bigmodel_core.experiments.finetune``. Runs go through the shared job pool like the Compare page's, and
follow its fairness rules: at one budget and seed every strategy sees the same labelled
examples in the same order for the same number of steps, from the same new-head init.
"""

from __future__ import annotations

import json
import secrets

import pandas as pd
import streamlit as st

from bigmodel_core.config.presets import load_preset, preset_names
from bigmodel_core.config.specs import ConfigError, ExperimentConfig, parse_config
from bigmodel_core.data import DATASET_NAMES, dataset_info, is_upload_name
from bigmodel_core.experiments import distill
from bigmodel_core.experiments import finetune as ft
from bigmodel_core.limits import current_limits
from bigmodel_core.nn.models import build_model
from bigmodel_core.training.jobs import ACTIVE
from bigmodel_core.training.trainer import load_data
from ui import own_data, state, teachers
from ui.figures.compare import Series, curves_figure
from ui.figures.finetune import PNG_CONFIG, before_after_figure, budget_figure, strategy_color, trainable_figure
from ui.lesson import render_lesson_banner
from ui.literal import md, sentence
from ui.live_chart import live_chart

RUNS = "ft_runs"  # this session's fine-tune runs: list of dicts (job id, setting, strategy, budget, seed)
UPLOAD = "ft_upload"  # (file id, Source, architecture config) of an accepted upload
UPLOAD_ERROR = "ft_upload_error"
UPLOAD_OPTION = "upload my own weights (.safetensors)"
CLASS_BUDGETS: list[int | str] = [1, 2, 5, 10, 20, 50, 100, "all"]
SEQ_BUDGETS: list[int | str] = [10, 20, 50, 100, 200, 500, "all"]

pool = state.get_pool()
owner = state.owner_id()


@st.cache_resource(show_spinner="Checking the pretrained weights against their card…")
def shipped(name: str) -> ft.Source:
    # shared by every session: the tensors are only ever copied into new models, never changed
    return ft.load_pretrained(name)


def budget_value(v: int | str) -> int | None:
    return None if v == "all" else int(v)


def compatible_datasets(info_shape: tuple[int, ...], kind: str) -> list[str]:
    out = []
    for name in DATASET_NAMES:
        i = dataset_info(name)
        if i.kind != kind:
            continue
        if kind == "image" and i.input_shape == info_shape:
            out.append(name)
        elif kind == "sequence" and i.input_shape[1:] == info_shape[1:]:
            out.append(name)
    return out


state.show_notice()
render_lesson_banner()
st.title("Fine-tune")
st.caption("Transfer learning, three ways: **fine-tune** a pretrained model, use it as a **frozen feature "
           "extractor** under a new classifier, and **transfer** what it learned on one task to a related one. "
           "Below, every strategy is measured against the same network trained **from scratch**, at the label "
           "budget you choose, so you can see when pretraining wins, and when it does not.")

# --- 1. pretrained weights ---------------------------------------------------------------------------
with st.container(border=True):
    st.markdown("**1. Pretrained weights**")
    names = ft.pretrained_names()
    choice = st.selectbox("Start from", names + [UPLOAD_OPTION], key="ft_source",
                          format_func=lambda n: n if n == UPLOAD_OPTION else f"{n}: {ft.RECIPES[n].title}")
    source: ft.Source | None = None
    arch: ExperimentConfig | None = None
    base_target: ExperimentConfig | None = None
    recipe = None
    if choice != UPLOAD_OPTION:
        try:
            source = shipped(choice)
        except ft.FinetuneError as exc:
            st.error(md(sentence(exc), 2000), icon=":material/gpp_bad:")
            st.stop()
        card = source.card or {}
        recipe = ft.RECIPES[choice]
        arch = parse_config(card["config"])
        base_target = ft.suggested_target(choice)
        m = card.get("metrics", {})
        score = (f"validation accuracy {m['val_accuracy']:.3f}" if m.get("val_accuracy") is not None
                 else f"validation MAE {m.get('val_mae', float('nan')):.4f}")
        c = st.columns([3, 2])
        c[0].markdown(f"{card.get('description', '')}  \nPretrained on **{card['trained_on']['dataset']}** "
                      f"({card['trained_on']['train_size']:,} examples, {m.get('epochs')} epochs): {score}.")
        c[1].success(f"sha256 matches the card: `{source.sha256[:16]}…`", icon=":material/verified:")
        c[1].caption(f"Reproduce: `{card.get('command')}` ({card.get('reproducibility', '')})")
        with st.expander("The card (JSON)"):
            st.json({k: v for k, v in card.items() if k not in ("tensors", "epoch_sha256")}, expanded=False)
    else:
        c = st.columns([1.3, 2])
        arch_choice = c[0].selectbox("Architecture of the weights", names + ["my current experiment"],
                                     key="ft_upload_arch",
                                     format_func=lambda n: n if n == "my current experiment" else f"same as {n}")
        if arch_choice == "my current experiment":
            arch = state.get_config()
            base_target = arch
        else:
            arch = ft.suggested_target(arch_choice)
            base_target = arch
        up = c[1].file_uploader("Weights (.safetensors only; pickle, .pt and .pth are refused unread)", type=None,
                                key="ft_upload_file")
        st.caption(f"The file is checked before use: size (limit {current_limits().max_upload_bytes:,} bytes), "
                   "safetensors header, then every tensor's shape against the model; the first mismatch is named. "
                   "Nothing in the file is ever executed and nothing is kept if it is refused.")
        held = st.session_state.get(UPLOAD)
        if up is None:
            st.session_state.pop(UPLOAD, None)
            st.session_state.pop(UPLOAD_ERROR, None)
        elif held is None or held[0] != (up.file_id, arch.model_dump_json()):
            st.session_state.pop(UPLOAD, None)
            try:
                accepted = ft.accept_upload(up.getvalue(), up.name, arch)
            except ft.FinetuneError as exc:
                st.session_state[UPLOAD_ERROR] = f"{up.name} was refused: {exc}"
            else:
                st.session_state.pop(UPLOAD_ERROR, None)
                st.session_state[UPLOAD] = ((up.file_id, arch.model_dump_json()), accepted)
        if st.session_state.get(UPLOAD_ERROR):
            st.error(md(sentence(st.session_state[UPLOAD_ERROR], capital=False), 2000), icon=":material/block:")
        if st.session_state.get(UPLOAD):
            source = st.session_state[UPLOAD][1]
            st.success(f"Accepted {source.label}: {len(source.state)} tensors fit the model "
                       f"(sha256 `{source.sha256[:16]}…`).", icon=":material/check_circle:")

assert arch is not None and base_target is not None

# --- 2. target task ----------------------------------------------------------------------------------
with st.container(border=True):
    st.markdown("**2. Target task**")
    arch_info = dataset_info(arch.data.name, image_size=arch.data.image_size, seq_len=arch.data.seq_len)
    # the built-in sets this model reads, and the learner's own uploads of its input shape ("my own images")
    options, _ = own_data.options(compatible_datasets(arch_info.input_shape, arch_info.kind), arch_info.kind,
                                  base_target.data.name, "finetune", f"ft_target_{choice}",
                                  shape=arch_info.input_shape)
    default = base_target.data.name if base_target.data.name in options else options[0]
    c = st.columns([2, 1, 1, 1])
    current = st.session_state.get(f"ft_target_{choice}")  # the learner's choice, or the file just uploaded
    target_name = own_data.choice(c[0], "Dataset", options, current if current in options else default,
                                  f"ft_target_{choice}")
    d = base_target.to_dict()
    data = dict(d["data"]) if target_name == base_target.data.name else \
        {"name": target_name, "train_size": 2000, "val_size": 1000, "augment": False,
         "image_size": 28 if target_name == "handwritten_digits" else None,
         "seq_len": base_target.data.seq_len if dataset_info(target_name).kind == "sequence" and
         target_name in ("adding_problem", "sine_wave") else None}
    if target_name == "handwritten_digits" and target_name != base_target.data.name:
        data.update(train_size=1297, val_size=500)
    if data.get("seq_len") is not None:
        top_len = current_limits().max_seq_len
        data["seq_len"] = int(c[1].number_input("sequence length", 5, top_len, min(int(data["seq_len"]), top_len),
                                                key=f"ft_seq_{choice}_{target_name}"))
    top_epochs = current_limits().max_epochs
    epochs = int(c[2].number_input("epochs", 1, top_epochs, min(int(d["training"]["epochs"]), top_epochs),
                                   key="ft_epochs",
                                   help=f"Each epoch shows at least {ft.DEFAULT_EPOCH_SAMPLES} labelled samples: "
                                        "a small labelled set is repeated, so every strategy takes the same steps."))
    seed = int(c[3].number_input("seed", 0, 2**31 - 1, int(d["seed"]), key="ft_seed"))
    try:
        target = parse_config({**d, "seed": seed, "data": data, "model": arch.to_dict()["model"],
                               "training": {**d["training"], "epochs": epochs}})
    except ConfigError as exc:
        st.error(f"This target does not work: {md(sentence(exc, capital=False), 2000)}")
        st.stop()
    info = dataset_info(target.data.name, image_size=target.data.image_size, seq_len=target.data.seq_len)
    own_budget = None  # the label budget the learner's own data leaves, in numbers
    data_error = None
    if is_upload_name(target.data.name):
        data_error = own_data.describe(target.data.name, target.to_dict()["data"], seed)
        if data_error is None:
            own_budget = ft.label_budget(load_data(target))
            for line in own_budget.sentences():
                st.caption(md(line, 400))
    else:
        st.caption(info.description)
    own_data.upload_box("finetune", arch_info.kind, shape=arch_info.input_shape)
    if arch_info.kind == "image":
        side = arch_info.input_shape[1]
        st.caption(f"My own images: a .zip with one folder per class, a few images each (as in Teachable Machine); "
                   f"they are made grayscale and resized to {side} x {side} to fit the pretrained model.")
    if data_error is not None:
        st.stop()
    if recipe is not None and target.data.name == base_target.data.name and \
            target.data.seq_len == base_target.data.seq_len:
        st.info(f"**Suggested target: {recipe.target_title}.** {recipe.lesson}", icon=":material/lightbulb:")

# --- 3. strategy and budget ----------------------------------------------------------------------------
shape_model = build_model(target.model, info)  # structure only: which blocks exist
units = ft.backbone_units(shape_model)
unit_name = ft.budget_unit(info)
with st.container(border=True):
    st.markdown("**3. What trains, and how many labels**")
    c = st.columns([2.2, 1, 1.2])
    kinds = ["head", "last", "full", "scratch"]
    kind = c[0].radio("Strategy", kinds, key="ft_strategy", horizontal=True,
                      format_func=lambda k: {"head": "head only", "last": "last N blocks", "full": "full",
                                             "scratch": "from scratch"}[k],
                      help="; ".join(f"{k}: {v}" for k, v in ft.STRATEGY_HELP.items()))
    n_last = int(c[1].number_input("N (last:N)", 1, len(units), 1, key="ft_last_n", disabled=kind != "last"))
    lr_scale = float(c[2].select_slider("backbone lr × (last:N, full)", [0.01, 0.03, 0.1, 0.3, 1.0], 0.1,
                                        key="ft_lr_scale"))
    strategy = ft.Strategy.parse(f"last:{n_last}" if kind == "last" else kind)
    st.caption(f"{strategy.label}: {ft.STRATEGY_HELP[strategy.kind]}.")
    per_class_max = None
    if own_budget is not None:
        per_class_max = own_budget.most_per_class  # what the split of the learner's own data leaves
    elif info.task == "classification":
        per_class_max = target.data.train_size // info.num_outputs
    choices = [b for b in (CLASS_BUDGETS if info.task == "classification" else SEQ_BUDGETS)
               if b == "all" or b <= (per_class_max or target.data.train_size)]
    budget_choice = st.select_slider(f"Label budget ({unit_name})", choices, 5 if 5 in choices else choices[0],
                                     key=f"ft_budget_{info.task}")
    budget = budget_value(budget_choice)
    rows = ft.layer_table(shape_model, strategy, lr_scale)
    base_lr = target.optimizer.lr
    table = pd.DataFrame([{"block": r.block, "parameters": r.params,
                           "trains": "yes" if r.trainable else "frozen",
                           "learning rate": f"{base_lr * r.lr_scale:g}" if r.lr_scale is not None else "–",
                           "BatchNorm": r.batchnorm or "–"} for r in rows])
    c = st.columns([1.5, 1])
    c[0].dataframe(table, hide_index=True, width="stretch")
    c[1].plotly_chart(trainable_figure([r.block for r in rows], [r.params for r in rows],
                                       [r.trainable for r in rows]), width="stretch", config=PNG_CONFIG,
                      key="ft_trainable_chart")
    st.caption("BatchNorm: frozen blocks stay in eval mode, so their running mean and variance keep the pretrained "
               "values (and their dropout is off); blocks that train use batch statistics and update them as usual. "
               "The new head starts from the same seeded weights for every strategy.")

# --- 4. run -------------------------------------------------------------------------------------------------
setting = {"target": target.model_dump(mode="json", exclude={"seed"}), "source": source.sha256 if source else None}
setting_key = json.dumps(setting, sort_keys=True)
if RUNS not in st.session_state:  # a new tab or a reload: the workspace's fine-tunes, jobs found by id
    st.session_state[RUNS] = state.load_finetunes()
runs: list[dict] = st.session_state[RUNS]
mine = [r for r in runs if r["setting"] == setting_key or (r["strategy"] == "scratch" and r["target"] ==
                                                             json.dumps(setting["target"], sort_keys=True))]
jobs = {r["job_id"]: pool.get(owner, r["job_id"]) for r in mine}
active = any(j is not None and j.status in ACTIVE for j in jobs.values())


def submit(planned: list[ft.PlannedRun], group: str, save: bool) -> None:
    for run in planned:
        job = pool.submit(ft.make_job(target, run, source, owner, backbone_lr_scale=lr_scale, group=group,
                                      save=save))
        runs.append({"job_id": job.job_id, "setting": setting_key,
                     "target": json.dumps(setting["target"], sort_keys=True), "strategy": str(run.strategy),
                     "label": run.strategy.label, "budget": run.budget_text, "seed": run.seed,
                     "source": source.label if source and run.strategy.uses_pretrained else "",
                     "group": group, "title": job.label})
    st.session_state.pop("ft_done_seen", None)
    state.save_finetunes(runs)


with st.container(border=True):
    st.markdown("**4. Train**")
    need_source = strategy.uses_pretrained and source is None
    c = st.columns([1.2, 3])
    one = c[0].button("Fine-tune", type="primary", key="ft_one", disabled=need_source, width="stretch",
                      help="Train the strategy above at the budget above")
    c[1].caption("One run of the chosen strategy and budget. Or run the experiment below: every strategy at "
                 "several budgets, same seeds, same steps, same data order.")
    c = st.columns([2, 2, 0.8])
    all_strats = ["head", f"last:{n_last}", "full", "scratch"]
    exp_strats = c[0].multiselect("Strategies", all_strats, all_strats, key=f"ft_exp_strats_{n_last}")
    default_budgets = [b for b in ([1, 5, 20, "all"] if info.task == "classification" else [20, 50, 200, "all"])
                       if b in choices]
    exp_budgets = c[1].multiselect(f"Budgets ({unit_name})", choices, default_budgets, key=f"ft_exp_b_{info.task}")
    n_seeds = int(c[2].number_input("seeds", 1, 3, 1, key="ft_exp_seeds"))
    try:
        planned = ft.plan_experiment(exp_strats, [budget_value(b) for b in exp_budgets],
                                     list(range(seed, seed + n_seeds)))
        plan_error = None
    except ft.FinetuneError as exc:
        planned, plan_error = [], str(exc)
    if source is None:
        planned = [p for p in planned if not p.strategy.uses_pretrained]
    c = st.columns([1.6, 1, 2.6])
    many = c[0].button(f"Run experiment ({len(planned)} runs)", key="ft_many", disabled=not planned or active,
                       width="stretch")
    if c[1].button("Stop all", key="ft_stop", disabled=not active, width="stretch"):
        for j in jobs.values():
            if j is not None:
                j.stop()
        st.rerun()
    if plan_error:
        c[2].error(plan_error)
    elif active:
        c[2].caption(f"The server trains {pool.max_workers} model(s) at a time; the others wait in the queue.")
    if need_source:
        st.warning("Upload weights (or pick a shipped model) to fine-tune; from scratch needs none.")
    if one:
        submit([ft.PlannedRun(strategy, budget, seed)], group="ft-" + secrets.token_hex(4), save=True)
        st.rerun()
    if many and planned:
        submit(planned, group="ft-" + secrets.token_hex(4), save=False)
        st.rerun()


# --- 5. results --------------------------------------------------------------------------------------------
def results() -> None:
    snaps = [(r, pool.snapshot(owner, r["job_id"])) for r in mine]
    snaps = [(r, s) for r, s in snaps if s is not None]
    if not snaps:
        st.info("No runs for this pretrained model and target yet: press **Fine-tune** or **Run experiment**.")
        return
    res = ft.aggregate_results([ft.RunOutcome(r["strategy"], r["label"], r["budget"], r["seed"], s.status, s.summary,
                                              r["source"]) for r, s in snaps], info.task, info.num_outputs, unit_name)
    st.caption(" · ".join(f"{n} {k}" for k, n in res.counts.items()))
    if res.points:
        st.plotly_chart(budget_figure(res, info.task, unit_name), width="stretch", config=PNG_CONFIG,
                        key="ft_budget_chart")
    series = [Series(r["title"], s.epochs, s.steps, s.batch_losses, s.status) for r, s in snaps[-8:]]
    st.markdown("**Training curves**" + (" (the last 8 runs)" if len(snaps) > 8 else ""))
    st.plotly_chart(curves_figure(series, info.task, height=380,  # one colour per strategy, as in the chart above
                                  colors=[strategy_color(r["strategy"]) for r, _ in snaps[-8:]]),
                    width="stretch", config=PNG_CONFIG, key="ft_curves_chart")
    st.dataframe(pd.DataFrame(res.rows), hide_index=True, width="stretch")
    if all(s.finished for _, s in snaps) and st.session_state.get("ft_done_seen") != len(snaps):
        st.session_state["ft_done_seen"] = len(snaps)
        st.rerun(scope="app")


st.subheader("Results")
st.caption("Fair by construction: at one budget and seed, every strategy trains on the same labelled "
           "examples, in the same order, for the same number of steps, and the new head starts from the same "
           "weights; from scratch starts from the seeded random init of the same network.")
st.fragment(results, run_every=1.0 if active else None)()

# --- 6. inspect and download ------------------------------------------------------------------------------
done = [(r, jobs.get(r["job_id"])) for r in mine]
done = [(r, j) for r, j in done if j is not None and j.final_state is not None and j.trainer is not None]
if done:
    st.subheader("Inside a fine-tuned model")
    c = st.columns([3, 1])
    pick = c[0].selectbox("Run", range(len(done)), len(done) - 1, key="ft_inspect",
                          format_func=lambda i: done[i][0]["title"])
    r, job = done[pick]
    trainer = job.trainer
    x_val = trainer.dataset.x_val
    idx = int(c[1].number_input("validation input", 0, len(x_val) - 1, 0, key="ft_inspect_idx"))
    run_rows = ft.layer_table(build_model(job.config.model, info), r["strategy"], lr_scale)
    st.dataframe(pd.DataFrame([{"block": x.block, "trains": "yes" if x.trainable else "frozen",
                                "parameters": x.params, "BatchNorm": x.batchnorm or "–"} for x in run_rows]),
                 hide_index=True, width="stretch")
    pairs = ft.maps_before_after(job.config, info, trainer.start_state, job.final_state, x_val[idx].cpu())
    for i, p in enumerate(pairs):
        st.plotly_chart(before_after_figure(p.layer, p.kind, p.before, p.after), width="stretch",
                        config=PNG_CONFIG, key=f"ft_maps_{i}")
    if pairs and all(p.max_change == 0 for p in pairs):
        st.caption("Every map is bit-identical before and after: this strategy froze the whole feature extractor, "
                   "only the new head learned.")
    snap = job.snapshot()
    if snap.summary:
        st.download_button("Download the fine-tuned model with its card (.zip)",
                           ft.finetuned_zip(job.config, snap.summary, job.final_state, snap.epochs),
                           file_name="finetuned.zip", mime="application/zip", key="ft_download")


# --- 7. distillation ---------------------------------------------------------------------------------------
def distill_results() -> None:
    """The workspace's distillations: live curves (updated in place), then the stored run and the teacher's score."""
    jobs = pool.jobs_of_kind(owner, "distill")[-4:]
    if not jobs:
        st.info("No distillation yet in this workspace: choose a teacher and a student and press **Distil**.")
        return
    snaps = [pool.snapshot(owner, j.job_id) for j in jobs]
    snaps = [s for s in snaps if s is not None]
    live = any(not s.finished for s in snaps)
    task = snaps[-1].task or "classification"
    fig = curves_figure([Series(s.label, s.epochs, s.steps, s.batch_losses, s.status) for s in snaps], task,
                        height=340, title="Distilled students (train loss = the distillation objective)")
    live_chart([fig.to_plotly_json()], key="ft_distill_curves", config=PNG_CONFIG,
               revision=jobs[-1].job_id, poll_every=3.0 if live else 0)
    rows = []
    for s in snaps:
        d = (s.summary or {}).get("distill") or {}
        final = (s.summary or {}).get("final") or {}
        teacher_final = d.get("teacher_final") or {}
        status = s.status if s.queue_position is None else f"queued (#{s.queue_position})"
        rows.append({"run": s.label, "status": status,
                     "student val acc": final.get("val_accuracy"), "teacher val acc": teacher_final.get("val_accuracy"),
                     "student params": d.get("student_params"), "teacher params": d.get("teacher_params"),
                     "stored as": s.run_id or "–", "message": s.message})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if not live and st.session_state.get("ft_distill_seen") != len(snaps):
        st.session_state["ft_distill_seen"] = len(snaps)  # one full rerun when the last one ends
        st.rerun(scope="app")


st.subheader("Distillation: a big teacher trains a small student")
st.caption("Knowledge distillation (Hinton et al., 2015) moves what one model knows into another: the student "
           "learns from the teacher's softened class probabilities as well as from the labels. The teacher "
           "stays frozen; validation is the student's own, on held-out data.")
with st.container(border=True, key="ft_distill"):
    offered = teachers.options()
    keys = list(offered)
    c = st.columns([1.4, 1])
    t_key = c[0].selectbox("Teacher", keys, keys.index("shipped:digits_cnn") if "shipped:digits_cnn" in keys else 0,
                           format_func=lambda k: offered[k], key="ft_distill_teacher",
                           help="A shipped pretrained model or one of your stored runs")
    s_source = c[1].radio("Student", ["current experiment", "a preset"], key="ft_distill_student", horizontal=True)
    if s_source == "a preset":
        names = preset_names()
        p_name = c[1].selectbox("Student preset", names, names.index("lesson_distill_student")
                                if "lesson_distill_student" in names else 0, key="ft_distill_preset")
        d_student = load_preset(p_name)
    else:
        d_student = state.get_config()
        c[1].caption("The design from the Build page, on its data.")
    c = st.columns(2)
    d_temp = float(c[0].slider("Temperature T", 1.0, 20.0, distill.DEFAULT_TEMPERATURE, 0.5, key="ft_distill_T"))
    c[0].caption("T softens the probabilities of both models: at T = 1 they are the usual ones; a higher T shows "
                 "the student how the teacher ranks the wrong classes too.")
    d_alpha = float(c[1].slider("alpha", 0.0, 1.0, distill.DEFAULT_ALPHA, 0.05, key="ft_distill_alpha"))
    c[1].caption("alpha weights the teacher's soft targets and 1 − alpha the true labels: alpha = 0 is plain "
                 "training on the labels.")
    d_teacher: distill.Teacher | None = None
    d_problem = None
    try:
        d_teacher = teachers.load(t_key)
        d_problem = distill.teacher_problem(d_teacher, d_student)
    except (distill.DistillError, ft.FinetuneError, ConfigError) as exc:
        d_problem = str(exc)
    if d_problem:
        st.error(f"This teacher cannot teach this student: {md(sentence(d_problem, capital=False), 2000)}",
                 icon=":material/block:")
    else:
        st.caption(f"Student: {d_student.data.name} ({d_student.data.train_size:,} training samples), "
                   f"{d_student.training.epochs} epochs, seed {d_student.seed}; teacher: {d_teacher.label}, "
                   f"trained on {d_teacher.config.data.name}. The result is stored as a run (see the Runs page).")
    d_active = any(j.status in ACTIVE for j in pool.jobs_of_kind(owner, "distill"))
    if st.button("Distil", type="primary", key="ft_distill_go", disabled=bool(d_problem) or d_active,
                 icon=":material/school:"):
        pool.submit(distill.make_job(d_student, d_teacher, owner, temperature=d_temp, alpha=d_alpha))
        st.session_state.pop("ft_distill_seen", None)
        st.rerun()
    st.fragment(distill_results)()
