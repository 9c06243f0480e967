"""The shipped pretrained models: how each is made (its recipe), its card, and loading it checked.

Pretrained assets live in ``assets/pretrained/``: ``NAME.safetensors`` plus ``NAME.json``
(the card: config, training data, metrics, sha256, reproduce command, suggested target).
``RECIPES`` says how each one is made; :func:`pretrain` remakes it bit for bit on CPU (fixed
seed, fixed torch thread count). :func:`load_pretrained` checks the sha256 first.
"""

from __future__ import annotations

import contextlib
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from bigmodel_core.config.presets import ASSETS
from bigmodel_core.config.specs import ExperimentConfig, parse_config
from bigmodel_core.nn.models import build_model
from bigmodel_core.training.store import atomic_write_bytes, atomic_write_text, history_rows, save_weights_bytes
from bigmodel_core.training.trainer import EpochEnd, Trainer

from .base import FinetuneError, config_info
from .weights import Source, check_weights, read_safetensors, sha256_bytes

PRETRAINED_DIR = ASSETS / "pretrained"

# Pretraining pins torch's intra-op threads: CPU convolution backward splits its reductions by
# thread count (1, 2 and 3 threads give three different CNNs), and the shipped weights must not
# depend on the machine's cores. One thread also never stalls on a busy shared machine.
PRETRAIN_THREADS = 1


_CNN = {"family": "cnn",
        "conv": [{"channels": 16, "kernel": 3, "padding": "same", "activation": "relu", "batchnorm": True,
                  "pool": "max"},
                 {"channels": 32, "kernel": 3, "padding": "same", "activation": "relu", "batchnorm": True,
                  "pool": "max"}],
        "dense": [{"units": 64, "activation": "relu"}]}
_LSTM = {"family": "lstm", "hidden": 32, "layers": 1, "dense": [{"units": 32, "activation": "relu"}]}


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    description: str
    config: dict[str, Any]  # the pretraining ExperimentConfig (device cpu: the bit-identical claim is CPU's)
    target: dict[str, Any]  # the suggested target ExperimentConfig (same model, another dataset)
    target_title: str
    lesson: str  # what a learner should see on the target, and why
    strategy: str = "head"
    labels_per_class: int = 5


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe(
        name="letters_cnn",
        title="CNN pretrained on printed capital letters",
        description="Two conv blocks (16 and 32 channels, BatchNorm, max pool) and a dense layer of 64, "
                    "trained on 15,000 synthetic_letters (A-Z).",
        config={"seed": 0, "data": {"name": "synthetic_letters", "train_size": 15000, "val_size": 2000},
                "model": _CNN, "optimizer": {"name": "adam", "lr": 0.002},
                "training": {"epochs": 6, "batch_size": 64, "device": "cpu"}},
        target={"seed": 0, "data": {"name": "synthetic_digits", "train_size": 2000, "val_size": 1000},
                "model": _CNN, "optimizer": {"name": "adam", "lr": 0.003},
                "training": {"epochs": 8, "batch_size": 32, "device": "auto"}},
        target_title="New classes, same domain: printed digits 0-9 with a few labels",
        lesson="Letters and digits are drawn with the same fonts, strokes and noise, so edge and stroke "
               "detectors learned on 26 letters also separate 10 digits. With 5 labelled digits per "
               "class a new linear head on the frozen letter features beats the same network trained "
               "from scratch by a wide margin; the gap closes as labels grow.",
    ),
    Recipe(
        name="digits_cnn",
        title="CNN pretrained on printed digits",
        description="The same CNN as letters_cnn, trained on 15,000 synthetic_digits (printed 0-9 from fonts).",
        config={"seed": 0, "data": {"name": "synthetic_digits", "train_size": 15000, "val_size": 2000},
                "model": _CNN, "optimizer": {"name": "adam", "lr": 0.002},
                "training": {"epochs": 6, "batch_size": 64, "device": "cpu"}},
        target={"seed": 0, "data": {"name": "handwritten_digits", "image_size": 28, "train_size": 1297,
                                    "val_size": 500},
                "model": _CNN, "optimizer": {"name": "adam", "lr": 0.003},
                "training": {"epochs": 8, "batch_size": 32, "device": "auto"}},
        target_title="Domain shift: printed digits to real handwritten digits",
        lesson="Same ten classes, different look: the real digits are 8x8 scans blown up to 28x28 (blurry, "
               "thick, no noise) while the pretrained features were tuned to sharp printed strokes. The "
               "real digits are also easy: a small network learns them from scratch with few labels, so "
               "transfer helps less here, and can lose. That is a result too: pretraining pays off when the "
               "source looks like the target and the target is hard to learn alone.",
    ),
    Recipe(
        name="adding_lstm",
        title="LSTM pretrained on the adding problem (50 steps)",
        description="One LSTM layer of 32 units and a dense layer of 32, trained on 8,000 adding-problem "
                    "sequences of 50 steps: remember the two marked numbers and output their sum.",
        config={"seed": 0, "data": {"name": "adding_problem", "train_size": 8000, "val_size": 1000, "seq_len": 50},
                "model": _LSTM, "optimizer": {"name": "adam", "lr": 0.003},
                "regularization": {"grad_clip": 1.0},
                "training": {"epochs": 12, "batch_size": 64, "device": "cpu"}},
        target={"seed": 0, "data": {"name": "adding_problem", "train_size": 2000, "val_size": 500, "seq_len": 100},
                "model": _LSTM, "optimizer": {"name": "adam", "lr": 0.003},
                "regularization": {"grad_clip": 1.0},
                "training": {"epochs": 8, "batch_size": 32, "device": "auto"}},
        target_title="Related task: the adding problem with sequences twice as long (100 steps)",
        lesson="An LSTM from scratch sits on the plateau of the adding problem (always answering about 1.0, "
               "mean absolute error about 0.33) until it has seen thousands of examples. The pretrained LSTM "
               "already knows how to store a marked number in its cell and keep it: with a few dozen labelled "
               "sequences a new linear head reads the sum off its final state.",
        labels_per_class=50,
    ),
)}


def pretrained_names() -> list[str]:
    return list(RECIPES)


def find_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise FinetuneError(f"unknown pretrained model {name!r}; choose one of: {', '.join(RECIPES)}")
    return RECIPES[name]


def weights_path(name: str, root: Path = PRETRAINED_DIR) -> Path:
    return Path(root) / f"{find_recipe(name).name}.safetensors"


def card_path(name: str, root: Path = PRETRAINED_DIR) -> Path:
    return Path(root) / f"{find_recipe(name).name}.json"


def load_card(name: str, root: Path = PRETRAINED_DIR) -> dict[str, Any]:
    path = card_path(name, root)
    if not path.is_file():
        raise FinetuneError(f"the card {path} is missing; recreate it with: python -m bigmodel_core pretrain {name}")
    return json.loads(path.read_text())


def suggested_target(name: str) -> ExperimentConfig:
    return parse_config(find_recipe(name).target)


def load_pretrained(name: str, root: Path = PRETRAINED_DIR) -> Source:
    """The shipped weights of ``name``, after checking their sha256 against the card."""
    card = load_card(name, root)
    path = weights_path(name, root)
    if not path.is_file():
        raise FinetuneError(f"{path} is missing; recreate it with: python -m bigmodel_core pretrain {name}")
    data = path.read_bytes()
    digest = sha256_bytes(data)
    if digest != card.get("sha256"):
        raise FinetuneError(f"{path.name} does not match its card: sha256 {digest[:12]}... but the card says "
                            f"{str(card.get('sha256'))[:12]}...; the file was changed or damaged. Recreate it "
                            f"with: python -m bigmodel_core pretrain {name}")
    state = read_safetensors(data, path.name, limit=None)
    cfg = parse_config(card["config"])
    check_weights(build_model(cfg.model, config_info(cfg)), state, keep_classifier=True)
    return Source(label=name, state=state, sha256=digest, card=card)


def cpu_fingerprint() -> dict[str, str]:
    """The processor and kernel set that made a file: float kernels (BLAS, oneDNN) differ between
    processors, so "the same command gives the same bytes" holds on the same kind of CPU only."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux: the platform's own name for the processor
        pass
    return {"cpu": model or platform.processor() or platform.machine(),
            "capability": str(torch.backends.cpu.get_cpu_capability()),
            "torch": torch.__version__.split("+")[0]}


@contextlib.contextmanager
def fixed_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pretrain(name: str, out_dir: Path | str = PRETRAINED_DIR, epochs: int | None = None,
             on_event: Any = None) -> dict[str, Any]:
    """Train recipe ``name`` on CPU with a fixed seed and thread count; write weights + card.

    ``epochs`` shortens the recipe (for quick reproduction checks): the first epochs of a
    constant-rate recipe are bit-identical to the full run's, and the card records the sha256
    of the weights after each epoch so a short run can be checked against it.
    """
    recipe = find_recipe(name)
    cfg = parse_config(recipe.config)
    if epochs is not None:
        if not 1 <= epochs <= cfg.training.epochs:
            raise FinetuneError(f"--epochs for {name} must be 1 to {cfg.training.epochs}, got {epochs}")
        cfg = cfg.with_changes({"training.epochs": epochs})
    epoch_hashes: list[str] = []
    with fixed_threads(PRETRAIN_THREADS):
        # the shipped weights were made with torch's default (unfused) Adam step, which this keeps,
        # so the command still gives their bytes; learners' trainings use the fused step
        trainer = Trainer(cfg, fused_optimizer=False)
        for ev in trainer.run():
            if isinstance(ev, EpochEnd):
                epoch_hashes.append(sha256_bytes(save_weights_bytes(trainer.model.state_dict())))
            if on_event is not None:
                on_event(ev)
    if trainer.result.status != "completed":
        raise FinetuneError(f"pretraining {name} did not complete: {trainer.result.status} {trainer.result.message}")
    weights = save_weights_bytes(trainer.model.state_dict())
    summary = trainer.summary()
    info = trainer.info
    target = parse_config(recipe.target)
    card = {
        "name": name,
        "title": recipe.title,
        "description": recipe.description,
        "config": cfg.to_dict(),
        "trained_on": {"dataset": cfg.data.name, "train_size": cfg.data.train_size, "val_size": cfg.data.val_size,
                       "seq_len": cfg.data.seq_len, "classes": list(info.class_names), "seed": cfg.seed},
        "metrics": {**summary["final"], "epochs": summary["epochs_run"],
                    "history": history_rows_for_card(trainer)},
        "params": summary["params"],
        "tensors": {k: list(v.shape) for k, v in trainer.model.state_dict().items()},
        "sha256": sha256_bytes(weights),
        "bytes": len(weights),
        "epoch_sha256": epoch_hashes,
        "command": f"python -m bigmodel_core pretrain {name}",
        "reproducibility": (f"CPU, torch {torch.__version__.split('+')[0]}, {PRETRAIN_THREADS} intra-op thread, "
                            f"seed {cfg.seed}: the same command on the same kind of processor gives the same "
                            "bytes (another processor's float kernels round differently: the metrics agree, "
                            "the last bits of the weights may not)"),
        "made_on": cpu_fingerprint(),
        "suggested_target": {"title": recipe.target_title, "config": target.to_dict(),
                             "strategy": recipe.strategy, "labels_per_class": recipe.labels_per_class,
                             "lesson": recipe.lesson},
    }
    out = Path(out_dir)
    atomic_write_bytes(out / f"{name}.safetensors", weights)
    atomic_write_text(out / f"{name}.json", json.dumps(card, indent=2) + "\n")
    for suffix in (".safetensors", ".json"):
        (out / f"{name}{suffix}").chmod(0o644)  # assets are for everyone to read (mkstemp makes 0600)
    return card


def history_rows_for_card(trainer: Trainer) -> list[dict[str, float]]:
    keep = ("epoch", "train_loss", "val_loss", "train_metric", "val_metric")
    return [{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items() if k in keep}
            for row in history_rows(trainer.result.history)]
