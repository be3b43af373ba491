"""Shared fixtures: a fresh app per unit test, and a real server on a free port.

The live server is ``python app.py`` in a subprocess, exactly as a user
starts it, with its own SQLite file and worker pool.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from playground.application import create_app  # noqa: E402

# Debian's chromium, driven by Playwright (never a browser Playwright downloads).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # this machine's network is closed: no background calls
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (test.sh installs it)"
)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (one sync Playwright at a time per thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser page; the test fails if the page threw or the CSP refused something.

    CSP refusals only reach the console ("Refused to ..."); other console errors
    (a favicon the browser guessed, say) are not the page's.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Refused" in m.text else None)
    yield page
    context.close()
    assert errors == [], f"errors on the page: {errors}"


@pytest.fixture
def app(tmp_path):
    app = create_app({"DATABASE": str(tmp_path / "runs.sqlite3"), "TESTING": True, "WORKERS": 1})
    yield app
    app.extensions["playground"].pool.close()


@pytest.fixture
def client(app):
    return app.test_client()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real ``python app.py`` on 127.0.0.1; restartable on the same database."""

    def __init__(self, database: str, env: dict | None = None):
        self.database = database
        self.env = env or {}
        self.proc = None
        self.url = ""

    def start(self) -> LiveServer:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PLAYGROUND_WORKERS": "1", **self.env}
        self.log = open(self.database + ".log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "app.py"), "--port", str(port), "--database", self.database],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self.wait_healthy("the server")

    def wait_healthy(self, what: str):
        """Until /healthz answers (30 s at most), or the process has died: then its log says why."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"{what} did not start: {open(self.database + '.log').read()[-2000:]}")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()

    # -- helpers the tests share --------------------------------------------------

    def start_run(self, experiment: str, **params) -> dict:
        response = requests.post(self.url + "/runs", json={"experiment": experiment, "params": params}, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()

    def read_socket(self, run_id: str, timeout: float = 120) -> list[dict]:
        """Every message of the run's WebSocket up to ``end``; the client closes."""
        import simple_websocket

        ws = simple_websocket.Client.connect(self.url.replace("http", "ws", 1) + f"/runs/{run_id}/events")
        messages = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                raw = ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                if raw is None:
                    continue
                message = json.loads(raw)
                messages.append(message)
                if message["type"] == "end":
                    return messages
        finally:
            ws.close()
        raise AssertionError(f"no end message within {timeout} s: {[m['type'] for m in messages][-10:]}")

    def run_to_end(self, experiment: str, **params) -> tuple[dict, list[dict]]:
        started = self.start_run(experiment, **params)
        messages = self.read_socket(started["id"])
        return started, messages


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    server = LiveServer(str(tmp_path_factory.mktemp("live") / "runs.sqlite3")).start()
    yield server
    server.stop()


def events_of(messages: list[dict]) -> list:
    return [event for m in messages if m["type"] == "events" for event in m["events"]]


def result_of(messages: list[dict]) -> dict:
    return next(m for m in messages if m["type"] == "result")


def run_worker(slug: str, params: dict, python: str = sys.executable) -> list[dict]:
    """One job through a real worker process, without the server: its protocol messages.

    The environment is the pool's (playground/sandbox/pool.py): what the experiments see in a run.
    """
    job = json.dumps({"experiment": slug, "params": params}) + "\n"
    env = {**os.environ, "PYTHONPATH": ROOT, "MALLOC_ARENA_MAX": "2", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run(
        [python, "-m", "playground.sandbox.worker"],
        input=job.encode(),
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def outcome_of(messages: list[dict]) -> dict:
    assert messages and messages[-1]["type"] == "result", messages[-1:]
    return messages[-1]["outcome"]
