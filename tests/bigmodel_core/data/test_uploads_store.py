"""Uploaded datasets once parsed: the stratified split, the registry serving them, the per-owner store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bigmodel_core.config.specs import ConfigError, parse_config
from bigmodel_core.data import DATASET_NAMES, DatasetError, build_dataset, dataset_info, is_upload_name
from bigmodel_core.data.uploads import (
    UploadedData,
    UploadedDataError,
    UploadStore,
    read_upload,
    register_uploaded,
    split_uploaded,
    unregister_uploaded,
)
from bigmodel_core.data.uploads.normalised import read_normalised
from bigmodel_core.nn.models import build_model
from tests.bigmodel_core.data.upload_files import class_zip, wide_csv

NAME = "upload-0123456789abcdef"


def labels(counts: list[int]) -> torch.Tensor:
    return torch.cat([torch.full((c,), i, dtype=torch.int64) for i, c in enumerate(counts)])


def split(y: torch.Tensor, train: int, val: int, seed: int = 0, classification: bool = True, name: str = NAME):
    x = torch.arange(len(y), dtype=torch.float32)  # x says which sample it is
    return split_uploaded(x, y, classification, name, train, val, seed)


# --- split ---------------------------------------------------------------------------------------------


def test_the_split_is_deterministic_from_the_seed_and_stratified():
    y = labels([10, 25, 5])
    a, b, c = split(y, 1000, 1000, seed=1), split(y, 1000, 1000, seed=1), split(y, 1000, 1000, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a[:4], b[:4]))
    assert not torch.equal(a[2], c[2])
    x_train, y_train, x_val, y_val, _ = a
    assert set(x_train.tolist()).isdisjoint(x_val.tolist())
    assert sorted(x_train.tolist() + x_val.tolist()) == list(range(40))  # every sample used once
    assert torch.bincount(y_val).tolist() == [2, 5, 1]  # 20% of each class
    assert torch.bincount(y_train).tolist() == [8, 20, 4]
    assert torch.equal(y[x_train.long()], y_train) and torch.equal(y[x_val.long()], y_val)


def test_sizes_are_caps_and_the_notes_say_so():
    y = labels([10, 10])
    *_, notes = split(y, 4000, 1000)
    assert len(notes) == 2
    assert notes[0] == ("Asked for 4,000 training samples; the file has 16 once 20% of each class is held out for "
                        "validation, so all 16 are used.")
    assert "Asked for 1,000 validation samples" in notes[1] and "4 samples" in notes[1]
    x_train, y_train, x_val, y_val, notes = split(y, 16, 4)
    assert notes == [] and len(x_train) == 16 and len(x_val) == 4


def test_smaller_sizes_keep_every_class_and_validation_does_not_depend_on_train_size():
    y = labels([30, 6, 12])
    _, y_train, x_val, y_val, _ = split(y, 5, 3, seed=4)
    assert sorted(set(y_train.tolist())) == [0, 1, 2] and sorted(y_val.tolist()) == [0, 1, 2]
    for train_size in (3, 10, 1000):
        assert torch.equal(split(y, train_size, 3, seed=4)[2], x_val)
    # a bigger budget holds the smaller one
    small, big = split(y, 6, 3, seed=4)[0], split(y, 12, 3, seed=4)[0]
    assert torch.equal(big[:6], small)


def test_sizes_below_the_class_count_and_single_sample_classes_are_refused():
    with pytest.raises(ValueError, match="val_size 2 is smaller than the 3 classes"):
        split(labels([5, 5, 5]), 100, 2)
    with pytest.raises(ValueError, match="train_size 1 is smaller than the 3 classes"):
        split(labels([5, 5, 5]), 1, 100)
    with pytest.raises(ValueError, match="has 1 sample; every class needs at least 2"):
        split(labels([5, 1]), 100, 100)


def test_regression_holds_out_twenty_percent():
    y = torch.linspace(0, 1, 50).reshape(-1, 1)
    x_train, y_train, x_val, y_val, notes = split(y, 1000, 1000, classification=False)
    assert len(x_val) == 10 and len(x_train) == 40 and len(notes) == 2
    assert "20% of the samples" in notes[0]


# --- serving through the registry -----------------------------------------------------------------------


@pytest.fixture
def uploaded(tmp_path) -> tuple[UploadedData, str]:
    data, _ = class_zip(np.random.default_rng(5), {"cat": 6, "dog": 9, "owl": 5}, size=(8, 8))
    up = read_upload(data, "pets.zip")
    store = UploadStore(tmp_path, "ws-" + "a" * 32)
    return up, store.save(up)


def test_a_saved_upload_is_served_like_a_builtin_dataset(uploaded):
    up, name = uploaded
    assert name == up.name and is_upload_name(name) and name not in DATASET_NAMES
    info = dataset_info(name)
    assert info.kind == "image" and info.task == "classification" and info.input_shape == (1, 8, 8)
    assert info.class_names == ("cat", "dog", "owl") and info.num_outputs == 3 and info.max_size is None
    assert "pets.zip" in info.description and "20 images" in info.description
    ds = build_dataset(name, train_size=4000, val_size=1000, seed=0)
    assert ds.x_train.shape == (16, 1, 8, 8) and ds.x_val.shape == (4, 1, 8, 8)
    assert ds.y_train.dtype == torch.int64 and len(ds.notes) == 2
    everything = torch.cat([ds.x_train, ds.x_val])
    assert sorted(map(tuple, everything.flatten(1).tolist())) == sorted(map(tuple, up.x.reshape(20, -1).tolist()))
    with pytest.raises(DatasetError, match="image_size is not a parameter"):
        dataset_info(name, image_size=28)


def test_a_config_names_an_upload_and_its_model_follows_the_data(uploaded):
    _, name = uploaded
    cfg = parse_config({"data": {"name": name, "train_size": 12, "val_size": 3},
                        "model": {"family": "cnn", "conv": [{"channels": 2}], "dense": []}})
    model = build_model(cfg.model, dataset_info(name))
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    with pytest.raises(ConfigError, match="model.family 'lstm' needs a sequence dataset"):
        parse_config({"data": {"name": name}, "model": {"family": "lstm"}})


def test_an_upload_that_is_not_loaded_is_refused_with_a_clear_message():
    with pytest.raises(DatasetError, match="the uploaded dataset upload-fedcba9876543210 is not loaded here"):
        dataset_info("upload-fedcba9876543210")
    with pytest.raises(ConfigError, match="data: the uploaded dataset upload-fedcba9876543210 is not loaded"):
        parse_config({"data": {"name": "upload-fedcba9876543210"}})
    for bad in ("upload-0123", "upload-0123456789ABCDEF", "upload-0123456789abcdef\n", "../upload-0123456789abcdef"):
        with pytest.raises(ConfigError, match="unknown dataset"):
            parse_config({"data": {"name": bad}})


def test_registering_checks_the_file_matches_its_name(uploaded, tmp_path):
    up, name = uploaded
    path = tmp_path / "x.npz"
    path.write_bytes(up.to_npz_bytes())
    with pytest.raises(DatasetError, match=f"holds the dataset '{name}', not upload-0123456789abcdef"):
        register_uploaded("upload-0123456789abcdef", path)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="is not a readable uploaded dataset"):
        register_uploaded("upload-0123456789abcdef", tmp_path / "junk.npz")
    # a file changed after it was written is found out when its tensors are read
    x, y, meta = read_normalised(path)
    bad = UploadedData("image", "classification", x.numpy().copy(), y.numpy().copy(), up.class_names, "b")
    bad.x[0, 0, 0, 0] += 0.5
    buf_path = tmp_path / "tampered.npz"
    np.savez(buf_path, x=bad.x, y=bad.y, meta=np.array(json.dumps(dict(meta))))
    with pytest.raises(ValueError, match="it was changed after it was written"):
        read_normalised(buf_path)


def test_a_removed_upload_is_no_longer_served(tmp_path):
    values = np.random.default_rng(0).normal(size=(6, 5)).tolist()
    up = read_upload(wide_csv(values, [1.0, 2, 3, 4, 5, 6]).encode(), "r.csv", task="regression")
    store = UploadStore(tmp_path, "me")
    name = store.save(up)
    assert dataset_info(name).task == "regression" and dataset_info(name).num_outputs == 1
    ds = build_dataset(name, train_size=10, val_size=10, seed=0)
    assert ds.y_train.shape == (5, 1) and ds.y_train.dtype == torch.float32
    unregister_uploaded(name)
    with pytest.raises(DatasetError, match="not loaded here"):
        dataset_info(name)


# --- the per-owner store ---------------------------------------------------------------------------------


def test_the_store_keeps_datasets_per_owner_and_nobody_else_sees_them(uploaded, tmp_path):
    up, name = uploaded
    mine, theirs = UploadStore(tmp_path, "ws-" + "a" * 32), UploadStore(tmp_path, "ws-" + "b" * 32)
    assert mine.names() == [name] and theirs.names() == []
    assert (tmp_path / ".datasets" / ("ws-" + "a" * 32) / f"{name}.npz").is_file()
    assert mine.meta(name)["class_names"] == ["cat", "dog", "owl"] and mine.meta(name)["source"] == "pets.zip"
    for act in (theirs.meta, theirs.register, theirs.delete):
        with pytest.raises(DatasetError, match=f"this workspace has no uploaded dataset {name}"):
            act(name)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))  # written atomically
    assert mine.save(up) == name and mine.names() == [name]  # saving again changes nothing
    mine.delete(name)
    assert mine.names() == []


@pytest.mark.parametrize("owner", ["", "../other", "a/b", ".hidden", "x" * 65, None])
def test_an_owner_that_could_point_elsewhere_is_refused(tmp_path, owner):
    with pytest.raises(DatasetError, match="workspace owner"):
        UploadStore(tmp_path, owner)


def test_a_name_of_another_form_is_refused_by_the_store(tmp_path):
    store = UploadStore(tmp_path, "me")
    for bad in ("../../x", "upload-xyz", "synthetic_digits"):
        with pytest.raises(DatasetError, match="not a name for an uploaded dataset"):
            store.path(bad)


def test_the_store_keeps_at_most_the_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("BIGMODEL_MAX_DATASETS_PER_OWNER", "2")
    store = UploadStore(tmp_path, "me")
    for seed in range(2):
        data, _ = class_zip(np.random.default_rng(seed), {"a": 2, "b": 2}, size=(8, 8))
        store.save(read_upload(data, f"{seed}.zip"))
    data, _ = class_zip(np.random.default_rng(9), {"a": 2, "b": 2}, size=(8, 8))
    with pytest.raises(UploadedDataError, match="keeps 2 uploaded datasets already; delete one first"):
        store.save(read_upload(data, "9.zip"))
