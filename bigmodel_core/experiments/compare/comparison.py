"""A comparison and its runs, and the comparison JSON file that re-opens a finished one.

The same :class:`Comparison` serves the page (live, from job snapshots), the CLI and the
file. A file is checked whole by :class:`ComparisonFile` (bounded fields, at most
:data:`MAX_RUNS` runs and :data:`MAX_FILE_EPOCHS` epochs each) before any of it is drawn.

A comparison has a kind (:data:`KINDS`): ``settings`` (runs differ in config fields: optimizers,
regularizers, sweeps, ``--vary``), ``distill`` (the same student trained on labels only and
distilled from a teacher: the configs are identical, the run's ``distill`` entry says what
differs) and ``scale`` (the same design at several widths or depths, for a loss-against-size
fit). Files written before kinds existed read as ``settings``.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bigmodel_core.config.specs import ConfigError, ExperimentConfig, parse_config
from bigmodel_core.data import dataset_info
from bigmodel_core.limits import current_limits
from bigmodel_core.safejson import JSONInputError, TooLong, loads, too_long_message
from bigmodel_core.training.jobs import ACTIVE
from bigmodel_core.training.store import METRIC_COLUMNS, StoredRun

from .naming import differing_fields, differs_rows, fmt_value, names_from_diff, unique_names

MAX_RUNS = 8
FORMAT = "bigmodel-comparison"
VERSION = 1
KINDS = ("settings", "distill", "scale")
LABELS_ONLY = "labels only"  # what a run without a teacher learns from, in the "what differs" table


@dataclass
class CompareRun:
    """One run of a comparison: its plan, then whatever was measured."""

    name: str
    config: ExperimentConfig
    status: str = "planned"  # planned | queued | running | paused | completed | stopped | diverged | failed | lost
    message: str = ""
    epochs: list[dict[str, float]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    run_id: str | None = None
    job_id: str | None = None
    init: str = ""  # how the initial weights relate to the shared ones
    init_sha: str | None = None
    data_sha: str | None = None
    order_sha: str | None = None
    # {"teacher": label, "sha256", "temperature", "alpha"} for a run that distils; None = labels only
    distill: dict[str, Any] | None = None
    # live-only (not saved in the JSON)
    teacher: Any = None  # the experiments.distill.Teacher a distilling run learns from
    queue_position: int | None = None
    progress: float = 0.0
    live_samples_per_sec: float | None = None
    steps: list[int] = field(default_factory=list)
    batch_losses: list[float] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config.to_dict(), "status": self.status,
                "message": self.message, "epochs": self.epochs, "summary": self.summary,
                "run_id": self.run_id, "init": self.init, "init_sha": self.init_sha, "data_sha": self.data_sha,
                "order_sha": self.order_sha, "distill": self.distill}

    @property
    def learns_from(self) -> str:
        """Labels only, or the teacher with its temperature and alpha (the distill kind's difference)."""
        d = self.distill
        if not d:
            return LABELS_ONLY
        return f"{d.get('teacher', '?')}, T={fmt_value(d.get('temperature'))}, alpha={fmt_value(d.get('alpha'))}"


@dataclass
class Comparison:
    base: ExperimentConfig
    runs: list[CompareRun]
    title: str = ""
    comparison_id: str = field(default_factory=lambda: f"cmp-{secrets.token_hex(5)}")
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))
    kind: str = "settings"

    def __post_init__(self) -> None:
        if not 1 <= len(self.runs) <= MAX_RUNS:
            raise ConfigError([("runs", f"a comparison has 1 to {MAX_RUNS} runs, not {len(self.runs)}")])
        if self.kind not in KINDS:
            raise ConfigError([("kind", f"unknown comparison kind {self.kind!r}; choose one of: {', '.join(KINDS)}")])

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.runs]

    @property
    def task(self) -> str:
        d = self.base.data
        return dataset_info(d.name, image_size=d.image_size, seq_len=d.seq_len).task

    @property
    def active(self) -> bool:
        return any(r.active for r in self.runs)

    @property
    def started(self) -> bool:
        return any(r.status != "planned" for r in self.runs)

    def differs(self) -> list[dict[str, Any]]:
        rows = differs_rows(self.names, [r.config for r in self.runs])
        if any(r.distill for r in self.runs):  # the configs are the same: the teacher is the difference
            for row, r in zip(rows, self.runs):
                row["learns from"] = r.learns_from
        return rows

    def differing(self) -> list[str]:
        """The differing config fields, and "learns from" when some runs distil and others do not."""
        fields = differing_fields([r.config for r in self.runs])
        if len({r.learns_from for r in self.runs}) > 1:
            fields.append("learns from (teacher)")
        return fields

    # --- JSON --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "kind": self.kind, "id": self.comparison_id,
                "title": self.title, "created": self.created, "base": self.base.to_dict(),
                "runs": [r.to_dict() for r in self.runs]}

    def to_json(self) -> str:
        return json.dumps(_no_nan(self.to_dict()), indent=1, allow_nan=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Comparison:
        limit = current_limits().max_upload_bytes
        if len(raw) > limit:
            raise ConfigError([("", f"the comparison file is {len(raw):,} bytes; the limit is {limit:,}")])
        try:
            data = loads(raw, "the file")
        except JSONInputError as exc:
            raise ConfigError([("", f"not a comparison JSON file: {exc}")]) from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> Comparison:
        """A comparison from its file: the whole document is checked by :class:`ComparisonFile`
        (bounded fields, at most MAX_RUNS runs and MAX_FILE_EPOCHS epochs each) before any of it
        is drawn, so a huge file is refused in one pass instead of freezing the page."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError([("format", f"not a comparison file (expected \"format\": \"{FORMAT}\")")])
        if data.get("version") != VERSION:
            raise ConfigError([("version", f"unsupported version {_brief(data.get('version'))}; "
                                           f"this app reads {VERSION}")])
        try:
            doc = ComparisonFile.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_file_problems(exc)) from None
        base = _parse_at(doc.base, "base")
        runs = []
        for i, r in enumerate(doc.runs):
            where = f"runs[{i}]"
            if not r.name.strip():
                raise ConfigError([(f"{where}.name", "each run needs a non-empty name")])
            status = r.status
            if status in ACTIVE or status == "planned":  # a saved comparison is not running any more
                status = "stopped" if r.epochs else "planned"
            runs.append(CompareRun(
                name=r.name, config=_parse_at(r.config, f"{where}.config"), status=status, message=r.message or "",
                epochs=[{k: (float("nan") if v is None else v) for k, v in row.model_dump().items() if k in
                         row.model_fields_set} for row in r.epochs],
                summary=r.summary, run_id=r.run_id, init=r.init or "", init_sha=r.init_sha, data_sha=r.data_sha,
                order_sha=r.order_sha, distill=r.distill.model_dump() if r.distill is not None else None))
        return cls(base=base, runs=runs, title=doc.title or "",
                   comparison_id=doc.id or f"cmp-{secrets.token_hex(5)}", created=doc.created or "",
                   kind=doc.kind or "settings")

    @classmethod
    def from_stored(cls, stored: list[StoredRun], title: str = "stored runs") -> Comparison:
        """A finished comparison of stored runs (Runs page): their metrics.csv curves and summaries."""
        if not stored:
            raise ConfigError([("runs", "select at least one stored run")])
        configs = [s.config for s in stored]
        labels = [str(s.summary.get("label") or "") for s in stored]
        names = unique_names(labels) if all(labels) and len(set(labels)) == len(labels) else names_from_diff(configs)
        runs = []
        for s, name in zip(stored, names):
            info = s.summary.get("comparison") if isinstance(s.summary.get("comparison"), dict) else {}
            runs.append(CompareRun(name=name, config=s.config, status=str(s.summary.get("status", "completed")),
                                   message=str(s.summary.get("message") or ""),
                                   epochs=[{k: v for k, v in row.items() if k in METRIC_COLUMNS} for row in s.metrics],
                                   summary=s.summary, run_id=s.run_id, init=str(info.get("init") or ""),
                                   init_sha=_opt_str(info.get("init_sha")), data_sha=_opt_str(info.get("data_sha")),
                                   order_sha=_opt_str(info.get("order_sha")), distill=_distill_of(s.summary)))
        return cls(base=configs[0], runs=runs, title=title)


# --- the comparison file's schema ------------------------------------------------------------------
MAX_FILE_EPOCHS = 1000  # per run: ten times the epoch limit of a run trained here
MAX_TEXT = 500  # a name, a message, an id


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)


Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Sha = Annotated[str, StringConstraints(max_length=64)]
Metric = Annotated[float, Field(ge=-1e30, le=1e30)] | None  # a diverged loss was saved as null


class EpochRow(_FileModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    epoch: Metric = None
    train_loss: Metric = None
    val_loss: Metric = None
    train_metric: Metric = None
    val_metric: Metric = None
    lr: Metric = None
    seconds: Metric = None
    step: Metric = None
    train_eval_loss: Metric = None  # absent from files written before the clean train metric existed
    train_eval_metric: Metric = None


class DistillFile(_FileModel):
    """What a distilled run learned from: the teacher's name and digest, the temperature and alpha."""
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    teacher: Annotated[str, StringConstraints(max_length=200)]
    sha256: Sha | None = None
    temperature: Annotated[float, Field(gt=0, le=100)]
    alpha: Annotated[float, Field(ge=0, le=1)]


class RunFile(_FileModel):
    name: Annotated[str, StringConstraints(max_length=80)]
    config: dict[str, Any]
    status: Literal["planned", "queued", "running", "paused", "completed", "stopped", "diverged", "failed",
                    "lost"] = "planned"
    message: Text | None = ""
    epochs: Annotated[list[EpochRow], Field(max_length=MAX_FILE_EPOCHS)] | None = None
    summary: dict[str, Any] | None = None
    run_id: Sha | None = None
    init: Text | None = ""
    init_sha: Sha | None = None
    data_sha: Sha | None = None
    order_sha: Sha | None = None
    distill: DistillFile | None = None


class ComparisonFile(_FileModel):
    format: Literal["bigmodel-comparison"]
    version: Literal[1]
    kind: Literal["settings", "distill", "scale"] | None = "settings"
    id: Annotated[str, StringConstraints(max_length=64)] | None = None
    title: Annotated[str, StringConstraints(max_length=200)] | None = ""
    created: Annotated[str, StringConstraints(max_length=40)] | None = ""
    base: dict[str, Any]
    runs: Annotated[list[RunFile], Field(min_length=1, max_length=MAX_RUNS)]


def _brief(value: Any, limit: int = 60) -> str:
    if isinstance(value, (str, list, dict)) and len(value) > limit:
        return f"<a {type(value).__name__} of {len(value):,} {'characters' if isinstance(value, str) else 'items'}>"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _file_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """pydantic's errors with the field's path and a short echo of the value (never the whole of it)."""
    out = []
    for err in exc.errors(include_url=False, include_input=True)[:50]:
        path = ""
        for item in err["loc"]:
            path += f"[{item}]" if isinstance(item, int) else ("." if path else "") + str(item)
        value = err.get("input")
        msg = too_long_message(value) if isinstance(value, TooLong) else f"{err['msg']} (got {_brief(value)})"
        out.append((path, msg))
    return out


def _no_nan(v: Any) -> Any:
    """NaN and infinities (a diverged loss) become null, so the file is strict JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _no_nan(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_no_nan(x) for x in v]
    return v


def comparison_order(stored: list[StoredRun]) -> list[StoredRun]:
    """Runs of one comparison in the order they were planned (the store lists newest first)."""
    def key(s: StoredRun) -> tuple[str, int]:
        info = s.summary.get("comparison")
        info = info if isinstance(info, dict) else {}
        return (str(info.get("id", "")), int(info.get("index", 0) or 0))

    return sorted(stored, key=key)


def _distill_of(summary: dict[str, Any]) -> dict[str, Any] | None:
    """A stored distilled run's teacher, temperature and alpha (None for a run on labels only)."""
    d = summary.get("distill")
    if not isinstance(d, dict):
        return None
    try:
        return DistillFile.model_validate({k: d.get(k) for k in ("teacher", "sha256", "temperature", "alpha")},
                                          strict=False).model_dump()
    except ValidationError:
        return None


def _opt_str(v: Any) -> str | None:
    return v[:64] if isinstance(v, str) else None


def _parse_at(raw: Any, where: str) -> ExperimentConfig:
    try:
        return parse_config(raw if raw is not None else "null")
    except ConfigError as exc:
        raise ConfigError([(f"{where}.{p}" if p else where, m) for p, m in exc.problems]) from None
