"""Hostile and bad configs, and the resource limits, met through the engine API.

Every bad config gets a ConfigError naming what is wrong, quickly, with nothing written
and no global state touched. Every limit in bigmodel_core/limits.py can be set with
``BIGMODEL_<NAME>`` and is enforced by the engine itself (validation, builder, pool,
store, upload readers), so a config arriving by URL, upload or CLI meets the same bounds.
"""

from __future__ import annotations

import json
import random
import time

import pytest
import torch

from bigmodel_core.cli import main as cli_main
from bigmodel_core.config.specs import MAX_SHOWN_PROBLEMS, ConfigError, ExperimentConfig, parse_config
from bigmodel_core.data import dataset_info
from bigmodel_core.limits import Limits, current_limits
from bigmodel_core.nn.models import build_model
from bigmodel_core.nn.shapes import SpecError, check_design, infer_layers
from bigmodel_core.training.jobs import Job, JobPool
from bigmodel_core.training.store import RunStore
from bigmodel_core.training.trainer import Trainer
from tests.support import tiny_cnn as tiny
from tests.support import wait


def base() -> dict:
    return ExperimentConfig().to_dict()


def refused(raw) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(raw)
    return str(exc.value)


@pytest.fixture
def untouched(tmp_path, monkeypatch):
    """Fails the test if parsing wrote a file or changed global torch/random state."""
    monkeypatch.setenv("BIGMODEL_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    import sklearn.datasets  # noqa: F401, PLC0415 - its first import draws from Python's random; pay it before
    before = (torch.get_rng_state().clone(), random.getstate(), torch.get_num_threads(), torch.get_default_dtype())
    yield
    after = (torch.get_rng_state(), random.getstate(), torch.get_num_threads(), torch.get_default_dtype())
    assert torch.equal(before[0], after[0]) and before[1:] == after[1:]
    assert list(tmp_path.iterdir()) == []


# --- malformed, huge, deep ------------------------------------------------------------------------------
@pytest.mark.parametrize("text,needle", [
    ("", "not valid JSON"), ("{", "not valid JSON"), ("{'seed': 1}", "not valid JSON"), ("{\"seed\": }", "not valid"),
    ("null", "JSON object"), ("[]", "JSON object"), ("\"config\"", "JSON object"), ("42", "JSON object"),
    ("true", "JSON object"), (b"\xff\xfe{}", "not valid JSON"), ("\ufeff{}", "not valid JSON"),
    ("{\"seed\": 0} trailing", "not valid JSON"), ("\x00", "not valid JSON"),
])
def test_malformed_json_is_refused_with_a_reason(untouched, text, needle):
    assert needle in refused(text)


def test_huge_configs_are_refused_by_size_as_text_and_as_dict(untouched):
    limit = current_limits().max_config_bytes
    assert f"{limit:,}" in refused("{\"seed\": 0, \"pad\": \"" + "x" * limit + "\"}")
    assert f"{limit:,}" in refused(b" " * (limit + 1))
    d = base()
    d["model"]["conv"] = [{"channels": 1}] * 200_000  # a URL or upload can carry a dict this big
    t0 = time.perf_counter()
    assert "limit" in refused(d)
    d = base()
    d["model"].update({f"k{i}": i for i in range(100_000)})
    assert "limit" in refused(d)
    assert time.perf_counter() - t0 < 20  # refused by size, not after validating every item


def test_deeply_nested_configs_are_refused(untouched):
    for depth in (50, 5_000, 200_000):
        assert refused("{\"seed\": " + "[" * depth + "]" * depth + "}")
        assert refused("{\"data\": " + "{\"a\": " * depth + "1" + "}" * depth + "}")
    deep: dict = {}
    node = deep
    for _ in range(10_000):
        node["x"] = {}
        node = node["x"]
    assert "nested too deeply" in refused({"model": deep})


UNKNOWN_KEYS = [
    (("",), "top"), (("data",), "data"), (("model",), "model"), (("model", "conv", 0), "model.conv[0]"),
    (("model", "dense", 0), "model.dense[0]"), (("optimizer",), "optimizer"), (("regularization",), "regularization"),
    (("training",), "training"),
]


@pytest.mark.parametrize("where,label", UNKNOWN_KEYS)
def test_unknown_keys_at_every_level_name_the_key_and_what_is_allowed(untouched, where, label):
    d = base()
    node = d
    for part in where:
        if part != "":
            node = node[part]
    node["__proto__"] = 1
    msg = refused(d)
    assert "unknown key '__proto__'" in msg and "allowed keys" in msg
    if label != "top":
        assert label + ".__proto__" in msg


def test_unknown_key_inside_early_stopping_is_named(untouched):
    d = base()
    d["regularization"]["early_stopping"] = {"patience": 2, "restore": True}
    assert "regularization.early_stopping.restore" in refused(d)


EXTREMES = [
    ("training.epochs", 10**9), ("training.epochs", 10**100), ("training.epochs", 0), ("training.epochs", -1),
    ("training.epochs", 2.5), ("training.epochs", "many"), ("training.epochs", None), ("training.epochs", [5]),
    ("training.batch_size", 0), ("training.batch_size", -64), ("training.batch_size", 10**9),
    ("model.conv.0.channels", 10**6), ("model.conv.0.channels", 0), ("model.dense.0.units", 10**6),
    ("model.conv.0.kernel", 1000), ("model.conv.0.stride", 0), ("model.conv.0.dropout", 1.0),
    ("model.conv.0.dropout", float("nan")), ("model.conv.0.padding", -1), ("model.conv.0.pool_size", 10**9),
    ("optimizer.lr", float("nan")), ("optimizer.lr", float("inf")), ("optimizer.lr", float("-inf")),
    ("optimizer.lr", 0.0), ("optimizer.lr", 1e300), ("optimizer.lr", "0.1; rm -rf /"),
    ("optimizer.momentum", float("nan")), ("optimizer.weight_decay", -1.0), ("optimizer.gamma", 0.0),
    ("regularization.l2", float("inf")), ("regularization.grad_clip", float("nan")),
    ("regularization.label_smoothing", 1.0), ("seed", -1), ("seed", 2**63), ("seed", float("nan")),
    ("data.train_size", 0), ("data.train_size", 10**12), ("data.val_size", -5), ("data.name", "../../etc/passwd"),
    ("data.name", "x" * 10_000), ("data.image_size", 28), ("data.seq_len", 10), ("training.device", "cuda:0; ls"),
    ("training.device", "tpu"), ("training.device", "cuda:0\n"), ("training.device", "cuda:"),
    ("model.family", "transformer"), ("model.conv", []),
]


@pytest.mark.parametrize("path,value", EXTREMES, ids=lambda v: repr(v)[:30])
def test_extreme_values_are_refused_naming_the_field(untouched, path, value):
    d = base()
    *parents, last = path.split(".")
    node = d
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    node[last] = value
    if path == "model.conv" and value == []:
        # an empty conv list is a legal (dense-only) design; it must build and train, not crash
        cfg = parse_config(d)
        assert infer_layers(cfg.model, dataset_info(cfg.data.name))
        return
    msg = refused(d)
    shown = path.replace(".0.", "[0].")
    field = {"data.image_size": "data", "data.seq_len": "data", "model.family": "model"}.get(path, shown)
    assert field in msg, msg
    assert len(msg) < 2_000  # the reason is readable: no 10,000-character echo of the input


def test_values_from_json_text_are_refused_too(untouched):
    assert "optimizer.lr" in refused('{"optimizer": {"lr": NaN}}')
    assert "optimizer.lr" in refused('{"optimizer": {"lr": Infinity}}')
    assert "training.epochs" in refused('{"training": {"epochs": 1e9}}')
    assert "training.epochs" in refused('{"training": {"epochs": 100000000000000000000000000000000}}')


def test_many_problems_are_listed_briefly_but_all_kept(untouched):
    d = base()
    d["model"]["conv"] = [{"channels": -1, "kernel": -1, "stride": -1}] * 8
    with pytest.raises(ConfigError) as exc:
        parse_config(d)
    assert len(exc.value.problems) == 24
    assert str(exc.value).count(";") == MAX_SHOWN_PROBLEMS  # 20 shown + "and 4 more problems"
    assert str(exc.value).endswith("and 4 more problems")


def test_batchnorm_on_a_1x1_map_with_a_batch_of_one_is_refused_up_front(untouched):
    d = {"data": {"name": "handwritten_digits", "image_size": 8, "train_size": 33, "val_size": 5},
         "model": {"family": "cnn", "conv": [{"channels": 2, "kernel": 8, "padding": "valid", "batchnorm": True,
                                              "pool": "none"}], "dense": []},
         "training": {"epochs": 1, "batch_size": 32, "device": "cpu"}}
    def design_refused(raw) -> str:
        # a shape rule of the design, checked where a design meets its data: Build, validate, the Trainer
        cfg = parse_config(raw)
        with pytest.raises(SpecError) as exc:
            check_design(cfg)
        with pytest.raises(SpecError) as at_start:
            Trainer(cfg)
        assert str(at_start.value) == str(exc.value)
        return str(exc.value)

    msg = design_refused(d)  # 33 = 32 + a last batch of 1, and batch norm cannot normalise one value
    assert "model.conv[0]" in msg and "batch_size" in msg and "1x1" in msg
    d["training"]["batch_size"] = 1
    assert "batch of 1" in design_refused(d)
    d["training"]["batch_size"] = 16  # 33 = 16 + 16 + 1
    assert design_refused(d)
    d["training"]["batch_size"] = 11  # 33 = 3 x 11: fine, and it trains
    check_design(parse_config(d))
    result = Trainer(parse_config(d)).fit()
    assert result.status == "completed"
    d["model"]["conv"][0]["batchnorm"] = False  # without batch norm a batch of one trains fine
    d["training"]["batch_size"] = 32
    assert Trainer(parse_config(d)).fit().status == "completed"


def test_cli_refuses_a_hostile_config_with_one_line_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"training": {"epochs": 1000000000}, "optimizer": {"lr": NaN}}')
    assert cli_main(["train", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "training.epochs" in err and "optimizer.lr" in err
    assert not (tmp_path / "out").exists()


# --- resource limits ------------------------------------------------------------------------------------
def test_every_limit_has_an_env_override(monkeypatch):
    for name, value in Limits().__dict__.items():
        monkeypatch.setenv(f"BIGMODEL_{name.upper()}", "7")
        assert getattr(current_limits(), name) == 7, name
        monkeypatch.delenv(f"BIGMODEL_{name.upper()}")
        assert getattr(current_limits(), name) == value


@pytest.mark.parametrize("raw,needle", [("abc", "not a number"), ("0", "must be positive"), ("-3", "must be positive"),
                                        ("", "not a number"), ("1e3", "not a number")])
def test_bad_limit_values_name_the_variable(monkeypatch, raw, needle):
    monkeypatch.setenv("BIGMODEL_MAX_EPOCHS", raw)
    with pytest.raises(ValueError, match=f"BIGMODEL_MAX_EPOCHS.*{needle}"):
        current_limits()


def test_max_params_is_enforced_by_the_builder_and_the_trainer(monkeypatch):
    cfg = tiny()
    info = dataset_info("synthetic_digits")
    params = sum(r.params for r in infer_layers(cfg.model, info))
    monkeypatch.setenv("BIGMODEL_MAX_PARAMS", str(params))
    assert build_model(cfg.model, info)
    monkeypatch.setenv("BIGMODEL_MAX_PARAMS", str(params - 1))
    for make in (lambda: infer_layers(cfg.model, info), lambda: build_model(cfg.model, info, seed=0),
                 lambda: Trainer(cfg)):
        with pytest.raises(SpecError, match=f"{params:,} parameters is above the limit of {params - 1:,}"):
            make()


def test_max_params_stops_a_wide_model_that_every_other_limit_allows():
    d = base()
    d["model"]["conv"] = [{"channels": 512, "pool": "none"}, {"channels": 512, "pool": "none"}]
    d["model"]["dense"] = [{"units": 4096}]
    cfg = parse_config(d)
    with pytest.raises(SpecError, match="above the limit of 5,000,000"):
        infer_layers(cfg.model, dataset_info("synthetic_digits"))


def test_max_epochs(monkeypatch):
    monkeypatch.setenv("BIGMODEL_MAX_EPOCHS", "3")
    assert tiny(**{"training.epochs": 3}).training.epochs == 3
    with pytest.raises(ConfigError, match="training.epochs: 4 epochs is above the limit of 3"):
        tiny(**{"training.epochs": 4})


@pytest.mark.parametrize("env,path,ok,bad,needle", [
    ("BIGMODEL_MAX_TRAIN_SIZE", "data.train_size", 100, 101, "data.train_size: 101 is above the limit of 100"),
    ("BIGMODEL_MAX_VAL_SIZE", "data.val_size", 50, 51, "data.val_size: 51 is above the limit of 50"),
    ("BIGMODEL_MAX_BATCH_SIZE", "training.batch_size", 32, 33, "batch size 33 is above the limit of 32"),
    ("BIGMODEL_MAX_CHANNELS", "model.conv.0.channels", 4, 5, "5 channels is above the limit of 4"),
])
def test_dataset_and_layer_size_limits(monkeypatch, env, path, ok, bad, needle):
    monkeypatch.setenv(env, str(ok))
    assert tiny(**{path: ok})
    with pytest.raises(ConfigError, match=needle):
        tiny(**{path: bad})


def test_layer_count_and_width_limits(monkeypatch):
    defaults = base()
    monkeypatch.setenv("BIGMODEL_MAX_CONV_BLOCKS", "2")
    monkeypatch.setenv("BIGMODEL_MAX_DENSE_LAYERS", "1")
    monkeypatch.setenv("BIGMODEL_MAX_UNITS", "8")
    monkeypatch.setenv("BIGMODEL_MAX_RNN_LAYERS", "2")
    d = json.loads(json.dumps(defaults))
    d["model"]["conv"] = [{"channels": 2, "pool": "none"}] * 3
    d["model"]["dense"] = []
    assert "3 conv blocks is above the limit of 2" in refused(d)
    d = json.loads(json.dumps(defaults))
    d["model"]["dense"] = [{"units": 4}] * 2
    assert "2 dense layers is above the limit of 1" in refused(d)
    d["model"]["dense"] = [{"units": 9}]
    assert "9 units is above the limit of 8" in refused(d)
    rnn = {"data": {"name": "sine_wave", "train_size": 32, "val_size": 8},
           "model": {"family": "lstm", "hidden": 8, "dense": []}}
    assert parse_config(rnn)
    assert "hidden 9 is above the limit of 8" in refused({**rnn, "model": {"family": "lstm", "hidden": 9, "dense": []}})
    assert "3 layers is above the limit of 2" in refused({**rnn, "model": {"family": "gru", "hidden": 4, "layers": 3,
                                                                           "dense": []}})


def test_max_seq_len(monkeypatch):
    monkeypatch.setenv("BIGMODEL_MAX_SEQ_LEN", "20")
    ok = {"data": {"name": "adding_problem", "seq_len": 20, "train_size": 8, "val_size": 4},
          "model": {"family": "gru", "hidden": 4}}
    assert parse_config(ok).data.seq_len == 20
    ok["data"]["seq_len"] = 21
    assert "data: seq_len 21 is above the limit of 20 steps" in refused(ok)
    del ok["data"]["seq_len"]  # the default length (50) is held to the limit too
    assert "seq_len 50 is above the limit of 20" in refused(ok)


def test_max_config_bytes(monkeypatch):
    text = tiny().to_json()
    monkeypatch.setenv("BIGMODEL_MAX_CONFIG_BYTES", str(len(text)))
    assert parse_config(text) == tiny()
    assert "limit is" in refused(text + " ")


def test_max_upload_bytes_for_weights_and_comparison_files(monkeypatch):
    from bigmodel_core.experiments.compare import Comparison
    from bigmodel_core.training.store import save_weights_bytes

    finetune = pytest.importorskip("bigmodel_core.experiments.finetune")
    UploadError, read_safetensors = finetune.UploadError, finetune.read_safetensors

    data = save_weights_bytes({"w": torch.zeros(100)})
    monkeypatch.setenv("BIGMODEL_MAX_UPLOAD_BYTES", str(len(data) - 1))
    with pytest.raises(UploadError, match="upload limit"):
        read_safetensors(data, "model.safetensors")
    with pytest.raises(ConfigError, match="the limit is"):
        Comparison.from_json(b"{" + b" " * len(data) + b"}")
    monkeypatch.setenv("BIGMODEL_MAX_UPLOAD_BYTES", str(len(data)))
    assert torch.equal(read_safetensors(data, "model.safetensors")["w"], torch.zeros(100))


def test_max_runs_per_session_keeps_only_the_newest_of_that_session(tmp_path, monkeypatch):
    monkeypatch.setenv("BIGMODEL_MAX_RUNS_PER_SESSION", "2")
    store = RunStore(tmp_path)
    other = store.save(tiny(), [], {"status": "completed"}, None, owner="bob")
    pool = JobPool(max_workers=1, store=store, threads_per_job=1, watchdog_interval=0.1)
    try:
        ids = []
        for i in range(4):
            job = pool.submit(Job(tiny(**{"seed": i}), owner="alice"))
            assert wait(lambda j=job: j.status == "completed")
            ids.append(job.run_id)
            time.sleep(1.05)  # run ids sort by their creation second
        kept = [r.run_id for r in store.list("alice")]
        assert kept == [ids[3], ids[2]]
        assert [r.run_id for r in store.list("bob")] == [other]
    finally:
        pool.shutdown()


def test_concurrency_cap_from_env_holds_and_is_visible_in_the_stats_file(tmp_path, monkeypatch):
    stats = tmp_path / "stats.json"
    monkeypatch.setenv("BIGMODEL_MAX_CONCURRENT_JOBS", "2")
    monkeypatch.setenv("BIGMODEL_STATS_FILE", str(stats))
    monkeypatch.setenv("BIGMODEL_THREADS_PER_JOB", "1")
    threads = torch.get_num_threads()
    pool = JobPool(store=RunStore(tmp_path / "runs"), watchdog_interval=0.1)
    try:
        assert pool.max_workers == 2 and torch.get_num_threads() == 1
        jobs = [pool.submit(Job(tiny(**{"training.epochs": 3, "data.train_size": 256}), owner=f"u{i}"))
                for i in range(4)]
        assert wait(lambda: all(j.status == "completed" for j in jobs), timeout=120)
        assert pool.peak_running <= 2
        # a job reads "completed" a moment before its worker frees the slot and rewrites the file
        assert wait(lambda: json.loads(stats.read_text())["running"] == 0, timeout=10)
        data = json.loads(stats.read_text())
        assert data["max_workers"] == 2 and data["peak_running"] == pool.peak_running
        assert data["running"] == 0 and data["queued"] == 0
        assert pool.stats()["peak_running"] == pool.peak_running
    finally:
        pool.shutdown()
        torch.set_num_threads(threads)


def test_idle_stop_seconds_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BIGMODEL_IDLE_STOP_SECONDS", "0.3")
    pool = JobPool(max_workers=1, store=RunStore(tmp_path), threads_per_job=1, watchdog_interval=0.05)
    try:
        job = pool.submit(Job(tiny(**{"training.epochs": 50, "data.train_size": 2048}), owner="a"))
        assert wait(lambda: job.status == "stopped", timeout=30)
        assert "no page watched this job for 0 s" in job.message or "no page watched" in job.message
    finally:
        pool.shutdown()


def test_a_session_training_again_and_again_does_not_pin_every_old_trainer(tmp_path):
    from bigmodel_core.training.jobs import KEEP_TRAINERS

    pool = JobPool(max_workers=1, store=RunStore(tmp_path), threads_per_job=1, watchdog_interval=0.1)
    try:
        jobs = []
        for i in range(KEEP_TRAINERS + 2):
            jobs.append(pool.submit(Job(tiny(**{"seed": i}), owner="alice")))
            time.sleep(0.01)  # distinct creation times
        other = pool.submit(Job(tiny(), owner="bob"))
        assert wait(lambda: all(j.status == "completed" for j in jobs + [other]), timeout=120)
        assert [j.trainer is None for j in jobs] == [True, True] + [False] * KEEP_TRAINERS
        assert other.trainer is not None
        old = pool.snapshot("alice", jobs[0].job_id)  # an old job still shows its curves and gives its weights
        assert old.epochs and old.run_id and jobs[0].final_state
    finally:
        pool.shutdown()
