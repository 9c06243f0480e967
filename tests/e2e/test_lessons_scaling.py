"""The scaling and distillation lessons in Chromium at a laptop's size (1366x768): each opens from its
URL on the Compare page with its comparison chosen; the scaling lesson runs its sweep and draws the
log-log chart with the fitted power law. Writes docs/screenshots/lesson_scaling.png and lesson_distill.png."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import PLOTS_JS, SHOTS, click_button, open_page, wait_for_text, wait_idle

pytestmark = pytest.mark.e2e

# the log-log charts: both axes logarithmic, with a fitted line whose legend name gives the exponent
LOGLOG_JS = """() => (""" + PLOTS_JS + """)()
  .filter(p => (p.layout || {}).xaxis?.type === 'log' && (p.layout || {}).yaxis?.type === 'log')
  .map(p => ({fit: (p.data.find(t => (t.name || '').startsWith('fit: loss')) || {}).name || '',
              points: p.data.filter(t => t.mode === 'markers').reduce((n, t) => n + t.x.length, 0)}))"""


@pytest.fixture
def laptop(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


def test_the_scaling_lesson_runs_a_sweep_and_draws_loss_against_size_on_log_log_axes(laptop, app_url):
    page = laptop
    open_page(page, app_url + "/compare?lesson=scaling_size_compute")
    wait_for_text(page, "Lesson: What 'big model' means", timeout=90)
    wait_for_text(page, "Width multipliers")
    page.get_by_role("button", name="Remove x2", exact=True).click()  # a tiny sweep: x0.25, x0.5, x1
    wait_idle(page)
    wait_for_text(page, "Planned: 3 runs")
    click_button(page, "Start comparison")
    wait_for_text(page, "3 completed", timeout=180)
    wait_idle(page)
    page.wait_for_function(f"() => ({LOGLOG_JS})().length === 2", timeout=30_000)
    charts = page.evaluate(LOGLOG_JS)
    assert all(c["points"] == 3 and "(3 points" in c["fit"] for c in charts), charts
    assert "·N^(−" in charts[0]["fit"] and "·C^(−" in charts[1]["fit"]
    wait_for_text(page, "rough slope")
    page.get_by_text("Loss against size and compute", exact=True).evaluate(
        "el => el.scrollIntoView({block: 'start'})")  # the two log-log charts and their caption in view
    page.wait_for_timeout(500)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "lesson_scaling.png"))


def test_the_distillation_lesson_opens_with_its_teacher_and_runs_both_arms(laptop, app_url):
    page = laptop
    open_page(page, app_url + "/compare?lesson=distill_small_student")
    wait_for_text(page, "Lesson: Distillation: a small student learns from a big teacher", timeout=90)
    wait_for_text(page, "digits_cnn (shipped)")
    wait_for_text(page, "labels only")
    click_button(page, "Start comparison")
    wait_for_text(page, "2 completed", timeout=180)
    wait_idle(page)
    page.wait_for_function(f"() => ({PLOTS_JS})().some(p => (p.data || []).some("
                           "t => (t.legendgroup || '') === 'run:distilled from digits_cnn' && (t.x || []).length))",
                           timeout=30_000)
    page.get_by_text("2 completed", exact=True).evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)  # the status line, the curves and the setup beside them in view
    page.screenshot(path=str(SHOTS / "lesson_distill.png"))
