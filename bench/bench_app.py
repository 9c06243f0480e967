"""App benchmark: start-up, click-to-first-point, throughput under a watching browser, server memory.

Run: ``python bench/bench_app.py`` (needs /usr/bin/chromium). Everything stays on
localhost. Prints one JSON object; the throughput figure is a ratio of two measurements
taken in this run (the app training quickstart_cnn while Chromium watches, and the
headless engine on the same config and thread count), so machine noise mostly cancels.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, click_button, open_page, start_app, stop_app  # noqa: E402

POINTS_JS = """() => {
  const p = [...document.querySelectorAll('.js-plotly-plot')]
      .find(el => (el.data || []).some(t => t.name === 'batch loss'));
  return p ? p.data.find(t => t.name === 'batch loss').x.length : -1;
}"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def headless_samples_per_sec() -> float:
    from bigmodel_core.presets import load_preset
    from bigmodel_core.train import Trainer

    cfg = load_preset("quickstart_cnn").with_changes({"training.device": "cpu"})
    return Trainer(cfg).fit().samples_per_sec


def main() -> None:
    out: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-app-"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(120_000)
        t0 = time.perf_counter()
        proc, url = start_app(tmp)
        try:
            open_page(page, url)
            page.get_by_text("Start from a preset").first.wait_for()
            out["start_to_interactive_s"] = time.perf_counter() - t0
            out["rss_idle_mb"] = rss_mb(proc.pid)

            open_page(page, url + "/train?preset=quickstart_cnn")
            page.get_by_role("button", name="Train", exact=True).wait_for()  # page drawn: start the clock
            t1 = time.perf_counter()
            click_button(page, "Train")
            page.wait_for_function(f"() => ({POINTS_JS})() > 0", polling=20)
            out["click_to_first_point_s"] = time.perf_counter() - t1
            page.get_by_text("Saved as run").first.wait_for(timeout=600_000)
            runs = sorted((tmp / "runs").glob("*/summary.json"))
            app_sps = json.loads(runs[-1].read_text())["samples_per_sec"]
            out["rss_after_default_training_mb"] = rss_mb(proc.pid)
            cli_sps = headless_samples_per_sec()
            out["app_samples_per_sec"] = app_sps
            out["headless_samples_per_sec"] = cli_sps
            out["app_to_headless_ratio"] = app_sps / cli_sps
        finally:
            stop_app(proc)
            browser.close()
    print(json.dumps({k: round(v, 3) for k, v in out.items()}, indent=2))


if __name__ == "__main__":
    main()
