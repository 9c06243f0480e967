from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from bigmodel_core.config.presets import load_preset
from bigmodel_core.data import dataset_info
from bigmodel_core.nn.models import build_model, count_params

ROOT = Path(__file__).resolve().parents[2]


def build_app(cfg=None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages/build.py"), default_timeout=60)
    if cfg is not None:
        at.session_state["config"] = cfg
    return at.run()


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_default_render_shows_table_and_totals():
    at = build_app()
    assert not at.exception
    assert metric(at, "Parameters") == "105,866"
    assert at.dataframe[0].value["layer"].tolist()[0] == "conv 3x3, 16"
    assert not at.button(key="build_to_train").disabled


def test_changing_channels_updates_config_and_parameters():
    at = build_app()
    at.number_input(key="w0_conv_0_ch").set_value(32).run()
    cfg = at.session_state["config"]
    assert cfg.model.conv[0].channels == 32
    info = dataset_info(cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len)
    # the figure on the page is the real model's parameter count, to the unit
    assert metric(at, "Parameters") == f"{count_params(build_model(cfg.model, info, seed=0)):,}"
    assert metric(at, "Parameters") != "105,866"


def test_add_remove_and_reorder_blocks():
    at = build_app()
    at.button(key="w0_conv_add").click().run()
    cfg = at.session_state["config"]
    assert len(cfg.model.conv) == 3
    rev = at.session_state["build_rev"]
    at.number_input(key=f"w{rev}_conv_2_ch").set_value(48).run()
    at.button(key=f"w{rev}_conv_2_up").click().run()
    assert [b.channels for b in at.session_state["config"].model.conv] == [16, 48, 32]
    rev = at.session_state["build_rev"]
    at.button(key=f"w{rev}_conv_0_del").click().run()
    assert [b.channels for b in at.session_state["config"].model.conv] == [48, 32]


def test_infeasible_design_shows_error_at_layer_and_disables_train():
    cfg = load_preset("quickstart_cnn").with_changes({"model.conv.0.pool_size": 8, "model.conv.1.pool_size": 8})
    at = build_app(cfg)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("too small for a 8x8 window" in e and "max pool" in e for e in errors)
    assert len([e for e in errors if "8x8 window" in e]) == 2  # beside the block and at the summary
    assert at.button(key="build_to_train").disabled


def test_switch_family_to_lstm_picks_a_sequence_dataset():
    at = build_app()
    at.selectbox(key="w0_family").set_value("lstm").run()
    at.run()
    cfg = at.session_state["config"]
    assert cfg.model.family == "lstm" and cfg.data.name == "sequential_digits"
    assert not at.exception
    assert any(r.startswith("lstm") for r in at.dataframe[0].value["layer"].tolist())


def test_load_preset_with_one_click():
    at = build_app()
    at.selectbox(key="build_preset_choice").set_value("textbook_cnn").run()
    at.button(key="build_load_preset").click().run()
    at.run()
    assert metric(at, "Parameters") == "421,642"
