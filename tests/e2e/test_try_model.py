"""Try your model in a real browser: train one epoch, draw on the canvas with the mouse, and see the
prediction and the attribution maps change; screenshots at a laptop's and a phone's size."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.helpers import SHOTS, TRACE_JS, wait_for_text, wait_idle
from tests.e2e.test_inspect import train_one_epoch

pytestmark = pytest.mark.e2e

CANVAS = "iframe[title*='drawing_canvas']"
# the named trace's data as JSON ("" while there is none)
DATA_JS = f"""(name) => {{ const t = ({TRACE_JS})(name); return t ? JSON.stringify([t.x, t.y, t.z]) : ""; }}"""


def data(page, name: str) -> str:
    return page.evaluate(DATA_JS, name)


def wait_changed(page, name: str, before: str, timeout: float = 30.0) -> float:
    """Seconds until the named trace's data differs from ``before``."""
    t0 = time.perf_counter()
    page.wait_for_function(f"([name, before]) => {{ const d = ({DATA_JS})(name); return d && d !== before; }}",
                           arg=[name, before], timeout=timeout * 1000, polling=25)
    return time.perf_counter() - t0


def stroke(page, points: list[tuple[float, float]]) -> None:
    """One stroke with the mouse over the pad, through points given as fractions of its width and height."""
    pad = page.frame_locator(CANVAS).locator("#pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for point in xy[1:]:
        page.mouse.move(*point, steps=6)
    page.mouse.up()


def test_draw_a_digit_and_see_the_prediction_and_why_change(browser, app_url):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        train_one_epoch(page, app_url, "/train?preset=quickstart_cnn&training.epochs=1")
        header = page.locator("h2").filter(has_text="Try your model").first
        header.wait_for()
        page.frame_locator(CANVAS).locator("#pad").wait_for()
        wait_for_text(page, "Draw a digit on the black pad")
        assert data(page, "answer") == ""  # nothing is predicted before the first stroke
        stroke(page, [(0.5, 0.15), (0.5, 0.85)])  # a one
        first = wait_changed(page, "answer", "")
        wait_changed(page, "saliency", "")
        answer, why, cam = data(page, "answer"), data(page, "saliency"), data(page, "grad-cam")
        probs = json.loads(answer)[1]
        assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-2
        assert data(page, "model input") and data(page, "integrated gradients") and cam
        wait_for_text(page, "computed in")
        # the top bar of a seven: the answer and the attribution maps follow
        stroke(page, [(0.2, 0.15), (0.8, 0.15)])
        second = wait_changed(page, "saliency", why)
        wait_changed(page, "answer", answer)
        assert data(page, "grad-cam") != cam
        print(f"stroke -> prediction and attributions on the page: first {first:.2f} s, second {second:.2f} s")
        wait_idle(page)
        page.mouse.move(5, 5)  # away from the charts: no toolbar in the screenshots
        header.evaluate("el => el.scrollIntoView()")
        page.wait_for_timeout(500)
        shot_view(page, "try_model")
        page.locator("h3").filter(has_text="Why ").first.evaluate("el => el.scrollIntoView()")
        page.wait_for_timeout(500)
        shot_view(page, "try_model_why")
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(1200)
        header.evaluate("el => el.scrollIntoView()")
        page.wait_for_timeout(500)
        shot_view(page, "try_model_390")
    finally:
        context.close()


def shot_view(page, name: str) -> None:
    """The screen as the learner sees it, scrolled to the section (not the whole page)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


WHY_WRONG_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].some(p =>
    ((p.layout || {}).title || {}).text && p.layout.title.text.includes('Why it was wrong'))"""


def test_a_bad_upload_says_what_is_wrong_and_the_wrong_examples_show_why(page, app_url, tmp_path):
    train_one_epoch(page, app_url, "/train?preset=quickstart_cnn&training.epochs=1&data.train_size=300"
                                    "&data.val_size=100")
    page.get_by_text("Upload", exact=True).filter(visible=True).first.click()  # the data settings have one too
    wait_idle(page)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a picture" * 10)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").last.set_input_files(str(bad))
    wait_for_text(page, "That picture cannot be used")
    assert data(page, "answer") == ""
    # the inspect area's confidently wrong examples, each beside its attribution map
    page.wait_for_function(WHY_WRONG_JS, timeout=60_000)
