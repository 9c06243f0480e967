import math
import threading
import time

import pytest
import torch

from bigmodel_core.config.presets import load_preset, preset_names
from bigmodel_core.config.specs import parse_config
from bigmodel_core.data import DATASET_NAMES, dataset_info
from bigmodel_core.training.trainer import (
    BatchEnd,
    Callback,
    Control,
    EpochEnd,
    RunEnd,
    Trainer,
    build_optimizer,
    resolve_device,
)


def small(cfg, **changes):
    base = {"training.device": "cpu"}
    base.update(changes)
    return cfg.with_changes(base)


def two_batches(cfg):
    """Train exactly two batches (one epoch of 2 batches) and return the events."""
    bs = cfg.training.batch_size
    cfg = small(cfg, **{"data.train_size": 2 * bs, "data.val_size": 32, "training.epochs": 1})
    return cfg, list(Trainer(cfg).run())


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_trains_two_batches(name):
    cfg, events = two_batches(load_preset(name))
    batches = [e for e in events if isinstance(e, BatchEnd)]
    assert len(batches) == 2 and all(math.isfinite(b.loss) for b in batches)
    end = events[-1]
    assert isinstance(end, RunEnd) and end.status == "completed"


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_every_dataset_trains_two_batches(name):
    info = dataset_info(name)
    model = {"family": "cnn", "conv": [{"channels": 4}], "dense": []} if info.kind == "image" else \
        {"family": "gru", "hidden": 8}
    cfg = parse_config({"data": {"name": name, "train_size": 64, "val_size": 32}, "model": model,
                        "training": {"batch_size": 32, "epochs": 1, "device": "cpu"}})
    events = list(Trainer(cfg).run())
    assert [type(e) for e in events] == [BatchEnd, BatchEnd, EpochEnd, RunEnd]
    ep = events[2]
    assert math.isfinite(ep.train_loss) and math.isfinite(ep.val_loss)


def tiny_cnn(**changes):
    cfg = parse_config({"data": {"name": "synthetic_digits", "train_size": 256, "val_size": 128},
                        "model": {"family": "cnn", "conv": [{"channels": 4, "dropout": 0.2}],
                                  "dense": [{"units": 16, "dropout": 0.2}]},
                        "training": {"epochs": 2, "batch_size": 32, "device": "cpu"}})
    return cfg.with_changes(changes) if changes else cfg


def test_same_config_and_seed_give_identical_metrics():
    cfg = tiny_cnn(**{"data.augment": True, "regularization.l2": 1e-4})
    a = Trainer(cfg).fit().history
    b = Trainer(cfg).fit().history
    assert [(e.train_loss, e.val_loss, e.val_metric) for e in a] == \
        [(e.train_loss, e.val_loss, e.val_metric) for e in b]
    c = Trainer(cfg.with_changes({"seed": 1})).fit().history
    assert c[-1].train_loss != a[-1].train_loss


def test_identical_metrics_while_another_training_runs_in_parallel():
    cfg = tiny_cnn()
    ref = Trainer(cfg).fit().history
    results = {}

    def work(key, c):
        results[key] = Trainer(c).fit().history

    threads = [threading.Thread(target=work, args=(i, cfg if i == 0 else cfg.with_changes({"seed": 7})))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [e.val_loss for e in results[0]] == [e.val_loss for e in ref]


def test_train_loss_is_per_sample_mean_and_validation_in_eval_mode():
    cfg = tiny_cnn(**{"training.epochs": 1, "data.train_size": 100, "training.batch_size": 64})
    tr = Trainer(cfg)
    events = list(tr.run())
    batches = [e for e in events if isinstance(e, BatchEnd)]
    epoch = next(e for e in events if isinstance(e, EpochEnd))
    # batches of 64 and 36: the epoch loss weights each sample equally
    expected = (batches[0].loss * 64 + batches[1].loss * 36) / 100
    assert epoch.train_loss == pytest.approx(expected, rel=1e-5)
    # validation recomputed by hand in eval mode (dropout off) matches
    tr.model.eval()
    with torch.no_grad():
        out = tr.model(tr.x_val)
        loss = torch.nn.functional.cross_entropy(out, tr.y_val).item()
    assert epoch.val_loss == pytest.approx(loss, rel=1e-4)


def test_stop_from_another_thread_within_one_batch():
    cfg = tiny_cnn(**{"training.epochs": 50, "data.train_size": 2000})
    control = Control()
    tr = Trainer(cfg, control=control)
    seen = []
    for ev in tr.run():
        seen.append(ev)
        if isinstance(ev, BatchEnd) and ev.step == 3:
            threading.Thread(target=control.stop).start()
            time.sleep(0.05)
    batches = [e for e in seen if isinstance(e, BatchEnd)]
    assert seen[-1].status == "stopped"
    assert len(batches) <= 4


def test_pause_and_resume_from_another_thread():
    cfg = tiny_cnn(**{"training.epochs": 1})
    control = Control()
    tr = Trainer(cfg, control=control)
    gen = tr.run()
    first = next(gen)
    assert isinstance(first, BatchEnd)
    control.pause()
    got = []
    t = threading.Thread(target=lambda: got.append(next(gen)))
    t.start()
    time.sleep(0.3)
    assert not got, "a paused run must not advance"
    control.resume()
    t.join(5)
    assert got and isinstance(got[0], BatchEnd) and got[0].step == 2
    rest = list(gen)
    assert rest[-1].status == "completed"


def test_sgd_lr_10_diverges_with_hint():
    cfg = small(load_preset("quickstart_cnn"), **{"optimizer.name": "sgd", "optimizer.lr": 10.0,
                                                   "training.epochs": 3, "data.train_size": 512})
    end = list(Trainer(cfg).run())[-1]
    assert end.status == "diverged"
    assert "learning rate" in end.message and "lower" in end.message


def test_early_stopping_restores_best_weights():
    # a learning rate that helps first and then wrecks validation loss
    cfg = tiny_cnn(**{"training.epochs": 12, "optimizer.name": "sgd", "optimizer.lr": 0.9,
                      "regularization.early_stopping": {"patience": 1, "restore_best": True}})
    tr = Trainer(cfg)
    result = tr.fit()
    hist = result.history
    assert result.status == "completed"
    best = min(hist, key=lambda e: e.val_loss)
    assert result.best_epoch == best.epoch
    assert len(hist) <= best.epoch + 1
    val_loss, _ = tr.evaluate()
    assert val_loss == pytest.approx(best.val_loss, rel=1e-5)
    assert tr.summary()["final"]["val_loss"] == pytest.approx(best.val_loss)


def test_every_optimizer_and_schedule_steps():
    for name in ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]:
        for schedule in ["constant", "step", "cosine"]:
            cfg = tiny_cnn(**{"optimizer.name": name, "optimizer.lr": 0.01, "optimizer.schedule": schedule,
                              "training.epochs": 2, "data.train_size": 64, "optimizer.weight_decay": 0.01})
            events = list(Trainer(cfg).run())
            assert events[-1].status == "completed", (name, schedule)


def test_weight_decay_skips_biases_and_momentum_defaults():
    cfg = tiny_cnn(**{"optimizer.name": "nesterov", "optimizer.weight_decay": 0.1})
    tr = Trainer(cfg)
    groups = tr.optimizer.param_groups
    assert {g["weight_decay"] for g in groups} == {0.1, 0.0}
    assert all(p.dim() >= 2 for g in groups if g["weight_decay"] for p in g["params"])
    assert groups[0]["momentum"] == 0.9 and groups[0]["nesterov"]


def test_cosine_schedule_reaches_zero_and_step_decays():
    cfg = tiny_cnn(**{"optimizer.schedule": "cosine", "training.epochs": 2})
    lrs = [e.lr for e in Trainer(cfg).run() if isinstance(e, BatchEnd)]
    assert lrs[0] == pytest.approx(cfg.optimizer.lr) and lrs[-1] < lrs[0] * 0.05
    cfg = tiny_cnn(**{"optimizer.schedule": "step", "optimizer.step_size": 1, "optimizer.gamma": 0.5})
    eps = [e.lr for e in Trainer(cfg).run() if isinstance(e, EpochEnd)]
    assert eps == pytest.approx([cfg.optimizer.lr, cfg.optimizer.lr * 0.5])


def test_l1_l2_penalties_change_training_but_not_reported_loss_definition():
    base = tiny_cnn(**{"training.epochs": 1})
    a = Trainer(base).fit().history[-1]
    b = Trainer(base.with_changes({"regularization.l1": 1e-3})).fit().history[-1]
    assert a.train_loss != b.train_loss


def test_grad_clip_and_label_smoothing_run():
    cfg = tiny_cnn(**{"regularization.grad_clip": 0.5, "regularization.label_smoothing": 0.1})
    assert Trainer(cfg).fit().status == "completed"


def test_device_auto_resolves_and_unavailable_cuda_is_explained():
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_frozen_everything_is_explained():
    cfg = tiny_cnn()
    tr = Trainer(cfg)
    for p in tr.model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="frozen"):
        build_optimizer(cfg.optimizer, tr.model)


# --- the callback protocol and the rules that each step applies ---------------------------------------
class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_run_start(self, trainer):
        self.calls.append(("run_start",))

    def on_train_mode(self, trainer):
        self.calls.append(("train_mode", trainer.model.training))

    def on_batch(self, trainer, xb, yb):
        self.calls.append(("batch", len(xb), trainer.model.training))

    def after_backward(self, trainer, step):
        has_grads = all(p.grad is not None for p in trainer.model.parameters())
        self.calls.append(("backward", step, has_grads))

    def on_validation(self, trainer, outputs):
        self.calls.append(("validation", tuple(outputs.shape)))

    def on_epoch_end(self, trainer, event):
        self.calls.append(("epoch", event.epoch))

    def on_run_end(self, trainer, event):
        self.calls.append(("run_end", event.status))


def test_callbacks_are_called_at_their_named_points_in_order():
    cfg = tiny_cnn(**{"training.epochs": 2, "data.train_size": 64, "data.val_size": 20, "training.batch_size": 32})
    rec = Recorder()
    trainer = Trainer(cfg, callbacks=[rec])
    assert trainer.callback(Recorder) is rec and trainer.callback(Callback) is rec
    trainer.fit()
    epoch = [("batch", 32, True), ("backward", None, True), ("batch", 32, True), ("backward", None, True),
             ("validation", (20, 10)), ("train_mode", True)]
    got = [c if c[0] != "backward" else ("backward", None, c[2]) for c in rec.calls]
    assert got == [("run_start",), ("train_mode", True), *epoch, ("epoch", 1), *epoch, ("epoch", 2),
                   ("run_end", "completed")]
    assert [c[1] for c in rec.calls if c[0] == "backward"] == [1, 2, 3, 4]


def test_gradient_clipping_really_clips_the_global_norm():
    clip = 0.05
    cfg = tiny_cnn(**{"regularization.grad_clip": clip, "training.epochs": 1, "optimizer.lr": 0.01})
    before, after = [], []

    class Norm(Callback):
        def after_backward(self, trainer, step):
            before.append(torch.nn.utils.get_total_norm([p.grad for p in trainer.model.parameters()]).item())

    trainer = Trainer(cfg, callbacks=[Norm()])
    trainer.optimizer.register_step_pre_hook(lambda opt, args, kwargs: after.append(
        torch.nn.utils.get_total_norm([p.grad for g in opt.param_groups for p in g["params"]]).item()))
    assert trainer.fit().status == "completed"
    assert len(before) == len(after) > 1
    assert max(before) > clip  # the clip had something to do ...
    assert all(a <= clip * (1 + 1e-5) for a in after)  # ... and the optimizer only saw clipped gradients
    assert all(a == pytest.approx(min(b, clip), rel=1e-4) for a, b in zip(after, before))


def test_l2_adds_exactly_lambda_times_the_sum_of_squared_weights():
    lam = 1e-3
    cfg = tiny_cnn(**{"regularization.l2": lam})
    trainer = Trainer(cfg)
    weights = [p for p in trainer.model.parameters() if p.dim() >= 2]
    expected = lam * sum(float(p.detach().double().pow(2).sum()) for p in weights)
    assert trainer.penalty().item() == pytest.approx(expected, rel=1e-5)
    # biases are not penalised
    biases = [p for p in trainer.model.parameters() if p.dim() < 2]
    assert biases and all(not any(p is w for w in weights) for p in biases)
    l1 = Trainer(tiny_cnn(**{"regularization.l1": lam}))
    assert l1.penalty().item() == pytest.approx(lam * sum(float(p.detach().double().abs().sum())
                                                           for p in l1.model.parameters() if p.dim() >= 2), rel=1e-5)


TORCH_OPTIMIZERS = {
    "sgd": lambda ps, lr: torch.optim.SGD(ps, lr=lr),
    "momentum": lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9),
    "nesterov": lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True),
    "adagrad": lambda ps, lr: torch.optim.Adagrad(ps, lr=lr),
    "rmsprop": lambda ps, lr: torch.optim.RMSprop(ps, lr=lr),
    "adam": lambda ps, lr: torch.optim.Adam(ps, lr=lr),
    "adamw": lambda ps, lr: torch.optim.AdamW(ps, lr=lr, weight_decay=0.0),
}


@pytest.mark.parametrize("name", list(TORCH_OPTIMIZERS))
def test_each_optimizer_first_step_equals_torch_optim(name):
    cfg = tiny_cnn(**{"optimizer.name": name, "optimizer.lr": 0.01, "training.epochs": 1,
                      "data.train_size": 32, "training.batch_size": 32})
    trainer = Trainer(cfg)
    start = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    grads = {}

    class Grab(Callback):
        def after_backward(self, trainer, step):
            if step == 1:
                grads.update({k: p.grad.detach().clone() for k, p in trainer.model.named_parameters()})

    trainer.add_callback(Grab())
    trainer.fit()
    # the same gradients through torch.optim's own rule, from the same starting point
    ref = {k: torch.nn.Parameter(v.clone()) for k, v in start.items()}
    for k, p in ref.items():
        p.grad = grads[k].clone()
    TORCH_OPTIMIZERS[name](list(ref.values()), 0.01).step()
    for k, p in trainer.model.named_parameters():
        assert torch.allclose(p.detach(), ref[k].detach(), rtol=1e-6, atol=1e-7), (name, k)
        assert not torch.equal(p.detach(), start[k]), (name, k)
