"""A learner's own images on the Train page in Chromium: a zip of class folders (PNGs drawn here),
its classes and preview, one epoch of training, and the run stored with the data it trained on."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.e2e.helpers import SHOTS, click_button, open_page, start_app, stop_app, wait_for_text, wait_idle

pytestmark = pytest.mark.e2e

SHAPES = ("circle", "square", "cross")


def drawn(shape: str, rng: np.random.Generator, side: int = 32) -> bytes:
    """One PNG of ``shape`` at a random place and size, white on black, with noise."""
    img = Image.new("L", (side, side), 0)
    d = ImageDraw.Draw(img)
    r = int(rng.integers(6, 11))
    cx, cy = (int(v) for v in rng.integers(r + 1, side - r - 1, size=2))
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        d.ellipse(box, outline=255, width=3)
    elif shape == "square":
        d.rectangle(box, outline=255, width=3)
    else:
        d.line((cx - r, cy, cx + r, cy), fill=255, width=3)
        d.line((cx, cy - r, cx, cy + r), fill=255, width=3)
    pixels = np.clip(np.asarray(img, dtype=np.int16) + rng.integers(0, 40, size=(side, side)), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def shapes_zip(path: Path, per_class: int = 20) -> Path:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for shape in SHAPES:
            for i in range(per_class):
                z.writestr(f"my_shapes/{shape}/{i:02d}.png", drawn(shape, rng))
    return path


@pytest.fixture
def own_server(tmp_path):
    """A server of its own: the test reads the run it stores from the run store on disk."""
    proc, url = start_app(tmp_path)
    yield url, tmp_path / "runs"
    stop_app(proc)


def test_upload_a_zip_of_images_see_its_classes_and_train_on_it(browser, own_server, tmp_path):
    url, runs = own_server
    archive = shapes_zip(tmp_path / "my_shapes.zip")
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(90_000)
    try:
        open_page(page, url + "/train?preset=quickstart_cnn&training.epochs=1")
        page.get_by_text(re.compile(r"^Data · ")).first.click()  # open the data settings
        wait_idle(page)
        page.locator("[data-testid='stFileUploader']").filter(has_text="Your own data").locator(
            "[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(archive))
        wait_for_text(page, "Your data:", timeout=60)
        wait_idle(page)
        wait_for_text(page, "my_shapes.zip")
        wait_for_text(page, "28 x 28 pixels · 3 classes")  # 32 x 32 PNGs, resized to the built-in sets' size
        wait_for_text(page, "the file has 60: using 48 train / 12 validation")
        wait_for_text(page, "3 classes (images each): circle 20 · cross 20 · square 20")
        page.get_by_text("Preview samples").click()
        wait_idle(page)
        page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(p => "
                               "(p.data || []).some(t => t.type === 'heatmap' || t.type === 'image'))",
                               timeout=30_000)
        click_button(page, "Train")
        wait_for_text(page, "Completed", timeout=180)
        saved = wait_for_text(page, "Saved as run", timeout=60).inner_text()
        wait_idle(page)
        wait_for_text(page, "Your data:")  # the data settings stay open on the learner's own data
        SHOTS.mkdir(parents=True, exist_ok=True)
        # a laptop's screen with the data settings' description, classes and preview in view
        page.get_by_text("Your data:").first.evaluate("el => el.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / "own_data.png"))
    finally:
        context.close()
    run_id = re.search(r"Saved as run (\S+)", saved).group(1).strip("`").rstrip(".")
    folder = runs / run_id
    config = json.loads((folder / "config.json").read_text())
    assert re.fullmatch(r"upload-[0-9a-f]{16}", config["data"]["name"])
    assert (folder / "data.npz").is_file()  # the run keeps the data it trained on
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 1
    with np.load(folder / "data.npz", allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"][()]))
        assert meta["class_names"] == sorted(SHAPES) and npz["x"].shape == (60, 1, 28, 28)
