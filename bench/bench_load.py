"""Workshop load benchmark: many browser sessions train at once against one server.

Run: ``python -m bench.bench_load`` (needs /usr/bin/chromium; loopback only; bounded by
``--deadline`` seconds). It starts ``streamlit run app.py`` on a free localhost port, opens
``--sessions`` Playwright browser contexts (separate sessions) in one Chromium, and in each
opens ``/train?preset=quickstart_cnn&training.epochs=1`` and presses Train. While they train,
one extra session switches pages (sidebar "Build" until "Build a model" shows, then "Train"
until its page shows) and the time of each switch is recorded.

It prints, per session, whether it completed, the queue positions it showed and its run
id; the p50/p95 page-switch time; and the pool's peak number of running trainings, read
from the file the pool writes when ``BIGMODEL_STATS_FILE`` is set. Exit status 0 when
every session completed (after queueing visibly where it had to wait), none showed an
error, the run ids are all different and the concurrency cap held.

The functions here are reused by tests/e2e/test_load.py (a 3-session version in CI).

Without a browser, ``--engine pool|sharing|ray|all`` simulates ``--learners`` (default 8,30)
learners pressing Train on one lesson against the job pool itself: today's pool, the pool sharing
identical trainings, and the Ray executor on a local Ray (bench/load_engines.py); it prints the
seconds to the last stored run for each, alternating engines, and their ratios to the pool.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bigmodel_core.openmp import wait_passively
from tests.e2e.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    click_button,
    open_page,
    start_app,
    stop_app,
    wait_idle,
)

# the simulated learners and the headless reference train as the app server does (before torch loads)
wait_passively()

TRAIN_QUERY = "preset=quickstart_cnn&training.epochs=1"

# Runs inside each page: records every status the Train page shows, so a short-lived
# "Queued: position N" is seen even while the Python side is busy with another session.
OBSERVER_JS = """() => {
  if (window.__load) return;
  const s = window.__load = {queued: [], completed: false, failed: [], stopped: false, exception: false,
                             run_id: null, wall: null};
  const look = () => {
    if (document.querySelector('[data-testid="stException"]')) s.exception = true;
    for (const el of document.querySelectorAll('[data-testid="stAlert"], [data-testid="stCaptionContainer"]')) {
      const t = el.innerText || '';
      const q = t.match(/Queued: position (\\d+)/);
      if (q && !s.queued.includes(+q[1])) s.queued.push(+q[1]);
      // an alert's text starts with its icon's name (check_circle, error, ...), so no ^ anchors
      if (/\\bCompleted\\b/.test(t)) s.completed = true;
      if (/\\b(Failed|Diverged):/.test(t) && !s.failed.includes(t.slice(0, 300))) s.failed.push(t.slice(0, 300));
      if (/\\bStopped\\b/.test(t)) s.stopped = true;
      const r = t.match(/Saved as run\\s+(\\S+)/);
      if (r) s.run_id = r[1];
      const w = t.match(/parameters · ([\\d.]+) s/);
      if (w) s.wall = +w[1];
    }
  };
  setInterval(look, 250);
  look();
}"""


@dataclass
class SessionResult:
    index: int
    queued: list[int] = field(default_factory=list)
    completed: bool = False
    failed: list[str] = field(default_factory=list)
    stopped: bool = False
    exception: bool = False
    run_id: str | None = None
    wall_s: float | None = None  # the training's own wall time, as the page reports it

    @property
    def finished(self) -> bool:
        return (self.completed and self.run_id is not None) or bool(self.failed) or self.exception or self.stopped

    @property
    def ok(self) -> bool:
        return self.completed and self.run_id is not None and not (self.failed or self.exception or self.stopped)


def observe(page) -> None:
    page.evaluate(OBSERVER_JS)


def read(page, index: int) -> SessionResult:
    s = page.evaluate("() => window.__load")
    return SessionResult(index, sorted(s["queued"]), s["completed"], s["failed"], s["stopped"], s["exception"],
                         s["run_id"], s["wall"])


def open_sessions(browser, url: str, n: int, query: str = TRAIN_QUERY) -> list:
    """``n`` new browser sessions (one context each) loading the Train page at the same time."""
    pages = []
    for _ in range(n):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(180_000)
        page.goto(f"{url}/train?{query}", wait_until="commit")  # don't wait: all load at once
        pages.append(page)
    for i, page in enumerate(pages):
        try:
            page.wait_for_selector("[data-testid='stApp']")
            page.get_by_role("button", name="Train", exact=True).wait_for()
        except Exception as e:  # say what the page showed instead of the Train button
            text = page.evaluate("() => document.body ? document.body.innerText : ''")
            raise RuntimeError(f"session {i + 1} never showed the Train button; the page read:\n{text[:2000]}") from e
        wait_idle(page, timeout=180)
        observe(page)
    return pages


def warm_up(browser, url: str) -> None:
    """Open the home page once, as the person running a workshop would before sharing the link
    (it also takes the server's first-import cost out of the timings)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(120_000)
    open_page(page, url)
    page.get_by_role("button", name="Train your first CNN").wait_for()
    context.close()


def switch_once(page, timeout_s: float = 60.0) -> list[float]:
    """Seconds to switch Train -> Build and Build -> Train with the sidebar links.

    A switch that does not finish within ``timeout_s`` counts as ``timeout_s`` (so the
    percentiles are a lower bound then) and the page is reloaded to carry on.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    times = []
    # what each page shows at its top once drawn (the Train page's settings, and its sample preview, are folded)
    for link, shown in (("Build", lambda: page.get_by_text("Build a model").first),
                        ("Train", lambda: page.get_by_role("heading", name="Train", exact=True))):
        t0 = time.perf_counter()
        try:
            page.get_by_role("link", name=link).first.click(timeout=timeout_s * 1000)
            shown().wait_for(timeout=timeout_s * 1000)
            times.append(time.perf_counter() - t0)
        except PlaywrightTimeout:
            times.append(timeout_s)
            page.goto(page.url.split("?")[0], wait_until="commit")
            return times
    return times


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a value that was measured)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def read_stats(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _switcher_main(url: str, out: str, stop: str, deadline_s: float) -> None:
    """Child process: its own Chromium, one session switching pages until told to stop.

    Each measured switch is appended to ``out`` as it happens, so whatever was measured
    survives even if this process has to be killed (a page that stops answering can block a
    Playwright call in a way its timeout does not end).
    """
    os.setsid()  # its own process group, so the parent can end it together with its browser
    from playwright.sync_api import sync_playwright

    t_end = time.monotonic() + deadline_s
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(120_000)
        open_page(page, f"{url}/train?preset=quickstart_cnn")
        with open(out, "a") as f:
            f.write("ready\n")
            f.flush()
            while not Path(stop).exists() and time.monotonic() < t_end:
                for seconds in switch_once(page):
                    f.write(f"{seconds:.4f}\n")
                    f.flush()
                page.wait_for_timeout(250)
        browser.close()


class Switcher:
    """The extra session that measures page switches, in a child process the bench can always end."""

    def __init__(self, url: str, tmp: Path, deadline_s: float):
        import multiprocessing

        self.out, self.stop_file = tmp / "switches.txt", tmp / "switches.stop"
        self.proc = multiprocessing.get_context("spawn").Process(
            target=_switcher_main, args=(url, str(self.out), str(self.stop_file), deadline_s), daemon=True)
        self.proc.start()

    def lines(self) -> list[str]:
        return self.out.read_text().split() if self.out.exists() else []

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        t0 = time.monotonic()
        while "ready" not in self.lines() and time.monotonic() - t0 < timeout_s and self.proc.is_alive():
            time.sleep(0.5)

    def finish(self) -> tuple[list[float], bool]:
        """(switch times, whether the child had to be killed)."""
        import signal

        self.stop_file.touch()
        self.proc.join(90)
        killed = self.proc.is_alive()
        if killed:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.join(10)
        return [float(x) for x in self.lines() if x != "ready"], killed


def run_load(browser, url: str, sessions: int, stats_file: Path, deadline_s: float, query: str = TRAIN_QUERY,
             measure_switches: bool = True, log=print, server_pid: int | None = None) -> dict:
    """Start ``sessions`` trainings and watch them to the end; returns the figures."""
    t_start = time.perf_counter()
    warm_up(browser, url)
    switcher = Switcher(url, stats_file.parent, deadline_s) if measure_switches else None
    if switcher is not None:
        switcher.wait_ready()
    pages = open_sessions(browser, url, sessions, query)
    log(f"{sessions} sessions on the Train page at {time.perf_counter() - t_start:.1f} s")
    t_train = time.perf_counter()
    cpu0 = cpu_seconds(server_pid) if server_pid else None
    rss0 = rss_mb(server_pid) if server_pid else None
    for i, page in enumerate(pages):
        click_button(page, "Train")
        log(f"session {i + 1}: Train pressed at {time.perf_counter() - t_start:.1f} s")
    running_seen: list[int] = []
    results = [read(p, i) for i, p in enumerate(pages)]
    while not all(r.finished for r in results):
        if time.perf_counter() - t_start > deadline_s:
            log(f"deadline of {deadline_s:.0f} s reached with sessions still training")
            break
        pages[0].wait_for_timeout(1000)
        running_seen.append(read_stats(stats_file).get("running", 0))
        before = results
        results = [read(p, i) for i, p in enumerate(pages)]
        for old, new in zip(before, results):
            if new.finished and not old.finished:
                log(f"session {new.index + 1}: {'completed' if new.ok else 'FAILED'} at "
                    f"{time.perf_counter() - t_start:.1f} s (queue positions shown: {new.queued or 'none'})")
    elapsed = time.perf_counter() - t_start
    training_phase = time.perf_counter() - t_train
    server_cores = (cpu_seconds(server_pid) - cpu0) / training_phase if server_pid else None
    stats = read_stats(stats_file)
    switches, switcher_killed = switcher.finish() if switcher is not None else ([], False)
    for p in pages:
        p.context.close()
    run_ids = [r.run_id for r in results if r.run_id]
    return {
        "sessions": sessions,
        "completed": sum(r.ok for r in results),
        "errors": [{"session": r.index + 1, "failed": r.failed, "exception": r.exception, "stopped": r.stopped}
                   for r in results if r.failed or r.exception or r.stopped],
        "queued_sessions": sum(bool(r.queued) for r in results),
        "queue_positions": {r.index + 1: r.queued for r in results},
        "distinct_run_ids": len(set(run_ids)) == len(run_ids),
        "run_ids": run_ids,
        "max_workers": stats.get("max_workers"),
        "peak_running": stats.get("peak_running"),
        "max_running_sampled": max(running_seen, default=None),
        "training_wall_s": {r.index + 1: r.wall_s for r in results},
        "server_cpu_cores": round(server_cores, 2) if server_cores is not None else None,
        "server_rss_mb_before_after": [round(rss0, 1), round(rss_mb(server_pid), 1)] if server_pid else None,
        "page_switches": len(switches),
        "page_switches_timed_out": sum(t >= 60.0 for t in switches),
        "page_switcher_hung": switcher_killed,
        "page_switch_p50_s": round(percentile(switches, 50), 3),
        "page_switch_p95_s": round(percentile(switches, 95), 3),
        "page_switch_max_s": round(max(switches), 3) if switches else None,
        "wall_s": round(elapsed, 1),
    }


def verdict(fig: dict) -> list[str]:
    """What went wrong (empty when the load test passed)."""
    problems = []
    if fig["completed"] != fig["sessions"]:
        problems.append(f"{fig['sessions'] - fig['completed']} session(s) did not complete")
    if fig["errors"]:
        problems.append(f"errors shown: {fig['errors']}")
    if not fig["distinct_run_ids"]:
        problems.append("two sessions showed the same run id")
    if fig["peak_running"] is None or fig["max_workers"] is None:
        problems.append("no pool stats file was written")
    elif fig["peak_running"] > fig["max_workers"]:
        problems.append(f"cap broken: {fig['peak_running']} running with a cap of {fig['max_workers']}")
    if fig.get("page_switcher_hung"):
        problems.append("the page-switching session stopped answering and had to be killed")
    if fig["max_workers"] and fig["sessions"] > fig["max_workers"] and fig["queued_sessions"] == 0:
        problems.append("more sessions than training slots, yet no session showed a queue position")
    return problems


def headless_wall_s() -> float:
    """The same training (quickstart_cnn, 1 epoch) in this process with no UI, on the torch thread
    count the server gives one job: the reference for how much the serving slowed training down."""
    import torch

    from bigmodel_core.config.presets import load_preset
    from bigmodel_core.limits import current_limits
    from bigmodel_core.training.trainer import Trainer

    torch.set_num_threads(current_limits().threads_per_job)
    cfg = load_preset("quickstart_cnn").with_changes({"training.epochs": 1})
    Trainer(cfg.with_changes({"data.train_size": 64, "data.val_size": 16})).fit()  # warm up
    return Trainer(cfg).fit().wall_seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--max-jobs", type=int, help="BIGMODEL_MAX_CONCURRENT_JOBS for the server (default: its own)")
    ap.add_argument("--query", default=TRAIN_QUERY, help="Train page query string")
    ap.add_argument("--deadline", type=float, default=1500.0, help="seconds before giving up")
    ap.add_argument("--engine", choices=["pool", "sharing", "ray", "all"],
                    help="no browser: simulated learners against the job pool with this engine (all: each in turn)")
    ap.add_argument("--learners", default="8,30", help="with --engine: learner counts, comma-separated")
    ap.add_argument("--epochs", type=int, default=1, help="with --engine: epochs of the lesson (quickstart_cnn)")
    args = ap.parse_args()
    if args.engine:
        from bench.load_engines import ENGINES, run_all

        counts = [int(n) for n in args.learners.split(",") if n.strip()]
        engines = list(ENGINES) if args.engine == "all" else [args.engine]
        results = run_all(engines, counts, args.epochs)
        print(json.dumps(results, indent=1))
        bad = [r for r in results if r["completed"] != r["learners"] or r["runs_stored"] != r["learners"]
               or not r["distinct_run_ids"] or not r["identical_metrics"]]
        print("PASS" if not bad else f"FAIL: {len(bad)} round(s) where a learner got no run of its own, or "
              "the runs differ")
        return 0 if not bad else 1

    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    stats_file = tmp / "pool-stats.json"
    # identical trainings would share one (see --engine sharing): this measures the queue
    env = {"BIGMODEL_STATS_FILE": str(stats_file), "BIGMODEL_IDLE_STOP_SECONDS": "1800",
           "BIGMODEL_SHARE_IDENTICAL": "0"}
    if args.max_jobs:
        env["BIGMODEL_MAX_CONCURRENT_JOBS"] = str(args.max_jobs)
    proc, url = start_app(tmp, env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                fig = run_load(browser, url, args.sessions, stats_file, args.deadline, args.query,
                               server_pid=proc.pid)
            finally:
                browser.close()
    finally:
        stop_app(proc)
    log = next(tmp.glob("streamlit-*.log"), None)
    tracebacks = len(re.findall(r"Traceback \(most recent call last\)", log.read_text())) if log else 0
    fig["server_tracebacks"] = tracebacks
    walls = sorted(w for w in fig["training_wall_s"].values() if w)
    if walls and args.query == TRAIN_QUERY:
        ref = headless_wall_s()
        fig["headless_training_wall_s"] = round(ref, 1)
        fig["training_slowdown_median"] = round(statistics.median(walls) / ref, 2)
    print(json.dumps(fig, indent=1))
    problems = verdict(fig) + ([f"{tracebacks} traceback(s) in the server log {log}"] if tracebacks else [])
    print(f"sessions completed: {fig['completed']}/{fig['sessions']} ({fig['queued_sessions']} queued visibly), "
          f"peak running {fig['peak_running']} (cap {fig['max_workers']}), "
          f"page switch p50 {fig['page_switch_p50_s']:.2f} s, p95 {fig['page_switch_p95_s']:.2f} s "
          f"over {fig['page_switches']} switches, {fig['wall_s']:.0f} s in all; server used "
          f"{fig['server_cpu_cores']} cores while training; median training slowdown against the same training "
          f"headless: {str(fig['training_slowdown_median']) + 'x' if 'training_slowdown_median' in fig else 'n/a'}")
    print("PASS" if not problems else "FAIL: " + "; ".join(problems))
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
