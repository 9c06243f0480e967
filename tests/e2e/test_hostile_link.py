"""A crafted link in a real browser: its Markdown stays text (no link, no image fetched), one warning box,
no traceback on the page."""

from __future__ import annotations

from urllib.parse import quote, urlparse

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import open_page, wait_for_text, wait_idle

pytestmark = pytest.mark.e2e

PHISH = "[session expired, log in here](https://evil.example/login)"
PIXEL = "![x](https://evil.example/pixel.png)"


def test_a_crafted_markdown_link_renders_as_text(page, app_url):
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if urlparse(r.url).hostname == "evil.example" else None)
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in [
        ("preset", "quickstart_cnn"), (PHISH, "1"), ("my_field_name", PIXEL), ("optimizer.lr", PHISH),
        ("training.epochs", "9" * 5000)] + [(f"zz_junk{i}", "1") for i in range(200)])
    open_page(page, app_url + "/build?" + query)
    wait_for_text(page, "Parts of this link were not applied")
    wait_idle(page)
    assert page.locator("a[href*='evil.example']").count() == 0
    assert page.locator("img[src*='evil.example']").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlert']").filter(has_text="not applied").count() == 1
    code = page.locator("[data-testid='stCode']").first
    # the code block's script may still be loading when the rest of the page is drawn
    for text in ("[session expired, log in here](https://e", "my_field_name", "optimizer.lr"):
        expect(code).to_contain_text(text, timeout=30_000)
    assert not asked
