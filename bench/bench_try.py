"""How long from a stroke on the canvas to the answer and its attributions? (``python -m bench.bench_try``)

Engine (always): for each model, a series of drawings made stroke by stroke; after each stroke the
server's whole path runs as on the page: the canvas payload checked and decoded, resized to the model's
input, the prediction, saliency, integrated gradients (32 points) and Grad-CAM (CNN) with Captum, the
feature maps (CNN) or the first layer's states (RNN), and the figures built. Beside it, alternating
stroke by stroke so the machine's noise hits both, the same input's plain prediction (payload to
probabilities). Prints the medians, the 90th percentiles and their ratio.

Browser (``--browser``): starts the app, trains quickstart_cnn for one epoch on the Train page, draws
``--strokes`` strokes with the mouse on the canvas and measures, for each, the time from releasing the
button to the new probabilities and the new saliency map in the page (Chromium and the server on this
machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from bigmodel_core.config.presets import load_preset
from bigmodel_core.inspect import attributions, probes
from bigmodel_core.inspect.try_input import CANVAS_SIDE, drawing_pixels, encode_drawing, prepare_image
from bigmodel_core.limits import current_limits
from bigmodel_core.nn.models import build_model
from bigmodel_core.training.trainer import load_data
from ui.figures import attributions as figs


def strokes(rng: np.random.Generator, count: int, side: int = CANVAS_SIDE) -> list[np.ndarray]:
    """Drawings after each of ``count`` random strokes (a pen of width side/11), white on black."""
    grid = np.zeros((side, side), dtype=np.float32)
    yy, xx = np.mgrid[0:side, 0:side]
    out = []
    for _ in range(count):
        (x0, y0), (x1, y1) = rng.uniform(0.15 * side, 0.85 * side, size=(2, 2))
        for t in np.linspace(0, 1, 24):
            cx, cy = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            grid[(xx - cx) ** 2 + (yy - cy) ** 2 <= (side / 22) ** 2] = 1.0
        out.append(grid.copy())
    return out


def full_path(model, info, payload) -> dict:
    """What the page does after a stroke (minus drawing the figures in the browser)."""
    x = prepare_image(drawing_pixels(payload), info).x
    ex = attributions.explain(model, x, info.task)
    maps = [fm for fm in probes.feature_maps(model, x, max_maps=16) if fm.stage == "activation"]
    img = x.numpy()[0]
    return {"figures": [figs.model_input_figure(x.numpy()), figs.answer_figure(ex, info.class_names)]
            + figs.attribution_figures(img, ex, "a class") + [figs.feature_maps_figure(fm) for fm in maps]}


def plain_path(model, info, payload) -> np.ndarray:
    x = prepare_image(drawing_pixels(payload), info).x
    with torch.no_grad():
        return torch.softmax(model(x[None]), dim=1)[0].numpy()


def engine(preset: str, rounds: int, per_round: int) -> None:
    cfg = load_preset(preset)
    ds = load_data(cfg.with_changes({"data.train_size": 64, "data.val_size": 16}))
    model = probes.probe_copy(build_model(cfg.model, ds.info, seed=0))
    attributions.warm()
    rng = np.random.default_rng(0)
    payloads = [encode_drawing(g) for _ in range(rounds) for g in strokes(rng, per_round)]
    full_path(model, ds.info, payloads[0])  # first use: kernels, caches
    full, plain = [], []
    for p in payloads:
        t = time.perf_counter()
        plain_path(model, ds.info, p)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        full_path(model, ds.info, p)
        full.append(time.perf_counter() - t)
    med_f, med_p = statistics.median(full), statistics.median(plain)
    p90 = sorted(full)[int(0.9 * (len(full) - 1))]
    print(f"{preset} ({ds.info.input_shape}, {len(full)} strokes, {torch.get_num_threads()} threads): "
          f"stroke -> answer + saliency + integrated gradients + Grad-CAM + feature maps + figures: median "
          f"{1000 * med_f:.1f} ms, p90 {1000 * p90:.1f} ms; plain prediction {1000 * med_p:.2f} ms; "
          f"ratio {med_f / med_p:.1f}")


def browser(count: int) -> None:
    import tempfile
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app
    from tests.e2e.test_inspect import train_one_epoch
    from tests.e2e.test_try_model import CANVAS, data, stroke, wait_changed

    tmp = Path(tempfile.mkdtemp(prefix="bench-try-"))
    proc, url = start_app(tmp)
    rng = np.random.default_rng(1)
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(90_000)
            train_one_epoch(page, url, "/train?preset=quickstart_cnn&training.epochs=1")
            page.frame_locator(CANVAS).locator("#pad").wait_for()
            changed, why = 0, []
            for _ in range(count):
                before_a, before_w = data(page, "answer"), data(page, "saliency")
                (x0, y0), (x1, y1) = rng.uniform(0.15, 0.85, size=(2, 2))
                stroke(page, [(x0, y0), ((x0 + x1) / 2, (y0 + y1) / 2 + 0.05), (x1, y1)])
                t = time.perf_counter()
                wait_changed(page, "saliency", before_w)
                why.append(time.perf_counter() - t)
                changed += data(page, "answer") != before_a
                page.wait_for_timeout(300)
            b.close()
    finally:
        stop_app(proc)
    print(f"browser (Chromium and the server on this machine, {count} strokes): mouse up -> new saliency map "
          f"on the page: median {statistics.median(why):.2f} s, max {max(why):.2f} s (the probabilities come in "
          f"the same update; {changed} of {count} strokes changed them)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="quickstart_cnn,textbook_cnn,deep_residual_cnn",
                    help="comma-separated CNN presets")
    ap.add_argument("--rounds", type=int, default=6, help="drawings per model")
    ap.add_argument("--strokes", type=int, default=5, help="strokes per drawing (browser: strokes in all)")
    ap.add_argument("--browser", action="store_true", help="also measure in Chromium against the real app")
    ap.add_argument("--threads", type=int, default=current_limits().threads_per_job,
                    help="torch threads (default: a training job's, as the app server sets them)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for preset in [p for p in args.presets.split(",") if p]:
        engine(preset, args.rounds, args.strokes)
    if args.browser:
        browser(max(3, args.strokes * 2))


if __name__ == "__main__":
    main()
