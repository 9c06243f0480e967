"""Server memory with a class: the real app server, N learners in Chromium who each train the default model.

Run: ``python -m bench.bench_server_memory [--sessions 5] [--budget-mb 600] [--settle-mb 60]``
(needs /usr/bin/chromium; loopback only). It starts ``streamlit run app.py`` on a free
localhost port with a fresh run store and opens the home page once (the first import). One
learner trains and leaves (what a server pays once: torch's kernels and allocator pools, the
dataset cache); a minute later RSS is the idle level. Then learners arrive one after another:
each is a new browser context (its own workspace) that opens the Train page of quickstart_cnn
with its default settings (5 epochs), presses Train and waits until the run is completed,
staying on the page. The server's resident memory (VmRSS of its process) is read after each
learner's run and sampled every 0.2 s for the peak. Then every learner closes their tab, and
RSS is read every 15 s for a minute.

The check: the peak stays under ``--budget-mb`` (the smallest Community Cloud tier guarantees
690 MB; the budget leaves room for the OS and Python's own fluctuations), and a minute after the
learners left RSS is within ``--settle-mb`` of the idle level. Prints one line per reading and a
JSON summary; exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, click_button, open_page, start_app, stop_app, wait_for_text

TRAIN_URL = "/train?preset=quickstart_cnn"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line")


class PeakSampler(threading.Thread):
    def __init__(self, pid: int, every_s: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every_s, self.peak, self._done = pid, every_s, 0.0, threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, RuntimeError):
                return
            self._done.wait(self.every_s)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak


def train_one(page, url: str, timeout_s: float) -> None:
    """One learner: the Train page of quickstart_cnn with its default settings, Train, until completed."""
    page.set_default_timeout(int(timeout_s * 1000))
    open_page(page, url + TRAIN_URL)
    click_button(page, "Train")
    wait_for_text(page, "Completed", timeout=timeout_s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--budget-mb", type=float, default=600.0)
    ap.add_argument("--settle-mb", type=float, default=60.0,
                    help="how far above the level before the first learner RSS may be a minute after they left")
    ap.add_argument("--idle-wait", type=float, default=60.0, help="seconds after the warm-up learner left")
    ap.add_argument("--train-timeout", type=float, default=300.0, help="seconds one learner's training may take")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        proc, url = start_app(Path(tmp))
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            first = browser.new_context()
            page = first.new_page()
            page.set_default_timeout(120_000)
            open_page(page, url)
            first.close()
            time.sleep(2)
            cold = rss_mb(proc.pid)
            print(f"server up, home page opened once: {cold:.1f} MB", flush=True)
            # the idle level: a server that has trained once (torch, its kernels and allocator pools,
            # the dataset cache: paid once per server) and has nobody connected
            warm = browser.new_context(viewport={"width": 1366, "height": 768})
            train_one(warm.new_page(), url, args.train_timeout)
            warm.close()
            time.sleep(args.idle_wait)
            before = rss_mb(proc.pid)
            print(f"idle after one training, {args.idle_wait:.0f} s after its tab closed: {before:.1f} MB", flush=True)
            sampler = PeakSampler(proc.pid)
            sampler.start()
            contexts, after_each = [], []
            for i in range(args.sessions):
                ctx = browser.new_context(viewport={"width": 1366, "height": 768})
                contexts.append(ctx)
                train_one(ctx.new_page(), url, args.train_timeout)
                after_each.append(round(rss_mb(proc.pid), 1))
                print(f"learner {i + 1} trained: {after_each[-1]:.1f} MB", flush=True)
            peak = sampler.stop()
            for ctx in contexts:
                ctx.close()
            left = time.monotonic()
            after_leaving = []
            for wait in (15, 30, 45, 60):
                time.sleep(max(0.0, left + wait - time.monotonic()))
                after_leaving.append(round(rss_mb(proc.pid), 1))
                print(f"{wait} s after they left: {after_leaving[-1]:.1f} MB", flush=True)
        finally:
            browser.close()
            stop_app(proc)
    ok_peak = peak < args.budget_mb
    ok_settle = after_leaving[-1] <= before + args.settle_mb
    summary = {"sessions": args.sessions, "rss_cold_mb": round(cold, 1), "rss_idle_mb": round(before, 1),
               "rss_after_each_mb": after_each,
               "rss_peak_mb": round(peak, 1), "rss_after_leaving_mb": dict(zip(("15s", "30s", "45s", "60s"),
                                                                            after_leaving)),
               "budget_mb": args.budget_mb, "peak_ok": ok_peak, "settled_ok": ok_settle}
    print(json.dumps(summary))
    return 0 if ok_peak and ok_settle else 1


if __name__ == "__main__":
    raise SystemExit(main())
