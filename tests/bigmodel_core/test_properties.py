"""Property-based tests: random configs either work or fail with the engine's own errors.

Random dicts, random JSON text and random edits of a valid config go to ``parse_config``;
random but well-typed configs near the limits go through ``infer_layers``, ``build_model``
and one training step. Each either succeeds (and the analytic shapes and parameter counts
agree with what PyTorch builds) or raises ConfigError, SpecError or DatasetError, never
anything else, and a training never ends as "failed".
"""

from __future__ import annotations

import json
import math

import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from bigmodel_core.config.specs import ConfigError, ExperimentConfig, parse_config, set_path
from bigmodel_core.data import DatasetError, dataset_info
from bigmodel_core.nn.models import build_model, count_params
from bigmodel_core.nn.shapes import SpecError, infer_layers
from bigmodel_core.training.trainer import BatchEnd, RunEnd, Trainer

ENGINE_ERRORS = (ConfigError, SpecError, DatasetError)
CHEAP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
TRAINING = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
SECTION_KEYS = ["seed", "data", "model", "optimizer", "regularization", "training", "name", "family", "conv", "dense",
                "channels", "kernel", "epochs", "lr", "batch_size", "train_size", "hidden", "layers"]
keys = st.sampled_from(SECTION_KEYS) | st.text(max_size=10)
config_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(keys, inner, max_size=5), max_leaves=25)


def parses_or_config_error(raw) -> ExperimentConfig | None:
    try:
        cfg = parse_config(raw)
    except ConfigError as exc:
        assert str(exc) and exc.problems
        return None
    assert isinstance(cfg, ExperimentConfig)
    assert parse_config(cfg.to_json()) == cfg  # whatever is accepted round-trips exactly
    return cfg


@CHEAP
@given(st.dictionaries(keys, config_like, max_size=6))
def test_random_dicts_parse_or_raise_config_error(raw):
    parses_or_config_error(raw)


@CHEAP
@given(json_values.map(json.dumps) | st.text(max_size=200) | st.binary(max_size=200))
def test_random_json_text_parses_or_raises_config_error(text):
    parses_or_config_error(text)


FIELDS = ["seed", "data.name", "data.train_size", "data.val_size", "data.augment", "data.image_size", "data.seq_len",
          "model", "model.family", "model.conv", "model.conv.0", "model.conv.0.channels", "model.conv.0.kernel",
          "model.conv.0.stride", "model.conv.0.padding", "model.conv.0.pool", "model.conv.0.pool_size",
          "model.conv.0.dropout", "model.conv.0.batchnorm", "model.dense", "model.dense.0.units",
          "model.dense.0.activation", "optimizer.name", "optimizer.lr", "optimizer.momentum",
          "optimizer.weight_decay", "optimizer.schedule", "optimizer.step_size", "optimizer.gamma",
          "regularization.l1", "regularization.l2", "regularization.label_smoothing", "regularization.grad_clip",
          "regularization.early_stopping", "training.epochs", "training.batch_size", "training.device"]


@CHEAP
@given(st.lists(st.tuples(st.sampled_from(FIELDS), json_values), min_size=1, max_size=4))
def test_random_edits_of_a_valid_config_parse_or_raise_config_error(edits):
    d = ExperimentConfig().to_dict()
    for path, value in edits:
        try:
            set_path(d, path, value)
        except ConfigError:
            pass  # the path no longer exists after an earlier edit replaced its parent
    parses_or_config_error(d)


# --- well-typed configs near the boundaries -------------------------------------------------------------
small_floats = st.sampled_from([0.0, 0.1, 0.5, 0.99])
conv_blocks = st.fixed_dictionaries({
    "channels": st.integers(1, 6), "kernel": st.integers(1, 15), "stride": st.integers(1, 8),
    "padding": st.sampled_from(["same", "valid", 0, 1, 3, 15]),
    "activation": st.sampled_from(["relu", "leaky_relu", "gelu", "tanh", "sigmoid", "elu"]),
    "batchnorm": st.booleans(), "pool": st.sampled_from(["max", "avg", "none"]), "pool_size": st.integers(2, 8),
    "dropout": small_floats,
})
dense_layers = st.fixed_dictionaries({"units": st.integers(1, 12), "dropout": small_floats,
                                      "activation": st.sampled_from(["relu", "tanh", "sigmoid"])})
cnn_models = st.fixed_dictionaries({"family": st.just("cnn"), "conv": st.lists(conv_blocks, max_size=3),
                                    "dense": st.lists(dense_layers, max_size=2)})
rnn_models = st.fixed_dictionaries({"family": st.sampled_from(["rnn", "lstm", "gru"]), "hidden": st.integers(1, 12),
                                    "layers": st.integers(1, 3), "bidirectional": st.booleans(),
                                    "dropout": small_floats, "dense": st.lists(dense_layers, max_size=2)})
image_data = st.one_of(
    st.fixed_dictionaries({"name": st.sampled_from(["synthetic_digits", "shapes", "synthetic_letters"]),
                           "augment": st.booleans()}),
    st.fixed_dictionaries({"name": st.just("handwritten_digits"), "image_size": st.sampled_from([8, 28]),
                           "augment": st.booleans()}),
)
sequence_data = st.one_of(
    st.fixed_dictionaries({"name": st.sampled_from(["sine_wave", "adding_problem"]), "seq_len": st.integers(5, 12)}),
    st.fixed_dictionaries({"name": st.just("sequential_digits")}),
)
optimizers = st.fixed_dictionaries({
    "name": st.sampled_from(["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]),
    "lr": st.sampled_from([1e-6, 1e-3, 0.1, 10.0, 100.0]), "momentum": st.sampled_from([None, 0.0, 0.5, 0.999]),
    "weight_decay": st.sampled_from([0.0, 0.1, 1.0]), "schedule": st.sampled_from(["constant", "step", "cosine"]),
    "step_size": st.sampled_from([None, 1]), "gamma": st.sampled_from([1e-6, 0.5, 1.0]),
})
regularizations = st.fixed_dictionaries({
    "l1": st.sampled_from([0.0, 1e-4, 1.0]), "l2": st.sampled_from([0.0, 1e-4, 1.0]),
    "label_smoothing": st.sampled_from([0.0, 0.5, 0.99]), "grad_clip": st.sampled_from([None, 1e-6, 1.0, 1e6]),
    "early_stopping": st.sampled_from([None, {"patience": 1, "restore_best": True}]),
})


@st.composite
def experiment_dicts(draw) -> dict:
    if draw(st.booleans()):
        model, data = draw(cnn_models), draw(image_data)
    else:
        model, data = draw(rnn_models), draw(sequence_data)
    # few distinct sizes and seeds, so the small dataset cache serves most examples
    data = {**data, "train_size": draw(st.sampled_from([1, 2, 3, 17, 40])), "val_size": draw(st.sampled_from([1, 8]))}
    return {"seed": draw(st.sampled_from([0, 2**31 - 1])), "data": data, "model": model,
            "optimizer": draw(optimizers), "regularization": draw(regularizations),
            "training": {"epochs": draw(st.integers(1, 2)), "batch_size": draw(st.sampled_from([1, 2, 3, 16, 64])),
                         "device": "cpu"}}


def check_shapes_against_pytorch(cfg: ExperimentConfig) -> bool:
    info = dataset_info(cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len)
    try:
        rows = infer_layers(cfg.model, info)
    except SpecError as exc:
        assert exc.block and str(exc)
        return False
    model = build_model(cfg.model, info, seed=cfg.seed)
    assert count_params(model) == sum(r.params for r in rows)
    model.eval()
    x = torch.zeros((2, *info.input_shape))
    with torch.no_grad():
        if cfg.model.family == "cnn":
            for i, block in enumerate(model.blocks):
                x = block(x)
                expected = [r.out_shape for r in rows if r.block == f"model.conv[{i}]"][-1]
                assert tuple(x.shape[1:]) == expected
            out = model.classifier(model.head(torch.flatten(x, 1)))
        else:
            out = model(x)
    assert tuple(out.shape) == (2, info.num_outputs) == (2, rows[-1].out_shape[0])
    return True


@TRAINING
@given(experiment_dicts())
def test_well_typed_configs_near_the_limits_build_and_train_one_step_or_say_why(raw):
    cfg = parses_or_config_error(raw)
    event("refused by parse_config" if cfg is None else "valid config")
    assume(cfg is not None)
    if not check_shapes_against_pytorch(cfg):
        event("infeasible design (SpecError)")
        return
    try:
        trainer = Trainer(cfg)
    except ENGINE_ERRORS:
        event("refused by Trainer")
        return
    event(f"trained one step: {cfg.model.family}")
    events = trainer.run()
    first = next(events)
    if isinstance(first, RunEnd):  # only a stop or divergence may end a run before its first batch ends
        assert first.status in ("diverged", "stopped"), first.message
        return
    assert isinstance(first, BatchEnd) and first.step == 1
    assert isinstance(first.loss, float)
    trainer.control.stop()
    end = [ev for ev in events if isinstance(ev, RunEnd)][-1]
    assert end.status in ("stopped", "completed", "diverged"), end.message
    if end.status != "diverged":
        assert math.isfinite(first.loss)
