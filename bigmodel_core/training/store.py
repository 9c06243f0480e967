"""Run store: one folder per run with config.json, metrics.csv, summary.json, model.safetensors.

A run of an uploaded dataset also keeps that data, as data.npz, so it reopens and reproduces
without the upload (reading the run serves it again).

Every file is written to a temporary name and renamed into place (atomic on POSIX), and
summary.json is written last: a folder without it is an unfinished run and is ignored
when listing. Run ids are random (unguessable) and only ids of that form are accepted,
so a name from a user can never point outside the store.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import shutil
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from bigmodel_core.atomic import atomic_write_bytes, atomic_write_text
from bigmodel_core.config.specs import ExperimentConfig, parse_config

if TYPE_CHECKING:  # torch is loaded where weights are read or written, not by every page that lists runs
    import torch

# train_loss / train_metric: running means of the epoch, as trained (dropout on, augmented, smoothed);
# train_eval_loss / train_eval_metric: eval mode on the training set (runs stored before they
# existed lack those columns; readers take them with .get)
METRIC_COLUMNS = ("epoch", "train_loss", "val_loss", "train_metric", "val_metric", "lr", "seconds",
                  "train_eval_loss", "train_eval_metric")
_RUN_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{5,63}\Z")  # \Z, not $: $ also matches before a final newline
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")


class StoreError(OSError):
    """The run store could not read or write; the message says what and where."""


LABEL_MAX = 80  # characters of a run's label


def clean_label(label: str) -> str:
    """A run label as stored: one line of printable text, at most LABEL_MAX characters."""
    if not isinstance(label, str):
        raise StoreError(f"a run label must be text, not {type(label).__name__}")
    text = " ".join("".join(c if c.isprintable() else " " for c in label[:10 * LABEL_MAX]).split())
    return text[:LABEL_MAX]


def new_run_id(prefix: str = "run") -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{prefix}-{secrets.token_hex(6)}"


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or ".." in run_id:
        raise StoreError(f"invalid run id {run_id!r}")
    return run_id


def metrics_csv(rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def history_rows(history: Iterable[Any]) -> list[dict[str, Any]]:
    """EpochEnd events as metrics.csv rows."""
    return [{k: v for k, v in asdict(e).items() if k in METRIC_COLUMNS} for e in history]


def save_weights_bytes(state: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save  # noqa: PLC0415 - loads torch: paid only when weights are written

    return save({k: v.detach().cpu().contiguous() for k, v in state.items()})


def write_run(run_dir: Path, config: ExperimentConfig, rows: list[dict[str, Any]], summary: dict[str, Any],
              state: dict[str, torch.Tensor] | None, extra_files: dict[str, bytes] | None = None) -> Path:
    """Write a complete run folder; summary.json goes last so readers never see half a run."""
    for name in extra_files or {}:
        # extra file names become paths: only plain names, so none can land outside the run folder
        if not _FILE_NAME.match(name) or name == "summary.json":
            raise StoreError(f"invalid file name {name!r} for a run file")
    # the data room loads torch: imported when a run is written, so the first page needs neither
    from bigmodel_core.data import DatasetError  # noqa: PLC0415
    from bigmodel_core.data.uploads import run_data_files  # noqa: PLC0415

    try:
        extra_files = {**run_data_files(config.data.name), **(extra_files or {})}
    except DatasetError as exc:
        raise StoreError(f"cannot write the run to {run_dir}: {exc}") from None
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", config.to_json())
        atomic_write_text(run_dir / "metrics.csv", metrics_csv(rows))
        if state is not None:
            atomic_write_bytes(run_dir / "model.safetensors", save_weights_bytes(state))
        for name, data in (extra_files or {}).items():
            atomic_write_bytes(run_dir / name, data)
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2, default=_json_default))
    except PermissionError as exc:
        raise StoreError(f"cannot write the run to {run_dir}: permission denied ({exc.strerror})") from exc
    except OSError as exc:
        if isinstance(exc, StoreError):
            raise
        reason = "the disk is full" if exc.errno == 28 else (exc.strerror or str(exc))
        raise StoreError(f"cannot write the run to {run_dir}: {reason}") from exc
    return run_dir


def _json_default(o: Any) -> Any:
    if isinstance(o, float):
        return o
    if hasattr(o, "item"):
        return o.item()
    return str(o)


@dataclass(frozen=True)
class StoredRun:
    run_id: str
    path: Path
    config: ExperimentConfig
    summary: dict[str, Any]
    metrics: list[dict[str, float]]

    def load_state(self) -> dict[str, torch.Tensor]:
        f = self.path / "model.safetensors"
        if not f.exists():
            raise StoreError(f"run {self.run_id} has no saved weights")
        from safetensors.torch import load_file  # noqa: PLC0415 - loads torch: paid only when weights are read

        return load_file(str(f))


class RunStore:
    """Runs under one root folder; ``owner`` (if given) scopes listing and access."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, run_id: str) -> Path:
        return self.root / check_run_id(run_id)

    def save(self, config: ExperimentConfig, rows: list[dict[str, Any]], summary: dict[str, Any],
             state: dict[str, torch.Tensor] | None, *, run_id: str | None = None, owner: str | None = None,
             kind: str = "train", label: str = "", extra_files: dict[str, bytes] | None = None) -> str:
        run_id = check_run_id(run_id or new_run_id(kind))
        summary = dict(summary, run_id=run_id, kind=kind, label=label, owner=owner,
                       created=time.strftime("%Y-%m-%d %H:%M:%S"))
        write_run(self.root / run_id, config, rows, summary, state, extra_files)
        return run_id

    def copy_run(self, run_id: str, *, owner: str, kind: str = "train", label: str = "") -> str:
        """A copy of finished run ``run_id`` under a new run id, owned by ``owner`` (the same training,
        shared by several learners: each gets a run of their own). Files are copied to their new names
        and summary.json is written last, as for any run."""
        src = self.path(run_id)
        summary_file = src / "summary.json"
        if not summary_file.exists():
            raise StoreError(f"no finished run {run_id!r}")
        new_id = check_run_id(new_run_id(kind))
        dst = self.root / new_id
        try:
            dst.mkdir(parents=True)
            for f in sorted(src.iterdir()):
                if f.is_file() and not f.name.startswith(".") and f.name != "summary.json":
                    atomic_write_bytes(dst / f.name, f.read_bytes())
            summary = dict(json.loads(summary_file.read_text()), run_id=new_id, kind=kind, label=label, owner=owner,
                           created=time.strftime("%Y-%m-%d %H:%M:%S"))
            summary.pop("shared", None)  # a share link is the original owner's choice, not the copy's
            atomic_write_text(dst / "summary.json", json.dumps(summary, indent=2, default=_json_default))
        except OSError as exc:
            if isinstance(exc, StoreError):
                raise
            reason = "the disk is full" if exc.errno == 28 else (exc.strerror or str(exc))
            raise StoreError(f"cannot write the run to {dst}: {reason}") from exc
        return new_id

    def load(self, run_id: str, owner: str | None = None) -> StoredRun:
        path = self.path(run_id)
        summary_file = path / "summary.json"
        if not summary_file.exists():
            raise StoreError(f"no finished run {run_id!r}")
        summary = json.loads(summary_file.read_text())
        if owner is not None and not (owns(summary, owner) or _shared_by_an_owner(summary)):
            # a run without an owner (copied in by hand, written by the CLI) is nobody's to share
            raise StoreError(f"no finished run {run_id!r}")
        from bigmodel_core.data.uploads import register_run_data  # noqa: PLC0415 - loads torch: when a run opens

        register_run_data(path)  # the uploaded data the run kept, so that its config names a dataset served here
        config = parse_config((path / "config.json").read_text())
        with open(path / "metrics.csv", newline="") as f:
            metrics = [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(f)]
        return StoredRun(run_id, path, config, summary, metrics)

    def list(self, owner: str | None = None) -> list[StoredRun]:
        """Finished runs, newest first; with ``owner``, only that owner's."""
        runs: list[StoredRun] = []
        if not self.root.exists():
            return runs
        for d in sorted(self.root.iterdir(), reverse=True):
            if not d.is_dir() or not _RUN_ID.match(d.name) or not (d / "summary.json").exists():
                continue
            try:
                # the small summary first: other people's runs are skipped without parsing their
                # configs and metrics, so listing stays quick on a server many people share
                if owner is not None and json.loads((d / "summary.json").read_text()).get("owner") != owner:
                    continue
                run = self.load(d.name)
            except Exception:  # noqa: BLE001 - a damaged folder is skipped, not fatal to the listing
                continue
            runs.append(run)
        return runs

    def delete(self, run_id: str, owner: str | None = None) -> None:
        run = self.load(run_id, owner=owner)
        if owner is not None and not owns(run.summary, owner):
            raise StoreError(f"run {run_id!r} is not yours to delete")
        shutil.rmtree(run.path)

    def set_shared(self, run_id: str, owner: str, shared: bool = True) -> None:
        run = self.load(run_id, owner=owner)
        if not owns(run.summary, owner):
            raise StoreError(f"run {run_id!r} is not yours to share")
        atomic_write_text(run.path / "summary.json", json.dumps(dict(run.summary, shared=shared), indent=2))

    def set_label(self, run_id: str, owner: str, label: str) -> str:
        """Rename the owner's run (the name the pages show); returns the label as stored."""
        label = clean_label(label)
        run = self.load(run_id, owner=owner)
        if not owns(run.summary, owner):
            raise StoreError(f"run {run_id!r} is not yours to rename")
        atomic_write_text(run.path / "summary.json", json.dumps(dict(run.summary, label=label), indent=2))
        return label

    def prune(self, owner: str, keep: int) -> list[str]:
        """Delete the owner's oldest runs beyond ``keep``; returns the deleted ids."""
        runs = self.list(owner)
        removed = []
        for run in runs[keep:]:
            shutil.rmtree(run.path, ignore_errors=True)
            removed.append(run.run_id)
        return removed


def owns(summary: dict[str, Any], owner: str) -> bool:
    """Whether the run with this summary belongs to ``owner`` (compared in constant time)."""
    run_owner = summary.get("owner")
    if not isinstance(run_owner, str) or not run_owner or not isinstance(owner, str):
        return False
    return secrets.compare_digest(run_owner.encode(), owner.encode())


def _shared_by_an_owner(summary: dict[str, Any]) -> bool:
    return summary.get("shared") is True and isinstance(summary.get("owner"), str) and bool(summary["owner"])


def _num(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


PRIVATE_SUMMARY_KEYS = ("owner",)  # the session token that owns a run never leaves the server


def public_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A run summary as it may be shown or downloaded: without the owner's session token."""
    return {k: v for k, v in summary.items() if k not in PRIVATE_SUMMARY_KEYS}


def zip_run(path: Path) -> bytes:
    """A zip of a run folder, for download; the summary without the owner's session token."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(path.iterdir()):
            if not f.is_file() or f.name.startswith("."):
                continue
            if f.name == "summary.json":
                z.writestr(f"{path.name}/{f.name}", json.dumps(public_summary(json.loads(f.read_text())), indent=2))
            else:
                z.write(f, arcname=f"{path.name}/{f.name}")
    return buf.getvalue()


def default_store() -> RunStore:
    return RunStore(os.environ.get("BIGMODEL_RUNS_DIR", Path(__file__).resolve().parents[2] / "runs"))


__all__ = ["RunStore", "StoredRun", "StoreError", "write_run", "history_rows", "parse_config"]


def check_out_dir(text: str, overwrite: bool = False, option: str = "--out") -> Path:
    """The output folder a CLI command will write, checked before any training starts.

    An empty path is refused (it would mean the current directory); an existing folder that
    is not empty is refused unless ``overwrite`` (files of two runs must never mix); an
    existing folder gets a probe file, a new one needs a writable parent, so an unwritable
    place fails now rather than after the whole training."""
    if not text or not text.strip():
        raise StoreError(f"{option} is empty; give the folder to write the run to")
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise StoreError(f"{option} {text!r} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise StoreError(f"{option} {text!r} is a folder that is not empty; choose a new folder, "
                         "or pass --overwrite to replace its run files")
    if out.is_dir():
        try:  # a probe file says more than permission bits (read-only mounts, quotas, full disks)
            fd, probe = tempfile.mkstemp(dir=out, prefix=".write-check.")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            reason = "the disk is full" if exc.errno == 28 else (exc.strerror or str(exc))
            raise StoreError(f"{option} {text!r} cannot be written: {reason}") from None
        return out
    # a new folder: it is made only when the run is written, so a refused run leaves nothing behind
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"{option} {text!r} cannot be created: {parent} is not a writable folder")
    return out


UNFINISHED_MAX_AGE = 60.0  # seconds; a run being written right now is younger than this


def sweep_unfinished(root: Path, max_age: float = UNFINISHED_MAX_AGE) -> list[str]:
    """Remove run folders without summary.json (a kill or a full disk mid-write) older than
    ``max_age``; returns their names. Called once when the server's store is created."""
    removed: list[str] = []
    if not root.is_dir():
        return removed
    now = time.time()
    for d in root.iterdir():
        try:
            if (not d.is_dir() or d.is_symlink() or not _RUN_ID.match(d.name) or (d / "summary.json").exists()
                    or now - d.stat().st_mtime < max_age):
                continue
            newest = max((f.stat().st_mtime for f in d.iterdir()), default=0.0)
            if now - newest < max_age:
                continue  # a file inside is fresh: a writer is still at work
            shutil.rmtree(d)
            removed.append(d.name)
        except OSError:
            continue  # vanished meanwhile, or not ours to remove: leave it
    return removed
