"""Helpers for the browser tests: start the app, open pages, wait, click, take screenshots."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("BIGMODEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


# every Plotly chart on the page, including those inside the live-chart frames (same origin)
PLOTS_JS = """() => [document, ...[...document.querySelectorAll('iframe')].map(f => {
    try { return f.contentDocument; } catch (e) { return null; } })]
  .filter(d => d).flatMap(d => [...d.querySelectorAll('.js-plotly-plot')])"""

# the first trace called `name` on any Plotly chart of the page, or null
TRACE_JS = """(name) => {
  for (const p of (""" + PLOTS_JS + """)()) {
    const t = (p.data || []).find(t => t.name === name);
    if (t) return t;
  }
  return null;
}"""

# how many measured points the Train page's batch-loss curve holds (-1: no such chart)
POINTS_JS = """() => {
  const t = (""" + TRACE_JS + """)('batch loss');
  return t ? t.x.length : -1;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(tmp: Path, env_extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, BIGMODEL_RUNS_DIR=str(tmp / "runs"), PYTHONUNBUFFERED="1", **(env_extra or {}))
    log = open(tmp / f"streamlit-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {(tmp / f'streamlit-{port}.log').read_text()[-2000:]}")
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("streamlit did not become healthy in 60 s")


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def open_page(page, url: str) -> None:
    """Go to a URL and wait until Streamlit has rendered and finished running the script."""
    page.goto(url)
    page.wait_for_selector("[data-testid='stApp']")
    wait_idle(page)


def wait_idle(page, timeout: float = 30.0) -> None:
    """Wait until the app is not running a script (the status widget is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout * 1000)


def wait_for_text(page, text: str, timeout: float = 60.0):
    loc = page.get_by_text(re.compile(re.escape(text)))
    try:
        loc.first.wait_for(timeout=timeout * 1000)
    except PlaywrightTimeout:
        raise AssertionError(f"{text!r} not on the page within {timeout:g} s; {describe(page)}") from None
    return loc.first


def describe(page) -> str:
    """Where the page is and what it shows, for a failing wait's message."""
    try:
        body = page.locator("body").inner_text(timeout=5_000)
    except PlaywrightTimeout:
        body = "(no text)"
    return f"at {page.url}, showing: " + " | ".join(line for line in body.splitlines() if line.strip())[:2500]


def click_button(page, label: str) -> None:
    page.get_by_role("button", name=label, exact=True).click()


def shot(page, name: str, max_height: int = 4000) -> Path:
    """Save the whole page: Streamlit scrolls inside its main section, so grow the viewport to fit it."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMain\"]') || document.body;"
        " return m.scrollHeight; }")
    page.set_viewport_size({"width": size["width"], "height": min(max(size["height"], int(height) + 20), max_height)})
    page.wait_for_timeout(400)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
    return path

