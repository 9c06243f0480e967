"""A plain PyTorch training loop over an experiment config, as the exported scripts run it.

``config`` is the experiment config as a plain dict (``ExperimentConfig.to_dict()``: the
JSON the playground stores). ``train`` builds the optimizer, the per-run generators and
the schedule from it exactly as the playground's Trainer does, so on CPU it gives the
same per-epoch metrics; the tests check that directly. ``command_line`` wraps it in the
small command line every exported script has.

Each epoch reports two kinds of training numbers: the running mean over the epoch's batches, as
trained (dropout on, augmented batches, label smoothing in the loss), and the clean value, in
eval mode on the training set itself (at most ``TRAIN_EVAL_MAX`` samples of it, drawn once from
the seed), with the plain loss. Gaps between training and validation use the clean value.

Self-contained (stdlib and torch only, and the memory-format helpers beside it): the exported
training scripts copy this module.
"""

import argparse
import copy
import json
import math
import time

import torch
import torch.nn.functional as F

from .memory_format import channels_last_wanted, memory_format_name, model_to_channels_last, to_channels_last

# A batch loss this many times the first one counts as diverged even if still finite: with
# ReLUs a blown-up network can die and report a deceptively ordinary loss afterwards.
EXPLODED = 1e4


def pick_device(name):
    """"auto" picks a CUDA GPU, then Apple MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


# Adam and AdamW update each parameter tensor in one fused kernel on a CPU or a CUDA GPU, where
# torch's default runs a loop of about ten small operations per tensor on a CPU: the same rule,
# equal within float rounding, and on quickstart_cnn about 0.3 ms less per step (of about 6).
FUSED_OPTIMIZERS = ("adam", "adamw")


def fused_wanted(name, params, fused=None):
    """Whether optimizer ``name`` steps ``params`` with torch's fused kernel (``fused`` overrides)."""
    if fused is not None:
        return fused
    return name in FUSED_OPTIMIZERS and all(p.device.type in ("cpu", "cuda") for p in params)


def make_optimizer(model, settings):
    """The optimizer named in the config's "optimizer" settings, and the weights L1/L2 apply to.

    Weights (2-D and up) get weight decay and the L1/L2 penalty; biases and norm scales do not.
    Adam and AdamW use the fused kernel where the engine does (``fused_wanted``).
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": settings["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    name, lr = settings["name"], settings["lr"]
    momentum = settings["momentum"]
    if momentum is None:  # the default: 0.9 for the momentum methods, none otherwise
        momentum = 0.9 if name in ("momentum", "nesterov") else 0.0
    if name in ("sgd", "momentum", "nesterov"):
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=0.0 if name == "sgd" else momentum,
                                    nesterov=name == "nesterov")
    elif name == "adagrad":
        optimizer = torch.optim.Adagrad(groups, lr=lr)
    elif name == "rmsprop":
        optimizer = torch.optim.RMSprop(groups, lr=lr, momentum=momentum)
    elif name in ("adam", "adamw"):
        fused = fused_wanted(name, [p for g in groups for p in g["params"]])
        optimizer = (torch.optim.Adam if name == "adam" else torch.optim.AdamW)(groups, lr=lr, fused=fused)
    else:
        raise ValueError(f"unknown optimizer {name!r}")
    return optimizer, decay


def lr_factor(settings, epoch, step, total_steps, epochs):
    """The schedule's multiplier of the learning rate at a 0-based epoch and step."""
    if settings["schedule"] == "step":  # multiply by gamma every step_size epochs
        size = settings["step_size"] or max(1, epochs // 3)
        return settings["gamma"] ** (epoch // size)
    if settings["schedule"] == "cosine":  # from the full rate down to 0 over the run, every batch
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))
    return 1.0


def loss_fn(out, y, classification, label_smoothing=0.0):
    """Cross-entropy for classes, mean squared error for numbers."""
    if classification:
        return F.cross_entropy(out, y, label_smoothing=label_smoothing)
    return F.mse_loss(out, y)


def metric_sum(out, y, classification):
    """Over the batch: the number of correct predictions, or the sum of absolute errors."""
    if classification:
        return (out.argmax(1) == y).sum()
    return (out - y).abs().sum()


def metric_part(out, classification):
    """What the epoch's running train metric keeps of one batch's outputs: the predicted classes, or
    the outputs themselves. It is summed once at the end of the epoch (:func:`running_metric`), not
    batch by batch: on a CPU each small operation per batch costs a few percent of a small network's
    training time."""
    out = out.detach()
    return out.argmax(1) if classification else out


def running_metric(parts, targets, classification):
    """The epoch's running train metric from its batches' :func:`metric_part` and targets: the
    number correct or the sum of absolute errors (divided by the samples seen, it is the mean)."""
    if not parts:
        return 0.0
    predicted, y = torch.cat(parts), torch.cat(targets)
    return ((predicted == y).sum() if classification else (predicted - y).abs().sum()).item()


def penalty(weights, l1, l2):
    """l1 * sum|w| + l2 * sum(w^2) over the weights, or None when both are 0."""
    if l1 == 0 and l2 == 0:
        return None
    total = torch.zeros((), device=weights[0].device if weights else None)
    for p in weights:
        if l1:
            total = total + l1 * p.abs().sum()
        if l2:
            total = total + l2 * p.pow(2).sum()
    return total


# Evaluation runs in chunks of this many samples: a bigger chunk is hardly faster on a CPU, and
# the activations of 1,000 digits at once cost a server about 100 MB more at its peak (measured);
# 256 of 28 x 28 images through quickstart_cnn still cost 17 MB more than 128, for the same speed.
EVAL_CHUNK = 128


# The clean train metric (eval mode, on the training set) is measured on at most this many
# training samples: on a bigger set, this many drawn once from the seed, the same every epoch. An
# eval pass over them costs about as much as the validation pass over 1,000 held-out samples.
TRAIN_EVAL_MAX = 1000


def train_eval_indices(n, seed, limit=TRAIN_EVAL_MAX):
    """Which of ``n`` training samples the clean train metric is measured on: None (all of them)
    when ``n <= limit``, else ``limit`` of them drawn from the seed, in their order in the set."""
    if n <= limit:
        return None
    gen = torch.Generator().manual_seed(seed * 4)  # its own generator: the other draws stay as they were
    return torch.randperm(n, generator=gen)[:limit].sort().values


def loss_read_every(device):
    """How many batch losses are read to the host at once: each batch on a CPU, where reading is
    free; in groups on a GPU, where each read (``.item()``) waits for all queued work to finish."""
    return 1 if torch.device(device).type == "cpu" else 16


@torch.no_grad()
def evaluate(model, x, y, classification, chunk=EVAL_CHUNK):
    """Mean loss (no label smoothing, no penalty) and metric on held-out data, in eval mode."""
    was_training = model.training
    model.eval()
    loss_total = torch.zeros((), device=x.device)
    metric_total = torch.zeros((), device=x.device)
    for i in range(0, len(x), chunk):
        out, yb = model(x[i:i + chunk]), y[i:i + chunk]
        loss_total += loss_fn(out, yb, classification) * len(yb)
        metric_total += metric_sum(out, yb, classification)
    model.train(was_training)
    n = max(1, len(x))
    return loss_total.item() / n, metric_total.item() / n


def train(config, data, make_model, device, classification, augment=None, log=print, channels_last=None):
    """Train ``make_model()`` on ``data`` = (x_train, y_train, x_val, y_val) as ``config`` says.

    Returns (model, history, summary): one dict per epoch, and the summary the playground
    stores. ``augment(xb, generator)`` is applied to every training batch when given and the
    config turns augmentation on. ``channels_last`` (True/False) overrides the memory-format
    rule (``channels_last_wanted``).
    """
    seed = config["seed"]
    settings, reg = config["optimizer"], config["regularization"]
    epochs, batch_size = config["training"]["epochs"], config["training"]["batch_size"]
    early = reg["early_stopping"]
    augment = augment if config["data"]["augment"] else None
    metric = "acc" if classification else "mae"

    # the whole (small) dataset goes to the device once
    x_train, y_train, x_val, y_val = (t.to(device) for t in data)
    torch.manual_seed(seed)  # the initial weights depend only on the seed
    model = make_model().to(device)
    log(model)
    log(f"{sum(p.numel() for p in model.parameters()):,} parameters")
    # the model and the data change memory format once here, never per batch (see memory_format)
    channels_last = channels_last_wanted(model, device, channels_last)
    if channels_last:
        model = model_to_channels_last(model)
        x_train, x_val = to_channels_last(x_train), to_channels_last(x_val)
    # the clean train metric's samples (all of a small training set), without augmentation
    clean = train_eval_indices(len(x_train), seed)
    if clean is None:
        x_clean, y_clean = x_train, y_train
    else:
        clean = clean.to(device)
        x_clean, y_clean = x_train[clean], y_train[clean]
    optimizer, decay = make_optimizer(model, settings)

    # every random draw comes from its own seeded generator, so the run is reproducible
    shuffle_gen = torch.Generator().manual_seed(seed * 4 + 1)
    augment_gen = torch.Generator().manual_seed(seed * 4 + 2)
    dropout_gen = torch.Generator(device=device).manual_seed(seed * 4 + 3)
    for m in model.modules():
        if hasattr(m, "generator"):  # SeededDropout layers draw their masks from it
            m.generator = dropout_gen

    n = len(x_train)
    batches = math.ceil(n / batch_size)
    total_steps = epochs * batches
    best_val, since_best, best_state = math.inf, 0, None
    history, best_epoch, status, step, first_loss = [], None, "completed", 0, None
    read_every, pending = loss_read_every(device), []
    t_start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        t_epoch = time.perf_counter()
        perm = torch.randperm(n, generator=shuffle_gen).to(device)
        # the running train loss adds up the losses read to the host (each batch's times its size);
        # the running metric keeps each batch's predictions and sums them at the end of the epoch
        loss_total, parts, targets = 0.0, [], []
        seen = 0
        for g in optimizer.param_groups:
            g["lr"] = settings["lr"] * lr_factor(settings, epoch, step, total_steps, epochs)
        for b in range(batches):
            if settings["schedule"] == "cosine":
                for g in optimizer.param_groups:
                    g["lr"] = settings["lr"] * lr_factor(settings, epoch, step, total_steps, epochs)
            idx = perm[b * batch_size:(b + 1) * batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if augment is not None:
                xb = augment(xb, augment_gen)
                if channels_last:  # a new batch each step: the only per-batch conversion
                    xb = to_channels_last(xb)
            out = model(xb)
            loss = loss_fn(out, yb, classification, reg["label_smoothing"])
            extra = penalty(decay, reg["l1"], reg["l2"])
            objective = loss if extra is None else loss + extra
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            if reg["grad_clip"] is not None:
                # clipping the global gradient norm keeps one exploding step from throwing the weights away
                torch.nn.utils.clip_grad_norm_(model.parameters(), reg["grad_clip"])
            optimizer.step()
            step += 1
            pending.append((loss.detach(), len(idx)))
            if len(pending) >= read_every or b == batches - 1:
                # one read for the group (each batch on a CPU): the divergence check needs the values
                losses = [t for t, _ in pending]
                values = torch.stack(losses).tolist() if len(losses) > 1 else [losses[0].item()]
                for loss_value, (_, k) in zip(values, pending):
                    first_loss = first_loss or max(loss_value, 1e-3)
                    if not math.isfinite(loss_value) or loss_value > EXPLODED * first_loss:
                        status = "diverged"
                        log(f"the loss became {loss_value} in epoch {epoch + 1}: lower the learning rate")
                        break
                    loss_total += loss_value * k
                pending = []
                if status != "completed":
                    break
            parts.append(metric_part(out, classification))
            targets.append(yb)
            seen += len(idx)
        if status != "completed":
            break
        train_eval_loss, train_eval_metric = evaluate(model, x_clean, y_clean, classification)
        val_loss, val_metric = evaluate(model, x_val, y_val, classification)
        if not math.isfinite(val_loss):
            status = "diverged"
            log(f"the validation loss became {val_loss} after epoch {epoch + 1}: lower the learning rate")
            break
        row = {"epoch": epoch + 1, "train_loss": loss_total / seen,
               f"train_{metric}": running_metric(parts, targets, classification) / seen,
               "train_eval_loss": train_eval_loss,
               f"train_eval_{metric}": train_eval_metric, "val_loss": val_loss, f"val_{metric}": val_metric,
               "lr": optimizer.param_groups[-1]["lr"], "seconds": time.perf_counter() - t_epoch}
        history.append(row)
        log(f"epoch {epoch + 1}/{epochs}: train loss {row['train_loss']:.4f} {metric} {row[f'train_{metric}']:.4f} "
            f"(running, as trained), train in eval mode loss {train_eval_loss:.4f} {metric} {train_eval_metric:.4f}, "
            f"val loss {val_loss:.4f} {metric} {val_metric:.4f} ({row['seconds']:.1f}s)")
        if val_loss < best_val:
            best_val, best_epoch, since_best = val_loss, epoch + 1, 0
            if early is not None and early["restore_best"]:
                best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
        if early is not None and since_best >= early["patience"]:
            log(f"early stopping: no improvement for {early['patience']} epochs (best epoch {best_epoch})")
            break

    final = history[-1] if history else None
    if best_state is not None and status == "completed":
        model.load_state_dict(best_state)  # restore the weights of the best epoch
        final = history[best_epoch - 1]
    metric_key = "val_accuracy" if classification else "val_mae"
    summary = {
        "status": status,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "final": {"train_loss": final["train_loss"], "val_loss": final["val_loss"],
                  metric_key: final[f"val_{metric}"], "train_eval_loss": final["train_eval_loss"],
                  "train_eval_metric": final[f"train_eval_{metric}"]} if final else None,
        "params": sum(p.numel() for p in model.parameters()),
        "device": str(device),
        "threads": torch.get_num_threads(),  # the same seed repeats its metrics at the same thread count
        "memory_format": memory_format_name(channels_last),
        "wall_seconds": round(time.perf_counter() - t_start, 3),
    }
    return model, history, summary


def command_line(argv, config, load_data, make_model, classification, augment=None, description=None,
                 fonts=False):
    """Parse the script's options (defaults from ``config``), load the data, train, print the summary.

    ``load_data(train_size, val_size, seed)`` (plus ``fonts_dir`` when ``fonts``) returns
    (x_train, y_train, x_val, y_val).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=config["training"]["epochs"])
    parser.add_argument("--train-size", type=int, default=config["data"]["train_size"])
    parser.add_argument("--val-size", type=int, default=config["data"]["val_size"])
    parser.add_argument("--batch-size", type=int, default=config["training"]["batch_size"])
    parser.add_argument("--lr", type=float, default=config["optimizer"]["lr"])
    parser.add_argument("--seed", type=int, default=config["seed"])
    parser.add_argument("--device", default=config["training"]["device"], help="auto, cpu, cuda or mps")
    if fonts:
        parser.add_argument("--fonts-dir", help="folder with the DejaVu fonts the images are rendered from")
    parser.add_argument("--save", help="write the trained weights (state_dict) to this file")
    args = parser.parse_args(argv)
    for name in ("epochs", "train_size", "val_size", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    config = copy.deepcopy(config)
    config["seed"] = args.seed
    config["data"].update(train_size=args.train_size, val_size=args.val_size)
    config["training"].update(epochs=args.epochs, batch_size=args.batch_size, device=args.device)
    config["optimizer"]["lr"] = args.lr
    try:
        data = load_data(args.train_size, args.val_size, args.seed, *([args.fonts_dir] if fonts else []))
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"error: {exc}") from None
    model, history, summary = train(config, data, make_model, pick_device(args.device), classification, augment)
    if args.save:
        torch.save(model.state_dict(), args.save)
    print(json.dumps(summary))  # the last line: the same summary the playground stores
    return summary
