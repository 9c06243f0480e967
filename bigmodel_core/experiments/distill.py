"""Knowledge distillation (Hinton, Vinyals and Dean, 2015): a student learns from a teacher's softened outputs.

The teacher is a shipped pretrained model (``digits_cnn``, ...) or any finished run folder
(``config.json`` + ``model.safetensors``) whose classes and input size are the student's (the
same dataset, or one of the same shape and classes; :func:`teacher_problem` names what differs
otherwise). Each
training batch goes through the frozen teacher (eval mode, no gradients) and the student
minimises

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

The T^2 factor keeps the soft term's gradients at the scale of the hard one as T changes
(the soft targets' gradients shrink as 1/T^2). ``alpha = 0`` is plain training on the labels.
Validation is the student's own, unchanged: the same loss and accuracy as any run. The train
loss curve of a distilled run is this objective, and says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bigmodel_core.config.specs import ConfigError, ExperimentConfig, parse_config
from bigmodel_core.data import Dataset, DatasetError, DatasetInfo, dataset_info
from bigmodel_core.nn.models import build_model, count_params
from bigmodel_core.training.jobs import Job
from bigmodel_core.training.runner import run_and_save
from bigmodel_core.training.trainer import Callback, Trainer

from . import finetune as ft

DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.7
MAX_TEMPERATURE = 100.0


class DistillError(ValueError):
    """A teacher that cannot teach this student, or settings out of range; says which and why."""


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """``alpha * T^2 * KL(p_teacher,T || p_student,T) + (1 - alpha) * CE(student, targets)``, batch means."""
    t = float(temperature)
    soft = F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1),
                    reduction="batchmean", log_target=True) * (t * t)
    hard = F.cross_entropy(student, targets)
    return alpha * soft + (1.0 - alpha) * hard


def check_settings(temperature: float, alpha: float) -> None:
    if not (isinstance(temperature, (int, float)) and 0 < temperature <= MAX_TEMPERATURE):
        raise DistillError(f"temperature must be above 0 and at most {MAX_TEMPERATURE:g}, got {temperature!r}")
    if not (isinstance(alpha, (int, float)) and 0 <= alpha <= 1):
        raise DistillError(f"alpha (the weight of the teacher's soft targets) must be between 0 and 1, got {alpha!r}")


@dataclass(frozen=True)
class Teacher:
    """A trained model to learn from: its experiment, its weights and where they came from."""

    label: str  # "digits_cnn (shipped)" or "run 20261202-...-train-..."
    config: ExperimentConfig
    state: dict[str, torch.Tensor]
    sha256: str

    def describe(self) -> dict[str, Any]:
        return {"teacher": self.label, "sha256": self.sha256, "family": self.config.model.family,
                "dataset": self.config.data.name}


def load_teacher(arg: str | Path) -> Teacher:
    """A shipped pretrained name, or a run folder with config.json and model.safetensors."""
    text = str(arg)
    if text in ft.RECIPES:
        source = ft.load_pretrained(text)
        cfg = parse_config(source.card["config"])
        return Teacher(label=f"{text} (shipped)", config=cfg, state=source.state, sha256=source.sha256)
    folder = Path(text)
    if not folder.is_dir():
        raise DistillError(f"teacher {text!r} is neither a shipped model ({', '.join(ft.RECIPES)}) "
                           "nor a run folder")
    cfg_path, weights = folder / "config.json", folder / "model.safetensors"
    for p in (cfg_path, weights):
        if not p.is_file():
            raise DistillError(f"the teacher folder {folder} has no {p.name}: it is not a finished run")
    try:
        cfg = parse_config(cfg_path.read_bytes())
    except ConfigError as exc:
        raise DistillError(f"the teacher's config.json is not a valid experiment: {exc}") from None
    data = weights.read_bytes()
    state = ft.read_safetensors(data, weights.name, limit=None)
    return Teacher(label=f"run {folder.name}", config=cfg, state=state, sha256=hashlib.sha256(data).hexdigest())


def _info(cfg: ExperimentConfig) -> DatasetInfo:
    d = cfg.data
    return dataset_info(d.name, image_size=d.image_size, seq_len=d.seq_len)


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def teacher_problem(teacher: Teacher, student: ExperimentConfig, info: DatasetInfo | None = None) -> str | None:
    """Why ``teacher`` cannot teach ``student`` (None when it can): the task, the number of classes or
    the input size differ, each named with both values."""
    s_info = info if info is not None else _info(student)
    try:
        t_info = _info(teacher.config)
    except DatasetError as exc:  # an uploaded dataset this server no longer has
        return f"the teacher's dataset {teacher.config.data.name} is not available here: {exc}"
    t_name, s_name = teacher.config.data.name, student.data.name
    if s_info.task != "classification":
        return f"distillation needs a classification dataset; the student's data {s_name} is {s_info.task}"
    if t_info.task != "classification":
        return (f"the teacher {teacher.label} predicts numbers ({t_info.task} on {t_name}); distillation needs "
                "a teacher that outputs class probabilities")
    differs = []
    if t_info.num_outputs != s_info.num_outputs:
        differs.append(f"the number of classes differs ({t_info.num_outputs} against {s_info.num_outputs})")
    if t_info.input_shape != s_info.input_shape:
        differs.append(f"the input size differs ({_shape(t_info.input_shape)} against "
                       f"{_shape(s_info.input_shape)})")
    if not differs:
        return None
    return (f"the teacher {teacher.label} was trained on {t_name} ({t_info.num_outputs} classes, input "
            f"{_shape(t_info.input_shape)}); the student's data {s_name} has {s_info.num_outputs} classes, input "
            f"{_shape(s_info.input_shape)}: {' and '.join(differs)}")


def teacher_network(teacher: Teacher, info: DatasetInfo, student: ExperimentConfig) -> nn.Module:
    """The teacher's network, frozen and in eval mode, after checking it fits the student's data."""
    problem = teacher_problem(teacher, student, info)
    if problem is not None:
        raise DistillError(problem)
    net = build_model(teacher.config.model, _info(teacher.config))
    ft.check_weights(net, teacher.state, keep_classifier=True)
    net.load_state_dict(teacher.state)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class _TeacherOutputs(Callback):
    """Runs each training batch through the teacher, for the loss of the same batch."""

    def __init__(self, teacher: nn.Module):
        self.teacher = teacher
        self.logits: torch.Tensor | None = None

    def on_batch(self, trainer: Trainer, xb: torch.Tensor, yb: torch.Tensor) -> None:
        with torch.no_grad():
            self.logits = self.teacher(xb)


class DistillTrainer(Trainer):
    """A Trainer whose training loss is the distillation objective; everything else is the plain
    Trainer's (data order, student init, validation, early stopping), so a distilled student and
    the same student trained alone differ only in what they learn from."""

    def __init__(self, config: ExperimentConfig, teacher: Teacher, *, temperature: float = DEFAULT_TEMPERATURE,
                 alpha: float = DEFAULT_ALPHA, dataset: Dataset | None = None, **kwargs: Any):
        check_settings(temperature, alpha)
        super().__init__(config, dataset=dataset, **kwargs)
        self.teacher = teacher
        self.temperature, self.alpha = float(temperature), float(alpha)
        net = teacher_network(teacher, self.info, config).to(self.device)
        self.teacher_params = count_params(net)
        self._outputs = self.add_callback(_TeacherOutputs(net))
        self.teacher_val = self._teacher_val(net)

    @torch.no_grad()
    def _teacher_val(self, net: nn.Module) -> dict[str, float]:
        correct, loss = 0.0, 0.0
        for i in range(0, len(self.x_val), 256):
            out = net(self.x_val[i:i + 256])
            y = self.y_val[i:i + 256]
            loss += float(F.cross_entropy(out, y, reduction="sum"))
            correct += float((out.argmax(1) == y).sum())
        n = max(1, len(self.x_val))
        return {"val_loss": loss / n, "val_accuracy": correct / n}

    def loss_fn(self, out: torch.Tensor, y: torch.Tensor, smoothing: float | None = None) -> torch.Tensor:
        logits = self._outputs.logits
        if smoothing is None and self.model.training and logits is not None and logits.shape == out.shape:
            self._outputs.logits = None  # one batch's teacher outputs serve that batch only
            return distillation_loss(out, logits, y, self.temperature, self.alpha)
        return super().loss_fn(out, y, smoothing)

    def summary(self) -> dict[str, Any]:
        s = super().summary()
        s["distill"] = {**self.teacher.describe(), "temperature": self.temperature, "alpha": self.alpha,
                        "teacher_params": self.teacher_params, "student_params": self.params,
                        "teacher_final": self.teacher_val,
                        "train_loss_is": "the distillation objective (soft + hard terms), not the plain loss"}
        return s


def distill_and_save(config: ExperimentConfig, teacher: Teacher, out: Path, *, temperature: float,
                     alpha: float, on_event: Any = None) -> dict[str, Any]:
    """Distil ``teacher`` into ``config``'s student and write the usual run folder."""
    return run_and_save(DistillTrainer(config, teacher, temperature=temperature, alpha=alpha), out,
                        on_event=on_event)


def make_job(student: ExperimentConfig, teacher: Teacher, owner: str, *, temperature: float = DEFAULT_TEMPERATURE,
             alpha: float = DEFAULT_ALPHA, save: bool = True) -> Job:
    """A pool Job (kind "distill") that distils ``teacher`` into ``student``; stored as a run when it ends."""
    check_settings(temperature, alpha)

    def make_trainer(job: Job) -> Trainer:
        return DistillTrainer(student, teacher, temperature=temperature, alpha=alpha, control=job.control)

    label = f"distilled from {teacher.label.removesuffix(' (shipped)')} · T {temperature:g} · alpha {alpha:g}"
    return Job(student, owner, label=label[:120], kind="distill", make_trainer=make_trainer, save=save)


__all__ = ["DEFAULT_ALPHA", "DEFAULT_TEMPERATURE", "DistillError", "DistillTrainer", "Teacher",
           "check_settings", "distill_and_save", "distillation_loss", "load_teacher", "make_job", "teacher_network",
           "teacher_problem"]
