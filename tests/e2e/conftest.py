"""Browser tests: the real app under `streamlit run`, driven by Playwright in the system Chromium.

The server runs on a free localhost port with a temporary run store; screenshots of each
page go to docs/screenshots/ (the README shows them). Nothing leaves the machine:
Chromium starts with background networking off and only ever opens localhost.
Helpers for tests live in tests/e2e/helpers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app


def pytest_collection_modifyitems(config, items):
    if not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        for item in items:
            if "e2e" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    proc, url = start_app(tmp, {"BIGMODEL_IDLE_STOP_SECONDS": "120"})
    yield url
    stop_app(proc)


@pytest.fixture(scope="session")
def app_url(app_server) -> str:
    return app_server


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


