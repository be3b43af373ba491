"""Workshop rooms against the live server: the instructor's run broadcast to a
learner's browser, the key that alone starts room runs, the class view, a
restart, and the QR code."""

import re
import xml.etree.ElementTree as ET

import requests
from conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer, needs_chromium

from playground.rooms import ROOM_ALPHABET, is_room_code, new_room_code


def new_room(url: str) -> dict:
    response = requests.post(url + "/rooms", json={}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def test_room_codes_are_short_and_unambiguous():
    codes = {new_room_code() for _ in range(200)}
    assert all(is_room_code(c) and len(c) == 6 for c in codes)
    assert not set("01258BILOSUVZ") & set(ROOM_ALPHABET)


def test_only_the_key_starts_room_runs_and_anyone_adds_to_the_class(live):
    room = new_room(live.url)
    base = f"{live.url}/rooms/{room['code']}"
    run = {"experiment": "hello-threads", "params": {"threads": 2, "delay_ms": 0}}

    refused = requests.post(base + "/runs", json=run, timeout=10)
    assert refused.status_code == 403
    wrong = requests.post(base + "/runs", json={**run, "key": "not-the-key"}, timeout=10)
    assert wrong.status_code == 403

    led = requests.post(base + "/runs", json={**run, "key": room["key"]}, timeout=10)
    assert led.status_code == 201, led.text
    assert led.json()["delete_token"]

    mine = requests.post(base + "/class", json={**run, "who": "Ada"}, timeout=10)
    assert mine.status_code == 201, mine.text
    nameless = requests.post(base + "/class", json=run, timeout=10)
    assert nameless.status_code == 422
    live.read_socket(mine.json()["id"])
    live.read_socket(led.json()["id"])

    data = requests.get(f"{live.url}/api/rooms/{room['code']}", timeout=10).json()
    assert data["current"]["id"] == led.json()["id"]
    assert data["current"]["params"] == requests.get(led.json()["url"].replace("/runs/", "/api/runs/")).json()["params"]
    [entry] = data["class"]
    assert entry["who"] == "Ada" and entry["run"] == mine.json()["id"] and entry["experiment"] == "hello-threads"
    assert entry["held"] is True and entry["metric"]["name"] == "threads_started"
    # who is not an experiment parameter: the run never saw it
    assert "who" not in requests.get(f"{live.url}/api/runs/{entry['run']}", timeout=10).json()["params"]


def test_the_qr_code_is_well_formed_svg(live):
    room = new_room(live.url)
    response = requests.get(f"{live.url}/rooms/{room['code']}/qr.svg", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("image/svg+xml")
    svg = ET.fromstring(response.content)
    assert svg.tag.endswith("svg") and svg.find(".//{http://www.w3.org/2000/svg}path") is not None
    page = requests.get(room["url"], timeout=10).text
    assert "<svg" in page and room["code"] in page and "You lead this room" not in page  # learners hold no key


def test_a_room_survives_a_restart(tmp_path):
    server = LiveServer(str(tmp_path / "runs.sqlite3")).start()
    try:
        room = new_room(server.url)
        led = requests.post(
            f"{server.url}/rooms/{room['code']}/runs",
            json={"experiment": "hello-threads", "params": {"threads": 1, "delay_ms": 0}, "key": room["key"]},
            timeout=10,
        ).json()
        server.read_socket(led["id"])
    finally:
        server.stop()
    server.start()
    try:
        data = requests.get(f"{server.url}/api/rooms/{room['code']}", timeout=10).json()
        assert data["current"]["id"] == led["id"] and data["current"]["state"] == "done"
        assert requests.post(f"{server.url}/rooms/{room['code']}/runs", json={}, timeout=10).status_code == 403
        page = requests.get(f"{server.url}/rooms/{room['code']}?key={room['key']}", timeout=10).text
        assert "You lead this room" in page  # the key still opens it
    finally:
        server.stop()


@needs_chromium
def test_an_instructors_run_reaches_a_learners_screen(live):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        errors = []
        try:
            instructor = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            learner_context = browser.new_context(viewport={"width": 1280, "height": 900})
            learner = learner_context.new_page()
            for page in (instructor, learner):
                page.on("pageerror", lambda exc: errors.append(str(exc)))

            instructor.goto(live.url + "/")
            instructor.click("#create-room")
            instructor.wait_for_url(re.compile(r"/rooms/[A-Z0-9]{6}\?key="), timeout=10_000)
            code = instructor.inner_text("#room-code")
            learner.goto(f"{live.url}/rooms/{code}")
            assert learner.locator("#room-run-form").count() == 0  # no key, no room runs
            assert learner.locator(".room-qr svg").count() == 1

            instructor.fill("#room-recipe", "io-bound?threads=3&sleep_ms=60")
            instructor.click("#room-run-form button[type=submit]")
            instructor.wait_for_url(re.compile(rf"/rooms/{code}$"), timeout=10_000)
            run_id = requests.get(f"{live.url}/api/rooms/{code}", timeout=10).json()["current"]["id"]

            learner.wait_for_selector(f'#room-chart[data-run="{run_id}"][data-drawn="1"]', timeout=30_000)
            assert int(learner.get_attribute("#room-chart", "data-lanes")) >= 4  # main + 3 threads
            assert learner.input_value("#class-recipe").startswith("io-bound?")  # ready to run the same
            status = learner.evaluate(
                "async (code) => (await fetch(`/rooms/${code}/runs`, {method: 'POST', headers: {'Content-Type': "
                "'application/json'}, body: JSON.stringify({experiment: 'hello-threads', params: {}})})).status",
                code,
            )
            assert status == 403

            learner.fill("#room-who", "Grace")
            with learner_context.expect_page() as opened:
                learner.click("#class-run-form button[type=submit]")
            mine = opened.value
            mine.wait_for_url(re.compile(r"/runs/[a-z0-9]{10}$"), timeout=10_000)
            mine.wait_for_selector('#chart[data-drawn="1"]', timeout=30_000)
            learner.wait_for_selector("#room-class tr:has-text('Grace')", timeout=15_000)
            learner.reload()
            assert learner.input_value("#room-who") == "Grace"  # typed once
            instructor.screenshot(path=str(live.database) + ".room-instructor.png", full_page=True)
            learner.goto(f"{live.url}/rooms/{code}?present=1")
            learner.wait_for_selector('#room-chart[data-drawn="1"]', timeout=30_000)
            learner.screenshot(path=str(live.database) + ".room-present.png", full_page=False)
        finally:
            browser.close()
        assert errors == [], f"JavaScript errors on the page: {errors}"
