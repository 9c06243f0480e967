"""The Runs page under AppTest: this session's stored runs, reopen, compare, delete, download."""

from __future__ import annotations

import secrets
from pathlib import Path

from streamlit.testing.v1 import AppTest

from bigmodel_core.config.specs import parse_config
from bigmodel_core.training.store import default_store

ROOT = Path(__file__).resolve().parents[2]


def cfg(**changes):
    c = parse_config({"data": {"name": "synthetic_digits", "train_size": 128, "val_size": 32},
                      "model": {"family": "cnn", "conv": [{"channels": 4}], "dense": [{"units": 8}]},
                      "training": {"epochs": 2, "batch_size": 32, "device": "cpu"}})
    return c.with_changes(changes) if changes else c


def save(owner: str, config, label: str, kind: str = "train", acc: float = 0.5, comparison: dict | None = None) -> str:
    rows = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.1 / e, "train_metric": acc * e / 2,
             "val_metric": acc * e / 2 - 0.05, "lr": 0.001, "seconds": 0.5} for e in (1, 2)]
    summary = {"status": "completed", "message": "", "epochs_run": 2, "best_epoch": 2,
               "final": {"train_loss": 1.0, "val_loss": 1.05, "val_accuracy": acc - 0.05}, "params": 100,
               "device": "CPU", "wall_seconds": 1.0, "samples_per_sec": 256.0, "task": "classification"}
    if comparison:
        summary["comparison"] = comparison
    return default_store().save(config, rows, summary, None, owner=owner, kind=kind, label=label)


def runs_app(owner: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages/runs.py"), default_timeout=60)
    at.session_state["owner"] = owner
    return at.run()


def test_lists_only_this_sessions_runs():
    me, other = secrets.token_hex(6), secrets.token_hex(6)
    save(me, cfg(), "cnn on synthetic_digits")
    save(me, cfg(**{"optimizer.name": "sgd"}), "sgd lr=1e-3", kind="compare")
    save(other, cfg(), "not mine")
    at = runs_app(me)
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["label"]) == ["cnn on synthetic_digits", "sgd lr=1e-3"]
    assert set(table["kind"]) == {"train", "compare"}


def test_empty_store_says_so():
    at = runs_app(secrets.token_hex(6))
    assert any("No stored runs yet" in i.value for i in at.info)


def test_reopen_loads_the_config_as_the_current_experiment():
    me = secrets.token_hex(6)
    run_id = save(me, cfg(**{"optimizer.lr": 0.0123}), "lr test")
    at = runs_app(me)
    assert at.button(key="runs_reopen").disabled
    at.multiselect(key="runs_selected").set_value([run_id]).run()
    at.button(key="runs_reopen").click().run()
    assert not at.exception
    assert at.session_state["config"].optimizer.lr == 0.0123
    assert any("current experiment" in s.value for s in at.success)


def test_compare_selected_runs_overlays_their_curves_and_says_what_differs():
    me = secrets.token_hex(6)
    a = save(me, cfg(), "adam run", acc=0.6)
    b = save(me, cfg(**{"optimizer.name": "sgd", "optimizer.lr": 0.05}), "sgd run", acc=0.4)
    at = runs_app(me)
    at.multiselect(key="runs_selected").set_value([a, b]).run()
    assert not at.exception
    chart = at.get("plotly_chart")[0].proto.spec
    for name in ("adam run", "sgd run"):
        assert name in chart
    summary = next(df.value for df in at.dataframe if "best val acc (%)" in df.value.columns)
    assert list(summary["run"]) == ["adam run", "sgd run"]
    differs = next(df.value for df in at.dataframe if "optimizer.lr" in df.value.columns)
    assert list(differs.columns) == ["run", "optimizer.name", "optimizer.lr"]
    at.button(key="runs_to_compare").click().run()
    opened = at.session_state["compare_current"]
    assert opened.names == ["adam run", "sgd run"] and not opened.active


def test_select_a_whole_comparison_in_planned_order():
    me = secrets.token_hex(6)
    ids = [save(me, cfg(**{"seed": i}), f"seed={i}", kind="compare", comparison={"id": "cmp-abc", "index": i})
           for i in (2, 0, 1)]
    at = runs_app(me)
    at.selectbox(key="runs_group").set_value("cmp-abc").run()
    assert at.multiselect(key="runs_selected").value == [ids[1], ids[2], ids[0]]


def test_delete_and_download():
    me = secrets.token_hex(6)
    keep = save(me, cfg(), "keep")
    gone = save(me, cfg(**{"seed": 3}), "delete me")
    at = runs_app(me)
    downloads = [d.label for d in at.get("download_button")]
    assert "Download run (.zip)" in downloads
    at.multiselect(key="runs_selected").set_value([gone]).run()
    at.button(key="runs_delete").click().run()
    assert not at.exception
    assert [r.run_id for r in default_store().list(me)] == [keep]
    assert list(at.dataframe[0].value["label"]) == ["keep"]


def linked_app(owner: str, run_id: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages/runs.py"), default_timeout=60)
    at.session_state["owner"] = owner
    at.query_params["run"] = run_id
    return at.run()


def test_a_run_link_opens_only_once_its_owner_shares_it():
    me, other = secrets.token_hex(6), secrets.token_hex(6)
    run_id = save(me, cfg(**{"optimizer.lr": 0.0456}), "shared lr test")
    refused = linked_app(other, run_id)
    assert not refused.exception
    assert any("Cannot open the run in this link" in e.value for e in refused.error)
    assert not any("Shared run" in h.value for h in refused.subheader)
    # the owner turns sharing on and gets the link
    at = runs_app(me)
    at.toggle(key=f"runs_share_{run_id}").set_value(True).run()
    assert not at.exception
    assert any(f"/runs?run={run_id}" in c.value for c in at.code)
    opened = linked_app(other, run_id)
    assert not opened.exception and not opened.error
    assert any(h.value.startswith("Shared run: shared lr test") for h in opened.subheader)
    assert not any(me in c.value for c in opened.code)  # the owner's session token is never shown
    assert any("No stored runs yet" in i.value for i in opened.info)  # it is not listed as theirs
    opened.button(key="runs_linked_reopen").click().run()
    assert opened.session_state["config"].optimizer.lr == 0.0456
    # sharing off again: the link stops working
    at.toggle(key=f"runs_share_{run_id}").set_value(False).run()
    assert any("Cannot open the run in this link" in e.value for e in linked_app(other, run_id).error)


def test_a_malformed_run_link_gets_the_same_refusal():
    at = linked_app(secrets.token_hex(6), "../../etc/passwd")
    assert not at.exception
    assert any("Cannot open the run in this link" in e.value for e in at.error)


def test_a_run_is_renamed_from_its_details_and_the_metrics_have_human_headings():
    me = secrets.token_hex(6)
    run_id = save(me, cfg(), "cnn on synthetic_digits")
    at = runs_app(me)
    metrics = at.dataframe[-1].value
    assert "validation accuracy" in metrics.columns and "val_metric" not in metrics.columns
    at.text_input(key=f"runs_label_{run_id}").set_value("<b>first</b> try")
    at.button(key=f"FormSubmitter:runs_rename_{run_id}-Rename").click().run()
    assert not at.exception
    assert default_store().load(run_id).summary["label"] == "<b>first</b> try"
    assert at.dataframe[0].value["label"].tolist() == ["<b>first</b> try"]


def test_a_run_stored_before_the_clean_train_metric_existed_still_opens():
    from tests.bigmodel_core.training.test_train_eval import write_old_run

    me = secrets.token_hex(6)
    run_id = f"20240101-000000-train-{secrets.token_hex(6)}"
    write_old_run(default_store().root, run_id, owner=me)
    at = runs_app(me)
    assert not at.exception
    metrics = at.dataframe[-1].value
    assert "train accuracy (running, as trained)" in metrics.columns
    assert "train accuracy (eval mode)" not in metrics.columns
    at.multiselect(key="runs_selected").set_value([run_id]).run()
    assert not at.exception
    assert "running mean as trained" in at.get("plotly_chart")[0].proto.spec
