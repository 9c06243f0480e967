"""Several people train at once on a server with one training slot (the workshop case, small).

Three browser sessions press Train within a second of each other against their own server
started with BIGMODEL_MAX_CONCURRENT_JOBS=1: the ones that wait show their queue position,
all three complete with their own run, nobody sees an error, and the pool never ran more
than one training at a time (read from the stats file the pool writes). The full 8-session
version with page-switch timings is bench/bench_load.py.
"""

from __future__ import annotations

import pytest

from bench.bench_load import run_load, verdict
from tests.e2e.helpers import open_page, start_app, stop_app, wait_for_text

pytestmark = pytest.mark.e2e

# quickstart_cnn on a small training set, so three trainings in a row stay short on a busy machine
QUERY = "preset=quickstart_cnn&training.epochs=1&data.train_size=192&data.val_size=64"


@pytest.fixture
def one_slot_server(tmp_path):
    stats = tmp_path / "pool-stats.json"
    proc, url = start_app(tmp_path, {"BIGMODEL_MAX_CONCURRENT_JOBS": "1", "BIGMODEL_STATS_FILE": str(stats),
                                     "BIGMODEL_IDLE_STOP_SECONDS": "600",
                                     # identical trainings would share one: this test is about the queue
                                     "BIGMODEL_SHARE_IDENTICAL": "0"})
    yield url, stats, tmp_path
    stop_app(proc)


def test_three_sessions_queue_visibly_complete_and_the_cap_holds(browser, one_slot_server):
    url, stats, tmp = one_slot_server
    try:
        fig = run_load(browser, url, sessions=3, stats_file=stats, deadline_s=240, query=QUERY,
                       measure_switches=False)
    except Exception as e:  # the server's side of it too
        log = next(tmp.glob("streamlit-*.log")).read_text()
        raise AssertionError(f"{e}\n--- server log ---\n{log[-3000:]}") from e
    assert verdict(fig) == [], fig
    assert fig["completed"] == 3 and not fig["errors"]
    assert fig["queued_sessions"] >= 1
    assert fig["max_workers"] == 1 and fig["peak_running"] == 1
    assert len(set(fig["run_ids"])) == 3  # each session got its own run
    log = next(tmp.glob("streamlit-*.log")).read_text()
    assert "Traceback" not in log, log[-3000:]


def test_a_deep_link_as_the_first_request_after_a_restart_applies_its_config(browser, tmp_path):
    proc, url = start_app(tmp_path)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        open_page(page, f"{url}/train?preset=quickstart_cnn&training.epochs=1")
        wait_for_text(page, "Press Train to start", timeout=120)
        page.wait_for_timeout(1000)
        assert page.get_by_label("epochs").first.input_value() == "1"
        wait_for_text(page, "Device:", timeout=10)
    finally:
        context.close()
        stop_app(proc)
