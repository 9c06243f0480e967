"""Fine-tuning the shipped letters CNN on a learner's own images: fitting the image size, the label
budget the split leaves, the batch rule on the samples a file really gives, and the CLI's --data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bigmodel_core import cli
from bigmodel_core.config.specs import parse_config
from bigmodel_core.data import build_dataset, dataset_info
from bigmodel_core.data.uploads import UploadedDataError, UploadStore, fit_images, read_upload, serve_for_process
from bigmodel_core.experiments.finetune import FinetuneTrainer, Plan, label_budget, load_pretrained
from bigmodel_core.nn.shapes import SpecError, check_design
from tests.bigmodel_core.data.upload_files import class_zip, wide_csv

OWNER = "ws-" + "d" * 32


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_zip(counts: dict[str, int], side: int = 16, seed: int = 5) -> bytes:
    return class_zip(np.random.default_rng(seed), counts, size=(side, side))[0]


def test_fit_images_resizes_to_the_side_and_names_a_new_dataset():
    data = read_upload(small_zip({"cat": 6, "dog": 5}), "pets.zip")
    assert data.input_shape == (1, 16, 16)
    fitted = fit_images(data, 28)
    assert fitted.input_shape == (1, 28, 28) and fitted.x.dtype == np.float32
    assert fitted.name != data.name  # other tensors, another content hash
    assert np.array_equal(fitted.y, data.y) and fitted.class_names == data.class_names
    assert fitted.notes[-1] == ("Resized from 16 x 16 to 28 x 28 pixels to fit the model's input (the pretrained "
                                "weights read 28 x 28 images).")
    assert 0.0 <= fitted.x.min() and fitted.x.max() <= 1.0
    # a constant image stays constant when resized: the mean pixel is kept
    assert fitted.x.mean() == pytest.approx(data.x.mean(), abs=0.02)
    assert fit_images(fitted, 28) is fitted  # already that size: nothing to do


def test_fit_images_refuses_sequences():
    rows = [[float(i + j) for j in range(6)] for i in range(8)]
    seqs = read_upload(wide_csv(rows, ["a", "b"] * 4).encode(), "walks.csv")
    with pytest.raises(UploadedDataError, match="'walks.csv' holds sequences; only images can be resized"):
        fit_images(seqs, 28)


def test_store_counts_the_samples_of_each_class(tmp_path):
    store = UploadStore(tmp_path, OWNER)
    name = store.save(read_upload(small_zip({"b": 4, "a": 7, "c": 3}), "abc.zip"))
    assert store.meta(name)["class_names"] == ["a", "b", "c"]
    assert store.class_counts(name) == [7, 4, 3]


def test_label_budget_counts_what_the_split_leaves_per_class():
    name = serve_for_process(read_upload(small_zip({"a": 10, "b": 7, "c": 12}), "abc.zip"))
    budget = label_budget(build_dataset(name, train_size=4000, val_size=1000, seed=0))
    # 20% of each class held out (rounded, at least one): 2, 1, 2
    assert budget.val == (2, 1, 2) and budget.train == (8, 6, 10)
    assert budget.most_per_class == 6 and budget.val_total == 5
    assert budget.one_example_points == pytest.approx(20.0)
    assert budget.standard_error_points == pytest.approx(100 * (0.8 * 0.2 / 5) ** 0.5)
    lines = budget.sentences()
    assert lines[0] == "7 to 12 labelled images per class in 3 classes (29 in all)."
    assert "holds out 1 to 2 per class for validation (5 in all)" in lines[1]
    assert "label budgets go up to 6 per class" in lines[1]
    assert "moves the accuracy by 20.0 points" in lines[2] and "about 18 points" in lines[2]


def bn_config(name: str, batch_size: int) -> object:
    # four 2x2 pools take 28 x 28 down to 1 x 1, where the fifth block's batch norm works
    conv = [{"channels": 4, "pool": "max"}] * 4 + [{"channels": 4, "pool": "none", "batchnorm": True}]
    return parse_config({"seed": 0, "data": {"name": name, "train_size": 4000, "val_size": 1000},
                         "model": {"family": "cnn", "conv": conv, "dense": []},
                         "training": {"epochs": 1, "batch_size": batch_size, "device": "cpu"}})


def test_the_batch_norm_rule_counts_the_samples_the_file_gives_not_train_size():
    name = serve_for_process(read_upload(small_zip({"a": 6, "b": 5}, side=28), "ab.zip"))
    ds = build_dataset(name, train_size=4000, val_size=1000, seed=0)
    assert len(ds.y_train) == 9  # 5 + 4: the last batch of 8 holds one sample
    cfg = bn_config(name, 8)
    check_design(cfg)  # train_size 4000 alone would pass: 4000 = 500 batches of 8
    with pytest.raises(SpecError, match="the 9 training samples the data gives \\(train_size asks for 4000\\) with "
                                        "batch_size 8 gives a batch of 1"):
        check_design(cfg, train_samples=9)
    with pytest.raises(SpecError, match="the 9 training samples"):
        from bigmodel_core.training.trainer import Trainer

        Trainer(cfg)  # the Trainer checks on the data it really has
    check_design(bn_config(name, 3), train_samples=9)  # three full batches of 3: fine


def test_the_letters_cnn_fine_tunes_on_own_images_of_another_size_from_the_cli(tmp_path, capsys):
    (tmp_path / "pets.zip").write_bytes(small_zip({"cat": 10, "dog": 10, "fox": 10}))
    out = tmp_path / "ft"
    assert cli.main(["finetune", "letters_cnn", "--pretrained", "letters_cnn", "--strategy", "head",
                     "--labels-per-class", "3", "--data", str(tmp_path / "pets.zip"), "--out", str(out),
                     "--epochs", "1", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "Resized from 16 x 16 to 28 x 28 pixels to fit the model's input" in captured.err
    assert "10 labelled images per class in 3 classes (30 in all)." in captured.err
    assert "label budgets go up to 8 per class" in captured.err
    assert "Validation rests on 6 images" in captured.err
    assert "training on 9 labelled examples (3 per class)" in captured.err
    summary = json.loads(captured.out)
    assert summary["status"] == "completed"
    fin = summary["finetune"]
    assert fin["labelled_examples"] == 9 and fin["validation_examples"] == 6 and fin["strategy"] == "head"
    assert fin["pretrained"] is not None  # the letters CNN's weights were loaded, not a fresh model
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["name"].startswith("upload-") and (out / "data.npz").is_file()
    assert dataset_info(config["data"]["name"]).input_shape == (1, 28, 28)
    assert dataset_info(config["data"]["name"]).class_names == ("cat", "dog", "fox")


def test_a_budget_above_what_the_split_leaves_is_refused_naming_the_most(tmp_path, capsys):
    (tmp_path / "pets.zip").write_bytes(small_zip({"cat": 10, "dog": 6}))
    code = cli.main(["finetune", "letters_cnn", "--pretrained", "letters_cnn", "--labels-per-class", "6",
                     "--data", str(tmp_path / "pets.zip"), "--out", str(tmp_path / "ft"), "--epochs", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "label budget 6 per class" in err and "at most 5 here" in err  # dog: 6 images, 1 held out
    assert not (tmp_path / "ft").exists()


def test_head_only_keeps_the_pretrained_features_on_own_images():
    data = fit_images(read_upload(small_zip({"a": 8, "b": 8}), "ab.zip"), 28)
    name = serve_for_process(data)
    source = load_pretrained("letters_cnn")
    cfg = parse_config({"seed": 0, "data": {"name": name, "train_size": 2000, "val_size": 1000},
                        "model": source.card["config"]["model"],
                        "training": {"epochs": 1, "batch_size": 8, "device": "cpu"}})
    trainer = FinetuneTrainer(cfg, Plan.make("head", 2), source)
    list(trainer.run())
    state = trainer.model.state_dict()
    for key, value in source.state.items():
        if not key.startswith("classifier."):
            assert torch.equal(state[key].cpu(), value.to(state[key].dtype)), key  # frozen: bit for bit
    assert trainer.summary()["finetune"]["validation_examples"] == 4
