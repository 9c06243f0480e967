"""The workspace under AppTest: sessions of one workspace share their work, the sidebar and the pages
agree on a job's state, and results are labelled with the experiment they came from."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from bigmodel_core.config.presets import load_preset
from bigmodel_core.training.jobs import Job
from bigmodel_core.training.workspace import workspace_id
from tests.app_pages.test_compare import compare_app, finished_comparison
from tests.app_pages.test_compare import tiny as tiny_compare

ROOT = Path(__file__).resolve().parents[2]


def tiny(**changes):
    cfg = load_preset("quickstart_cnn").with_changes({"data.train_size": 256, "data.val_size": 64,
                                                      "training.epochs": 1, "training.device": "cpu"})
    return cfg.with_changes(changes) if changes else cfg


def new_workspace() -> str:
    return workspace_id(secrets.token_urlsafe(24))


def train_page(owner: str, cfg=None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages/train.py"), default_timeout=60)
    at.session_state["owner"] = owner
    if cfg is not None:
        at.session_state["config"] = cfg
    return at.run()


def sidebar_app(owner: str) -> AppTest:
    def script():
        from ui import sidebar

        sidebar.render(live=True)

    at = AppTest.from_function(script, default_timeout=30)
    at.session_state["owner"] = owner
    return at.run()


def sidebar_line(at: AppTest) -> str:
    lines = [m.value for m in at.sidebar.markdown if "Training job" in m.value]
    lines += [c.value for c in at.sidebar.caption if "Training job" in c.value or "No training job" in c.value]
    assert len(lines) == 1, lines
    return lines[0]


def wait_status(job, status: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while job.status != status and time.time() < deadline:
        time.sleep(0.05)
    assert job.status == status


def test_the_sidebar_and_the_train_page_agree_for_queued_running_paused_and_completed():
    from ui.state import get_pool

    pool = get_pool()
    owner = new_workspace()
    long = tiny(**{"training.epochs": 100, "data.train_size": 2048})
    blockers = [pool.submit(Job(long, owner="someone-else", kind="train")) for _ in range(pool.max_workers)]
    try:
        page = train_page(owner, tiny(**{"training.epochs": 50, "data.train_size": 2048}))
        page.button(key="train_start").click().run()
        assert any("Queued: position 1" in w.value for w in page.warning)
        assert sidebar_line(sidebar_app(owner)) == "**Training job** · queued, position 1"
        # a second session of the workspace (a reload, a new tab) finds the same job
        again = train_page(owner)
        assert any("Queued: position 1" in w.value for w in again.warning)
        for b in blockers:
            b.stop()
        job = pool.jobs_of_kind(owner, "train")[-1]
        wait_status(job, "running")
        page.run()
        assert any("running ·" in p.proto.text for p in page.get("progress"))
        assert sidebar_line(sidebar_app(owner)).startswith("**Training job** · running: ")
        page.button(key="train_pause").click().run()
        assert job.status == "paused"
        assert any("paused ·" in p.proto.text for p in page.get("progress"))
        assert sidebar_line(sidebar_app(owner)).startswith("**Training job** · paused: ")
        job.stop()
        job.wait_until_finished(30)
        page.run()
        assert any(w.value.startswith("Stopped") for w in page.warning)
        assert sidebar_line(sidebar_app(owner)) == "**Training job** · stopped"
        quick = train_page(owner, tiny())
        quick.button(key="train_start").click().run()
        pool.jobs_of_kind(owner, "train")[-1].wait_until_finished(60)
        quick.run()
        assert any(s.value.startswith("Completed") for s in quick.success)
        assert sidebar_line(sidebar_app(owner)) == "**Training job** · completed"
    finally:
        for b in blockers:
            b.stop()


def test_sidebar_counts_are_labelled_as_every_learners():
    at = sidebar_app(new_workspace())
    assert sidebar_line(at) == "No training job in this workspace."
    assert any(c.value.startswith("All learners on this server:") for c in at.sidebar.caption)


def test_the_train_page_counts_the_servers_slots_with_its_own_training_and_its_sidebar_points_there():
    from ui import state

    owner = new_workspace()
    at = train_page(owner, tiny(**{"training.epochs": 100, "data.train_size": 2000}))
    at.button(key="train_start").click().run()
    pool = state.pool_if_started()
    job = pool.jobs_of_kind(owner, "train")[-1]
    try:
        line = next(c.value for c in at.caption if "All learners on this server" in c.value)
        # drawn after the click, in the panel that the click reran: this training is counted
        assert f"{pool.running_count} of {pool.max_workers} training slots busy" in line
        assert job.status == "running" and pool.running_count >= 1

        def script():
            from ui import sidebar

            sidebar.render(live=False)

        side = AppTest.from_function(script, default_timeout=30)
        side.session_state["owner"] = owner
        side.run()
        texts = [c.value for c in side.sidebar.caption] + [m.value for m in side.sidebar.markdown]
        assert not any("All learners" in t for t in texts), texts  # drawn once per page: it would age
        assert "Training job: its state is shown on this page, with this server's training slots." in texts
    finally:
        job.stop()
        job.wait_until_finished(30)


def test_train_results_are_labelled_with_their_run_and_say_what_differs_from_the_current_experiment():
    owner = new_workspace()
    at = train_page(owner, tiny())
    at.button(key="train_start").click().run()
    from ui.state import get_pool

    get_pool().jobs_of_kind(owner, "train")[-1].wait_until_finished(60)
    at.run()
    assert not any("differ in" in w.value for w in at.warning)
    assert any("the current experiment" in c.value and c.value.startswith("Of the job") for c in at.caption)
    # the learner moves on to an LSTM: the CNN's numbers stay, labelled as the CNN run's, with what differs
    lstm = load_preset("quickstart_cnn").with_changes({})
    from bigmodel_core.config.specs import parse_config

    lstm = parse_config({**tiny().to_dict(), "model": {"family": "lstm", "hidden": 16},
                         "data": {"name": "sequential_digits", "train_size": 256, "val_size": 64}})
    at.session_state["config"] = lstm
    at.run()
    notes = [w.value for w in at.warning if "differ in" in w.value]
    assert len(notes) == 1 and "model.family" in notes[0] and "data.name" in notes[0]
    assert any(c.value.startswith("Of the job cnn on synthetic_digits") and "not the current experiment" in c.value
               for c in at.caption)
    assert any(c.value.startswith("Inspect: the model of the job cnn on synthetic_digits") for c in at.caption)


def test_compare_results_are_labelled_as_the_previous_comparison_when_the_controls_differ():
    done = finished_comparison()  # sgd / momentum / adam at 3 epochs
    at, _ = compare_app(cfg=tiny_compare(), comparison=done)  # controls: the same optimizers at 1 epoch
    assert not at.exception
    assert any("results of the previous comparison" in i.value for i in at.info)
    at, _ = compare_app(cfg=tiny_compare(**{"training.epochs": 3}), comparison=finished_comparison())
    assert not any("results of the previous comparison" in i.value for i in at.info)


def test_a_new_session_of_the_workspace_gets_its_experiment_and_comparison_back():
    owner = new_workspace()
    first = train_page(owner, tiny(**{"training.epochs": 7}))
    assert not first.exception
    again = train_page(owner)
    assert again.session_state["config"].training.epochs == 7
    # the comparison comes back too (finished: as it ended)
    at = AppTest.from_file(str(ROOT / "app_pages/compare.py"), default_timeout=60)
    at.session_state["owner"] = owner
    at.session_state["config"] = tiny_compare()
    at.run()
    at.button(key="compare_lesson").click().run()
    started = at.session_state["compare_current"]
    other = AppTest.from_file(str(ROOT / "app_pages/compare.py"), default_timeout=60)
    other.session_state["owner"] = owner
    other.run()
    assert other.session_state["compare_current"].comparison_id == started.comparison_id
    assert [r.job_id for r in other.session_state["compare_current"].runs] == [r.job_id for r in started.runs]
    other.button(key="compare_stop").click().run()
    # a session of another workspace sees none of it
    stranger = AppTest.from_file(str(ROOT / "app_pages/compare.py"), default_timeout=60)
    stranger.session_state["owner"] = new_workspace()
    stranger.run()
    assert stranger.session_state["compare_current"] is None


def test_build_keeps_each_familys_design_while_switching():
    owner = new_workspace()
    at = AppTest.from_file(str(ROOT / "app_pages/build.py"), default_timeout=60)
    at.session_state["owner"] = owner
    at.session_state["config"] = load_preset("quickstart_cnn").with_changes({})
    at.run()
    for _ in range(4):
        at.button(key=next(b.key for b in at.button if b.key and b.key.endswith("conv_add"))).click().run()
    blocks = len(at.session_state["config"].model.conv)
    assert blocks >= 6
    family = next(s for s in at.selectbox if s.label == "Model family")
    family.set_value("lstm").run()
    assert at.session_state["config"].model.family == "lstm"
    assert any("Your CNN design is kept" in s.value for s in at.success)
    next(s for s in at.selectbox if s.label == "Model family").set_value("cnn").run()
    cfg = at.session_state["config"]
    assert cfg.model.family == "cnn" and len(cfg.model.conv) == blocks
    assert any("with your earlier design of it" in s.value for s in at.success)
