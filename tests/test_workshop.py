"""Sweeps, repeats and compare (playground/series.py, playground/web/workshop.py):
validation before anything starts, live series to the end, the per-client share
respected, the shared time range in a real browser, and series surviving a restart."""

import os
import re
import time

import pytest
import requests
from conftest import LiveServer, needs_chromium

SCREENSHOTS = os.environ.get("WORKSHOP_SCREENSHOTS")  # a directory: the browser tests leave their pages there


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One run per client at a time: a series must wait its turn, never get around the cap."""
    s = LiveServer(str(tmp_path_factory.mktemp("workshop") / "runs.sqlite3"), {"PLAYGROUND_PER_CLIENT": "1"})
    yield s.start()
    s.stop()


def start(server, kind: str, experiment: str, params: dict, **options) -> dict:
    body = {"experiment": experiment, "params": params, **options}
    response = requests.post(f"{server.url}/{kind}", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def wait_series(server, kind: str, series_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = requests.get(f"{server.url}/api/{kind}/{series_id}", timeout=10).json()
        sides = [data, data.get("companion") or {"state": "done"}]
        if all(side["state"] != "running" for side in sides):
            return data
        time.sleep(0.2)
    raise AssertionError(f"{kind} {series_id} still running after {timeout} s: {data}")


# -- refused before anything starts (no server needed) ------------------------------


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/sweeps", {"experiment": "io-bound", "params": {}, "up_to": 64}, "up_to"),
        ("/sweeps", {"experiment": "io-bound", "params": {"sleep_ms": 0}, "up_to": 4}, "sleep_ms"),
        ("/repeats", {"experiment": "race-condition", "params": {}, "repeats": 1}, "repeats"),
        ("/repeats", {"experiment": "race-condition", "params": {}, "metric": "nope"}, "metric"),
    ],
)
def test_bad_series_are_refused_with_the_field(client, app, path, body, field):
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.get_json()["errors"]]
    assert app.extensions["playground"].store.recent_runs() == []  # nothing started, nothing stored


def test_unknown_things_are_404(client):
    assert client.post("/sweeps", json={"experiment": "nope", "params": {}}).status_code == 404
    assert client.post("/sweeps", json={"experiment": "io-bound", "params": {}, "extra": 1}).status_code == 400
    assert client.get("/api/sweeps/aaaaaaaaaa").status_code == 404
    assert client.get("/repeats/not-an-id").status_code == 404
    response = client.get("/api/compare?a=aaaaaaaaaa&b=bbbbbbbbbb")
    assert response.status_code == 404 and "error" in response.get_json()


def test_the_experiment_page_offers_a_sweep_and_a_repeat(client):
    page = client.get("/experiments/io-bound").get_data(as_text=True)
    assert "Sweep 1, 2, 4, 8, 16…" in page and 'hx-include="#run-form"' in page
    assert "repeat-form" not in page
    page = client.get("/experiments/race-condition").get_data(as_text=True)
    assert "repeat-form" in page and 'value="lost_updates" selected' in page


# -- live ------------------------------------------------------------------------------


def test_a_sweep_runs_once_per_count_and_speedup_grows(server):
    started = start(server, "sweeps", "io-bound", {"sleep_ms": 30}, up_to=8)
    data = wait_series(server, "sweeps", started["id"])
    assert data["state"] == "done", data
    points = data["points"]
    assert [p["threads"] for p in points] == [1, 2, 4, 8]
    assert len({p["run"] for p in points}) == 4 and all(p["state"] == "done" for p in points)
    assert data["speedup"]["source"] == "metric"  # io-bound declares its own speedup
    speedups = [p["speedup"] for p in points]
    for fewer, more in zip(speedups, speedups[1:], strict=False):
        assert more > 1.2 * fewer, speedups  # doubling the threads: wide margin under the ideal 2x
    assert speedups[-1] > 3 * speedups[0], speedups

    page = requests.get(server.url + f"/sweeps/{started['id']}", timeout=10).text
    for p in points:
        assert f'href="/runs/{p["run"]}" class="point" data-threads="{p["threads"]}"' in page
    assert 'class="ideal"' in page and f'data-cores="{data["cores"]}"' in page
    assert "hx-trigger" not in page.split('id="series-live"')[1].split(">")[0]  # finished: polling stopped


def test_a_sweep_waits_for_the_clients_share_instead_of_bypassing_it(server):
    """PLAYGROUND_PER_CLIENT=1: with a run of the client's own in flight, the
    sweep's first run can only be created after that run has ended."""
    mine = server.start_run("io-bound", threads=1, sleep_ms=300)
    started = start(server, "sweeps", "io-bound", {"sleep_ms": 10}, up_to=2)
    data = wait_series(server, "sweeps", started["id"])
    assert data["state"] == "done" and [p["state"] for p in data["points"]] == ["done", "done"]
    before = requests.get(mine["api_url"], timeout=10).json()
    runs = [requests.get(f"{server.url}/api/runs/{p['run']}", timeout=10).json() for p in data["points"]]
    assert before["finished_at"] <= runs[0]["created_at"]
    assert runs[0]["finished_at"] <= runs[1]["created_at"]  # one at a time, in order


def test_a_repeat_draws_histograms_that_count_every_run(server):
    n = 6
    params = {"threads": 4, "increments": 20_000, "variant": "widened"}  # long enough that every run overlaps
    started = start(server, "repeats", "race-condition", params, repeats=n, with_locked=True)
    data = wait_series(server, "repeats", started["id"])
    twin = data["companion"]
    assert twin and twin["id"] == started["companion"] and twin["params"]["variant"] == "locked"
    for side in (data, twin):
        assert side["state"] == "done" and side["metric"] == "lost_updates"
        assert len(side["values"]) == n and sum(side["histogram"]["counts"]) == n
    assert all(v > 0 for v in data["values"]) and twin["values"] == [0] * n

    page = requests.get(server.url + f"/repeats/{started['id']}", timeout=10).text
    figures = re.findall(r'<figure class="repeat-side"[^>]*data-variant="(\w+)">(.*?)</figure>', page, re.S)
    assert [variant for variant, _ in figures] == ["widened", "locked"]
    for _, html in figures:
        assert f'data-n="{n}"' in html
        assert sum(int(c) for c in re.findall(r'data-count="(\d+)"', html)) == n


def test_series_survive_a_restart(tmp_path):
    server = LiveServer(str(tmp_path / "runs.sqlite3")).start()
    try:
        sweep = start(server, "sweeps", "io-bound", {"sleep_ms": 10}, up_to=2)
        repeat = start(server, "repeats", "race-condition", {"increments": 500}, repeats=2)
        done_sweep = wait_series(server, "sweeps", sweep["id"])
        done_repeat = wait_series(server, "repeats", repeat["id"])
        unfinished = start(server, "sweeps", "io-bound", {"sleep_ms": 200}, up_to=16)  # ~7 s: still going
        deadline = time.monotonic() + 60
        while not requests.get(f"{server.url}/api/sweeps/{unfinished['id']}", timeout=10).json()["finished"]:
            assert time.monotonic() < deadline, "the long sweep never finished a run"
            time.sleep(0.2)
    finally:
        server.stop()
    server.start()
    try:
        for kind, before in (("sweeps", done_sweep), ("repeats", done_repeat)):
            after = requests.get(f"{server.url}/api/{kind}/{before['id']}", timeout=10).json()
            assert after == before
            assert requests.get(f"{server.url}/{kind}/{before['id']}", timeout=10).status_code == 200
        cut = requests.get(f"{server.url}/api/sweeps/{unfinished['id']}", timeout=10).json()
        assert cut["state"] == "interrupted" and "server stopped" in cut["reason"]
        assert cut["points"][0]["state"] == "done" and cut["points"][0]["speedup"]
        assert "hx-trigger" not in requests.get(f"{server.url}/sweeps/{unfinished['id']}", timeout=10).text
    finally:
        server.stop()


# -- a real browser ----------------------------------------------------------------------


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, name), full_page=True)


@needs_chromium
def test_compare_draws_both_runs_on_one_time_range(server, page):
    a = server.run_to_end("io-bound", threads=2, sleep_ms=40)[0]["id"]
    b = server.run_to_end("io-bound", threads=4, sleep_ms=80)[0]["id"]  # about four times as long
    page.goto(f"{server.url}/runs/{a}")
    page.fill("#compare-b", b)
    page.click(".compare-form button[type=submit]")
    page.wait_for_url(re.compile(rf"/compare\?a={a}&b={b}$"), timeout=10_000)
    page.wait_for_selector('#chart-a[data-drawn="1"]', timeout=30_000)
    page.wait_for_selector('#chart-b[data-drawn="1"]', timeout=30_000)
    page.wait_for_selector('#compare[data-aligned="1"]', timeout=30_000)
    range_a, range_b = page.get_attribute("#chart-a", "data-range"), page.get_attribute("#chart-b", "data-range")
    assert range_a == range_b and float(range_a.split(",")[1]) > 0
    page.wait_for_selector('#compare-table tr[data-metric="speedup"]')
    cells = page.locator('#compare-table tr[data-metric="speedup"] td.num').all_inner_texts()
    assert len(cells) >= 2 and all(c.strip() not in ("", "–") for c in cells[:2])
    shot(page, "compare.png")


@needs_chromium
def test_the_sweep_button_uses_the_forms_values(server, page):
    page.goto(f"{server.url}/experiments/io-bound?threads=2&sleep_ms=20")
    page.select_option("#sweep-up-to", "4")
    page.click(".sweep-button")
    page.wait_for_url(re.compile(r"/sweeps/[a-z0-9]+$"), timeout=10_000)
    page.wait_for_selector('#series-live[data-state="done"]', timeout=120_000)  # htmx polling until the end
    assert page.locator("a.point").count() == 3
    assert "sleep_ms=20" in page.inner_text(".params")
    shot(page, "sweep.png")
