"""The learner's workspace in a real browser: reloads, links, share links, other browsers, bad tokens,
the sidebar against the page, and a server restart.

Each test here starts its own server (one training slot, so two browsers queue) on its own run
store; trainings are one epoch on a few hundred samples, or long ones that the test stops.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from playwright.sync_api import expect

from bigmodel_core.training.workspace import TokenIssuer
from tests.e2e.helpers import POINTS_JS, click_button, open_page, start_app, stop_app, wait_for_text, wait_idle

pytestmark = pytest.mark.e2e

COOKIE = "bigmodel_workspace"
SHORT = "/train?preset=quickstart_cnn&training.epochs=1&data.train_size=500&data.val_size=200"
# still running on a fast machine while a test looks at it (every test that starts it stops it)
LONG = "/train?preset=quickstart_cnn&training.epochs=100&data.train_size=3000&training.batch_size=16"
ENV = {"BIGMODEL_IDLE_STOP_SECONDS": "120", "BIGMODEL_MAX_CONCURRENT_JOBS": "1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ws")
    proc, url = start_app(tmp, ENV)
    yield url, tmp / "runs"
    stop_app(proc)


def new_page(browser, cookies: list[dict] | None = None):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    if cookies:
        context.add_cookies(cookies)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return context, page


def points(page) -> int:
    return page.evaluate(POINTS_JS)


def sidebar(page) -> str:
    return page.locator("[data-testid='stSidebar']").inner_text()


def token_of(context) -> str:
    found = [c["value"] for c in context.cookies() if c["name"] == COOKIE]
    assert len(found) == 1, context.cookies()
    return found[0]


def wait_for_cookie(page, timeout: float = 30.0) -> str:
    page.wait_for_function(f"() => document.cookie.includes('{COOKIE}=')", timeout=timeout * 1000)
    return token_of(page.context)


def train_short_run(page, url: str) -> str:
    """Train one short epoch; the run id it was saved as."""
    open_page(page, url + SHORT)
    click_button(page, "Train")
    wait_for_text(page, "Completed", timeout=120)
    text = wait_for_text(page, "Saved as run", timeout=30).inner_text()
    return re.search(r"Saved as run (\S+)", text).group(1).strip("`")


def wait_for_run(page, run_id: str) -> None:
    """Wait until the Runs page lists ``run_id`` (its id sits in the details tabs, not all visible)."""
    wait_idle(page)
    page.wait_for_function(f"() => document.body.innerHTML.includes({json.dumps(run_id)})", timeout=30_000)


def no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


def test_reload_mid_training_returns_to_the_same_job_with_its_curves_and_stop_works(browser, server):
    url, runs_dir = server
    context, page = new_page(browser)
    try:
        open_page(page, url + LONG)
        token = wait_for_cookie(page)
        assert token not in page.content()  # the token is never put on a page
        click_button(page, "Train")
        page.wait_for_function(f"() => ({POINTS_JS})() > 3", timeout=90_000)
        before = points(page)
        page.reload()
        page.wait_for_selector("[data-testid='stApp']")
        wait_for_text(page, "running ·", timeout=60)
        # the same job: its curve comes back with the points measured before the reload, and grows
        page.wait_for_function(f"() => ({POINTS_JS})() >= {before}", timeout=60_000)
        page.wait_for_function(f"() => ({POINTS_JS})() > {before}", timeout=90_000)
        assert token_of(context) == token
        # on the Train page the sidebar points to the page instead of repeating a state that ages
        assert "Training job: its state is shown on this page" in sidebar(page)
        # and the server's slots are on the page, counted with this job running
        wait_for_text(page, "All learners on this server: 1 of 1 training slots busy", timeout=10)
        assert "running" not in sidebar(page).split("All learners")[0]
        click_button(page, "Stop")
        wait_for_text(page, "Stopped", timeout=30)
        expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled(timeout=30_000)
        assert token not in json.dumps([p.read_text() for p in runs_dir.rglob("*.json")])  # never on disk
        no_exception(page)
    finally:
        context.close()


def test_links_in_the_same_tab_keep_the_runs_and_the_owner_keeps_control_of_a_shared_run(browser, server):
    url, _ = server
    context, page = new_page(browser)
    stranger, other = new_page(browser)
    try:
        run_id = train_short_run(page, url)
        for link in ("/compare?view=shot", "/?lesson=first_cnn", "/build?preset=textbook_cnn"):
            open_page(page, url + link)
            open_page(page, url + "/runs")
            wait_for_run(page, run_id)
        # share it, then open the share link in the same tab: the owner's controls, not read-only
        page.get_by_text("Share as a link").click()
        wait_idle(page)
        open_page(page, url + f"/runs?run={run_id}")
        wait_for_text(page, "Your run")
        assert page.get_by_text("read-only: it stays its owner's").count() == 0
        expect(page.get_by_role("button", name="Delete this run")).to_be_visible()
        # a second browser sees none of the workspace, but can open the shared link read-only
        open_page(other, url + "/runs")
        wait_for_text(other, "No stored runs yet")
        assert run_id not in other.content()
        open_page(other, url + f"/runs?run={run_id}")
        wait_for_text(other, "Shared run")
        wait_for_text(other, "read-only: it stays its owner's")
        assert other.get_by_text("Shared as a link").count() == 0
        # the owner unshares from the link's own page: the stranger's link opens nothing any more
        page.get_by_text("Shared as a link").click()
        wait_for_text(page, "Sharing is off")
        open_page(other, url + f"/runs?run={run_id}")
        wait_for_text(other, "Cannot open the run in this link")
        open_page(other, url + "/build")
        wait_for_text(other, "No training job in this workspace")
        no_exception(page)
        no_exception(other)
    finally:
        context.close()
        stranger.close()


def test_garbled_forged_oversized_and_foreign_tokens_get_a_fresh_workspace(browser, server, tmp_path):
    url, runs_dir = server
    context, page = new_page(browser)
    try:
        run_id = train_short_run(page, url)  # a workspace with a run, whose token the others imitate
        good = token_of(context)
        random_part, mac = good.split(".")
        bad = {"garbled": "%%not-a-token%%", "forged": f"{random_part}.{'0' * 64}",
               "oversized": good + "A" * 3000, "foreign": TokenIssuer(tmp_path).issue()}
        issuer = TokenIssuer(runs_dir)
        for kind, value in bad.items():
            ctx, pg = new_page(browser, [{"name": COOKIE, "value": value, "url": url}])
            try:
                open_page(pg, url + "/runs")
                wait_for_text(pg, "No stored runs yet")
                assert run_id not in pg.content(), kind
                no_exception(pg)
                # the browser now holds a fresh token of this server, not the bad one
                pg.wait_for_function(f"() => !document.cookie.includes({json.dumps(value)})", timeout=30_000)
                fresh = token_of(ctx)
                assert issuer.verify(fresh) is not None and issuer.verify(fresh) != issuer.verify(good), kind
            finally:
                ctx.close()
    finally:
        context.close()


def test_the_sidebar_matches_the_page_for_queued_running_paused_and_completed(browser, server):
    url, _ = server
    ca, a = new_page(browser)
    cb, b = new_page(browser)
    try:
        open_page(a, url + LONG)
        click_button(a, "Train")
        wait_for_text(a, "running ·", timeout=60)
        # the only slot is busy: the second browser queues at position 1, the same on its page and sidebar
        open_page(b, url + SHORT)
        click_button(b, "Train")
        wait_for_text(b, "Queued: position 1", timeout=30)
        assert "position None" not in b.content()
        assert "queued" not in sidebar(b).split("All learners")[0]  # the Train page's sidebar points to the page
        open_page(b, url + "/runs")
        expect(b.locator("[data-testid='stSidebar']")).to_contain_text("Training job · queued, position 1",
                                                                        timeout=10_000)
        # paused on the page; on another page the sidebar polls and shows the same state
        click_button(a, "Pause")
        wait_for_text(a, "paused ·", timeout=30)
        assert "running" not in sidebar(a).split("All learners")[0]
        open_page(a, url + "/build")
        expect(a.locator("[data-testid='stSidebar']")).to_contain_text("Training job · paused", timeout=10_000)
        assert "All learners on this server: 1 of 1 training slots busy, 1 waiting" in sidebar(a)
        open_page(a, url + "/train")
        click_button(a, "Stop")
        wait_for_text(a, "Stopped", timeout=30)
        open_page(a, url + "/build")
        expect(a.locator("[data-testid='stSidebar']")).to_contain_text("Training job · stopped", timeout=10_000)
        # the queued job starts: running, then completed, in the polled sidebar and on the page alike
        expect(b.locator("[data-testid='stSidebar']")).to_contain_text("Training job · completed", timeout=120_000)
        open_page(b, url + "/train")
        wait_for_text(b, "Completed", timeout=30)
        no_exception(a)
        no_exception(b)
    finally:
        ca.close()
        cb.close()


def test_a_fresh_workspace_asks_first_and_then_starts_empty(browser, server):
    url, _ = server
    context, page = new_page(browser)
    try:
        run_id = train_short_run(page, url)
        old = token_of(context)
        page.get_by_role("button", name="Start a fresh workspace").click()
        page.get_by_role("button", name="Yes, start a fresh workspace").click()
        wait_idle(page)
        page.wait_for_function(f"() => !document.cookie.includes({json.dumps(old)})", timeout=30_000)
        open_page(page, url + "/runs")
        wait_for_text(page, "No stored runs yet")
        assert run_id not in page.content()
    finally:
        context.close()


NO_COOKIES = """Object.defineProperty(Document.prototype, "cookie", {
  configurable: true, get() { return ""; }, set(v) {} });"""  # a browser that refuses cookies


def test_a_browser_that_refuses_cookies_is_told_once_and_works_per_tab(browser, server):
    url, _ = server
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(NO_COOKIES)  # runs in every frame, the cookie component's included
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        run_id = train_short_run(page, url)
        note = page.frame_locator("iframe[title*='workspace_cookie']").get_by_text("does not keep cookies")
        expect(note).to_be_visible(timeout=30_000)
        assert "Download the runs you want to keep." in note.inner_text()
        # moving on to another page keeps the learner there (the component never reruns the page)
        page.get_by_role("link", name="Runs", exact=True).first.click()
        wait_for_run(page, run_id)
        page.wait_for_timeout(2_000)
        assert page.url.endswith("/runs")
        page.reload()  # without a cookie a reload is a new, empty workspace
        page.wait_for_selector("[data-testid='stApp']")
        wait_for_text(page, "No stored runs yet")
        no_exception(page)
    finally:
        context.close()


def test_restart_mid_training_lists_finished_runs_and_reports_the_interrupted_job(browser, tmp_path):
    proc, url = start_app(tmp_path, ENV)
    context, page = new_page(browser)
    try:
        run_id = train_short_run(page, url)
        open_page(page, url + LONG)
        click_button(page, "Train")
        # the page still shows the short run's curve (more than 2 points): wait for the long job itself
        # first, or the server could be killed before the click reached it
        page.get_by_text(re.compile(r"^Job: .* 100 epochs")).first.wait_for(timeout=60_000)
        page.wait_for_function(f"() => ({POINTS_JS})() > 2", timeout=90_000)
        proc.kill()  # as a crash or a redeploy: nothing gets to clean up
        proc.wait(10)
        # a run folder the dead server was still writing (no summary.json): never listed
        owner = "ws-" + hashlib.sha256(token_of(context).encode()).hexdigest()[:32]
        half = tmp_path / "runs" / "20260101-000000-train-abcdef123456"
        half.mkdir()
        (half / "config.json").write_text((tmp_path / "runs" / run_id / "config.json").read_text())
        (half / "owner.txt").write_text(owner)
        proc, url = start_app(tmp_path, ENV)
        open_page(page, url + "/train")
        wait_for_text(page, "these jobs were interrupted", timeout=60)
        wait_for_text(page, "cnn on synthetic_digits")
        open_page(page, url + "/runs")
        assert "interrupted by a server restart" in sidebar(page)
        wait_for_run(page, run_id)
        assert half.name not in page.content()
        no_exception(page)
    finally:
        context.close()
        stop_app(proc)
