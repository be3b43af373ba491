"""Issue 6, "Bad input": headers, escaping, bounded bodies, malformed run ids, what a
WebSocket client sends, and the pages working in real Chromium under the CSP."""

from __future__ import annotations

import json
import os
import re
import socket
import time
import urllib.parse

import pytest
import requests
from conftest import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from markupsafe import escape

from playground.runs import RunState
from playground.web.security import CONTENT_SECURITY_POLICY

# Each payload tries a different way out: a tag, an attribute, a JavaScript URL, a
# template expression (42666 = 6 * 7111 appears nowhere on the pages by accident).
PAYLOADS = (
    "<script>window.pwned=1</script>",
    '"><img src=x onerror="window.pwned=1">',
    "' onmouseover='window.pwned=1",
    "javascript:window.pwned=1",
    "{{ 6*7111 }}",
    "{% raw %}x",
)
RAW_MARKERS = ("<script>window.pwned", "<img src=x", 'onerror="window', "' onmouseover='", "42666")


def assert_escaped(html: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in html, f"{marker!r} reached the page unescaped"


def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


# -- headers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/experiments/io-bound", "/api/experiments", "/healthz", "/runs/nope", "/static/js/run.js"]
)
def test_every_answer_carries_the_security_headers(client, path):
    response = client.get(path)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_the_policy_allows_no_inline_script_or_style():
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_the_templates_and_scripts_need_no_inline_code():
    from conftest import ROOT

    for folder in ("templates",):
        for name in os.listdir(os.path.join(ROOT, folder)):
            html = open(os.path.join(ROOT, folder, name)).read()
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline script in {name}"
            assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=|javascript:|hx-on", html), f"inline code in {name}"
    for name in os.listdir(os.path.join(ROOT, "static", "js")):
        code = open(os.path.join(ROOT, "static", "js", name)).read()
        assert not re.search(r"\beval\(|new Function\(|innerHTML|insertAdjacentHTML|setAttribute\(\"style", code), name


# -- escaping ------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
def test_parameter_values_and_names_are_escaped_on_the_experiment_page(client, payload):
    query = urllib.parse.urlencode({"threads": payload, "variant": payload, payload: "1"})
    for headers in ({}, {"HX-Request": "true"}):  # the whole page, and the fragment htmx swaps in
        response = client.get(f"/experiments/race-condition?{query}", headers=headers)
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert_escaped(html)
        assert 'data-field="threads"' in html and 'data-field="variant"' in html  # refused, and said so
        assert f'value="{escape(payload)}"' in html  # the value is shown back, as text


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_refused_form_post_echoes_the_values_escaped(client, app, payload):
    response = client.post("/runs", data={"experiment": "io-bound", "threads": payload, payload: payload})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert_escaped(html)
    assert f'value="{escape(payload)}"' in html and f"{escape(payload)} is not a parameter" in html  # shown, as text
    assert app.extensions["playground"].store.recent_runs() == []


@pytest.mark.parametrize("payload", PAYLOADS)
def test_run_ids_and_slugs_are_escaped_on_error_pages(client, payload):
    for path in (f"/runs/{q(payload)}", f"/runs/{q(payload)}/status", f"/experiments/{q(payload)}"):
        response = client.get(path)
        assert response.status_code in (404, 308), path  # 308: a "/" in the payload merged away
        assert_escaped(response.get_data(as_text=True))
    response = client.post("/runs", data={"experiment": payload})
    assert response.status_code == 404
    assert_escaped(response.get_data(as_text=True))
    answer = client.get(f"/api/runs/{q(payload.replace('/', ''))}")
    assert answer.status_code == 404 and answer.is_json and answer.get_json()["errors"][0]["field"] == "run"


def test_what_a_run_printed_is_escaped_on_its_page(client, app):
    runs = app.extensions["playground"].runs
    run = runs.create("hello-threads", {"threads": 1, "delay_ms": 0})
    run.finish(RunState.FAILED, reason=PAYLOADS[0], output="\n".join(PAYLOADS), persist=runs.persist)
    for path in (f"/runs/{run.id}", f"/runs/{run.id}/status", f"/runs/{run.id}/result"):
        html = client.get(path).get_data(as_text=True)
        assert_escaped(html)
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html


# -- run ids -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["nope", "ABCDEFGHJK", "abcdefghj", "abcdefghjkm", "abcdefghj0", "abcdefghj1", "a b"])
def test_malformed_run_ids_are_404_without_a_database_query(client, app, bad, monkeypatch):
    store = app.extensions["playground"].store
    monkeypatch.setattr(store, "load_run", lambda run_id: pytest.fail(f"the database was asked for {run_id!r}"))
    for path in (f"/runs/{q(bad)}", f"/runs/{q(bad)}/status", f"/runs/{q(bad)}/result", f"/api/runs/{q(bad)}"):
        assert client.get(path).status_code == 404, path
    answer = client.post(f"/runs/{q(bad)}/cancel", json={})
    assert answer.status_code == 404 and answer.get_json()["errors"][0]["field"] == "run"


def test_a_well_formed_unknown_id_is_looked_up_and_404(client):
    answer = client.get("/api/runs/abcdefghjk")
    assert answer.status_code == 404 and "abcdefghjk" in answer.get_json()["error"]


# -- bodies --------------------------------------------------------------------------------


def test_a_declared_oversized_body_is_refused_on_every_route(client):
    big = b"x" * (64 * 1024 + 1)
    answer = client.post("/runs", data=big, content_type="application/json")
    assert answer.status_code == 413 and "64 KiB" in answer.get_json()["error"]
    assert client.post("/runs", data={"experiment": "io-bound", "pad": big.decode()}).status_code == 413
    assert client.post("/runs/abcdefghjk/cancel", data=big, content_type="application/json").status_code == 413


def test_deeply_nested_json_is_a_400_not_a_crash(client):
    answer = client.post("/runs", data="[" * 50_000, content_type="application/json")
    assert answer.status_code == 400 and "nested" in answer.get_json()["error"]


def http_exchange(url: str, head: bytes, body_parts=(), timeout: float = 10) -> bytes:
    """Send raw bytes to the live server and read its answer: the head and Content-Length bytes.

    Not "until the server closes": after answering, Werkzeug's dev server drains what the
    client still sends (so it sees the 413, not a reset), which lasts as long as we send.
    """
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as conn:
        conn.sendall(head)
        for part in body_parts:
            try:
                conn.sendall(part)
            except OSError:  # the server answered and closed before taking it all
                break
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + _length(answer):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def _length(answer: bytes) -> int:
    found = re.search(rb"\r\nContent-Length: (\d+)\r\n", answer, re.IGNORECASE)
    return int(found.group(1)) if found else 0


def chunked_post(path: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_chunked_bodies_are_read_and_bounded(live):
    body = json.dumps({"experiment": "io-bound", "params": {"threads": 0}}).encode()
    answer = http_exchange(live.url, chunked_post("/runs"), [chunk(body[:10]), chunk(body[10:]), b"0\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 422") and b'"field":"threads"' in answer  # read, whole, and validated

    # More than 64 KiB and no end in sight: refused at the limit, without waiting for the rest.
    started = time.monotonic()
    answer = http_exchange(live.url, chunked_post("/runs"), [chunk(b" " * 16384)] * 5)  # never terminated
    assert answer.startswith(b"HTTP/1.1 413") and b"64 KiB" in answer
    assert time.monotonic() - started < 5

    answer = http_exchange(live.url, chunked_post("/runs"), [b"zz\r\nnot a chunk\r\n0\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 400") and b"malformed" in answer

    # A declared length far past the limit is refused before a byte of the body is sent.
    head = b"POST /runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
    assert http_exchange(live.url, head).startswith(b"HTTP/1.1 413")
    assert requests.get(live.url + "/healthz", timeout=5).json()["ok"] is True


# -- the WebSocket -------------------------------------------------------------------------


def open_socket(live, run_id: str):
    import simple_websocket

    return simple_websocket.Client.connect(live.url.replace("http", "ws", 1) + f"/runs/{q(run_id)}/events")


def read_until_closed(ws, timeout: float = 15) -> list:
    from simple_websocket import ConnectionClosed

    messages, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            raw = ws.receive(timeout=0.5)
            if raw is not None:
                messages.append(json.loads(raw))
    except ConnectionClosed:
        return messages
    raise AssertionError(f"the server kept the socket open: {[m['type'] for m in messages]}")


@pytest.fixture(scope="module")
def finished_run(live) -> str:
    return live.run_to_end("hello-threads", threads=1, delay_ms=0)[0]["id"]


def test_what_a_client_sends_on_the_socket_is_ignored(live, finished_run):
    ws = open_socket(live, finished_run)
    try:
        ws.send(b"\x00\xff" * 100)  # binary
        ws.send('{"type": "cancel"}')  # commands go over HTTP
        messages = []
        while not messages or messages[-1]["type"] != "end":
            messages.append(json.loads(ws.receive(timeout=10)))
        assert [m["type"] for m in messages][0] == "hello" and "result" in [m["type"] for m in messages]
    finally:
        ws.close()


def test_an_oversized_message_closes_the_socket(live, finished_run):
    ws = open_socket(live, finished_run)
    ws.send("x" * (64 * 1024 + 1))
    read_until_closed(ws)
    assert ws.close_reason == 1009  # message too big
    assert requests.get(live.url + "/healthz", timeout=5).json()["ok"] is True


def test_a_client_that_floods_the_socket_is_dropped(live, finished_run):
    ws = open_socket(live, finished_run)
    for _ in range(80):  # 80 KiB in messages each under the size cap
        ws.send("y" * 1024)
    messages = read_until_closed(ws)
    assert ws.close_reason == 1008
    assert any(m["type"] == "error" and "sent over 64 KiB" in m["error"] for m in messages)


def test_a_malformed_run_id_on_the_socket_gets_an_error_and_end(live):
    ws = open_socket(live, '<b>nope"')
    try:
        first, second = json.loads(ws.receive(timeout=5)), json.loads(ws.receive(timeout=5))
        assert first["type"] == "error" and second["type"] == "end"
    finally:
        ws.close()


# -- real Chromium under the policy --------------------------------------------------------

WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


@needs_chromium
def test_the_pages_work_in_chromium_under_the_policy_and_run_no_injected_script(live):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            console, errors, dialogs = [], [], []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.add_init_script(WATCH_CSP)

            def violations() -> list:
                seen = page.evaluate("window.__csp") + [m for m in console if "Content Security Policy" in m]
                page.evaluate("window.__csp = []")
                console.clear()
                return seen

            # The detector works: a <style> element is refused under this policy.
            page.goto(live.url + "/")
            page.evaluate("document.head.append(Object.assign(document.createElement('style'), {textContent: 'a{}'}))")
            page.wait_for_timeout(100)
            assert any("style-src" in v for v in violations())

            # Payloads in values, names and ids: shown as text, never run.
            query = urllib.parse.urlencode({"threads": PAYLOADS[1], PAYLOADS[0]: "1", "delay_ms": PAYLOADS[2]})
            for url in (
                f"/experiments/hello-threads?{query}",
                f"/runs/{q(PAYLOADS[0])}",
                f"/experiments/{q(PAYLOADS[1])}",
            ):
                page.goto(live.url + url)
                page.wait_for_load_state("load")
                assert page.evaluate("window.pwned") is None, url
                assert violations() == [], url  # an injected inline script would show here, refused
            assert page.evaluate("htmx.config.includeIndicatorStyles") is False

            # The real flow: htmx swaps the form as a field changes, Run, the chart over the socket, the verdict.
            page.goto(f"{live.url}/experiments/hello-threads?threads=2&delay_ms=10")
            page.fill("#f-threads", "999")
            page.dispatch_event("#f-threads", "change")
            page.wait_for_selector('.error[data-field="threads"]', timeout=10_000)  # swapped in by htmx
            page.fill("#f-threads", "3")
            page.dispatch_event("#f-threads", "change")
            page.wait_for_url(re.compile(r"threads=3"), timeout=10_000)
            page.wait_for_selector('.error[data-field="threads"]', state="detached", timeout=10_000)
            page.click("button.run-button")
            page.wait_for_url(re.compile(r"/runs/[a-z0-9]{10}$"), timeout=10_000)
            page.wait_for_selector('#chart[data-drawn="1"]', timeout=30_000)  # events came over the WebSocket
            page.wait_for_selector(".verdict[data-held]", timeout=60_000)  # htmx swapped the result in
            assert page.get_attribute("#run", "data-finished") == "1"
            assert violations() == []
            assert errors == [] and dialogs == []
        finally:
            browser.close()
