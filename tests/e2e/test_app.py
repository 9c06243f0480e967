"""The Build and Train pages in a real browser: build, train live, stop, switch pages."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import POINTS_JS, click_button, open_page, shot, wait_for_text, wait_idle

pytestmark = pytest.mark.e2e

def batch_points(page) -> int:
    return page.evaluate(POINTS_JS)


def test_home_lists_presets_and_datasets(page, app_url):
    open_page(page, app_url)
    wait_for_text(page, "Train your first CNN")
    wait_for_text(page, "textbook_cnn")
    wait_for_text(page, "sequential_digits")
    shot(page, "home")


def test_build_a_cnn_and_see_its_table(page, app_url):
    open_page(page, app_url + "/build?preset=textbook_cnn")
    wait_for_text(page, "421,642")
    # add a third conv block: the table grows and parameters change
    click_button(page, "Add conv block")
    wait_idle(page)
    wait_for_text(page, "Block 3")
    assert not page.get_by_text("421,642").count()
    shot(page, "build")


def test_infeasible_design_names_layer_and_disables_train(page, app_url):
    open_page(page, app_url + "/build?preset=quickstart_cnn&model.conv.0.pool_size=8&model.conv.1.pool_size=8")
    wait_for_text(page, "too small for a 8x8 window")
    assert page.get_by_role("button", name="Train this model →").is_disabled()
    shot(page, "build_error")
    open_page(page, app_url + "/train?preset=quickstart_cnn&model.conv.0.pool_size=8&model.conv.1.pool_size=8")
    wait_for_text(page, "Fix it on the Build page")
    assert page.get_by_role("button", name="Train", exact=True).is_disabled()


def test_train_one_epoch_curve_grows_live_and_run_is_stored(page, app_url):
    open_page(page, app_url + "/train?preset=quickstart_cnn&training.epochs=1&data.train_size=3000"
                              "&training.batch_size=16")
    click_button(page, "Train")
    page.wait_for_function(f"() => ({POINTS_JS})() > 0", timeout=90_000)
    first = batch_points(page)
    page.wait_for_function(f"() => ({POINTS_JS})() > {first}", timeout=90_000)
    wait_for_text(page, "Completed", timeout=120)
    wait_for_text(page, "Saved as run", timeout=30)
    assert batch_points(page) > first
    wait_for_text(page, "Download model (.safetensors)")
    shot(page, "train")


def test_stop_a_run_midway_and_switch_pages_during_a_run(page, app_url):
    open_page(page, app_url + "/train?preset=quickstart_cnn&training.epochs=20&training.batch_size=16")
    click_button(page, "Train")
    page.wait_for_function(f"() => ({POINTS_JS})() > 2", timeout=90_000)
    # leave for another page while it trains, then come back to the same running job
    page.get_by_role("link", name="Build").first.click()
    wait_for_text(page, "Build a model")
    wait_for_text(page, "Training job")
    page.get_by_role("link", name="Train").first.click()
    wait_for_text(page, "running", timeout=30)
    before = batch_points(page)
    page.wait_for_function(f"() => ({POINTS_JS})() > {before}", timeout=90_000)
    click_button(page, "Stop")
    wait_for_text(page, "Stopped", timeout=30)
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled(timeout=30_000)
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_disabled()


def test_bad_config_upload_is_refused_and_changes_nothing(page, app_url, tmp_path):
    open_page(page, app_url + "/build?preset=textbook_cnn")
    wait_for_text(page, "421,642")
    bad = tmp_path / "bad.json"
    bad.write_text('{"optimizer": {"lr": -1}, "model": {"family": "cnn", "conv": []}}')
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(bad))
    wait_for_text(page, "bad.json was not loaded")
    wait_for_text(page, "optimizer.lr")
    assert page.get_by_text("421,642").count()
