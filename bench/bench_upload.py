"""Upload benchmark: a ~10 MB zip of PNGs to a trainable dataset, and the memory that takes.

Run: ``python -m bench.bench_upload [--mb 10] [--side 64] [--rounds 3]``. It draws a zip of
class folders of grayscale PNGs (``--side`` pixels square, smooth shapes plus noise, so they
compress like scans rather than like pure noise) until the zip holds about ``--mb`` MB, then,
``--rounds`` times, times the three steps from bytes to a dataset a run can train on:

- parse: ``read_upload`` (archive checks, reading members, decoding, grayscale, resize to 28);
- store: ``UploadStore.save`` (the normalised .npz, compressed, written atomically);
- build: ``build_dataset`` of the stored file (read back, content hash checked, split).

While parsing, a thread samples this process's resident memory (VmRSS) every 2 ms; the peak
growth is the highest sample minus the reading just before parsing (the zip's bytes are
already in memory then). CPU time (this process, every thread) is printed beside the parse's
wall time: on a machine shared with other work it moves less. The first round is the figure to
quote for memory: later rounds reuse memory the allocator kept from it and show little growth.
Prints one line per round and a JSON summary (median times, the first round's peak growth and
every round's).

``--server`` measures the same zip on the real page instead: it starts ``streamlit run app.py``
on a free localhost port with a fresh run store, opens the Train page of quickstart_cnn in
Chromium (/usr/bin/chromium), waits for a first training of the default digits to end (what a
server pays once: torch's kernels, the dataset cache), then, ``--rounds`` times in a new browser
context each (a new workspace), drops the zip into the Train page's upload box and times it until
the page shows the dataset's description, presses Train and waits until the run is completed. The
server's resident memory (VmRSS) is read before and after each step and sampled every 0.2 s for
the peak; the check is that the peak stays under ``--budget-mb`` (exit status 1 otherwise).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from bigmodel_core.data import build_dataset, clear_dataset_cache
from bigmodel_core.data.uploads import UploadStore, read_upload, unregister_uploaded


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


class PeakRSS:
    """The highest VmRSS seen while the block runs, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def make_zip(target_mb: float, side: int, classes: int = 10, seed: int = 0) -> tuple[bytes, int]:
    """A zip of ``classes`` folders of side x side PNGs, about ``target_mb`` MB; returns it and the image count."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    buf = io.BytesIO()
    count = 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        while buf.tell() < target_mb * 1_000_000:
            cls = count % classes
            cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), 0.1 + 0.03 * cls
            disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r).astype(np.float64)
            pixels = np.clip(40 + 180 * disc + rng.normal(0, 25, size=(side, side)), 0, 255).astype(np.uint8)
            png = io.BytesIO()
            Image.fromarray(pixels).save(png, "PNG")
            z.writestr(f"shapes/class_{cls}/{count:05d}.png", png.getvalue())
            count += 1
    return buf.getvalue(), count


def server_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line")


def on_the_page(data: bytes, count: int, rounds: int, budget_mb: float) -> int:
    """The zip uploaded on the real Train page and trained on, with the server's memory (see above)."""
    import re  # noqa: PLC0415 - the browser side is only for --server

    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    from bench.bench_server_memory import PeakSampler  # noqa: PLC0415
    from tests.e2e.helpers import (  # noqa: PLC0415
        CHROMIUM,
        CHROMIUM_ARGS,
        click_button,
        open_page,
        start_app,
        stop_app,
        wait_for_text,
        wait_idle,
    )

    url_path = "/train?preset=quickstart_cnn"
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-upload-page-") as tmp, sync_playwright() as p:
        archive = Path(tmp) / "shapes.zip"
        archive.write_bytes(data)
        proc, url = start_app(Path(tmp))
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            warm = browser.new_context(viewport={"width": 1366, "height": 768})
            page = warm.new_page()
            page.set_default_timeout(300_000)
            open_page(page, url + url_path)
            click_button(page, "Train")
            wait_for_text(page, "Completed", timeout=300)
            warm.close()
            time.sleep(5)
            idle = server_rss_mb(proc.pid)
            print(f"server idle after one training of the default data: {idle:.1f} MB", flush=True)
            sampler = PeakSampler(proc.pid)
            sampler.start()
            overall = idle
            for i in range(1, rounds + 1):
                ctx = browser.new_context(viewport={"width": 1366, "height": 768})
                page = ctx.new_page()
                page.set_default_timeout(300_000)
                open_page(page, url + url_path)
                page.get_by_text(re.compile(r"^Data · ")).first.click()
                wait_idle(page)
                before = server_rss_mb(proc.pid)
                sampler.peak = before  # the peak of this phase from here
                t0 = time.perf_counter()
                page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(archive))
                wait_for_text(page, "Your data:", timeout=300)
                upload_s = time.perf_counter() - t0
                wait_idle(page)
                uploaded = server_rss_mb(proc.pid)
                upload_peak, sampler.peak = sampler.peak, uploaded
                overall = max(overall, upload_peak)
                t1 = time.perf_counter()
                click_button(page, "Train")
                wait_for_text(page, "Completed", timeout=600)
                train_s = time.perf_counter() - t1
                trained = server_rss_mb(proc.pid)
                train_peak = sampler.peak
                overall = max(overall, train_peak)
                r = {"upload_to_description_s": round(upload_s, 2), "train_s": round(train_s, 1),
                     "rss_before_mb": round(before, 1), "rss_after_upload_mb": round(uploaded, 1),
                     "rss_peak_upload_mb": round(upload_peak, 1), "rss_after_training_mb": round(trained, 1),
                     "rss_peak_training_mb": round(train_peak, 1)}
                out.append(r)
                print(f"round {i}: zip dropped -> description on the page {upload_s:.2f} s; RSS {before:.1f} -> "
                      f"{uploaded:.1f} MB after the upload (peak {upload_peak:.1f}), {trained:.1f} MB after training "
                      f"5 epochs on it (peak {train_peak:.1f}; {train_s:.1f} s to Completed)", flush=True)
                ctx.close()
            peak = max(overall, sampler.stop())
        finally:
            browser.close()
            stop_app(proc)
    summary = {"zip_mb": round(len(data) / 1e6, 2), "images": count, "rss_idle_mb": round(idle, 1),
               "rounds": out, "rss_peak_mb": round(peak, 1), "budget_mb": budget_mb, "peak_ok": peak < budget_mb,
               "upload_to_description_s_median": round(statistics.median(r["upload_to_description_s"] for r in out),
                                                        2)}
    print(json.dumps(summary))
    return 0 if peak < budget_mb else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=10.0, help="size of the zip to draw")
    ap.add_argument("--side", type=int, default=64, help="side of each PNG in pixels")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--server", action="store_true", help="upload and train on the real Train page (Chromium)")
    ap.add_argument("--budget-mb", type=float, default=600.0, help="--server: the server's memory budget")
    args = ap.parse_args()

    t0 = time.perf_counter()
    data, count = make_zip(args.mb, args.side)
    print(f"zip: {len(data) / 1e6:.1f} MB, {count:,} PNGs of {args.side} x {args.side} in 10 classes "
          f"(drawn in {time.perf_counter() - t0:.1f} s)")
    if args.server:
        return on_the_page(data, count, args.rounds, args.budget_mb)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        for i in range(1, args.rounds + 1):
            store = UploadStore(Path(tmp) / str(i), "bench")
            before = rss_mb()
            t_parse, cpu_parse = time.perf_counter(), time.process_time()
            with PeakRSS() as peak:
                up = read_upload(data, "shapes.zip")
            t_store, cpu_store = time.perf_counter(), time.process_time()
            name = store.save(up)
            t_build = time.perf_counter()
            ds = build_dataset(name, train_size=60_000, val_size=20_000, seed=0)
            t_end = time.perf_counter()
            r = {"parse_s": t_store - t_parse, "parse_cpu_s": cpu_store - cpu_parse, "store_s": t_build - t_store,
                 "build_s": t_end - t_build,
                 "total_s": t_end - t_parse, "peak_growth_mb": peak.peak - before,
                 "images": len(up.y), "train": len(ds.y_train), "val": len(ds.y_val),
                 "stored_mb": store.path(name).stat().st_size / 1e6}
            rounds.append(r)
            print(f"round {i}: parse {r['parse_s']:.2f} s ({r['parse_cpu_s']:.2f} s CPU), store {r['store_s']:.2f} s, "
                  f"build {r['build_s']:.2f} s, "
                  f"total {r['total_s']:.2f} s ({count / r['total_s']:,.0f} images/s); peak RSS growth while "
                  f"parsing {r['peak_growth_mb']:.1f} MB; {r['train']:,} train + {r['val']:,} val samples of "
                  f"{tuple(ds.x_train.shape[1:])}; stored file {r['stored_mb']:.1f} MB")
            del up, ds
            unregister_uploaded(name)
            clear_dataset_cache()
    summary = {k: round(statistics.median(r[k] for r in rounds), 3) for k in ("parse_s", "parse_cpu_s", "store_s",
                                                                               "build_s", "total_s")}
    summary.update(peak_growth_mb_first=round(rounds[0]["peak_growth_mb"], 1),
                   peak_growth_mb_each=[round(r["peak_growth_mb"], 1) for r in rounds],
                   images=count, zip_mb=round(len(data) / 1e6, 2), side=args.side, rounds=args.rounds,
                   stored_mb=round(rounds[0]["stored_mb"], 2))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
