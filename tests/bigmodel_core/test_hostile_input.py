"""Hostile input, second pass: numbers Python cannot convert, loose types, costly headers, weights that
are not numbers, unsafe output folders, half-written runs. Every one is refused with a message that
names the field (or tensor), and never with any exception but the engine's own."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigmodel_core.cli import main
from bigmodel_core.config.presets import load_preset
from bigmodel_core.config.specs import ConfigError, parse_config, parse_config_here
from bigmodel_core.experiments.compare import Comparison, overfitting_lesson
from bigmodel_core.experiments.finetune import (
    UploadError,
    accept_upload,
    load_pretrained,
    read_safetensors,
    suggested_target,
)
from bigmodel_core.safejson import JSONInputError, TooLong, loads
from bigmodel_core.training.store import RunStore, StoreError, check_out_dir, save_weights_bytes, sweep_unfinished

ROOT = Path(__file__).resolve().parents[2]
BASE = load_preset("quickstart_cnn").to_dict()

# (dotted path, JSON literal) that the schema must refuse, naming the path
NUMBER_PATHS = ["seed", "training.epochs", "training.batch_size", "data.train_size", "model.conv.0.channels",
                "model.conv.0.kernel", "model.dense.0.units"]
FLOAT_PATHS = ["optimizer.lr", "optimizer.weight_decay", "regularization.l2", "model.conv.0.dropout"]
BOOL_PATHS = ["model.conv.0.batchnorm", "data.augment"]


def _with_literal(path: str, literal: str) -> str:
    """The preset's JSON text with the value at ``path`` replaced by a raw JSON literal."""
    marker = "__HOSTILE__"
    d = json.loads(json.dumps(BASE))
    node = d
    parts = path.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    node[parts[-1]] = marker
    return json.dumps(d).replace(json.dumps(marker), literal)


def _field(path: str) -> str:
    """specs writes list indices as [0]: model.conv.0.kernel -> model.conv[0].kernel."""
    parts = path.split(".")
    return ".".join(parts).replace(".0.", "[0].")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(NUMBER_PATHS + FLOAT_PATHS), digits=st.integers(41, 30_000),
       sign=st.sampled_from(["", "-"]))
def test_numbers_too_long_to_convert_name_the_field(path, digits, sign):
    text = _with_literal(path, sign + "7" * digits)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    assert time.perf_counter() - t0 < 1.0
    assert _field(path) in str(exc.value) and "too long" in str(exc.value)
    assert len(str(exc.value)) < 500


@settings(max_examples=40, deadline=None)
@given(path=st.sampled_from(FLOAT_PATHS), literal=st.sampled_from(["1e999", "-1e999", "NaN", "Infinity",
                                                                    "-Infinity", "1e400"]))
def test_non_finite_floats_name_the_field(path, literal):
    with pytest.raises(ConfigError) as exc:
        parse_config(_with_literal(path, literal))
    assert _field(path) in str(exc.value)


@settings(max_examples=60, deadline=None)
@given(path=st.sampled_from(NUMBER_PATHS + FLOAT_PATHS + BOOL_PATHS),
       value=st.one_of(st.booleans(), st.text(max_size=8), st.just("5"), st.just("0.1"), st.integers(0, 3)))
def test_loose_types_are_refused(path, value):
    is_bool_field = path in BOOL_PATHS
    if is_bool_field and isinstance(value, bool):
        return  # a bool for a bool is fine
    if not is_bool_field and isinstance(value, int) and not isinstance(value, bool):
        return  # an int for a number is fine (it may still be out of range)
    with pytest.raises(ConfigError) as exc:
        parse_config(_with_literal(path, json.dumps(value)))
    assert _field(path) in str(exc.value)


def test_loose_types_from_the_issue():
    for path, value in [("training.epochs", True), ("model.conv.0.batchnorm", "yes"), ("model.conv.0.batchnorm", 1),
                        ("training.epochs", "5"), ("optimizer.lr", "0.01")]:
        with pytest.raises(ConfigError, match=_field(path).replace("[", r"\[").replace("]", r"\]")):
            parse_config(_with_literal(path, json.dumps(value)))


def test_a_huge_python_int_in_a_dict_names_the_field():
    d = json.loads(json.dumps(BASE))
    d["model"]["conv"][0]["channels"] = 10 ** 5000
    with pytest.raises(ConfigError, match=r"model\.conv\.0\.channels"):
        parse_config(d)


def test_bounded_json_reader():
    assert isinstance(loads("1" * 5000), TooLong)
    assert loads("1e999") == float("inf")
    with pytest.raises(JSONInputError, match="nested too deeply"):
        loads("[" * 100_000 + "]" * 100_000)
    with pytest.raises(JSONInputError, match="line 1 column"):
        loads("{x")


@pytest.mark.skipif(torch.cuda.device_count() >= 100, reason="this machine has cuda:99")
def test_a_device_missing_here_is_refused_where_the_config_enters():
    for device in ["cuda:99"] + ([] if torch.cuda.is_available() else ["cuda"]) + \
            ([] if torch.backends.mps.is_available() else ["mps"]):
        d = dict(BASE, training=dict(BASE["training"], device=device))
        parse_config(d)  # stored runs from another machine still load
        with pytest.raises(ConfigError, match="training.device"):
            parse_config_here(d)


# --- CLI -----------------------------------------------------------------------------------------
def cli(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:  # argparse errors exit; main() returns
        raise SystemExit(main([str(a) for a in args]))
    return exc.value.code, capsys.readouterr().err


@pytest.mark.parametrize("path,literal", [("training.epochs", "9" * 5000), ("optimizer.lr", "1e999"),
                                          ("training.epochs", "true"), ("model.conv.0.batchnorm", "\"yes\""),
                                          ("seed", "\"5\"")])
def test_cli_validate_exits_2_naming_the_field(tmp_path, capsys, path, literal):
    f = tmp_path / "c.json"
    f.write_text(_with_literal(path, literal))
    rc, err = cli(capsys, "validate", f)
    assert rc == 2 and err.startswith("error: ") and _field(path) in err and "Traceback" not in err
    assert len(err) < 600


@pytest.mark.parametrize("args,needle", [(["--epochs", "9" * 5000], "--epochs"), (["--seed", "1e999"], "--seed"),
                                         (["--epochs", "true"], "--epochs"), (["--device", "cuda:99"],
                                                                              "training.device")])
def test_cli_train_options_exit_2_naming_the_option(tmp_path, capsys, args, needle):
    rc, err = cli(capsys, "train", "quickstart_cnn", "--out", tmp_path / "out", *args)
    assert rc == 2 and needle in err and len(err) < 1_000
    assert not (tmp_path / "out").exists()


def test_cli_out_folder_is_checked_before_training(tmp_path, capsys):
    t0 = time.perf_counter()
    rc, err = cli(capsys, "train", "quickstart_cnn", "--out", "")
    assert rc == 2 and "--out is empty" in err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    rc, err = cli(capsys, "train", "quickstart_cnn", "--out", busy)
    assert rc == 2 and "not empty" in err and "--overwrite" in err
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc, err = cli(capsys, "train", "quickstart_cnn", "--out", afile)
    assert rc == 2 and "is a file" in err
    assert time.perf_counter() - t0 < 10  # refused at once, not after a training


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_cli_out_unwritable_is_refused_before_training(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="cannot be"):
            check_out_dir(str(locked / "run"))
        with pytest.raises(StoreError, match="cannot be written"):
            check_out_dir(str(locked))
    finally:
        locked.chmod(0o700)


def test_overwrite_allows_an_existing_folder(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    assert check_out_dir(str(tmp_path), overwrite=True) == tmp_path


# --- weight files --------------------------------------------------------------------------------
def _header_bomb(entries: int) -> bytes:
    """A file with ``entries`` tiny tensors: a huge header over a few bytes of data each."""
    header = {f"t{i}": {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(entries)}
    raw = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * entries


def test_a_header_with_many_entries_is_refused_by_count_or_size():
    with pytest.raises(UploadError, match="lists 5,000 tensors; the limit is 1,000"):
        read_safetensors(_header_bomb(5_000), "bomb.safetensors")
    with pytest.raises(UploadError, match="its header is [0-9,]+ bytes"):
        read_safetensors(_header_bomb(200_000), "bomb.safetensors")


def test_the_big_header_upload_is_refused_with_little_memory_in_a_subprocess():
    """The 20 MB file of hundreds of thousands of header entries: refused with RSS growth under 50 MB."""
    code = textwrap.dedent(f"""
        import json, struct, sys
        sys.path.insert(0, {str(ROOT)!r})
        from bigmodel_core.experiments.finetune import UploadError, accept_upload, suggested_target
        arch = suggested_target("letters_cnn")
        def rss():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        n = 290_000
        parts = [b'"t%d":{{"dtype":"U8","shape":[1],"data_offsets":[%d,%d]}}' % (i, i, i + 1) for i in range(n)]
        raw = b"{{" + b",".join(parts) + b"}}"
        data = struct.pack("<Q", len(raw)) + raw + b"\\0" * n
        del parts, raw
        before = rss()
        try:
            accept_upload(data, "bomb.safetensors", arch)
        except UploadError as exc:
            print(json.dumps({{"size": len(data), "growth": rss() - before, "error": str(exc)}}))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert 15_000_000 < result["size"] <= 20_000_000
    assert "its header is" in result["error"] and "limit 1,000,000" in result["error"]
    assert result["growth"] < 50, result


def test_long_tensor_names_and_impossible_shapes_are_refused():
    state = {"x" * 5000: torch.zeros(2)}
    with pytest.raises(UploadError, match="longer than 300 characters"):
        read_safetensors(save_weights_bytes(state), "w.safetensors")
    header = json.dumps({"w": {"dtype": "F32", "shape": [2 ** 62, 2 ** 62], "data_offsets": [0, 4]}}).encode()
    with pytest.raises(UploadError, match="malformed shape"):
        read_safetensors(struct.pack("<Q", len(header)) + header + b"\0" * 4, "w.safetensors")


def test_more_numbers_than_any_model_here_are_refused_before_loading():
    header = json.dumps({"w": {"dtype": "U8", "shape": [6_000_000], "data_offsets": [0, 6_000_000]}}).encode()
    data = struct.pack("<Q", len(header)) + header + b"\0" * 6_000_000
    with pytest.raises(UploadError, match="more than this model can take"):
        accept_upload(data, "w.safetensors", suggested_target("letters_cnn"))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(value):
    state = dict(load_pretrained("letters_cnn").state)
    key = "blocks.0.conv.weight"
    t = state[key].clone()
    t.view(-1)[3] = value
    state[key] = t
    with pytest.raises(UploadError, match=f"'{key}' has 1 value"):
        accept_upload(save_weights_bytes(state), "w.safetensors", suggested_target("letters_cnn"))


def test_a_negative_running_variance_is_refused_naming_the_tensor():
    state = dict(load_pretrained("letters_cnn").state)
    key = next(k for k in state if k.endswith("running_var"))
    state[key] = -state[key].abs() - 0.5
    with pytest.raises(UploadError, match=f"'{key}'.*negative"):
        accept_upload(save_weights_bytes(state), "w.safetensors", suggested_target("letters_cnn"))


# --- comparison files ----------------------------------------------------------------------------
def _comparison_dict() -> dict:
    return json.loads(overfitting_lesson().to_json())


def test_a_huge_field_in_a_comparison_is_not_echoed():
    d = _comparison_dict()
    d["runs"][0]["name"] = "x" * 5_000_000
    with pytest.raises(ConfigError) as exc:
        Comparison.from_json(json.dumps(d))
    assert "runs[0].name" in str(exc.value) and "5,000,000 characters" in str(exc.value)
    assert len(str(exc.value)) < 1_000


def test_a_17_mb_comparison_is_refused_fast():
    d = _comparison_dict()
    row = {"epoch": 1, "train_loss": 0.5, "val_loss": 0.5, "train_metric": 0.9, "val_metric": 0.9, "lr": 0.001,
           "seconds": 0.1}
    d["runs"] = [dict(d["runs"][i % len(d["runs"])], name=f"run {i}") for i in range(8)]  # 8 runs x 15,000 epochs
    for r in d["runs"]:
        r["epochs"] = [dict(row, epoch=i, train_loss=0.123456789 + i) for i in range(15_000)]
    text = json.dumps(d)
    assert len(text) > 15_000_000
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"runs\[0\]\.epochs.*at most 1000"):
        Comparison.from_json(text)
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("path,value", [(("runs", 0, "epochs", 0, "val_loss"), "9" * 5000),
                                        (("runs", 0, "epochs", 0, "val_loss"), "true"),
                                        (("runs", 0, "status"), "\"hacked\""), (("title",), "[1]")])
def test_bad_values_in_a_comparison_name_the_field(path, value):
    d = _comparison_dict()
    d["runs"][0]["epochs"] = [{"epoch": 1, "val_loss": 0.1}]
    node = d
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = "__X__"
    with pytest.raises(ConfigError) as exc:
        Comparison.from_json(json.dumps(d).replace('"__X__"', value))
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    assert where in str(exc.value) and len(str(exc.value)) < 1_000


# --- the store's start-up sweep ------------------------------------------------------------------
def test_half_written_runs_older_than_a_minute_are_swept(tmp_path):
    store = RunStore(tmp_path)
    cfg = parse_config(BASE)
    done = store.save(cfg, [], {"status": "completed"}, None, owner="a")
    old, fresh = tmp_path / "20240101-000000-train-aaaaaaaaaaaa", tmp_path / "20240101-000001-train-bbbbbbbbbbbb"
    for d in (old, fresh):
        d.mkdir()
        (d / "config.json").write_text(cfg.to_json())
        (d / ".metrics.csv.x.tmp").write_text("")
    past = time.time() - 120
    for f in [old, *old.iterdir()]:
        os.utime(f, (past, past))
    other = tmp_path / "My notes"  # not a run id: the store never touches it
    other.mkdir()
    os.utime(other, (past, past))
    assert sweep_unfinished(tmp_path) == [old.name]
    assert not old.exists() and fresh.exists() and other.exists() and (tmp_path / done).exists()
