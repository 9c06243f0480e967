from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from bigmodel_core.config.presets import load_preset

ROOT = Path(__file__).resolve().parents[2]


def tiny():
    return load_preset("quickstart_cnn").with_changes({"data.train_size": 256, "data.val_size": 64,
                                                       "training.epochs": 1, "training.device": "cpu"})


def train_app(cfg=None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages/train.py"), default_timeout=60)
    at.session_state["config"] = cfg or tiny()
    return at.run()


def test_default_render_has_controls():
    at = train_app(load_preset("quickstart_cnn"))
    assert not at.exception
    labels = [b.label for b in at.button]
    for label in ("Train", "Pause", "Resume", "Stop"):
        assert label in labels
    assert not at.button(key="train_start").disabled
    assert at.button(key="train_stop").disabled


def test_changing_widgets_updates_the_experiment():
    at = train_app()
    at.number_input(key="w0_t_epochs").set_value(3).run()
    at.selectbox(key="w0_opt_name").set_value("sgd").run()
    cfg = at.session_state["config"]
    assert cfg.training.epochs == 3 and cfg.optimizer.name == "sgd"


def test_invalid_design_disables_train():
    cfg = tiny().with_changes({"model.conv.0.pool_size": 8, "model.conv.1.pool_size": 8})
    at = train_app(cfg)
    assert at.button(key="train_start").disabled
    assert any("8x8 window" in e.value for e in at.error)


def test_short_training_run_finishes_and_is_stored():
    at = train_app()
    at.button(key="train_start").click().run()
    deadline = time.time() + 120
    while time.time() < deadline:
        at.run()
        if any("Saved as run" in c.value for c in at.caption):
            break
        time.sleep(0.5)
    assert not at.exception
    assert any("Completed" in s.value for s in at.success)
    saved = next(c.value for c in at.caption if "Saved as run" in c.value)
    run_id = saved.split("`")[1]
    from ui.state import get_store

    run = get_store().load(run_id)
    assert run.summary["status"] == "completed" and run.config.data.train_size == 256
    assert len(run.metrics) == 1
    # both kinds of train numbers, named, and where the numbers repeat
    assert "train_eval_metric" in run.metrics[0] and run.summary["threads"] >= 1
    assert any(f"at {run.summary['threads']} threads" in c.value for c in at.caption)
    names = [t.get("name") for fig in live_figures(at) for t in fig["data"]]
    assert "train (eval mode)" in names and "train (running mean, as trained)" in names


def live_args(at) -> dict:
    """What the Train page's live chart row was last given."""
    import json

    for el in at.get("component_instance"):
        args = json.loads(el.proto.json_args)
        if "figures" in args:
            return args
    return {}


def live_figures(at) -> list[dict]:
    return live_args(at).get("figures", [])


def batch_points(at) -> int:
    for fig in live_figures(at):
        for trace in fig["data"]:
            if trace.get("name") == "batch loss":
                return len(trace.get("x", []))
    return -1


def test_charts_are_drawn_before_the_click_and_hold_a_point_right_after_it():
    at = train_app(tiny().with_changes({"training.epochs": 30, "data.train_size": 1024}))
    assert batch_points(at) == 0  # empty axes where the curves will appear
    assert any("Press **Train** to start" in i.value for i in at.info)
    assert live_args(at)["poll_ms"] == 0  # nothing to watch: the idle page asks the server for nothing
    at.button(key="train_start").click().run()
    assert batch_points(at) >= 1  # the page waited for the first measured batch instead of polling for it
    assert live_args(at)["poll_ms"] > 0  # while the job runs, the chart asks for updates
    at.button(key="train_stop").click().run()
    assert live_args(at)["poll_ms"] == 0


def test_stop_draws_the_stopped_run_with_its_results_in_one_pass():
    at = train_app(tiny().with_changes({"training.epochs": 50, "data.train_size": 2048}))
    at.button(key="train_start").click().run()
    assert at.button(key="train_start").disabled and not at.button(key="train_stop").disabled
    at.button(key="train_stop").click().run()
    assert not at.exception
    assert any("Stopped" in w.value for w in at.warning)
    assert not at.button(key="train_start").disabled and at.button(key="train_stop").disabled
    assert any(b.label == "Download model (.safetensors)" for b in at.get("download_button"))


def test_a_queued_job_shows_its_position_and_counts_as_watched():
    from bigmodel_core.training.jobs import Job
    from ui.state import get_pool

    pool = get_pool()
    long = tiny().with_changes({"training.epochs": 100, "data.train_size": 2048})
    blockers = [pool.submit(Job(long, owner="someone-else", kind="train")) for _ in range(pool.max_workers)]
    try:
        at = train_app()
        at.button(key="train_start").click().run()
        assert any("Queued: position 1" in w.value for w in at.warning)
        job = pool.get(at.session_state["owner"], at.session_state["train_job_id"])
        seen = job.last_poll
        time.sleep(0.05)
        at.run()
        assert job.last_poll > seen  # the page's polls keep the waiting job alive
        at.button(key="train_stop").click().run()
    finally:
        for b in blockers:
            b.stop()


def test_arriving_from_homes_first_step_starts_the_training():
    at = AppTest.from_file(str(ROOT / "app_pages/train.py"), default_timeout=60)
    at.session_state["config"] = tiny().with_changes({"training.epochs": 30, "data.train_size": 1024})
    at.session_state["train_autostart"] = True
    at.run()
    assert not at.exception
    assert at.button(key="train_start").disabled and not at.button(key="train_stop").disabled
    assert batch_points(at) >= 1
    assert "train_autostart" not in at.session_state  # once: a later visit does not start another
    at.button(key="train_stop").click().run()


def test_settings_sit_in_expanders_that_sum_them_up_and_the_run_takes_the_label():
    at = train_app()
    heads = [e.label for e in at.expander]
    assert any(h.startswith("**Optimizer** · adam lr 0.002 · batch 64 · 1 epochs") for h in heads), heads
    assert any(h.startswith("**Data** · synthetic_digits · 256 train / 64 validation · seed 0") for h in heads), heads
    at.number_input(key="w0_t_epochs").set_value(2).run()
    assert any("batch 64 · 2 epochs" in e.label for e in at.expander)  # the summary follows the widget at once
    at.text_input(key="w0_t_label_cnn_synthetic_digits").set_value("my *first* run").run()
    at.button(key="train_start").click().run()
    job = state_job(at)
    assert job.label == "my *first* run"
    assert any("my \\*first\\* run" in c.value for c in at.caption)  # shown literally, not as Markdown
    at.button(key="train_stop").click().run()


def state_job(at):
    from ui.state import get_pool

    return get_pool().get(at.session_state["owner"], at.session_state["train_job_id"])


def test_a_paused_job_says_it_is_paused_instead_of_a_frozen_eta():
    at = train_app(tiny().with_changes({"training.epochs": 50, "data.train_size": 2048}))
    at.button(key="train_start").click().run()
    at.button(key="train_pause").click().run()
    text = " ".join(p.proto.text for p in at.get("progress"))
    assert "paused ·" in text and "no ETA while paused" in text and "ETA " not in text.replace("no ETA", "")
    at.button(key="train_stop").click().run()
    assert any(w.value.startswith("Stopped during epoch 1.") for w in at.warning), [w.value for w in at.warning]
    assert not any("Stopped. stopped" in w.value for w in at.warning)


def test_while_training_the_full_inspect_area_and_try_your_model_come_on_request():
    at = train_app(tiny().with_changes({"training.epochs": 50, "data.train_size": 2048}))
    at.button(key="train_start").click().run()
    at.button(key="train_pause").click().run()  # still active, and it holds still for the test
    inspect_captions = lambda: [c.value for c in at.caption if c.value.startswith("Inspect: the model of the job")]  # noqa: E731
    assert not inspect_captions()
    assert at.button(key="train_inside_now")
    at.button(key="train_inside_now").click().run()
    assert not at.exception
    assert inspect_captions(), "the inspect area is drawn once the learner asks for it"
    at.button(key="train_stop").click().run()
    assert inspect_captions()
