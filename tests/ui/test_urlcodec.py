from bigmodel_core.config.presets import load_preset
from ui.urlcodec import config_from_query, config_to_query


def test_round_trip_of_edited_config():
    cfg = load_preset("quickstart_cnn").with_changes({"optimizer.lr": 0.01, "training.epochs": 3,
                                                      "model.conv.0.channels": 8})
    q = config_to_query(cfg)
    assert q["preset"] == "quickstart_cnn" and q["optimizer.lr"] == "0.01"
    again, warnings = config_from_query(q)
    assert again == cfg and warnings == []


def test_structural_changes_travel_whole():
    base = load_preset("quickstart_cnn").to_dict()
    base["model"]["conv"].append({"channels": 64, "kernel": 3})
    from bigmodel_core.config.specs import parse_config

    cfg = parse_config(base)
    again, warnings = config_from_query(config_to_query(cfg))
    assert again == cfg and not warnings
    lstm = load_preset("lstm_sequential_digits")
    again, warnings = config_from_query(config_to_query(lstm))
    assert again == lstm and not warnings


def test_invalid_values_are_ignored_with_warnings():
    cfg, warnings = config_from_query({"preset": "quickstart_cnn", "optimizer.lr": "-5", "training.epochs": "2",
                                       "nope.field": "1"})
    assert cfg.training.epochs == 2 and cfg.optimizer.lr == load_preset("quickstart_cnn").optimizer.lr
    assert len(warnings) == 2
    assert any("optimizer.lr" in w for w in warnings) and any("nope" in w for w in warnings)


def test_unknown_preset_warns_and_falls_back():
    cfg, warnings = config_from_query({"preset": "nope"})
    assert cfg == load_preset("quickstart_cnn") and "unknown preset" in warnings[0]


def test_no_query_means_no_config():
    assert config_from_query({}) == (None, [])
