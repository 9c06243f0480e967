"""A learner's own data on the Train, Compare and Fine-tune pages under AppTest: good files become the
chosen dataset with their description, every kind of bad file shows its message and changes nothing,
uploads belong to their workspace, and a reload (or a restarted server) finds them again."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from bigmodel_core.config.specs import parse_config
from bigmodel_core.data import is_upload_name
from bigmodel_core.data.uploads import unregister_uploaded
from bigmodel_core.training.workspace import workspace_id
from tests.bigmodel_core.data.upload_files import class_zip, image_bytes, npz_bytes, wide_csv, zip_bytes

ROOT = Path(__file__).resolve().parents[2]
TRAIN_BOX = "own_data_file_train_0"


def new_owner() -> str:
    return workspace_id(secrets.token_urlsafe(24))


def cnn(**changes):
    c = parse_config({"seed": 0, "data": {"name": "synthetic_digits", "train_size": 256, "val_size": 64},
                      "model": {"family": "cnn", "conv": [{"channels": 4}], "dense": [{"units": 8}]},
                      "training": {"epochs": 1, "batch_size": 32, "device": "cpu"}})
    return c.with_changes(changes) if changes else c


def lstm():
    return parse_config({"seed": 0, "data": {"name": "sequential_digits", "train_size": 256, "val_size": 64},
                         "model": {"family": "lstm", "hidden": 8, "layers": 1, "dense": []},
                         "training": {"epochs": 1, "batch_size": 32, "device": "cpu"}})


def pets_zip(counts=None, side: int = 16, seed: int = 3) -> bytes:
    return class_zip(np.random.default_rng(seed), counts or {"cat": 10, "dog": 8, "fox": 7}, size=(side, side))[0]


def page(name: str, owner: str, cfg=None) -> AppTest:
    at = AppTest.from_file(str(ROOT / f"app_pages/{name}.py"), default_timeout=90)
    at.session_state["owner"] = owner
    if cfg is not None:
        at.session_state["config"] = cfg
    return at.run()


def box(at: AppTest, key: str):
    return next(f for f in at.get("file_uploader") if f.proto.id.endswith(key) or key in f.proto.id)


def upload(at: AppTest, key: str, filename: str, data: bytes) -> AppTest:
    box(at, key).set_value((filename, data, "application/octet-stream")).run()
    return at.run()  # the page reruns once a file was kept: the new empty box is drawn


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    return plain("\n".join(parts))


def plain(text: str) -> str:
    """Text as the browser shows it: ui.literal.md escapes Markdown's characters with backslashes."""
    return re.sub(r"\\(.)", r"\1", text)


def errors(at: AppTest) -> list[str]:
    return [plain(e.value) for e in at.error]


def train_dataset(at: AppTest) -> str:
    return at.selectbox(key="w0_t_dataset").value


# --- Train ---------------------------------------------------------------------------------------------
def test_a_zip_of_class_folders_becomes_the_dataset_with_its_description_and_preview():
    owner = new_owner()
    at = page("train", owner, cnn())
    assert [f.label for f in at.get("file_uploader")] == ["Your own data (.zip, .npz or .csv)"]
    at = upload(at, TRAIN_BOX, "pets.zip", pets_zip())
    assert not at.exception and not errors(at)
    name = at.session_state["config"].data.name
    assert is_upload_name(name) and train_dataset(at) == name
    shown = texts(at)
    assert f"`{name}` (content hash {name[7:15]})" in shown and "16 x 16 pixels · 3 classes" in shown
    assert "pets.zip" in shown
    # a new dataset starts from the default sizes, 4,000 + 1,000; the file has 25: 20% of each class held out
    assert ("The config asks for 4,000 training and 1,000 validation samples; the file has 25: using 20 train / 5 "
            "validation (20% of each class is held out for validation).") in shown
    assert "The images are 16 x 16 pixels and keep that size." in shown
    table = next(df.value for df in at.dataframe if "class" in df.value.columns)
    assert list(table["class"]) == ["cat", "dog", "fox"]
    assert list(table["file"]) == [10, 8, 7]
    assert list(table["train"]) == [8, 6, 6] and list(table["val"]) == [2, 2, 1]
    assert not at.button(key="train_start").disabled  # the model's input and outputs follow the data
    at.toggle(key="train_preview_on").set_value(True).run()
    assert not at.exception and len(at.get("plotly_chart")) >= 1  # the sample gallery of the upload
    # the box is empty again and the file's dataset is in the list, labelled by file and hash
    assert f"my data: pets.zip ({name[7:15]})" in at.selectbox(key="w0_t_dataset").options


def test_an_npz_and_a_csv_of_sequences_classification_and_regression():
    owner = new_owner()
    at = page("train", owner, cnn())
    x = (np.random.default_rng(0).random((12, 8, 8)) * 255).astype(np.uint8)
    at = upload(at, TRAIN_BOX, "digits.npz", npz_bytes(x=x, y=np.array([0, 1, 2] * 4)))
    assert not errors(at) and "8 x 8 pixels · 3 classes" in texts(at)

    at = page("train", owner, lstm())
    rows = [[float(np.sin(i + j)) for j in range(6)] for i in range(20)]
    at = upload(at, TRAIN_BOX, "waves.csv", wide_csv(rows, ["up", "down"] * 10).encode())
    assert not errors(at)
    cfg = at.session_state["config"]
    assert is_upload_name(cfg.data.name) and "6 steps x 1 feature(s) · 2 classes" in texts(at)
    assert "(wide layout)" in texts(at)  # the layout the engine detected
    at.radio(key="own_data_task_train").set_value("regression").run()
    at = upload(at, "own_data_file_train_1", "targets.csv", wide_csv(rows, [f"{v:.2f}" for v in range(20)]).encode())
    assert not errors(at)
    assert "6 steps x 1 feature(s) · a number to predict" in texts(at)
    assert at.session_state["config"].data.name != cfg.data.name


BAD_IMAGES = [
    ("slip.zip", zip_bytes({"../evil.png": b"x"}), "'slip.zip': member '../evil.png' has '..' in its path"),
    ("one.zip", zip_bytes({f"cat/{i}.png": image_bytes(np.zeros((8, 8), np.uint8)) for i in range(3)}),
     "'one.zip' has a single class ('cat')"),
    ("broken.zip", zip_bytes({f"{c}/{i}.png": b"not a png" for c in "ab" for i in range(2)}),
     "'broken.zip': member 'a/0.png'"),
    ("nolabels.npz", npz_bytes(x=np.zeros((4, 8, 8))), "'nolabels.npz' has no array 'y'"),
    ("walks.csv", wide_csv([[1.0] * 6] * 4, ["a", "b"] * 2).encode(),
     "'walks.csv' holds sequences, but this model is a CNN, which reads images"),
]


@pytest.mark.parametrize("filename,data,needle", BAD_IMAGES, ids=[b[0] for b in BAD_IMAGES])
def test_a_bad_file_says_what_is_wrong_and_changes_nothing(filename, data, needle):
    owner = new_owner()
    at = page("train", owner, cnn())
    at = upload(at, TRAIN_BOX, "pets.zip", pets_zip())
    before = at.session_state["config"]
    at = upload(at, "own_data_file_train_1", filename, data)
    assert not at.exception
    assert any(needle in e for e in errors(at)), errors(at)
    assert at.session_state["config"] == before and train_dataset(at) == before.data.name  # the previous data stays
    assert len([o for o in at.selectbox(key="w0_t_dataset").options if o.startswith("my data")]) == 1


def test_a_bad_csv_names_the_line_and_column():
    owner = new_owner()
    at = page("train", owner, lstm())
    before = at.session_state["config"]
    text = "v0,v1,v2,v3,v4,label\n" + "1,2,3,4,5,a\n" + "1,2,oops,4,5,b\n"
    at = upload(at, TRAIN_BOX, "bad.csv", text.encode())
    assert any("'bad.csv': line 3, column 'v2' is 'oops', not a number" in e for e in errors(at)), errors(at)
    assert at.session_state["config"] == before


def test_an_upload_with_markdown_in_its_names_is_shown_literally():
    owner = new_owner()
    at = page("train", owner, cnn())
    at = upload(at, TRAIN_BOX, "**bold** [x](javascript:alert).zip", pets_zip())
    raw = "\n".join(m.value for m in at.markdown)
    assert r"\*\*bold\*\* \[x\](javascript\:alert).zip" in raw and "**bold**" not in raw


def test_uploads_belong_to_their_workspace_and_a_reload_keeps_them():
    owner, other = new_owner(), new_owner()
    at = page("train", owner, cnn())
    at = upload(at, TRAIN_BOX, "pets.zip", pets_zip(seed=9))
    name = at.session_state["config"].data.name
    # another learner never sees it
    theirs = page("train", other, cnn())
    assert not [o for o in theirs.selectbox(key="w0_t_dataset").options if o.startswith("my data")]
    assert name not in texts(theirs)
    # a reload in the same browser: a new session of the workspace, the experiment read back from disk
    again = page("train", owner)
    assert not again.exception
    assert again.session_state["config"].data.name == name and train_dataset(again) == name
    assert "using 20 train / 5 validation" in texts(again)
    # a restarted server has not read the file yet: the workspace's store serves it again
    unregister_uploaded(name)
    restarted = page("train", owner)
    assert not restarted.exception and train_dataset(restarted) == name
    # and the Build page opens on it too
    build = page("build", owner)
    assert not build.exception
    assert build.selectbox(key="w0_dataset").value == name


def test_the_batch_norm_check_counts_the_samples_the_file_really_gives():
    conv = [{"channels": 4, "pool": "max"}] * 4 + [{"channels": 4, "pool": "none", "batchnorm": True}]
    cfg = cnn(**{"model.conv": conv, "training.batch_size": 8, "data.train_size": 4000, "data.val_size": 1000})
    owner = new_owner()
    at = page("train", owner, cfg)
    assert not at.button(key="train_start").disabled  # 4000 samples in batches of 8: fine
    at = upload(at, TRAIN_BOX, "ab.zip", pets_zip({"a": 6, "b": 5}, side=28))  # 5 + 4 = 9 training samples
    assert at.button(key="train_start").disabled
    assert any("the 9 training samples the data gives (train_size asks for 4000)" in e for e in errors(at))


def test_a_training_on_the_upload_is_stored_with_its_data():
    owner = new_owner()
    at = page("train", owner, cnn())
    at = upload(at, TRAIN_BOX, "pets.zip", pets_zip(seed=4))
    name = at.session_state["config"].data.name
    at.button(key="train_start").click().run()
    deadline = time.time() + 120
    while time.time() < deadline and not any("Saved as run" in c.value for c in at.caption):
        time.sleep(0.5)
        at.run()
    saved = next(c.value for c in at.caption if "Saved as run" in c.value)
    from ui.state import get_store

    run = get_store().load(saved.split("`")[1], owner=owner)
    assert run.config.data.name == name and (run.path / "data.npz").is_file()


# --- Compare -------------------------------------------------------------------------------------------
def test_compare_plans_every_run_on_the_uploaded_data():
    owner = new_owner()
    at = page("compare", owner, cnn())
    at = upload(at, "own_data_file_compare_0", "pets.zip", pets_zip(seed=5))
    assert not at.exception and not errors(at)
    name = at.selectbox(key="own_data_choice_compare").value
    assert is_upload_name(name) and "using 20 train / 5 validation" in texts(at)
    assert not at.button(key="compare_start").disabled
    at.button(key="compare_start").click().run()
    comp = at.session_state["compare_current"]
    assert {r.config.data.name for r in comp.runs} == {name}
    from ui.state import get_pool

    for r in comp.runs:
        job = get_pool().get(owner, r.job_id)
        job.stop()
    # a bad file there changes nothing either
    at = upload(at, "own_data_file_compare_1", "slip.zip", zip_bytes({"../evil.png": b"x"}))
    assert any("has '..' in its path" in e for e in errors(at))
    assert at.selectbox(key="own_data_choice_compare").value == name


def test_compare_says_when_the_design_does_not_fit_the_upload():
    owner = new_owner()
    cfg = cnn(**{"model.conv": [{"channels": 4, "pool": "max"}] * 4})  # 8 x 8 images cannot take four pools
    at = page("compare", owner, cfg)
    x = (np.random.default_rng(1).random((12, 8, 8)) * 255).astype(np.uint8)
    at = upload(at, "own_data_file_compare_0", "small.npz", npz_bytes(x=x, y=np.array([0, 1] * 6)))
    assert any("The design does not fit this data" in e for e in errors(at)), errors(at)
    assert at.button(key="compare_start").disabled


# --- Fine-tune -----------------------------------------------------------------------------------------
def test_finetune_the_letters_cnn_on_my_own_images():
    owner = new_owner()
    at = page("finetune", owner)
    at = upload(at, "own_data_file_finetune_0", "pets.zip", pets_zip({"cat": 10, "dog": 10, "fox": 10}, seed=6))
    assert not at.exception and not errors(at)
    name = at.selectbox(key="ft_target_letters_cnn").value
    assert is_upload_name(name)
    shown = texts(at)
    assert "28 x 28 pixels · 3 classes" in shown  # resized to the letters CNN's input
    assert "Resized from 16 x 16 to 28 x 28 pixels" in shown
    assert "10 labelled images per class in 3 classes (30 in all)." in shown
    assert "label budgets go up to 8 per class" in shown and "Validation rests on 6 images" in shown
    budgets = at.select_slider(key="ft_budget_classification").options
    assert budgets == ["1", "2", "5", "all"]  # nothing above the 8 per class the split leaves
    at.number_input(key="ft_epochs").set_value(1).run()
    at.multiselect(key="ft_exp_strats_1").set_value(["head", "scratch"]).run()
    at.multiselect(key="ft_exp_b_classification").set_value([2]).run()
    at.button(key="ft_many").click().run()
    from ui.state import get_pool

    pool = get_pool()
    jobs = [pool.get(owner, r["job_id"]) for r in at.session_state["ft_runs"]]
    for job in jobs:
        job.wait_until_finished(timeout=180)
    at.run()
    results = next(df.value for df in at.dataframe if "validated on" in df.value.columns)
    assert list(results["validated on"]) == [6, 6]  # the validation count beside the accuracy
    assert list(results["strategy"]) == ["head only (linear probe)", "from scratch"]
    assert all(j.config.data.name == name for j in jobs)


def test_a_saved_experiment_whose_upload_was_deleted_falls_back_and_says_so():
    owner = new_owner()
    at = page("train", owner, cnn())
    at = upload(at, TRAIN_BOX, "pets.zip", pets_zip(seed=12))
    name = at.session_state["config"].data.name
    from bigmodel_core.data.uploads import UploadStore
    from ui.state import get_store

    UploadStore(get_store().root, owner).delete(name)
    unregister_uploaded(name)  # as after a server restart
    again = page("train", owner).run()  # the notice shows at the top of the next run
    assert not again.exception
    assert again.session_state["config"].data.name == "synthetic_digits"
    assert any(f"The uploaded dataset {name} of your last experiment is no longer kept" in w.value
               for w in again.warning)
