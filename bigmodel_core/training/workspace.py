"""Workspaces: who a learner is across reloads, tabs, links and server restarts.

A workspace belongs to an anonymous token the browser keeps (the app puts it in a
first-party cookie). The server issues every token itself and signs it: a token is a random
part and an HMAC of that part under a secret kept in the run store root (created once,
readable by the server's user only, so tokens stay valid across restarts). Anything else
(garbled, oversized, forged, or signed by another server's secret) verifies as nothing, and
the caller starts a fresh workspace.

The token itself never lands on disk: the workspace id, a hash of the token, owns jobs and
runs and names the folder that holds the workspace's state (the current experiment, the
design of each model family, the comparison and fine-tunes the pages show) and a small record
per running job, which tells a restarted server which jobs were interrupted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .store import atomic_write_text

TOKEN_MAX_CHARS = 128  # checked before anything else: a cookie of any other length is refused unread
MAX_STATE_BYTES = 2_000_000  # a workspace state file above this is not read (it is not one we wrote)
SECRET_FILE = ".workspace-secret"
FOLDER = ".workspaces"  # dot-prefixed: never taken for a run folder
COOKIE_MAX_AGE = 30 * 24 * 3600  # seconds the browser keeps the token after its last visit
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}\.[0-9a-f]{64}\Z")
_WORKSPACE_ID = re.compile(r"^ws-[0-9a-f]{32}\Z")
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}\Z")

# one id per server process: a job record from another id was written by an earlier process
PROCESS_ID = secrets.token_hex(8)


def workspace_id(token: str) -> str:
    """The id a token's workspace goes by on disk and in the job pool (the token is not recoverable)."""
    return "ws-" + hashlib.sha256(token.encode()).hexdigest()[:32]


def is_workspace_id(owner: object) -> bool:
    return isinstance(owner, str) and bool(_WORKSPACE_ID.match(owner))


class TokenIssuer:
    """Issues and verifies workspace tokens under this server's secret (``root/.workspace-secret``)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    def _load_secret(self) -> bytes:
        with self._lock:
            if self._secret is None:
                self._secret = _read_or_create_secret(self.root / SECRET_FILE)
            return self._secret

    def _mac(self, random_part: str) -> str:
        return hmac.new(self._load_secret(), random_part.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        random_part = secrets.token_urlsafe(24)  # 32 characters, 192 random bits
        return f"{random_part}.{self._mac(random_part)}"

    def verify(self, token: object) -> str | None:
        """The workspace id of a token this server issued; None for anything else (never raises)."""
        if not isinstance(token, str) or len(token) > TOKEN_MAX_CHARS or not _TOKEN.match(token):
            return None
        random_part, mac = token.split(".")
        if not hmac.compare_digest(self._mac(random_part).encode(), mac.encode()):
            return None
        return workspace_id(token)


def _read_or_create_secret(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret.", suffix=".tmp")  # created 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_hex(32).encode())
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # atomic and never overwrites: two servers starting at once agree
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
        raw = path.read_bytes()
    secret = raw.strip()
    if len(secret) < 32:
        raise OSError(f"the workspace secret {path} is damaged (too short); delete it to issue new tokens")
    return secret


# --- per-workspace state -------------------------------------------------------------------------
_STATE_LOCK = threading.Lock()  # read-modify-write of one state file from several tabs of one process


def workspace_dir(root: str | os.PathLike, owner: str) -> Path | None:
    return Path(root) / FOLDER / owner if is_workspace_id(owner) else None


def read_state(root: str | os.PathLike, owner: str) -> dict[str, Any]:
    """The workspace's saved entries; {} when there are none or the file is not one we wrote."""
    folder = workspace_dir(root, owner)
    if folder is None:
        return {}
    path = folder / "state.json"
    try:
        if path.stat().st_size > MAX_STATE_BYTES:
            return {}
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def update_state(root: str | os.PathLike, owner: str, **entries: Any) -> None:
    """Merge ``entries`` into the workspace's state (written atomically); None removes an entry."""
    folder = workspace_dir(root, owner)
    if folder is None:
        return
    with _STATE_LOCK:
        data = read_state(root, owner)
        for k, v in entries.items():
            if v is None:
                data.pop(k, None)
            else:
                data[k] = v
        atomic_write_text(folder / "state.json", json.dumps(data, allow_nan=False))


# --- job records: which jobs a restart interrupted --------------------------------------------------
def _record_path(root: str | os.PathLike, owner: str, job_id: str) -> Path | None:
    folder = workspace_dir(root, owner)
    if folder is None or not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        return None
    return folder / "jobs" / f"{job_id}.json"


def write_job_record(root: str | os.PathLike, owner: str, job_id: str, info: dict[str, Any]) -> None:
    path = _record_path(root, owner, job_id)
    if path is not None:
        atomic_write_text(path, json.dumps(dict(info, job_id=job_id, pid=os.getpid(), process=PROCESS_ID,
                                                started=time.strftime("%Y-%m-%d %H:%M:%S"))))


def clear_job_record(root: str | os.PathLike, owner: str, job_id: str) -> None:
    path = _record_path(root, owner, job_id)
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def interrupted_jobs(root: str | os.PathLike, owner: str) -> list[dict[str, Any]]:
    """Jobs of ``owner`` that were active when an earlier server process ended, oldest first.

    A record from this process is a live job; one from another process that still runs (two
    servers on one store) is that server's; the rest were interrupted by a restart or a crash.
    """
    folder = workspace_dir(root, owner)
    if folder is None or not (folder / "jobs").is_dir():
        return []
    found = []
    for f in sorted((folder / "jobs").glob("*.json"))[:100]:
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(rec, dict) or rec.get("process") == PROCESS_ID:
            continue
        pid = rec.get("pid")
        if isinstance(pid, int) and pid != os.getpid() and _alive(pid):
            continue
        found.append({k: str(rec.get(k, "")) for k in ("job_id", "kind", "label", "started")})
    return sorted(found, key=lambda r: r["started"])


def dismiss_interrupted(root: str | os.PathLike, owner: str) -> None:
    for rec in interrupted_jobs(root, owner):
        clear_job_record(root, owner, rec["job_id"])
