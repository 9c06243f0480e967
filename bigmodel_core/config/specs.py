"""The experiment config: the one contract between UI, CLI, store and tests.

Every run is fully described by one :class:`ExperimentConfig`. It is built from JSON,
widgets or presets, validated here with messages that name the field and the allowed
values, and dumped back to JSON unchanged (round-trip).

This module holds the field models and the entry points that validate into them
(:func:`parse_config`, :func:`parse_config_here`). Dotted paths and :class:`ConfigError` are in
:mod:`.paths`, the wording of pydantic's errors in :mod:`.problems`, the device check in
:mod:`.devices`; the names callers use are re-exported here.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bigmodel_core.limits import current_limits
from bigmodel_core.safejson import JSONInputError, loads

from .devices import DEVICES, device_problem
from .paths import MAX_SHOWN_PROBLEMS, ConfigError, brief, get_path, set_path
from .problems import validation_problems

# the names callers import from here, wherever they are defined
__all__ = [
    "ACTIVATIONS", "DEVICES", "FAMILIES", "MAX_SHOWN_PROBLEMS", "OPTIMIZERS", "SCHEDULES", "CNNSpec", "ConfigError",
    "ConvBlock", "DataSpec", "DenseLayer", "EarlyStopping", "ExperimentConfig", "ModelSpec", "OptimizerSpec",
    "RNNSpec", "RegularizationSpec", "TrainingSpec", "device_problem", "get_path", "json_schema", "parse_config",
    "parse_config_here", "set_path",
]

Activation = Literal["relu", "leaky_relu", "gelu", "tanh", "sigmoid", "elu"]
ACTIVATIONS: tuple[str, ...] = Activation.__args__  # type: ignore[attr-defined]
OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
OPTIMIZERS: tuple[str, ...] = OptimizerName.__args__  # type: ignore[attr-defined]
ScheduleName = Literal["constant", "step", "cosine"]
SCHEDULES: tuple[str, ...] = ScheduleName.__args__  # type: ignore[attr-defined]
Family = Literal["cnn", "rnn", "lstm", "gru"]
FAMILIES: tuple[str, ...] = ("cnn", "rnn", "lstm", "gru")


class _Strict(BaseModel):
    # strict: a bool is not an int, "5" is not a number; allow_inf_nan: 1e999 (inf) and NaN are refused
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True,
                              allow_inf_nan=False)


def _finite(v: float) -> float:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


# The field checks that need the data registry import it when they first run: the registry loads
# torch (about 1 s), and the config's names and schema are used where nothing trains.
class DataSpec(_Strict):
    name: str = "synthetic_digits"
    train_size: int = Field(4000, ge=1)
    val_size: int = Field(1000, ge=1)
    augment: bool = False
    image_size: int | None = Field(None, description="handwritten_digits only: 8 (native) or 28")
    seq_len: int | None = Field(None, description="sine_wave and adding_problem only: steps")

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        # data loads torch: on first use
        from bigmodel_core.data import DATASET_NAMES, is_upload_name  # noqa: PLC0415

        if v not in DATASET_NAMES and not is_upload_name(v):  # upload-<16 hex>: a learner's own, checked below
            raise ValueError(f"unknown dataset {brief(v)}; choose one of: {', '.join(DATASET_NAMES)}")
        return v

    @field_validator("train_size")
    @classmethod
    def _train_cap(cls, v: int) -> int:
        cap = current_limits().max_train_size
        if v > cap:
            raise ValueError(f"{v} is above the limit of {cap} training samples")
        return v

    @field_validator("val_size")
    @classmethod
    def _val_cap(cls, v: int) -> int:
        cap = current_limits().max_val_size
        if v > cap:
            raise ValueError(f"{v} is above the limit of {cap} validation samples")
        return v

    @model_validator(mode="after")
    def _dataset_options(self) -> DataSpec:
        from bigmodel_core.data import DatasetError, dataset_info  # noqa: PLC0415 - data loads torch: on first use

        try:
            info = dataset_info(self.name, image_size=self.image_size, seq_len=self.seq_len)
        except DatasetError as exc:
            raise ValueError(str(exc)) from None
        if info.max_size is not None and self.train_size + self.val_size > info.max_size:
            raise ValueError(
                f"train_size {self.train_size} + val_size {self.val_size} is more than the "
                f"{info.max_size:,} samples {self.name} has"
            )
        if self.augment and info.kind != "image":
            raise ValueError(f"augment works on image datasets only; {self.name} is a sequence dataset")
        cap = current_limits().max_seq_len
        if info.kind == "sequence" and info.input_shape[0] > cap:
            raise ValueError(f"seq_len {info.input_shape[0]} is above the limit of {cap} steps")
        return self


class ConvBlock(_Strict):
    channels: int = Field(16, ge=1)
    kernel: int = Field(3, ge=1, le=15)
    stride: int = Field(1, ge=1, le=8)
    padding: Literal["same", "valid"] | Annotated[int, Field(ge=0, le=15)] = "same"
    activation: Activation = "relu"
    batchnorm: bool = False
    pool: Literal["max", "avg", "none"] = "max"
    pool_size: int = Field(2, ge=2, le=8)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    residual: bool = Field(False,
                           description="add the block's input to its conv output (a 1x1 conv when shapes differ)")

    @field_validator("channels")
    @classmethod
    def _cap(cls, v: int) -> int:
        cap = current_limits().max_channels
        if v > cap:
            raise ValueError(f"{v} channels is above the limit of {cap}")
        return v


class DenseLayer(_Strict):
    units: int = Field(64, ge=1)
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @field_validator("units")
    @classmethod
    def _cap(cls, v: int) -> int:
        cap = current_limits().max_units
        if v > cap:
            raise ValueError(f"{v} units is above the limit of {cap}")
        return v


class CNNSpec(_Strict):
    family: Literal["cnn"] = "cnn"
    conv: list[ConvBlock] = Field(default_factory=lambda: [ConvBlock()])
    dense: list[DenseLayer] = Field(default_factory=lambda: [DenseLayer()])

    @model_validator(mode="after")
    def _counts(self) -> CNNSpec:
        lim = current_limits()
        if len(self.conv) > lim.max_conv_blocks:
            raise ValueError(f"{len(self.conv)} conv blocks is above the limit of {lim.max_conv_blocks}")
        if len(self.dense) > lim.max_dense_layers:
            raise ValueError(f"{len(self.dense)} dense layers is above the limit of {lim.max_dense_layers}")
        return self


class RNNSpec(_Strict):
    family: Literal["rnn", "lstm", "gru"] = "lstm"
    hidden: int = Field(64, ge=1)
    layers: int = Field(1, ge=1)
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="between stacked layers")
    dense: list[DenseLayer] = Field(default_factory=list)

    @model_validator(mode="after")
    def _counts(self) -> RNNSpec:
        lim = current_limits()
        if self.hidden > lim.max_units:
            raise ValueError(f"hidden {self.hidden} is above the limit of {lim.max_units}")
        if self.layers > lim.max_rnn_layers:
            raise ValueError(f"{self.layers} layers is above the limit of {lim.max_rnn_layers}")
        if len(self.dense) > lim.max_dense_layers:
            raise ValueError(f"{len(self.dense)} dense layers is above the limit of {lim.max_dense_layers}")
        return self


ModelSpec = Annotated[Union[CNNSpec, RNNSpec], Field(discriminator="family")]
# each tag of the model union and its model, in the order messages list the families
_TAGGED: dict[str, type[BaseModel]] = {f: CNNSpec if f == "cnn" else RNNSpec for f in FAMILIES}


class OptimizerSpec(_Strict):
    name: OptimizerName = "adam"
    lr: float = Field(0.001, gt=0.0, le=100.0)
    momentum: float | None = Field(
        None, ge=0.0, lt=1.0, description="null = the optimizer's usual value (0.9 for momentum/nesterov)"
    )
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    schedule: ScheduleName = "constant"
    step_size: int | None = Field(None, ge=1, description="step schedule: epochs between decays")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="step schedule: decay factor")

    _f = field_validator("lr", "weight_decay", "gamma", "momentum")(_finite)

    @model_validator(mode="after")
    def _momentum_meaningful(self) -> OptimizerSpec:
        if self.name in ("momentum", "nesterov") and self.momentum == 0.0:
            raise ValueError(f"momentum 0 turns {self.name!r} into plain sgd; use a value in (0, 1) or name 'sgd'")
        return self

    @property
    def effective_momentum(self) -> float:
        if self.momentum is not None:
            return self.momentum
        return 0.9 if self.name in ("momentum", "nesterov") else 0.0


class EarlyStopping(_Strict):
    patience: int = Field(3, ge=1, le=1000)
    restore_best: bool = True


class RegularizationSpec(_Strict):
    l1: float = Field(0.0, ge=0.0, le=1.0)
    l2: float = Field(0.0, ge=0.0, le=1.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0.0, le=1e6)
    early_stopping: EarlyStopping | None = None

    _f = field_validator("l1", "l2", "label_smoothing", "grad_clip")(_finite)


class TrainingSpec(_Strict):
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(64, ge=1)
    device: str = "auto"

    @field_validator("epochs")
    @classmethod
    def _epochs_cap(cls, v: int) -> int:
        cap = current_limits().max_epochs
        if v > cap:
            raise ValueError(f"{v} epochs is above the limit of {cap}")
        return v

    @field_validator("batch_size")
    @classmethod
    def _batch_cap(cls, v: int) -> int:
        cap = current_limits().max_batch_size
        if v > cap:
            raise ValueError(f"batch size {v} is above the limit of {cap}")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in DEVICES and not re.fullmatch(r"cuda:\d{1,2}", v):
            raise ValueError(f"unknown device {brief(v)}; choose one of: {', '.join(DEVICES)} (or cuda:N)")
        return v


class ExperimentConfig(_Strict):
    seed: int = Field(0, ge=0, le=2**31 - 1)
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=CNNSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    regularization: RegularizationSpec = Field(default_factory=RegularizationSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)

    @model_validator(mode="after")
    def _fits_data(self) -> ExperimentConfig:
        from bigmodel_core.data import dataset_info  # noqa: PLC0415 - data loads torch: on first use

        info = dataset_info(self.data.name, image_size=self.data.image_size, seq_len=self.data.seq_len)
        if self.model.family == "cnn" and info.kind != "image":
            raise ValueError(
                f"model.family 'cnn' needs an image dataset; {self.data.name!r} is a sequence dataset "
                "(use rnn, lstm or gru)"
            )
        if self.model.family != "cnn" and info.kind != "sequence":
            raise ValueError(
                f"model.family {self.model.family!r} needs a sequence dataset; {self.data.name!r} is an "
                "image dataset (use cnn, or sequential_digits to read digits row by row)"
            )
        if info.task == "regression" and self.regularization.label_smoothing > 0:
            raise ValueError(
                f"regularization.label_smoothing applies to classification; {self.data.name!r} is regression")
        return self

    # --- conveniences -------------------------------------------------------------------
    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def with_changes(self, changes: dict[str, Any]) -> ExperimentConfig:
        """A validated copy with dotted-path fields replaced, e.g. {"optimizer.lr": 0.1}."""
        d = self.to_dict()
        for path, value in changes.items():
            set_path(d, path, value)
        return parse_config(d)


def parse_config(raw: str | bytes | dict[str, Any] | ExperimentConfig) -> ExperimentConfig:
    """Validate JSON text or a dict into an ExperimentConfig, or raise ConfigError."""
    if isinstance(raw, ExperimentConfig):
        return raw
    if isinstance(raw, (str, bytes)):
        limit = current_limits().max_config_bytes
        if len(raw) > limit:
            raise ConfigError([("", f"config is {len(raw):,} bytes; the limit is {limit:,}")])
        try:
            raw = loads(raw, "the config")
        except JSONInputError as exc:
            raise ConfigError([("", str(exc))]) from None
    if not isinstance(raw, dict):
        raise ConfigError([("", f"a config must be a JSON object, not {type(raw).__name__}")])
    _check_size(raw)
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, ExperimentConfig, _TAGGED)) from None
    except RecursionError:
        raise ConfigError([("", "config is nested too deeply")]) from None


def parse_config_here(raw: str | bytes | dict[str, Any] | ExperimentConfig) -> ExperimentConfig:
    """:func:`parse_config`, and the requested device exists on this machine (CLI, uploads, URLs).

    Stored runs are read with plain :func:`parse_config`: a run trained on a GPU elsewhere is
    still listed and compared here."""
    cfg = parse_config(raw)
    problem = device_problem(cfg.training.device)
    if problem:
        raise ConfigError([("training.device", problem)])
    return cfg


def _check_size(raw: dict[str, Any]) -> None:
    """A dict (from a URL, an upload or code) meets the same size limit as JSON text, so a huge
    list or thousands of keys are refused at once instead of keeping a server thread busy."""
    limit = current_limits().max_config_bytes
    try:
        size = len(json.dumps(raw, default=str))
    except RecursionError:
        raise ConfigError([("", "config is nested too deeply")]) from None
    except (TypeError, ValueError) as exc:
        path = _huge_int_path(raw)
        if path is not None:
            raise ConfigError([(path, f"{brief(get_path(raw, path))} is too long a number")]) from None
        raise ConfigError([("", f"config cannot be read as JSON: {str(exc)[:200]}")]) from None
    if size > limit:
        raise ConfigError([("", f"config is {size:,} bytes as JSON; the limit is {limit:,}")])


def _huge_int_path(node: Any, path: str = "") -> str | None:
    """The dotted path of the first integer too big for Python's int/str conversion, if any."""
    if isinstance(node, int) and not isinstance(node, bool) and node.bit_length() > 128:
        return path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        found = _huge_int_path(v, f"{path}.{k}" if path else str(k))
        if found is not None:
            return found
    return None


def json_schema() -> dict[str, Any]:
    return ExperimentConfig.model_json_schema()
