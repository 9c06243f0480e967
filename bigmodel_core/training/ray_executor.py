"""The Ray executor: each training runs on a Ray cluster, in an actor of its own; the server is the driver.

Chosen with ``BIGMODEL_EXECUTOR=ray``. ``ray.init()`` connects to ``RAY_ADDRESS`` (a cluster's
head, ``ray start --head``) or, without it, starts a local Ray on this machine. Nothing else
changes for the pages: the pool still queues jobs (a queue position is a job not yet placed on
the cluster), caps how many train at once (by default the cluster's CPUs divided by the threads
per job), watches them and writes the runs to the server's store.

For each job the pool's worker thread takes an actor (``num_cpus`` = threads per job,
``max_restarts=0``) and drives it: the actor trains in a thread of its own with the same code as
in-process (:func:`.executors.run_here`, the job's trainer factory and epoch hooks included),
while the driver polls it every :data:`POLL_SECONDS` for what is new (batch losses, epochs,
progress, the live view's frames and the inspect area's probes) and copies it into the server's
job, which the page reads as before. Pause, resume and stop go to the actor's control and land
within a batch. At the end the final weights, summary and metrics come back and the server
writes the run (atomically, summary last). A worker process that dies (killed, out of memory,
its node lost) fails the job with a message saying so; the server goes on.

An actor runs one training at a time. When it ends, the actor waits for the next job instead of
exiting (at most one idle actor per slot, for :data:`IDLE_SECONDS`, since an idle actor still
holds its CPUs on the cluster): a fresh worker process pays several seconds for importing torch,
building the dataset and warming up the optimizer, which on a small machine cost more than the
training itself. An actor whose training raised or whose process died is never reused.

The workers must import the same ``bigmodel_core`` as the server: install the project on every
node (a local Ray started here is pointed at this checkout).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Ray is imported here only: this module is loaded when BIGMODEL_EXECUTOR=ray (or --executor ray)
# asks for it (executors.make_executor), so a laptop or Community Cloud install never needs Ray.
import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError

from bigmodel_core.config.specs import ExperimentConfig, parse_config

from .executors import Outcome, run_here
from .job import Job

if TYPE_CHECKING:
    from ray.actor import ActorHandle

POLL_SECONDS = 0.25  # how often the driver asks an actor what is new
IDLE_SECONDS = 15.0  # an actor with no next job this long exits and frees its CPUs
CALL_TIMEOUT = 120.0  # seconds a poll may take before the worker counts as unresponsive
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class TrainingError(RuntimeError):
    """The training raised on the worker; the message is the worker's."""


class WorkerLost(RuntimeError):
    """The worker process running a training died or stopped answering."""


class TrainingActor:
    """Runs one job on a Ray worker (threaded actor: polls and controls arrive while it trains)."""

    def __init__(self, threads: int):
        torch.set_num_threads(threads)  # the same thread count as in-process: the same numbers
        self.job: Job | None = None
        self.outcome: Outcome | None = None
        self.error: str | None = None
        self.done = threading.Event()
        self._sent: dict[str, int] = {}  # extras key -> id of the value last sent to the driver

    def start(self, config_json: str, init_state: dict[str, torch.Tensor] | None, job_fields: dict[str, Any],
              extras: dict[str, Any]) -> int:
        if self.job is not None and not self.done.is_set():
            raise RuntimeError("this worker is still training")
        self.outcome, self.error, self.done = None, None, threading.Event()
        job = Job(parse_config(config_json), owner="ray-worker", init_state=init_state, save=False, **job_fields)
        job.extras.update(extras)
        self._sent = {k: id(v) for k, v in job.extras.items()}  # the driver has these already
        self.job = job
        threading.Thread(target=self._train, name="bigmodel-ray-training", daemon=True).start()
        return os.getpid()

    def _train(self) -> None:
        try:
            out = run_here(self.job)
            if out is not None:
                out.trainer = None  # stays on the worker; the driver gets weights, summary and metrics
            self.outcome = out
        except Exception as exc:  # noqa: BLE001 - sent to the driver, which fails the job with it
            self.error = f"{type(exc).__name__}: {exc}"
            self.job.extras["traceback"] = traceback.format_exc(limit=5)
        finally:
            self.done.set()

    def control(self, action: str) -> None:
        getattr(self.job.control, action)()

    def poll(self, points: int, stride: int, epochs: int, requests: dict[str, Any]) -> dict[str, Any]:
        """What is new since the driver had ``points`` batch points (at ``stride``) and ``epochs`` epochs."""
        job = self.job
        for k, v in requests.items():  # e.g. the input the inspect area asked to probe
            job.set_extra(k, v)
            self._sent[k] = id(job.extras[k])
        done = self.done.is_set()
        with job._lock:
            if job._stride != stride:  # the list was thinned since: send all of it
                points = 0
            new_extras = {k: v for k, v in job.extras.items() if self._sent.get(k) != id(v)}
            data = {"steps": job._steps[points:], "losses": job._losses[points:], "stride": job._stride,
                    "from": points, "epochs": [dict(e) for e in job._epochs[epochs:]], "step": job._step,
                    "total": job._total, "elapsed": job._elapsed, "lr": job._lr, "sps": job._sps,
                    "epoch_seconds": job._epoch_seconds, "device": job._device, "task": job._task,
                    "progressed": job._progressed.is_set(), "extras": new_extras, "done": done}
        self._sent.update({k: id(v) for k, v in new_extras.items()})
        return data

    def result(self) -> dict[str, Any]:
        out = self.outcome
        return {"error": self.error, "outcome": None if out is None else
                {"status": out.status, "message": out.message, "summary": out.summary, "state": out.state,
                 "rows": out.rows}}


class RayExecutor:
    """Trains each job in a Ray actor of its own (see the module docstring)."""

    name = "ray"

    def __init__(self, threads_per_job: int | None = None, gpus_per_job: float | None = None):
        self.threads = max(1, threads_per_job or 1)
        self.gpus = float(os.environ.get("BIGMODEL_RAY_GPUS_PER_JOB", "0")) if gpus_per_job is None else gpus_per_job
        self._started_ray = False
        self._idle: list[ActorHandle] = []  # actors whose last training ended cleanly, ready for the next
        self._idle_lock = threading.Lock()
        if not ray.is_initialized():
            # RAY_ADDRESS, when set, names the cluster; otherwise a local Ray starts on this machine,
            # its workers pointed at this checkout so that they run the server's code
            local = not os.environ.get("RAY_ADDRESS")
            runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
                p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)}} if local else None
            ray.init(include_dashboard=False, runtime_env=runtime_env, log_to_driver=False)
            self._started_ray = True
        self._actor = ray.remote(max_concurrency=4, max_restarts=0)(TrainingActor)

    def slots(self, threads_per_job: int) -> int | None:
        cpus = ray.cluster_resources().get("CPU", 0)
        return max(1, int(cpus // max(1, threads_per_job))) if cpus else None

    def trains_on_cpu(self, config: ExperimentConfig) -> bool:
        return config.training.device == "cpu" or (config.training.device == "auto" and self.gpus == 0)

    def run(self, job: Job) -> Outcome | None:
        with self._idle_lock:
            actor = self._idle.pop() if self._idle else None
        if actor is None:
            actor = self._actor.options(num_cpus=self.threads, num_gpus=self.gpus).remote(self.threads)
        reuse = False
        try:
            fields = {"label": job.label, "group": job.group, "kind": job.kind, "make_trainer": job.make_trainer,
                      "epoch_hooks": list(job.epoch_hooks)}
            pid = self._call(actor.start.remote(job.config.to_json(), job.init_state, fields, dict(job.extras)))
            job.set_extra("worker", f"Ray worker process {pid}")
            self._follow(job, actor)
            res = self._call(actor.result.remote())
            reuse = not res["error"]
        finally:
            with self._idle_lock:
                keep = reuse and len(self._idle) < (self.slots(self.threads) or 1)
                if keep:
                    self._idle.append(actor)
                    timer = threading.Timer(IDLE_SECONDS, self._expire, args=(actor,))
                    timer.daemon = True  # never keeps a finished process alive
                    timer.start()
            if not keep:
                ray.kill(actor)
        if res["error"]:
            raise TrainingError(res["error"])
        out = res["outcome"]
        return None if out is None else Outcome(out["status"], out["message"], out["summary"], out["state"],
                                                out["rows"])

    def _expire(self, actor: ActorHandle) -> None:
        with self._idle_lock:
            if actor not in self._idle:
                return  # taken by a job meanwhile
            self._idle.remove(actor)
        ray.kill(actor)

    def _call(self, ref: Any) -> Any:
        try:
            return ray.get(ref, timeout=CALL_TIMEOUT)
        except RayActorError as exc:
            raise WorkerLost("the worker process training this model on the Ray cluster died before it "
                             f"finished (killed, out of memory, or its node was lost): {_first_line(exc)}") from None
        except GetTimeoutError:
            raise WorkerLost(f"the Ray worker training this model did not answer for {CALL_TIMEOUT:.0f} s") from None

    def _follow(self, job: Job, actor: ActorHandle) -> None:
        """Poll the actor until it is done, forwarding the job's controls and copying its progress."""
        paused = stopped = False
        epochs = 0
        seen: dict[str, int] = {k: id(v) for k, v in job.extras.items()}  # extras the actor has or sent
        while True:
            if job.control.stopped and not stopped:
                actor.control.remote("stop")
                stopped = True
            elif job.control.paused != paused and not stopped:
                paused = job.control.paused
                actor.control.remote("pause" if paused else "resume")
            with job._lock:
                requests = {k: v for k, v in job.extras.items() if seen.get(k) != id(v)}
                points, stride = len(job._steps), job._stride
            seen.update({k: id(v) for k, v in requests.items()})
            data = self._call(actor.poll.remote(points, stride, epochs, requests))
            first = data["progressed"] and not job._progressed.is_set()
            with job._lock:
                job._steps[data["from"]:] = data["steps"]
                job._losses[data["from"]:] = data["losses"]
                job._stride = data["stride"]
                job._epochs.extend(data["epochs"])
                for k in ("step", "total", "elapsed", "lr", "sps", "epoch_seconds", "device", "task"):
                    setattr(job, f"_{k}", data[k])
                job.extras.update(data["extras"])
            seen.update({k: id(v) for k, v in data["extras"].items()})
            epochs += len(data["epochs"])
            if first:
                job._progressed.set()
                job._changed()  # members of a shared training see its first point too
            if data["done"]:
                return
            time.sleep(POLL_SECONDS)

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for actor in idle if ray.is_initialized() else []:
            ray.kill(actor)
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
            self._started_ray = False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
