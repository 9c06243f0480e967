"""The Train page's "Inside the model" area in a real browser: feature maps, gates, confusion matrix."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import TRACE_JS, click_button, open_page, shot, wait_for_text, wait_idle

pytestmark = pytest.mark.e2e

TRACES_JS = f"(name) => ({TRACE_JS})(name) !== null"


def has_trace(page, name: str) -> bool:
    return page.evaluate(TRACES_JS, name)


def wait_trace(page, name: str, timeout: float = 60.0) -> None:
    page.wait_for_function(f"(name) => ({TRACES_JS})(name)", arg=name, timeout=timeout * 1000)


def subheader(page, text: str):
    return page.locator("h3").filter(has_text=text).first


def shot_inspect_area(page, name: str) -> None:
    """Screenshot from the "Inside the model" header down (the area this test is about)."""
    page.locator("h2").filter(has_text="Inside the model").first.evaluate("el => el.scrollIntoView()")
    shot(page, name)


def train_one_epoch(page, app_url: str, query: str) -> None:
    # the app's entry script must have run once on this server before a subpage URL is opened directly
    open_page(page, app_url)
    wait_for_text(page, "Train your first CNN")
    open_page(page, app_url + query)
    wait_for_text(page, "epochs")
    click_button(page, "Train")
    wait_for_text(page, "Completed", timeout=180)
    wait_idle(page)


def test_cnn_feature_maps_and_confusion_matrix(page, app_url):
    train_one_epoch(page, app_url, "/train?preset=quickstart_cnn&training.epochs=1&data.train_size=300"
                                    "&data.val_size=200")
    wait_for_text(page, "Inside the model", timeout=60)
    for title in ("Feature maps", "Filters", "Gradients", "Confusion matrix"):
        subheader(page, title).wait_for(timeout=60_000)
    wait_trace(page, "feature maps")
    wait_trace(page, "confusion")
    assert has_trace(page, "filters") and has_trace(page, "probability")
    z_sum = page.evaluate("""() => { const p = [...document.querySelectorAll('.js-plotly-plot')]
        .find(el => (el.data || []).some(t => t.name === 'confusion'));
        return p.data[0].z.flat().reduce((a, b) => a + b, 0); }""")
    assert z_sum == 200
    assert page.get_by_text("Feature maps (CSV)").count() == 1
    assert not subheader(page, "Gates").count()
    # switch the colour scale and pick another input: the maps are redrawn for it
    page.get_by_text("one per map").first.click()
    wait_idle(page)
    wait_for_text(page, "each map its own scale")
    shot_inspect_area(page, "inspect_cnn")


def test_lstm_hidden_state_and_gates(page, app_url):
    train_one_epoch(page, app_url, "/train?preset=lstm_sequential_digits&training.epochs=1&data.train_size=300"
                                    "&data.val_size=200")
    for title in ("Hidden state", "Gates", "Gradients", "Confusion matrix"):
        subheader(page, title).wait_for(timeout=60_000)
    wait_trace(page, "input gate i_t")
    assert has_trace(page, "forget gate f_t") and has_trace(page, "output gate o_t")
    wait_trace(page, "hidden state h_t")
    wait_trace(page, "cell state c_t")
    assert not subheader(page, "Feature maps").count()
    shot_inspect_area(page, "inspect_lstm")
