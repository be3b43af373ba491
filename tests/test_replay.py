"""Replay of a finished run (static/js/replay.js) and deletion by the run's creator."""

import os
import re
import time

import pytest
import requests
from conftest import needs_chromium

browser_only = needs_chromium


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    yield context
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def spans(page) -> int:
    return int(page.get_attribute("#chart", "data-spans") or 0)


def wait_until(check, timeout: float = 10) -> None:
    """Poll from Python: the pages' CSP forbids the eval that page.wait_for_function needs."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@browser_only
def test_the_slider_at_half_shows_fewer_spans_than_at_the_end(live, context):
    started, _ = live.run_to_end("cpu-bound", threads=4, iterations=1_000_000)
    page = context.new_page()
    page.goto(started["url"])
    page.wait_for_selector("#replay:not([hidden])", timeout=30_000)
    page.wait_for_selector('#chart[data-drawn="1"]', timeout=30_000)
    page.wait_for_selector('#run[data-finished="1"]', timeout=30_000)  # every event is in, not just the first batch
    page.wait_for_timeout(100)  # and drawn (next animation frame)
    full = spans(page)
    assert full > 10

    page.eval_on_selector("#replay-slider", "s => { s.value = '500'; s.dispatchEvent(new Event('input')); }")
    wait_until(lambda: spans(page) < full)
    half = spans(page)
    assert 0 < half < full
    assert page.is_visible("#replay-badge") and "replay" in page.inner_text("#replay-time")

    page.eval_on_selector("#replay-slider", "s => { s.value = '1000'; s.dispatchEvent(new Event('input')); }")
    # Back to the whole run (within a span or two: a state open at the very end may close at a
    # slightly different moment when replayed than when it streamed in).
    wait_until(lambda: abs(spans(page) - full) <= max(2, full // 50))
    assert not page.is_visible("#replay-badge")

    page.select_option("#replay-speed", "16")
    page.click("#replay-play")  # from the start, at 16x: it plays to the end by itself
    wait_until(lambda: page.inner_text("#replay-play") == "Replay" and page.input_value("#replay-slider") == "1000", 30)
    wait_until(lambda: abs(spans(page) - full) <= max(2, full // 50))  # drawn on the next frame


def test_the_creators_token_deletes_and_nobody_elses_does(live):
    started, _ = live.run_to_end("hello-threads", threads=2, delay_ms=0)
    run_id, token = started["id"], started["delete_token"]
    delete = f"{live.url}/runs/{run_id}/delete"
    assert requests.post(delete, timeout=10).status_code == 403
    assert requests.post(delete, json={"token": "guess"}, timeout=10).status_code == 403
    assert requests.get(started["url"], timeout=10).status_code == 200

    response = requests.post(delete, json={"token": token}, timeout=10)
    assert response.status_code == 200 and response.json() == {"id": run_id, "deleted": True}
    assert requests.get(started["url"], timeout=10).status_code == 404
    assert requests.get(started["api_url"], timeout=10).status_code == 404
    assert run_id not in {r["id"] for r in requests.get(f"{live.url}/api/runs", timeout=10).json()["runs"]}


def test_runs_are_listed_newest_first_in_pages(live):
    first = live.start_run("hello-threads", threads=1, delay_ms=0)
    second = live.start_run("hello-threads", threads=1, delay_ms=0)
    listing = requests.get(f"{live.url}/api/runs", timeout=10).json()
    ids = [r["id"] for r in listing["runs"]]
    assert ids.index(second["id"]) < ids.index(first["id"])
    assert listing["page"] == 1 and listing["total"] >= 2
    assert requests.get(f"{live.url}/api/runs?page={listing['pages'] + 1}", timeout=10).json()["runs"] == []
    assert second["id"] in requests.get(f"{live.url}/runs", timeout=10).text
    live.read_socket(first["id"])
    live.read_socket(second["id"])


@browser_only
def test_the_delete_button_shows_only_in_the_browser_that_ran_it(live, browser, context):
    page = context.new_page()
    page.goto(f"{live.url}/experiments/hello-threads?threads=2&delay_ms=0&present=1")
    page.keyboard.press("r")  # presenter mode: r runs the experiment
    page.wait_for_url(re.compile(r"/runs/[a-z0-9]{10}$"), timeout=10_000)
    page.wait_for_selector("#delete-run:not([hidden])", timeout=30_000)
    url = page.url
    page.screenshot(path=os.path.join(os.path.dirname(live.database), "run-present.png"), full_page=True)

    other = browser.new_context().new_page()
    other.goto(url)
    other.wait_for_selector("#replay:not([hidden])", timeout=30_000)
    assert other.locator("#delete-run").is_hidden()
    other.context.close()

    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#delete-run button")
    page.wait_for_url(re.compile(r"/runs$"), timeout=10_000)
    assert requests.get(url, timeout=10).status_code == 404
