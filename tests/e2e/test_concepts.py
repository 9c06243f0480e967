"""The Concepts page and lesson links in a real browser."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import open_page, shot, wait_for_text, wait_idle

pytestmark = pytest.mark.e2e

PLOTS_JS = "() => document.querySelectorAll('.js-plotly-plot .main-svg').length"
NO_SKELETON_JS = "() => !document.querySelector('[data-testid=\"stSkeleton\"]')"


def settled(page) -> None:
    """Idle, and every widget drawn (no loading placeholders left) before a screenshot."""
    wait_idle(page)
    page.wait_for_function(NO_SKELETON_JS, timeout=60_000)
    page.wait_for_timeout(500)


def open_in_app(page, app_url: str, path: str) -> None:
    # visit the entry page first, as a learner following the navigation would
    open_page(page, app_url)
    wait_for_text(page, "Concepts")
    open_page(page, app_url + path)


def test_concepts_page_sections_compute_and_check(page, app_url):
    open_in_app(page, app_url, "/concepts")
    wait_for_text(page, "Checked against PyTorch's F.conv2d", timeout=120)
    page.wait_for_function(f"() => ({PLOTS_JS})() >= 1", timeout=60_000)
    wait_for_text(page, "sum of the products")
    settled(page)
    shot(page, "concepts")

    page.get_by_role("tab", name="Pooling").click()
    wait_for_text(page, "Checked against PyTorch's F.max_pool2d")
    wait_for_text(page, "The winner is input cell")

    page.get_by_role("tab", name="LSTM & GRU").click()
    wait_for_text(page, "nn.LSTMCell")
    page.get_by_text("GRU", exact=True).click()
    wait_idle(page)
    wait_for_text(page, "A GRU has two gates only")
    wait_for_text(page, "Checked against PyTorch's nn.GRUCell")

    page.get_by_role("tab", name="Optimizers").click()
    wait_for_text(page, "Checked against PyTorch's torch.optim: each of its steps")
    assert page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].some(p => (p.data || [])"
                         ".some(t => (t.name || '').startsWith('Adam')))")


def test_lesson_link_opens_the_page_with_its_steps(page, app_url):
    open_in_app(page, app_url, "/build?lesson=first_cnn")
    wait_for_text(page, "Lesson: Your first CNN", timeout=90)
    wait_for_text(page, "Read the layer table")
    wait_for_text(page, "conv 3x3, 8")
    settled(page)
    reset = page.get_by_role("button", name="Reset lesson")
    assert reset.is_visible()
    shot(page, "lesson")
    reset.click()
    wait_idle(page)
    wait_for_text(page, "Lesson reset")

    # within the same session (a new page load would be a new session): the sidebar link
    page.locator("[data-testid='stSidebarNav']").get_by_text("Lessons", exact=True).click()
    wait_idle(page)
    wait_for_text(page, "Transfer learning with 10 labels")
    wait_for_text(page, "You are in the lesson")
    page.get_by_role("button", name="Leave lesson").click()
    page.get_by_text("You are in the lesson").wait_for(state="detached", timeout=30_000)
