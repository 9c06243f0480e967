import json

import pytest

from bigmodel_core.config.specs import ConfigError, ExperimentConfig, json_schema, parse_config


def base() -> dict:
    return ExperimentConfig().to_dict()


def problems(d) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(d)
    return str(exc.value)


def test_defaults_match_design_shape():
    d = base()
    assert set(d) == {"seed", "data", "model", "optimizer", "regularization", "training"}
    assert d["model"]["family"] == "cnn"
    assert d["regularization"]["early_stopping"] is None


def test_json_round_trip_is_exact():
    cfg = ExperimentConfig()
    again = parse_config(cfg.to_json())
    assert again == cfg
    assert again.to_json() == cfg.to_json()
    rnn = parse_config({"data": {"name": "sine_wave"}, "model": {"family": "gru", "hidden": 8}})
    assert parse_config(rnn.to_json()) == rnn


def test_schema_lists_sections_and_families():
    schema = json_schema()
    assert set(schema["properties"]) >= {"data", "model", "optimizer", "training"}
    text = json.dumps(schema)
    assert "lstm" in text and "leaky_relu" in text


def test_unknown_key_names_field_and_allowed_keys():
    d = base()
    d["optimizer"]["learning_rate"] = 0.1
    msg = problems(d)
    assert "optimizer.learning_rate" in msg and "unknown key" in msg and "lr" in msg


def test_negative_lr_names_field():
    d = base()
    d["optimizer"]["lr"] = -1
    msg = problems(d)
    assert "optimizer.lr" in msg and "greater than 0" in msg


def test_kernel_zero_names_block():
    d = base()
    d["model"]["conv"][0]["kernel"] = 0
    msg = problems(d)
    assert "model.conv[0].kernel" in msg


def test_unknown_dataset_lists_names():
    d = base()
    d["data"]["name"] = "mnist"
    msg = problems(d)
    assert "data.name" in msg and "mnist" in msg and "synthetic_digits" in msg and "sine_wave" in msg


def test_unknown_activation_lists_allowed():
    d = base()
    d["model"]["dense"][0]["activation"] = "swish"
    msg = problems(d)
    assert "model.dense[0].activation" in msg and "leaky_relu" in msg and "swish" in msg


def test_unknown_family_lists_families():
    d = base()
    d["model"]["family"] = "transformer"
    msg = problems(d)
    assert "model" in msg and "lstm" in msg and "gru" in msg


def test_family_must_fit_dataset_kind():
    d = base()
    d["data"]["name"] = "sine_wave"
    assert "needs an image dataset" in problems(d)


def test_nan_lr_and_malformed_json_rejected():
    assert "lr" in problems('{"optimizer": {"lr": NaN}}')
    assert "not valid JSON" in problems("{not json")
    assert "JSON object" in problems("[1, 2]")


def test_huge_and_deep_configs_rejected():
    assert "limit" in problems('{"seed": 0, "x": "' + "a" * 100_000 + '"}')
    deep = "[" * 100_000 + "]" * 100_000
    assert problems(deep)


def test_extreme_values_rejected():
    d = base()
    d["training"]["epochs"] = 10**9
    assert "training.epochs" in problems(d)
    d = base()
    d["model"]["conv"][0]["channels"] = 10**6
    assert "model.conv[0].channels" in problems(d)
    d = base()
    d["training"]["batch_size"] = 0
    assert "training.batch_size" in problems(d)


def test_with_changes_validates():
    cfg = ExperimentConfig()
    assert cfg.with_changes({"optimizer.lr": 0.5}).optimizer.lr == 0.5
    with pytest.raises(ConfigError, match="optimizer.lr"):
        cfg.with_changes({"optimizer.lr": -2})
    with pytest.raises(ConfigError, match="unknown field"):
        cfg.with_changes({"optimizer.nope": 1})


def test_momentum_zero_for_momentum_optimizer_is_explained():
    d = base()
    d["optimizer"].update(name="momentum", momentum=0.0)
    assert "plain sgd" in problems(d)


def test_env_limit_override(monkeypatch):
    d = base()
    monkeypatch.setenv("BIGMODEL_MAX_EPOCHS", "3")
    d["training"]["epochs"] = 4
    assert "limit of 3" in problems(d)
