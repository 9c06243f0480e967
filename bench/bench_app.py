"""App benchmark: first page, click-to-first-point, throughput under a watching browser, server memory.

Run: ``python -m bench.bench_app [--rounds 4] [--epochs N]`` (needs /usr/bin/chromium).
Everything stays on localhost. First, what the first page imports (``python -X importtime`` of the
modules app.py and Home load, in a fresh interpreter: no torch among them), then the first page in
the browser: from the moment the fresh server answers its health check to Home's "Train your first
CNN" button being on screen and enabled (target under 2 s; after the rounds, ``--first-pages N`` more
cold starts, each a fresh server and a fresh browser context, give its median). Each round then opens the Train page
for quickstart_cnn in a fresh browser session, waits until it is drawn, clicks Train (the page's
trainer records the live probe, as for a learner) and watches the run to the end; and
runs the headless CLI (``python -m bigmodel_core train quickstart_cnn``, a fresh process) on
the same config. Samples/s on both sides come from the run summaries (training time only).
Rounds alternate which side goes first, so drift and bursts of machine noise hit both; the
ratio of the medians and the median of the per-round ratios are the figures to quote (on a
shared machine they move by several points between runs: quote several runs, or many rounds).
The browser runs on the same machine as the server, so every redraw it makes is CPU the
training does not get. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.e2e.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PLOTS_JS,
    POINTS_JS,
    click_button,
    open_page,
    start_app,
    stop_app,
    wait_idle,
)

ROOT = Path(__file__).resolve().parents[1]
# which job the live curves show: the chart row's revision starts with the job id
REVISION_JS = """() => {
  const p = (""" + PLOTS_JS + """)().find(p => p.layout && p.layout.title && p.layout.title.text === "Loss");
  return p ? String(p.layout.uirevision || "") : "";
}"""
# what app.py and the Home page import before the first page is drawn
HOME_IMPORTS = ("ui.state, ui.sidebar, ui.lesson, ui.urlcodec, ui.literal, ui.pages, ui.warmup, ui.catalog, "
                "ui.widgets, bigmodel_core.config.lessons, bigmodel_core.config.presets")


def home_import_seconds() -> tuple[float, bool]:
    """Seconds ``python -X importtime`` counts for the Home path's imports, and whether torch was among them."""
    code = f"import sys, {HOME_IMPORTS}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    total = 0
    for line in out.stderr.splitlines():
        parts = line.split("|")
        top = len(parts) == 3 and parts[2].startswith(" ") and not parts[2].startswith("  ")
        if top and parts[1].strip().isdigit():
            total += int(parts[1])  # top-level modules only: their cumulative time includes what they import
    return total / 1e6, out.stdout.strip() == "True"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cli_samples_per_sec(epochs: int) -> float:
    out = Path(tempfile.mkdtemp(prefix="bench-app-cli-"))
    subprocess.run([sys.executable, "-m", "bigmodel_core", "train", "quickstart_cnn", "--out", str(out),
                    "--epochs", str(epochs)], check=True, capture_output=True, cwd=ROOT)
    return json.loads((out / "summary.json").read_text())["samples_per_sec"]


def cold_first_pages(browser, n: int) -> list[float]:
    """Seconds from a fresh server's health answer to Home's first-step button, in a fresh browser context."""
    seconds = []
    for _ in range(n):
        tmp = Path(tempfile.mkdtemp(prefix="bench-app-first-"))
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        proc, url = start_app(tmp)
        try:
            t_answer = time.perf_counter()
            page.goto(url)
            expect(page.get_by_role("button", name="Train your first CNN")).to_be_enabled(timeout=60_000)
            seconds.append(round(time.perf_counter() - t_answer, 2))
        finally:
            stop_app(proc)
            context.close()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=5, help="quickstart_cnn trains 5 epochs (about 3-5 s here)")
    ap.add_argument("--first-pages", type=int, default=3,
                    help="cold starts (a fresh server and browser context each) for the first-page figure")
    args = ap.parse_args()
    out: dict[str, object] = {"epochs": args.epochs}
    out["home_imports_s"], out["home_imports_load_torch"] = home_import_seconds()
    out["home_imports_s"] = round(out["home_imports_s"], 2)
    first_point, app_sps, cli_sps = [], [], []
    tmp = Path(tempfile.mkdtemp(prefix="bench-app-"))
    train_url = f"/train?preset=quickstart_cnn&training.epochs={args.epochs}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(120_000)
        t0 = time.perf_counter()
        proc, url = start_app(tmp)
        try:
            t_answer = time.perf_counter()  # the server answered its health check
            page.goto(url)
            first = page.get_by_role("button", name="Train your first CNN")
            expect(first).to_be_enabled(timeout=60_000)
            out["first_page_after_server_answers_s"] = round(time.perf_counter() - t_answer, 2)
            out["start_to_first_page_s"] = round(time.perf_counter() - t0, 2)
            out["rss_idle_mb"] = round(rss_mb(proc.pid))
            for r in range(args.rounds):
                if r % 2:
                    cli_sps.append(cli_samples_per_sec(args.epochs))
                open_page(page, url + train_url)
                page.get_by_role("button", name="Train", exact=True).wait_for()
                wait_idle(page)  # the page (and the previous round's results below the curves) is drawn
                time.sleep(1.0)  # a learner looks at the page before pressing Train
                before = page.evaluate(REVISION_JS)
                stored = set((tmp / "runs").glob("*/summary.json"))
                t1 = time.perf_counter()
                click_button(page, "Train")
                # the first point of this job's curve (the previous round's curve is still drawn until then)
                page.wait_for_function(f"() => ({REVISION_JS})() !== {json.dumps(before)} && ({POINTS_JS})() > 0",
                                       polling=20)
                first_point.append(time.perf_counter() - t1)
                # this round's run: the page still shows the previous round's "Saved as run" until it ends
                deadline = time.time() + 600
                while not (new := set((tmp / "runs").glob("*/summary.json")) - stored) and time.time() < deadline:
                    time.sleep(0.2)
                summary = next(iter(new))
                page.get_by_text(summary.parent.name).first.wait_for(timeout=60_000)  # the page has drawn its end
                app_sps.append(json.loads(summary.read_text())["samples_per_sec"])
                if r == 0:
                    out["rss_after_default_training_mb"] = round(rss_mb(proc.pid))
                page.goto("about:blank")  # nothing draws while the CLI trains
                time.sleep(0.5)
                if not r % 2:
                    cli_sps.append(cli_samples_per_sec(args.epochs))
            out["rss_after_all_rounds_mb"] = round(rss_mb(proc.pid))
        finally:
            stop_app(proc)
        if args.first_pages:
            cold = cold_first_pages(browser, args.first_pages)
            out["first_page_cold_starts_s"] = cold
            out["first_page_cold_median_s"] = statistics.median(cold)
        browser.close()
    out["click_to_first_point_s"] = [round(v, 2) for v in first_point]
    out["click_to_first_point_median_s"] = round(statistics.median(first_point), 2)
    out["app_samples_per_sec"] = [round(v) for v in app_sps]
    out["cli_samples_per_sec"] = [round(v) for v in cli_sps]
    out["ratio_per_round"] = [round(a / c, 3) for a, c in zip(app_sps, cli_sps)]
    out["app_to_cli_ratio"] = round(statistics.median(app_sps) / statistics.median(cli_sps), 3)
    # each round's two sides ran next to each other: the median of their ratios is less moved by
    # the machine's speed drifting over the run than the ratio of the medians
    out["median_round_ratio"] = round(statistics.median(a / c for a, c in zip(app_sps, cli_sps)), 3)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
