"""Fine-tuning: shipped assets match their cards, freeze strategies, label budgets, safe uploads, CLI."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import pytest
import torch

from bigmodel_core import cli
from bigmodel_core.config.specs import parse_config
from bigmodel_core.data import build_dataset
from bigmodel_core.experiments.finetune import (
    PRETRAINED_DIR,
    RECIPES,
    FinetuneError,
    FinetuneTrainer,
    Plan,
    Source,
    Strategy,
    UploadError,
    accept_upload,
    budget_indices,
    cpu_fingerprint,
    layer_table,
    load_card,
    load_pretrained,
    maps_before_after,
    pretrain,
    read_safetensors,
    sha256_bytes,
    suggested_target,
)
from bigmodel_core.limits import current_limits
from bigmodel_core.nn.models import build_model
from bigmodel_core.training.store import save_weights_bytes
from bigmodel_core.training.trainer import BatchEnd, Callback

CNN = {"family": "cnn", "conv": [{"channels": 4, "batchnorm": True}, {"channels": 8, "batchnorm": True}],
       "dense": [{"units": 16}]}


def tiny(name="synthetic_digits", model=None, **changes):
    cfg = parse_config({"seed": 0, "data": {"name": name, "train_size": 200, "val_size": 64},
                        "model": model or CNN, "optimizer": {"name": "adam", "lr": 0.01},
                        "training": {"epochs": 2, "batch_size": 32, "device": "cpu"}})
    return cfg.with_changes(changes) if changes else cfg


def source_for(cfg, name="synthetic_letters", seed=3):
    """Weights of the same architecture for another task (26 letters), with non-trivial BatchNorm stats."""
    info = build_dataset(name, train_size=8, val_size=8, seed=0).info
    state = build_model(cfg.model, info, seed=seed).state_dict()
    gen = torch.Generator().manual_seed(seed)
    for k, v in state.items():
        if k.endswith("running_mean"):
            v.copy_(0.1 * torch.randn(v.shape, generator=gen))
        elif k.endswith("running_var"):
            v.copy_(0.5 + torch.rand(v.shape, generator=gen))
    return Source("test", state, "0" * 64)


def plan(strategy, k=5, **kw):
    return Plan.make(strategy, k, epoch_samples=64, **kw)


# --- shipped assets ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(RECIPES))
def test_shipped_asset_matches_its_card(name):
    card = load_card(name)
    data = (PRETRAINED_DIR / f"{name}.safetensors").read_bytes()
    assert sha256_bytes(data) == card["sha256"] and len(data) == card["bytes"]
    assert card["command"] == f"python -m bigmodel_core pretrain {name}"
    for key in ("config", "trained_on", "metrics", "suggested_target"):
        assert card[key]
    src = load_pretrained(name)
    assert {k: list(v.shape) for k, v in src.state.items()} == card["tensors"]
    target = suggested_target(name)
    assert target.model == parse_config(card["config"]).model  # same architecture, another dataset
    assert target.data.name != card["config"]["data"]["name"] or target.data.seq_len != card["config"]["data"][
        "seq_len"]


def test_assets_are_small():
    total = sum(p.stat().st_size for p in PRETRAINED_DIR.iterdir())
    assert total < 5_000_000


def test_changed_asset_is_refused(tmp_path):
    for f in PRETRAINED_DIR.glob("adding_lstm.*"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    data = bytearray((tmp_path / "adding_lstm.safetensors").read_bytes())
    data[-1] ^= 1
    (tmp_path / "adding_lstm.safetensors").write_bytes(bytes(data))
    with pytest.raises(FinetuneError, match="does not match its card"):
        load_pretrained("adding_lstm", tmp_path)


def test_pretrain_reproduces_the_shipped_recipe(tmp_path):
    # the smallest asset; its first epoch is checked against what the card recorded for it
    # (bench/bench_finetune.py --reproduce checks every full recipe)
    shipped = load_card("adding_lstm")
    card = pretrain("adding_lstm", tmp_path / "a", epochs=1)
    assert card["made_on"] == cpu_fingerprint()
    made_here = sha256_bytes((tmp_path / "a" / "adding_lstm.safetensors").read_bytes())
    assert made_here == card["epoch_sha256"][0]
    if shipped.get("made_on") == card["made_on"]:
        # the same kind of processor: the very same bytes
        assert card["epoch_sha256"][0] == shipped["epoch_sha256"][0]
    else:
        # another processor rounds differently in its float kernels: the command still gives the
        # same bytes every time here, and the card's measured metrics to the digits it records
        again = pretrain("adding_lstm", tmp_path / "b", epochs=1)
        assert again["epoch_sha256"][0] == made_here
        for key, value in shipped["metrics"]["history"][0].items():
            assert card["metrics"]["history"][0][key] == pytest.approx(value, abs=2e-6), key


# --- strategies ----------------------------------------------------------------------------------

def test_strategy_parsing():
    assert str(Strategy.parse("last:2")) == "last:2" and Strategy.parse("HEAD").kind == "head"
    for bad in ("last:0", "last", "tail", "last:x"):
        with pytest.raises(FinetuneError, match="head, last:N"):
            Strategy.parse(bad)


def test_head_only_training_leaves_every_backbone_tensor_bit_identical():
    cfg = tiny()
    src = source_for(cfg)
    t = FinetuneTrainer(cfg, plan("head", 5), src)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    # BatchNorm buffers included: frozen blocks stay in eval mode, so running stats do not move
    assert any("running_mean" in k for k in before)
    t.fit()
    assert t.result.status == "completed"
    after = t.model.state_dict()
    for k, v in before.items():
        if k.startswith("classifier."):
            assert not torch.equal(v, after[k]), k
        else:
            assert torch.equal(v, after[k]), k
            assert torch.equal(after[k], src.state[k]), k
    assert t.summary()["finetune"]["trainable_params"] == sum(p.numel() for p in t.model.classifier.parameters())


def test_frozen_blocks_stay_in_eval_mode_and_trained_ones_follow_train():
    cfg = tiny()
    t = FinetuneTrainer(cfg, plan("last:1", 5), source_for(cfg))
    modes = []

    class Modes(Callback):  # what the model is in when each training batch reaches it
        def on_batch(self, trainer, xb, yb):
            m = trainer.model
            modes.append((m.blocks[0].training, m.blocks[1].training, m.head.training))

    t.add_callback(Modes())
    t.fit()
    assert t.result.status == "completed"
    assert len(modes) > 1 and set(modes) == {(False, False, True)}
    rows = layer_table(t.model, "last:1")
    assert [r.trainable for r in rows] == [False, False, True, True]
    assert rows[0].batchnorm.startswith("eval")


def test_last_n_trains_exactly_the_last_blocks():
    cfg = tiny()
    src = source_for(cfg)
    t = FinetuneTrainer(cfg, plan("last:2", 5), src)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.fit()
    after = t.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("blocks.0."))
    assert not torch.equal(before["blocks.1.conv.weight"], after["blocks.1.conv.weight"])
    with pytest.raises(FinetuneError, match="only 3 backbone blocks"):
        FinetuneTrainer(cfg, plan("last:4", 5), src)


def test_discriminative_learning_rates_reach_the_optimizer():
    cfg = tiny()
    t = FinetuneTrainer(cfg, plan("full", 5, backbone_lr_scale=0.1), source_for(cfg))
    lrs = {}
    for g in t.optimizer.param_groups:
        lrs.setdefault(g["name"], set()).add(round(g["lr"], 12))
    assert lrs == {"backbone": {0.001}, "new head": {0.01}}
    n_backbone = sum(p.numel() for g in t.optimizer.param_groups if g["name"] == "backbone" for p in g["params"])
    assert n_backbone == sum(p.numel() for n, p in t.model.named_parameters() if not n.startswith("classifier."))
    events = list(t.run())  # the schedule scales both groups, keeping the ratio
    assert events[-1].status == "completed"
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.001)


def test_strategies_share_the_new_head_init_and_the_data_order():
    cfg = tiny()
    src = source_for(cfg)
    a = FinetuneTrainer(cfg, plan("head", 5), src)
    b = FinetuneTrainer(cfg, plan("scratch", 5))
    assert torch.equal(a.model.classifier.weight, b.model.classifier.weight)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    steps = [[ev.step for ev in t.run() if isinstance(ev, BatchEnd)] for t in (a, b)]
    assert steps[0] == steps[1] and len(steps[0]) == 2 * 4  # 50 labels repeated to 100 a epoch, batch 32


def test_budget_indices_are_per_class_nested_and_repeated():
    ds = build_dataset("synthetic_digits", train_size=200, val_size=32, seed=0)
    idx = budget_indices(ds, 3, seed=1, epoch_samples=100)
    uniq = torch.unique(idx)
    assert len(uniq) == 30 and len(idx) == 30 * 4
    assert torch.bincount(ds.y_train[uniq], minlength=10).tolist() == [3] * 10
    bigger = torch.unique(budget_indices(ds, 5, seed=1, epoch_samples=1))
    assert set(uniq.tolist()) <= set(bigger.tolist())
    assert budget_indices(ds, None, seed=0, epoch_samples=10) is None
    with pytest.raises(FinetuneError, match="per class"):
        budget_indices(ds, 500, seed=0)
    seq = build_dataset("adding_problem", train_size=100, val_size=16, seed=0, seq_len=10)
    assert len(torch.unique(budget_indices(seq, 7, seed=0, epoch_samples=1))) == 7


def test_rnn_last_n_and_hidden_states_before_and_after():
    model_spec = {"family": "lstm", "hidden": 8, "layers": 2, "dense": [{"units": 8}]}
    cfg = tiny("adding_problem", model_spec, **{"data.seq_len": 12})
    src_info = build_dataset("adding_problem", train_size=8, val_size=8, seed=0, seq_len=6).info
    src = Source("test", build_model(cfg.model, src_info, seed=3).state_dict(), "0" * 64)
    t = FinetuneTrainer(cfg, plan("last:2", 20), src)
    t.fit()
    assert torch.equal(t.model.rnn[0].weight_hh_l0, src.state["rnn.0.weight_hh_l0"])
    assert not torch.equal(t.model.rnn[1].weight_hh_l0, src.state["rnn.1.weight_hh_l0"])
    pairs = maps_before_after(cfg, t.info, t.start_state, t.model.state_dict(), t.dataset.x_val[0])
    assert [p.layer for p in pairs] == ["lstm layer 1", "lstm layer 2"]
    assert pairs[0].before.shape == (12, 8) and pairs[0].max_change == 0 and pairs[1].max_change > 0


def test_head_only_feature_maps_do_not_change():
    cfg = tiny()
    t = FinetuneTrainer(cfg, plan("head", 2), source_for(cfg))
    t.fit()
    pairs = maps_before_after(cfg, t.info, t.start_state, t.model.state_dict(), t.dataset.x_val[0])
    assert [p.layer for p in pairs] == ["conv block 1", "conv block 2"]
    assert pairs[1].before.shape == (8, 14, 14) and all(p.max_change == 0 for p in pairs)
    full = FinetuneTrainer(cfg, plan("full", 2), source_for(cfg))
    full.fit()
    pairs = maps_before_after(cfg, full.info, full.start_state, full.model.state_dict(), full.dataset.x_val[0])
    assert all(p.max_change > 0 for p in pairs)


# --- bad weights ---------------------------------------------------------------------------------

def good_bytes():
    return save_weights_bytes(load_pretrained("letters_cnn").state)


def bad_uploads():
    good = good_bytes()
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)  # a real .pt (zip with a pickle inside); never loaded here
    return {
        "pickle": ("weights.safetensors", pickle.dumps({"w": [1, 2, 3]}), "pickle"),
        "pt": ("model.pt", buf.getvalue(), "pickle-based extension"),
        "pth renamed": ("model.safetensors", buf.getvalue(), "zip archive"),
        "truncated": ("w.safetensors", good[: len(good) // 2], "outside the file|truncated"),
        "corrupted header": ("w.safetensors", good[:8] + b"#" + good[9:], "not a JSON object|unreadable"),
        "garbage": ("w.safetensors", b"hello world, not weights", "not a valid safetensors"),
        "empty": ("w.safetensors", b"", "too short"),
        "trailing bytes": ("w.safetensors", good + b"\0" * 16, "after its last tensor"),
    }


@pytest.mark.parametrize("case", list(bad_uploads()))
def test_bad_files_are_refused_with_a_reason(case):
    name, data, message = bad_uploads()[case]
    with pytest.raises(UploadError, match=message):
        read_safetensors(data, name)


def test_pickle_payload_never_runs(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for name in ("x.safetensors", "x.pt", "x.bin"):
        with pytest.raises(UploadError):
            read_safetensors(pickle.dumps(Evil()), name)
    assert not marker.exists()


def test_oversized_upload_is_refused_before_parsing(monkeypatch):
    monkeypatch.setenv("BIGMODEL_MAX_UPLOAD_BYTES", "1000")
    assert current_limits().max_upload_bytes == 1000
    with pytest.raises(UploadError, match="upload limit is 1,000 bytes"):
        read_safetensors(good_bytes(), "w.safetensors")


def test_weights_for_another_architecture_name_the_first_mismatch():
    cfg = tiny()
    wide = cfg.with_changes({"model.conv.1.channels": 12})
    info = build_dataset("synthetic_digits", train_size=8, val_size=8, seed=0).info
    state = build_model(wide.model, info, seed=0).state_dict()
    src = Source("upload", state, "0" * 64)
    with pytest.raises(UploadError, match=r"'blocks.1.conv.weight' has shape 12x4x3x3; this model needs 8x4x3x3"):
        FinetuneTrainer(cfg, plan("head", 5), src)
    lstm = {k: v for k, v in build_model(parse_config({"data": {"name": "adding_problem"},
                                                       "model": {"family": "lstm", "hidden": 4}}).model,
                                         build_dataset("adding_problem", train_size=8, val_size=8, seed=0).info
                                         ).state_dict().items()}
    with pytest.raises(UploadError, match="'blocks.0.conv.weight' .* is missing"):
        FinetuneTrainer(cfg, plan("head", 5), Source("upload", lstm, "0" * 64))
    extra = dict(build_model(cfg.model, info, seed=0).state_dict(), bogus=torch.zeros(1))
    with pytest.raises(UploadError, match="'bogus' that this model does not have"):
        FinetuneTrainer(cfg, plan("head", 5), Source("upload", extra, "0" * 64))


def test_accept_upload_checks_against_the_chosen_architecture():
    data = (PRETRAINED_DIR / "letters_cnn.safetensors").read_bytes()
    src = accept_upload(data, "mine.safetensors", suggested_target("letters_cnn"))
    assert src.label == "mine.safetensors (upload)" and src.sha256 == load_card("letters_cnn")["sha256"]
    with pytest.raises(UploadError, match="'blocks.0.conv.weight' has shape 16x1x3x3; this model needs 4x1x3x3"):
        accept_upload(data, "mine.safetensors", tiny())
    with pytest.raises(UploadError, match="'rnn.0.weight_ih_l0' .* is missing"):
        accept_upload(data, "mine.safetensors", suggested_target("adding_lstm"))


def test_classifier_of_another_size_is_accepted_and_replaced():
    cfg = tiny()
    src = source_for(cfg)  # 26-way letters classifier for a 10-way digits target
    assert src.state["classifier.weight"].shape[0] == 26
    t = FinetuneTrainer(cfg, plan("head", 2), src)
    assert t.model.classifier.weight.shape == (10, 16)


# --- CLI -----------------------------------------------------------------------------------------

def cli_run(*argv):
    return cli.main([str(a) for a in argv])


def test_cli_finetune_writes_model_and_card(tmp_path, capsys):
    cfg_file = tmp_path / "target.json"
    cfg = suggested_target("letters_cnn").with_changes(
        {"data.train_size": 200, "data.val_size": 64, "training.epochs": 1, "training.device": "cpu"})
    cfg_file.write_text(cfg.to_json())
    out = tmp_path / "out"
    rc = cli_run("finetune", cfg_file, "--pretrained", "letters_cnn", "--strategy", "head",
                 "--labels-per-class", 2, "--out", out)
    assert rc == 0
    card = json.loads((out / "card.json").read_text())
    assert card["strategy"] == "head" and card["labels_per_class"] == 2
    assert card["pretrained"]["source"] == "letters_cnn"
    assert card["sha256"] == sha256_bytes((out / "model.safetensors").read_bytes())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finetune"]["labelled_examples"] == 20
    # the fine-tuned weights load back as an upload for the same architecture
    state = read_safetensors((out / "model.safetensors").read_bytes(), "model.safetensors")
    assert state["classifier.weight"].shape == (10, 64)


@pytest.mark.parametrize("case", ["pickle", "pt", "truncated", "oversized", "other architecture"])
def test_cli_refuses_bad_weights_and_leaves_nothing(tmp_path, capsys, monkeypatch, case):
    cfg_file = tmp_path / "target.json"
    cfg_file.write_text(tiny().to_json())
    if case == "oversized":
        monkeypatch.setenv("BIGMODEL_MAX_UPLOAD_BYTES", "100")
        name, data = "w.safetensors", good_bytes()
    elif case == "other architecture":
        name, data = "w.safetensors", good_bytes()  # a 16/32-channel CNN for a 4/8-channel config
    else:
        name, data, _ = bad_uploads()[case]
    weights = tmp_path / name
    weights.write_bytes(data)
    out = tmp_path / "out"
    rc = cli_run("finetune", cfg_file, "--pretrained", weights, "--strategy", "head", "--out", out)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "Traceback" not in err
    assert not out.exists()


def test_cli_bad_strategy_and_budget(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli_run("finetune", "letters_cnn", "--pretrained", "letters_cnn", "--strategy", "tail", "--out", out) == 2
    assert "unknown strategy 'tail'" in capsys.readouterr().err
    assert cli_run("finetune", "letters_cnn", "--pretrained", "letters_cnn", "--labels-per-class", "x",
                   "--out", out) == 2
    assert "whole number or 'all'" in capsys.readouterr().err
    assert cli_run("finetune", "letters_cnn", "--strategy", "full", "--out", out) == 2
    assert "needs --pretrained" in capsys.readouterr().err
    assert not out.exists()


def test_cli_pretrain_is_registered():
    parser = cli.build_parser()
    args = parser.parse_args(["pretrain", "adding_lstm", "--epochs", "1"])
    assert args.name == "adding_lstm"


def test_zip_upload_sniffing_only_reads_bytes(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(1))
    with pytest.raises(UploadError, match="zip archive"):
        read_safetensors(buf.getvalue(), "upload.safetensors")
