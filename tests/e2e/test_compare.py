"""The Compare and Runs pages in a real browser: a 3-optimizer comparison, its screenshot layout, the stored runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import PLOTS_JS, SHOTS, click_button, open_page, shot, wait_for_text, wait_idle

pytestmark = pytest.mark.e2e

# a comparison measured with the engine (the one-click overfitting lesson, 4 runs x 40 epochs)
LESSON = Path(__file__).resolve().parent / "data" / "overfitting_lesson.json"

# run traces (legend group "run:<name>") of the overlaid curves that have at least one measured point
RUNS_JS = """() => {
  const plots = (""" + PLOTS_JS + """)();  // the live curves sit in the live-chart component's frame
  const p = plots.find(el => (el.data || []).some(t => (t.legendgroup || '').startsWith('run:') && t.xaxis === 'x2'));
  if (!p) return [];
  const names = p.data.filter(t => (t.legendgroup || '').startsWith('run:') && (t.x || []).length > 0)
                      .map(t => t.legendgroup.slice(4));
  return [...new Set(names)];
}"""


def fits_one_screen(page) -> bool:
    """The comparison, title to table, is inside the 1400x1000 viewport without scrolling."""
    bottom = page.evaluate("() => document.querySelector('[data-testid=\"stTable\"]').getBoundingClientRect().bottom")
    return bottom <= page.viewport_size["height"]


def go_to(page, link: str, text: str) -> None:
    """Navigate inside the session (the comparison lives in its session state)."""
    page.get_by_role("link", name=link, exact=True).first.click()
    wait_for_text(page, text)
    wait_idle(page)


def test_three_optimizers_side_by_side_then_screenshot_layout_and_runs_page(page, app_url):
    # a small experiment from the URL, then the Compare page through the app's navigation
    open_page(page, app_url + "/?preset=quickstart_cnn&data.train_size=256&data.val_size=64&training.epochs=1")
    wait_for_text(page, "Build a")
    go_to(page, "Compare", "What varies")
    wait_for_text(page, "256 train / 64 val")
    click_button(page, "Start comparison")
    wait_for_text(page, "3 completed", timeout=120)
    wait_idle(page)
    # the live chart draws in its own frame, a moment after the page's script has finished
    page.wait_for_function(f"() => ({RUNS_JS})().length === 3", timeout=30_000)
    assert page.evaluate(RUNS_JS) == ["sgd lr=0.05", "momentum lr=0.01", "adam lr=1e-3"]
    summary = page.locator("[data-testid='stDataFrame']").filter(has_text="best val acc")
    assert summary.count() == 1
    assert summary.locator("[aria-rowcount]").first.get_attribute("aria-rowcount") == "4"  # header + 3 runs

    click_button(page, "Screenshot layout")
    wait_for_text(page, "Leave the screenshot layout")
    wait_idle(page)
    assert page.evaluate(RUNS_JS) == ["sgd lr=0.05", "momentum lr=0.01", "adam lr=1e-3"]
    assert page.locator("[data-testid='stTable'] tbody tr").count() == 3
    assert page.get_by_role("button").filter(has_text="Start comparison").count() == 0
    assert fits_one_screen(page)
    click_button(page, "Leave the screenshot layout")
    wait_for_text(page, "What varies")

    # the Runs page lists the three stored runs; picking their comparison overlays them
    go_to(page, "Runs", "Select a whole comparison")
    page.get_by_role("combobox", name="Select a whole comparison").click()
    page.get_by_role("option").filter(has_text="cmp-").first.click()
    wait_idle(page)
    page.wait_for_function(f"() => ({RUNS_JS})().length === 3", timeout=30_000)
    shot(page, "runs")

    # re-open a saved comparison (the measured overfitting lesson) for the README screenshots
    go_to(page, "Compare", "What varies")
    page.get_by_text("Re-open a comparison (.json)").click()
    page.locator("[data-testid='stFileUploader']").filter(has_text="Comparison JSON").locator(
        "[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(LESSON))
    lesson = ["none", "L2 5e-3", "dropout 0.5", "augmentation"]
    expected = json.dumps(json.dumps(lesson, separators=(",", ":")))
    page.wait_for_function(f"() => JSON.stringify(({RUNS_JS})()) === {expected}", timeout=60_000)
    wait_idle(page)
    assert page.evaluate(RUNS_JS) == lesson
    # the notice stays until the next interaction (no extra rerun right after opening wipes it)
    wait_for_text(page, "Opened the comparison", timeout=5)
    shot(page, "compare")
    click_button(page, "Screenshot layout")
    wait_for_text(page, "Leave the screenshot layout")
    wait_idle(page)
    assert page.locator("[data-testid='stTable'] tbody tr").count() == 4
    assert fits_one_screen(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "compare_shot.png"))  # one screen, as a slide gets it
