"""Hostile URL query values: each is ignored with a short warning naming it, never raising,
and the sensible values next to it still apply."""

from __future__ import annotations

import json
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigmodel_core.config.presets import load_preset
from bigmodel_core.config.specs import ExperimentConfig
from ui.urlcodec import config_from_query

BASE = load_preset("quickstart_cnn")
DEEP_LIST = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 20_000 + "1" + "}" * 20_000

HOSTILE = [
    ("optimizer.lr", "NaN"), ("optimizer.lr", "Infinity"), ("optimizer.lr", "-Infinity"), ("optimizer.lr", "nan"),
    ("optimizer.lr", "1e999"), ("optimizer.lr", "-0.001"), ("optimizer.lr", "0x10"), ("optimizer.lr", ""),
    ("training.epochs", "1000000000"), ("training.epochs", "1" * 5_000), ("training.epochs", "-1"),
    ("training.batch_size", "0"), ("training.batch_size", "-64"), ("data.train_size", "-1"),
    ("data.val_size", "-1000000"), ("model.conv.0.channels", "1000000"), ("model.conv.0.channels", "-16"),
    ("model.conv.0.kernel", "[3, 3]"), ("model.dense.0.units", "{\"units\": 5}"), ("seed", "-1"),
    ("seed", "x" * 1_000_000), ("optimizer.lr", DEEP_LIST), ("model.conv", DEEP_LIST), ("model", DEEP_OBJECT),
    ("model.conv", json.dumps([{"channels": 1}] * 50_000)), ("model.conv", "[]x"), ("model.conv", "null"),
    ("model.conv.-1.channels", "8"), ("model.conv.99999999999999999999.channels", "8"), ("model.conv.x.channels", "8"),
    ("seed.x", "1"), ("", "1"), (".", "1"), ("..", "1"), ("__class__", "1"), ("model.__dict__", "{}"),
    ("data.name", "../../etc/passwd"), ("data.name", "mnist"), ("model.family", "transformer"),
    ("training.device", "cuda:0; rm -rf /"), ("x" * 10_000, "1"), ("optimizer", "\"adam\""),
    ("regularization.early_stopping", "{\"patience\": -1}"), ("model.conv.0", "7"),
]


@pytest.mark.parametrize("key,value", HOSTILE, ids=lambda v: repr(v)[:40])
def test_a_hostile_value_is_ignored_with_a_short_warning_and_good_values_still_apply(key, value):
    good, good_value = ("seed", 3) if key == "training.epochs" else ("training.epochs", 2)
    cfg, warnings = config_from_query({"preset": "quickstart_cnn", key: value, good: str(good_value)})
    assert isinstance(cfg, ExperimentConfig)
    assert cfg == BASE.with_changes({good: good_value})  # the sensible field next to the hostile one applies
    assert len(warnings) == 1
    assert key[:40] in warnings[0]
    assert len(warnings[0]) < 1_000


@pytest.mark.parametrize("name", ["nope", "../quickstart_cnn", "quickstart_cnn.json", "x" * 100_000, "", "\x00",
                                  "QUICKSTART_CNN"])
def test_an_unknown_preset_falls_back_with_a_short_warning(name):
    cfg, warnings = config_from_query({"preset": name, "optimizer.lr": "0.01"})
    assert cfg == BASE.with_changes({"optimizer.lr": 0.01})
    assert len(warnings) == 1 and "unknown preset" in warnings[0] and len(warnings[0]) < 1_000


def test_many_hostile_values_at_once_each_get_a_warning():
    """Every bad value is accounted for: its own warning, or counted in the one line about unknown names."""
    params = {"preset": "quickstart_cnn", **{k: v for k, v in HOSTILE if k not in ("training.epochs",)}}
    cfg, warnings = config_from_query(params)
    assert cfg == BASE
    summaries = [w for w in warnings if " unknown parameter" in w]
    assert len(summaries) == 1
    unknown = int(re.match(r"ignored ([\d,]+) unknown", summaries[0]).group(1).replace(",", ""))
    assert unknown >= 5  # "", ".", "..", "__class__", "seed.x", ...
    assert len(warnings) - 1 + unknown == len(params) - 1
    assert sum(map(len, warnings)) < 100_000


def test_thousands_of_parameters_do_not_raise_and_are_summarised_in_one_warning():
    cfg, warnings = config_from_query({"preset": "quickstart_cnn", **{f"junk{i}": str(i) for i in range(3_000)}})
    assert cfg == BASE and len(warnings) == 1
    assert warnings[0].startswith("ignored 3,000 unknown parameters: ") and "and 2,992 more" in warnings[0]
    assert len(warnings[0]) < 1_000


@pytest.mark.parametrize("key,value,field", [
    ("training.epochs", "9" * 5_000, "training.epochs"), ("optimizer.lr", "1e999", "optimizer.lr"),
    ("training.epochs", "true", "training.epochs"), ("model.conv.0.batchnorm", "1", "model.conv.0.batchnorm"),
    ("seed", "1" * 4_301, "seed"), ("training.device", "cuda:9", "training.device"),
    ("training.device", "mps", "training.device")])
def test_numbers_types_and_devices_from_a_link_are_refused_naming_the_field(key, value, field):
    if key == "training.device" and value.startswith("cuda") and torch.cuda.device_count() > 9:
        pytest.skip("this machine has that GPU")
    if value == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    cfg, warnings = config_from_query({"preset": "quickstart_cnn", key: value})
    assert cfg == BASE
    assert len(warnings) == 1 and warnings[0].startswith(f"ignored {field!r}=") and len(warnings[0]) < 1_000


def test_a_family_switch_without_a_matching_dataset_keeps_the_base():
    cfg, warnings = config_from_query({"preset": "quickstart_cnn", "model": json.dumps({"family": "lstm"})})
    assert cfg == BASE and len(warnings) == 1 and "model" in warnings[0]


json_values = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4),
                           max_leaves=12)
known_keys = st.sampled_from(["seed", "data.name", "data.train_size", "model", "model.conv", "model.conv.0",
                              "model.conv.0.channels", "model.dense.0.units", "model.family", "optimizer.lr",
                              "optimizer.name", "training.epochs", "training.batch_size", "regularization",
                              "regularization.early_stopping", "training", "data"])
values = st.one_of(st.text(max_size=30), json_values.map(lambda v: json.dumps(v)))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(st.dictionaries(st.one_of(known_keys, st.text(max_size=20)), values, max_size=6),
       st.one_of(st.none(), st.just("quickstart_cnn"), st.just("textbook_lstm"), st.text(max_size=10)))
def test_random_queries_never_raise(params, preset):
    if preset is not None:
        params = {**params, "preset": preset}
    cfg, warnings = config_from_query(params)
    assert cfg is None or isinstance(cfg, ExperimentConfig)
    assert all(isinstance(w, str) and len(w) < 2_000 for w in warnings)
