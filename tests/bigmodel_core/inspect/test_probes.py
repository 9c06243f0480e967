import math

import numpy as np
import pytest
import torch
from torch import nn

from bigmodel_core.config.specs import parse_config
from bigmodel_core.inspect import probes
from bigmodel_core.nn.models import build_model
from bigmodel_core.nn.shapes import infer_layers
from bigmodel_core.training.jobs import Job
from bigmodel_core.training.store import RunStore, history_rows
from bigmodel_core.training.trainer import EpochEnd, GradNormLog, Trainer, load_data


def cnn_cfg(conv=None, dense=None, **changes):
    conv = conv if conv is not None else [{"channels": 4, "dropout": 0.2}, {"channels": 6, "pool": "avg"}]
    cfg = parse_config({"data": {"name": "synthetic_digits", "train_size": 96, "val_size": 40},
                        "model": {"family": "cnn", "conv": conv,
                                  "dense": dense if dense is not None else [{"units": 8, "dropout": 0.3}]},
                        "training": {"epochs": 2, "batch_size": 32, "device": "cpu"}})
    return cfg.with_changes(changes) if changes else cfg


def seq_cfg(family="lstm", data="sine_wave", **model):
    spec = {"family": family, "hidden": 6, "layers": 1, **model}
    extra = {"seq_len": 12} if data in ("sine_wave", "adding_problem") else {}
    return parse_config({"data": {"name": data, "train_size": 64, "val_size": 40, **extra}, "model": spec,
                         "training": {"epochs": 1, "batch_size": 32, "device": "cpu"}})


# --- gates and states by the equations, against PyTorch ----------------------------------------------
@pytest.mark.parametrize("family", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recomputed_states_equal_pytorch(family, layers, bidirectional):
    torch.manual_seed(0)
    module = getattr(nn, family.upper())(3, 5, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    x = torch.randn(4, 9, 3)
    with torch.no_grad():
        out, states = probes.recompute_rnn(module, x)
        ref_out, ref_state = module(x)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    h_n = ref_state[0] if family == "lstm" else ref_state
    dirs = 2 if bidirectional else 1
    assert [(s.layer, s.direction) for s in states] == [(k, d) for k in range(layers)
                                                        for d in ["forward", "backward"][:dirs]]
    for j, s in enumerate(states):
        # the final state of each direction: forward ends at the last step, backward at the first
        last = s.h[:, -1] if s.direction == "forward" else s.h[:, 0]
        torch.testing.assert_close(last, h_n[j], atol=1e-5, rtol=0)
        if family == "lstm":
            c_last = s.c[:, -1] if s.direction == "forward" else s.c[:, 0]
            torch.testing.assert_close(c_last, ref_state[1][j], atol=1e-5, rtol=0)
            g = s.gates
            assert list(g) == ["input", "forget", "candidate", "output"]
            torch.testing.assert_close(s.h, g["output"] * torch.tanh(s.c), atol=1e-6, rtol=0)
        elif family == "gru":
            g = s.gates
            assert list(g) == ["reset", "update", "candidate"]
            prev = torch.cat([torch.zeros_like(s.h[:, :1]), s.h[:, :-1]], 1) if s.direction == "forward" else \
                torch.cat([s.h[:, 1:], torch.zeros_like(s.h[:, :1])], 1)
            # PyTorch's convention: h_t = (1 - z) * n + z * h_{t-1}
            torch.testing.assert_close(s.h, (1 - g["update"]) * g["candidate"] + g["update"] * prev,
                                       atol=1e-6, rtol=0)
        else:
            assert s.gates == {} and s.c is None
        for name, v in s.gates.items():
            lo = -1.0 if name == "candidate" else 0.0
            assert v.min() >= lo and v.max() <= 1.0


@pytest.mark.parametrize("family", ["lstm", "gru"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_model_states_reproduce_the_model_output(family, layers, bidirectional):
    cfg = seq_cfg(family, data="sequential_digits", layers=layers, bidirectional=bidirectional, dropout=0.2,
                  dense=[{"units": 5}])
    ds = load_data(cfg)
    model = build_model(cfg.model, ds.info, seed=0).eval()
    x = ds.x_val[:6]
    with torch.no_grad():
        out, states = probes.rnn_states(model, x)
        torch.testing.assert_close(out, model(x), atol=1e-5, rtol=0)
        seq = x
        for i, layer in enumerate(model.rnn):
            seq = layer(seq)[0]
            mine = [s.h for s in states if s.layer == i]
            torch.testing.assert_close(torch.cat(mine, 2), seq, atol=1e-5, rtol=0)


def test_hidden_state_gradient_at_the_last_step_matches_autograd_through_pytorch():
    cfg = seq_cfg("lstm", data="adding_problem")
    ds = load_data(cfg)
    model = build_model(cfg.model, ds.info, seed=1).eval()
    idx = torch.arange(8)
    grads = probes.hidden_state_gradients(probes.probe_copy(model), ds, idx)
    assert list(grads) == ["layer 1 forward"] and grads["layer 1 forward"].shape == (12,)
    # oracle: dL/dh_T through nn.LSTM's own final state
    out_seq, final = model.forward_sequence(ds.x_val[idx])
    final.retain_grad()
    # each sequence's own loss: summed, every h_T gets the gradient of its own sequence's loss only
    torch.nn.functional.mse_loss(model.classifier(model.head(final)), ds.y_val[idx], reduction="sum").backward()
    assert grads["layer 1 forward"][-1] == pytest.approx(float(final.grad.norm(dim=1).mean()), rel=1e-4)
    # so the value does not depend on how many sequences are averaged (1/N of it would)
    one = probes.hidden_state_gradients(probes.probe_copy(model), ds, idx[:1])
    assert one["layer 1 forward"][-1] == pytest.approx(float(final.grad[0].norm()), rel=1e-4)
    assert np.isfinite(grads["layer 1 forward"]).all()
    assert all(p.grad is None or p.grad.abs().sum() > 0 for p in model.parameters())


# --- CNN -------------------------------------------------------------------------------------------------
def test_feature_map_shapes_match_the_builders_inferred_shapes():
    cfg = cnn_cfg(conv=[{"channels": 3, "batchnorm": True}, {"channels": 5, "pool": "none", "activation": "tanh"},
                        {"channels": 4, "kernel": 5, "stride": 2, "padding": 1, "pool": "avg"}])
    ds = load_data(cfg)
    model = build_model(cfg.model, ds.info, seed=0)
    res = probes.probe_cnn(model, ds, index=5)
    rows = [r for r in infer_layers(cfg.model, ds.info) if r.kind in ("activation", "pool") and r.block != "model"
            and r.block.startswith("model.conv")]
    assert [fm.shape for fm in res.layers] == [r.out_shape for r in rows]
    assert [fm.stage for fm in res.layers] == ["activation", "pool", "activation", "activation", "pool"]
    assert [fm.maps.shape for fm in res.layers] == [r.out_shape for r in rows]
    assert res.filters.shape == (3, 1, 3, 3) and res.filter_count == 3
    assert res.probs.shape == (10,) and res.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert res.label == int(ds.y_val[5]) and res.index == 5
    # the hooks were on a copy and are gone; the model has none either
    assert all(not m._forward_hooks for m in model.modules())


def test_large_layers_are_capped_with_a_note():
    cfg = cnn_cfg(conv=[{"channels": 70}], dense=[])
    ds = load_data(cfg)
    res = probes.probe_cnn(build_model(cfg.model, ds.info, seed=0), ds)
    assert res.layers[0].shape[0] == 70 and res.layers[0].maps.shape[0] == probes.MAX_MAPS
    assert res.filters.shape[0] == probes.MAX_MAPS and res.filter_count == 70
    assert any("64 of 70" in n for n in res.notes)


def test_probes_that_do_not_apply_say_so_instead_of_failing():
    # no conv layer at all
    cfg = cnn_cfg(conv=[], dense=[{"units": 8}])
    ds = load_data(cfg)
    res = probes.compute_probes(build_model(cfg.model, ds.info, seed=0), ds, spec=cfg.model)
    assert res.cnn is None and any("no conv layers" in n for n in res.notes)
    assert res.confusion is not None
    # a regression sequence task: no feature maps, no confusion matrix
    cfg = seq_cfg("gru", data="sine_wave")
    ds = load_data(cfg)
    model = build_model(cfg.model, ds.info, seed=0)
    with pytest.raises(probes.ProbeError, match="feature maps need a CNN; this model is a GRU"):
        probes.feature_maps(model, ds.x_val[0])
    with pytest.raises(probes.ProbeError, match="confusion matrix needs a classification task"):
        probes.confusion(torch.zeros(40, 1), ds)
    res = probes.compute_probes(model, ds, spec=cfg.model)
    assert res.confusion is None and res.regression is not None and res.regression.total == 40
    assert res.sequence is not None and any("regression" in n for n in res.notes)
    with pytest.raises(probes.ProbeError, match="outside the validation split"):
        probes.compute_probes(model, ds, index=40)


# --- errors ----------------------------------------------------------------------------------------------
def test_confusion_matrix_sums_to_the_validation_size_and_lists_confident_mistakes():
    cfg = cnn_cfg()
    ds = load_data(cfg)
    model = build_model(cfg.model, ds.info, seed=0)
    out = probes.validation_outputs(model, ds)
    c = probes.confusion(out, ds)
    assert c.matrix.shape == (10, 10) and c.matrix.sum() == len(ds.y_val) == 40
    pred = out.argmax(1)
    for t, p in [(0, 0), (3, 5), (int(ds.y_val[0]), int(pred[0]))]:
        assert c.matrix[t, p] == int(((ds.y_val == t) & (pred == p)).sum())
    assert c.accuracy == pytest.approx(float((pred == ds.y_val).float().mean()))
    conf = [w.confidence for w in c.wrong]
    assert conf == sorted(conf, reverse=True) and len(c.wrong) == min(probes.MAX_WRONG, int((pred != ds.y_val).sum()))
    assert all(w.true != w.pred and w.true == int(ds.y_val[w.index]) for w in c.wrong)
    assert c.wrong[0].x.shape == (1, 28, 28)


def test_examples_per_class_gives_one_validation_index_of_each_class():
    ds = load_data(cnn_cfg())
    picks = probes.examples_per_class(ds, seed=3)
    assert picks and all(int(ds.y_val[i]) == k for k, i in picks.items())
    assert picks == probes.examples_per_class(ds, seed=3)
    assert probes.examples_per_class(load_data(seq_cfg())) == {}


# --- gradients and weights ---------------------------------------------------------------------------------
def test_grad_norm_log_records_per_layer_l2_norms():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model(torch.randn(5, 3)).pow(2).sum().backward()
    log = GradNormLog(max_points=4)
    log.record(1, model)
    want0 = math.sqrt(model[0].weight.grad.pow(2).sum() + model[0].bias.grad.pow(2).sum())
    assert log.norms["0"][0] == pytest.approx(want0, rel=1e-5) and set(log.norms) == {"0", "2"}
    for step in range(2, 8):
        log.record(step, model)
    assert len(log.steps) <= 4 and log.steps[0] == 1 and log.steps == sorted(log.steps)


def test_trainer_records_gradient_norms_only_when_asked():
    cfg = cnn_cfg(**{"training.epochs": 1})
    off = Trainer(cfg)
    off.fit()
    assert off.grad_norms.steps == [] and off.val_outputs is None
    on = Trainer(cfg, grad_every=2, keep_val_outputs=True)
    on.fit()
    assert on.grad_norms.steps == [1, 2] and set(on.grad_norms.norms) == {
        "blocks.0.conv", "blocks.1.conv", "head.0", "classifier"}
    assert on.val_outputs.shape == (40, 10)
    assert [e.val_loss for e in on.result.history] == [e.val_loss for e in off.result.history]


def test_weight_histograms_share_bins_between_start_and_now():
    cfg = cnn_cfg()
    ds = load_data(cfg)
    model = build_model(cfg.model, ds.info, seed=0)
    start = probes.weight_samples(model)
    with torch.no_grad():
        model.blocks[0].conv.weight.mul_(3)
    hists = probes.weight_histograms(model, start, probes.layer_labels(cfg.model, ds.info))
    first = hists[0]
    assert first.label == "1. conv 3x3, 4" and first.start.sum() == first.now.sum() == 4 * 9
    assert first.edges[0] <= model.blocks[0].conv.weight.min() and first.edges[-1] >= model.blocks[0].conv.weight.max()
    assert [h.module for h in hists] == ["blocks.0.conv", "blocks.1.conv", "head.0", "classifier"]


# --- the epoch hook, training untouched -----------------------------------------------------------------------
def _run_with_hook(cfg, hook=True, request=None):
    job = Job(cfg, owner="me", make_trainer=probes.make_trainer if hook else None)
    if request is not None:
        probes.request_index(job, request)
    trainer = probes.make_trainer(job) if hook else Trainer(cfg)
    for ev in trainer.run():
        if hook and isinstance(ev, EpochEnd):
            probes.epoch_hook(job, trainer, ev)
    return job, trainer


def test_probing_every_epoch_does_not_change_training():
    cfg = cnn_cfg(**{"training.epochs": 2})
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    job, probed = _run_with_hook(cfg)
    assert torch.equal(torch.get_rng_state(), rng_before)
    _, plain = _run_with_hook(cfg, hook=False)
    assert [(e.train_loss, e.val_loss) for e in probed.result.history] == \
        [(e.train_loss, e.val_loss) for e in plain.result.history]
    for (k, a), b in zip(probed.model.state_dict().items(), plain.model.state_dict().values()):
        assert torch.equal(a, b), k
    res = job.extras[probes.PROBES]
    assert res.epoch == 2 and res.cnn is not None and res.confusion.matrix.sum() == 40
    assert res.grad_steps[0] == 1 and all(len(v) == len(res.grad_steps) for v in res.grad_norms.values())
    assert all(h.start is not None for h in res.weights)


def test_a_probe_leaves_weights_mode_generators_and_grads_unchanged():
    cfg = seq_cfg("lstm", data="sequential_digits", layers=2, dropout=0.3)
    trainer = probes.attach(Trainer(cfg))
    trainer.fit()
    model = trainer.model
    model.train()
    model(trainer.x_train[:4]).sum().backward()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    gens = [trainer.shuffle_gen.get_state(), trainer.augment_gen.get_state(), model.between[0].generator.get_state()]
    rng = torch.get_rng_state()
    res = probes.compute_probes(model, trainer.dataset, spec=cfg.model, index=3, grad_log=trainer.grad_norms)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    after = [trainer.shuffle_gen.get_state(), trainer.augment_gen.get_state(), model.between[0].generator.get_state()]
    assert all(torch.equal(a, b) for a, b in zip(gens, after))
    assert torch.equal(torch.get_rng_state(), rng)
    seq = res.sequence
    assert [t.label for t in seq.traces] == ["layer 1 forward", "layer 2 forward"]
    assert seq.traces[0].hidden.shape == (8, 6) and seq.traces[0].cell.shape == (8, 6)
    assert seq.output.sum() == pytest.approx(1.0, abs=1e-5) and res.confusion.matrix.sum() == 40


def test_epoch_hook_follows_the_requested_input_and_attaches_late():
    cfg = cnn_cfg(**{"training.epochs": 2, "training.batch_size": 8})
    job = Job(cfg, owner="me")  # the pool's default factory: the hook attaches itself after epoch 1
    probes.request_index(job, 7)
    trainer = Trainer(cfg)
    for ev in trainer.run():
        if isinstance(ev, EpochEnd):
            probes.epoch_hook(job, trainer, ev)
            res = job.extras[probes.PROBES]
            assert res.index == 7 and res.cnn.index == 7 and res.epoch == ev.epoch
    assert res.grad_steps == [20]  # measured every 10 steps from the second epoch (steps 13-24) on
    assert any("second epoch" in n for n in res.notes)
    # the starting weights were rebuilt from the seed, exactly
    init = build_model(cfg.model, trainer.info, seed=cfg.seed)
    want = probes.weight_histograms(trainer.model, probes.weight_samples(init))
    assert all(np.array_equal(a.start, b.start) for a, b in zip(res.weights, want))


def test_probes_for_a_stored_run(tmp_path):
    cfg = seq_cfg("gru", data="adding_problem")
    trainer = Trainer(cfg)
    trainer.fit()
    store = RunStore(tmp_path)
    run_id = store.save(cfg, history_rows(trainer.result.history), trainer.summary(),
                        {k: v.clone() for k, v in trainer.model.state_dict().items()})
    res = probes.probes_for_run(store.load(run_id), index=2)
    assert res.sequence is not None and res.sequence.index == 2 and res.regression is not None
    assert set(res.sequence.traces[0].gates) == {"reset", "update", "candidate"}
    assert res.grad_steps == [] and any("store" in n for n in res.notes)


def test_tables_hold_the_numbers_behind_the_figures():
    cfg = seq_cfg("lstm", data="sequential_digits")
    ds = load_data(cfg)
    res = probes.compute_probes(build_model(cfg.model, ds.info, seed=0), ds, spec=cfg.model)
    tr = res.sequence.traces[0]
    df = probes.trace_frame(tr)
    assert len(df) == 8 * 6 and {"hidden", "cell", "input_gate", "forget_gate", "candidate", "output_gate"} <= set(df)
    assert probes.confusion_frame(res.confusion).to_numpy().sum() == 40
    assert len(probes.hidden_grads_frame(res.sequence.hidden_grads)) == 8
    assert len(probes.weights_frame(res.weights)) == len(res.weights) * probes.HIST_BINS
    cnn = probes.probe_cnn(build_model(cnn_cfg().model, load_data(cnn_cfg()).info, seed=0), load_data(cnn_cfg()))
    assert len(probes.maps_frame(cnn.layers[0].maps)) == 4 * 28 * 28
    assert len(probes.filters_frame(cnn.filters)) == 4 * 9


def test_the_hidden_gradient_probe_counts_the_sequences_it_really_averaged():
    cfg = parse_config({"data": {"name": "sine_wave", "seq_len": 12, "train_size": 64, "val_size": 10},
                        "model": {"family": "lstm", "hidden": 4}, "training": {"device": "cpu"}})
    ds = load_data(cfg)
    model = build_model(cfg.model, ds.info, seed=1)
    seq = probes.probe_sequence(model, ds, index=3)
    assert seq.hidden_grad_count == 10  # fewer than HIDDEN_GRAD_BATCH: the title must say 10, not 32
