"""The live view in Chromium at a laptop's size (1366x768) and a phone's (390x844).

Press Train: the buttons, the progress and the live curves are on the first screen (no scrolling),
also when the learner comes back to the running job from another page; the compact look inside
the model moves from one epoch to the next; a session of every page fetches nothing from anywhere
but this server; and a screenshot of each page's first screen at both sizes goes to
docs/screenshots/ (``<page>_<width>.png``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import POINTS_JS, SHOTS, click_button, open_page, wait_for_text, wait_idle

pytestmark = pytest.mark.e2e

SIZES = {"laptop": (1366, 768), "phone": (390, 844)}
FRAME = "iframe[title='ui.live_chart.live_chart']"

# the live chart row's charts, by title, with their box in the page's coordinates and what they show
CHARTS_JS = """() => {
  const frame = document.querySelector("FRAME");
  if (!frame || !frame.contentDocument) return null;
  const at = frame.getBoundingClientRect();
  return [...frame.contentDocument.querySelectorAll('.js-plotly-plot')].map(p => {
    const r = p.getBoundingClientRect();
    const title = (p.layout && p.layout.title && p.layout.title.text) || "";
    const button = p.querySelector('.modebar-btn');  // the toolbar's buttons (its empty holder is always there)
    return {title: title, top: at.top + r.top, bottom: at.top + r.bottom, left: at.left + r.left,
            right: at.left + r.right, rev: p.dataset.rev || "", legend_y: p.layout.legend ? p.layout.legend.y : null,
            modebar: !!button, note: ((p.layout.annotations || [])[0] || {}).text || "",
            z: (p.data || []).filter(t => t.type === "heatmap").map(t => JSON.stringify(t.z)).join("|")};
  });
}""".replace("FRAME", FRAME)


@pytest.fixture(params=list(SIZES))
def sized(request, browser):
    width, height = SIZES[request.param]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(90_000)
    yield request.param, page
    context.close()


def charts(page) -> dict[str, dict]:
    return {c["title"]: c for c in page.evaluate(CHARTS_JS) or []}


def in_view(box: dict, page) -> bool:
    vp = page.viewport_size
    return box["top"] >= 0 and box["left"] >= 0 and box["bottom"] <= vp["height"] and box["right"] <= vp["width"]


def assert_live_view_in_sight(size: str, page) -> None:
    curves = charts(page)
    assert {"Loss", "Accuracy"} <= set(curves), list(curves)
    train = page.get_by_role("button", name="Train", exact=True).bounding_box()
    stop = page.get_by_role("button", name="Stop", exact=True).bounding_box()
    progress = page.locator("[data-testid='stProgress']").first.bounding_box()
    vp = page.viewport_size
    for name, box in (("Train", train), ("Stop", stop), ("progress", progress)):
        assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= vp["height"], (name, box)
    loss = curves["Loss"]
    assert in_view(loss, page), (size, loss, vp)
    if size == "laptop":  # the two curves side by side, both on the first screen
        assert in_view(curves["Accuracy"], page), curves["Accuracy"]
    for c in curves.values():  # the legends sit under the plots, where the chart toolbar never covers them
        assert c["legend_y"] is None or c["legend_y"] < 0, c
    if size == "phone":  # and on a phone there is no toolbar at all
        assert not any(c["modebar"] for c in curves.values())


def test_after_pressing_train_the_buttons_progress_and_curves_are_on_the_first_screen(sized, app_url):
    size, page = sized
    open_page(page, app_url + "/train?preset=quickstart_cnn&training.epochs=100")
    wait_for_text(page, "Press Train to start")
    click_button(page, "Train")
    page.wait_for_function(f"() => ({POINTS_JS})() > 0", timeout=90_000)
    wait_for_text(page, "running ·", timeout=30)
    assert_live_view_in_sight(size, page)
    # leave for another page while it trains, come back: the same view, still in sight
    page.get_by_role("link", name="Build").first.click() if size == "laptop" else open_page(page, app_url + "/build")
    wait_for_text(page, "Build a model")
    open_page(page, app_url + "/train")
    wait_for_text(page, "running ·", timeout=30)
    before = page.evaluate(POINTS_JS)
    page.wait_for_function(f"() => ({POINTS_JS})() > {before}", timeout=60_000)
    assert_live_view_in_sight(size, page)
    click_button(page, "Stop")
    wait_for_text(page, "Stopped during epoch", timeout=30)


def test_homes_first_step_lands_on_a_running_training_in_sight(browser, app_url):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(90_000)
    try:
        open_page(page, app_url)
        page.get_by_role("button", name="Train your first CNN").click()
        page.wait_for_url("**/train", timeout=60_000)
        wait_for_text(page, "running ·", timeout=60)
        page.wait_for_function(f"() => ({POINTS_JS})() > 0", timeout=60_000)
        assert_live_view_in_sight("laptop", page)
        wait_for_text(page, "Job: cnn on synthetic_digits · 5 epochs")  # quickstart_cnn as shipped
        click_button(page, "Stop")
        wait_for_text(page, "Stopped during epoch", timeout=30)
    finally:
        context.close()


def test_after_starting_a_comparison_its_buttons_and_live_curves_are_on_the_first_screen(sized, app_url):
    size, page = sized
    open_page(page, app_url + "/compare?preset=quickstart_cnn&training.epochs=20&data.train_size=2000")
    click_button(page, "Start comparison")
    page.wait_for_function(f"() => ({CHARTS_JS})()?.length === 1", timeout=60_000)
    vp = page.viewport_size
    stop = page.get_by_role("button", name="Stop all", exact=True).bounding_box()
    assert 0 <= stop["y"] and stop["y"] + stop["height"] <= vp["height"], stop
    curves = next(iter(charts(page).values()))
    assert curves["title"].startswith("Optimizer: 3 runs")  # what was compared, also in an exported PNG
    assert curves["legend_y"] < 0 and not (size == "phone" and curves["modebar"])
    if size == "laptop":
        assert in_view(curves, page), curves
    else:  # a phone: the curves start on the first screen
        assert 0 <= curves["top"] < vp["height"], curves
    click_button(page, "Stop all")
    wait_for_text(page, "stopped", timeout=60)


def probe_epoch(page) -> int:
    """The epoch after which the feature maps on screen were measured (0: none yet)."""
    maps = next((c for t, c in charts(page).items() if t.startswith("Feature maps, block 1")), None)
    if maps is None or "after epoch" not in maps["rev"]:
        return 0
    return int(maps["rev"].rsplit(" ", 1)[1])


def test_the_look_inside_the_model_moves_from_one_epoch_to_the_next(page, app_url):
    # long enough that the browser's 4 s updates see two different epochs on a fast machine too;
    # it is stopped once they have been seen
    open_page(page, app_url + "/train?preset=quickstart_cnn&training.epochs=100&data.train_size=3000")
    page.wait_for_function(f"() => ({CHARTS_JS})()?.length === 4", timeout=60_000)
    before = charts(page)  # the same charts exist before the click, empty: the browser only updates them
    assert before["Feature maps (block 1)"]["note"] == "shown from the start of training"
    assert before["Gradient norm per layer"]["note"] == "shown from the first training step"
    click_button(page, "Train")
    page.wait_for_function(f"() => ({POINTS_JS})() > 0", timeout=90_000)
    # the browser asks every 4 s: it sees some epochs' frames, not necessarily each one
    page.wait_for_timeout(500)
    for _ in range(240):
        if probe_epoch(page) >= 1:
            break
        page.wait_for_timeout(500)
    first_epoch = probe_epoch(page)
    assert first_epoch >= 1
    first = charts(page)
    for _ in range(240):
        if probe_epoch(page) > first_epoch:
            break
        page.wait_for_timeout(500)
    later = charts(page)
    assert probe_epoch(page) > first_epoch
    maps_first = next(c for t, c in first.items() if t.startswith("Feature maps"))
    maps_later = next(c for t, c in later.items() if t.startswith("Feature maps"))
    assert maps_first["z"] and maps_later["z"] and maps_first["z"] != maps_later["z"]  # the maps moved
    assert first["Gradient norm per layer"]["rev"] != later["Gradient norm per layer"]["rev"]
    assert probe_epoch(page) < 100, "the training ended before the test could see it move"
    click_button(page, "Stop")
    wait_for_text(page, "Stopped during epoch", timeout=30)


def test_every_page_at_both_sizes_fetches_only_from_this_server(browser, app_url):
    from ui.pages import PAGES

    origin = "{0.scheme}://{0.netloc}".format(urlsplit(app_url))
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, (width, height) in SIZES.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.set_default_timeout(90_000)
        seen: list[str] = []
        page.on("request", lambda req, seen=seen: seen.append(req.url))
        if size == "laptop":  # the Train page while it trains, the live view in sight; then Runs has a run
            open_page(page, f"{app_url}/train?preset=quickstart_cnn&training.epochs=6")
            click_button(page, "Train")
            page.wait_for_function(f"() => ({CHARTS_JS})().some(c => c.rev.includes('after epoch'))",
                                   timeout=120_000)
            page.wait_for_timeout(3500)
            page.screenshot(path=str(SHOTS / f"train_running_{width}.png"))
            expect(page.get_by_text("Saved as run").first).to_be_visible(timeout=120_000)
        for p in PAGES:
            open_page(page, f"{app_url}/{p.url_path}")
            page.wait_for_selector("h1")
            wait_idle(page)
            # widgets and charts load their code after the script has run: wait until none is a placeholder
            page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=30_000)
            page.wait_for_timeout(800)
            page.screenshot(path=str(SHOTS / f"{p.url_path or 'home'}_{width}.png"))
        context.close()
        outside = sorted({u for u in seen if not (u.startswith(origin) or u.startswith(("data:", "blob:", "about:")))})
        assert not outside, f"{size}: requests outside {origin}: {outside[:10]}"
        assert any("favicon" in u or u.endswith(".png") for u in seen)  # the page icon comes from this server too
