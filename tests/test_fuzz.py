"""Property-based fuzzing of every input boundary of the JSON API and the form (issue 6, "Bad input").

What is sent: ``POST /runs`` with arbitrary JSON (any value at the top, random
keys, nested values, huge and non-finite numbers, numbers as odd strings,
unicode, wrong types, known experiments with random parameters), raw bodies
that are not JSON at all or nest too deeply, form posts with random fields,
``GET /experiments/<slug>?<random query>``, ``GET /api/runs/<random id>`` and
``POST /runs/<random id>/cancel``.

What must come back: never a 5xx, except the one honest one below; every 4xx
from the JSON API is ``{"error": "...", "errors": [{"field", "rule",
"message"}]}``, and when the test knows which field is at fault (an unknown
key, a value out of range, a malformed run id) that field is named. A small
model (``judge``) says for each generated request whether it is surely
invalid, surely valid or either, so the answers are checked, not only
survived. Every answer carries the security headers. The in-process app runs
with TESTING on, so an unhandled exception (a would-be 500) fails the case
with its traceback rather than hiding behind the status.

Valid requests would start runs, and 10,000 cases must not flood a 2-core
machine with worker processes. A valid request is not bad input: its right
answer is 201, or 503 "the queue is full" when the pool cannot take it. So the
in-process app is built with ``QUEUE_MAX = 0``: the pool refuses every run at
its ``check_room`` (before anything is stored, before any worker starts), and
the test accepts a 503 only when it says the queue is full, carries no field
errors and the request was not surely invalid, and requires it when the
request was surely valid. That makes the validator's decision visible on every
case at no cost; at the end the pool must never have started. Two finished
runs are seeded so real ids are fuzzed too.

Then ~500 cases go over real HTTP to the shared live server (``python
app.py``, real queue): requests the model calls valid are skipped there, so
nothing runs; one the model could not call that does start a run is cancelled
at once. Afterwards ``/healthz`` must answer and the pool must be idle.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import requests
from fuzz_requests import Case, cases, check
from hypothesis import HealthCheck, assume, given, settings

from playground import experiments
from playground.application import create_app
from playground.interpreters import Interpreters, run_params
from playground.runs import RunState
from playground.settings import from_environment

IN_PROCESS_CASES = 10_000
LIVE_CASES = 500


# -- in process: 10,000 cases ----------------------------------------------------------


@pytest.fixture
def fuzz_app(tmp_path):
    app = create_app({"DATABASE": str(tmp_path / "fuzz.sqlite3"), "TESTING": True, "WORKERS": 1, "QUEUE_MAX": 0})
    yield app
    app.extensions["playground"].pool.close()


def declared_params(interpreters: Interpreters) -> dict:
    return {e.slug: run_params(e, interpreters) for e in experiments.CATALOG}


def seed_finished_runs(app) -> list[str]:
    runs = app.extensions["playground"].runs
    ids = []
    for slug, params in (("hello-threads", {"threads": 2, "delay_ms": 0}), ("io-bound", {"threads": 1, "sleep_ms": 1})):
        run = runs.create(slug, params)
        run.finish(RunState.CANCELLED, reason="seeded by the fuzz test", persist=runs.persist)
        ids.append(run.id)
    return ids


FUZZ_SETTINGS = dict(
    deadline=None,
    database=None,  # nothing written into the repository; a failure prints its example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def test_ten_thousand_bad_inputs_get_4xx_that_name_the_problem(fuzz_app):
    client = fuzz_app.test_client()
    declared = declared_params(fuzz_app.extensions["playground"].interpreters)
    real_ids = seed_finished_runs(fuzz_app)
    seen = Counter()

    @settings(max_examples=IN_PROCESS_CASES, **FUZZ_SETTINGS)
    @given(case=cases(declared, real_ids))
    def one(case: Case) -> None:
        response = client.open(case.path, method=case.method, data=case.body, headers=case.headers)
        check(case, response.status_code, response.headers, response.get_data())
        seen[(case.kind, response.status_code)] += 1

    started = time.monotonic()
    one()
    elapsed = time.monotonic() - started
    total = sum(seen.values())
    print(f"\n{total} in-process cases in {elapsed:.1f} s: {sorted(seen.items())}")
    assert total >= IN_PROCESS_CASES
    statuses = {status for _, status in seen}
    assert {400, 404, 422, 503} <= statuses  # each kind of answer was reached, valid requests too
    assert fuzz_app.extensions["playground"].pool.statistics()["started"] is False  # no worker ever started
    assert client.get("/healthz").get_json()["ok"] is True


# -- over real HTTP: 500 cases against the live server -------------------------------------


def test_the_live_server_survives_fuzzing(live):
    session = requests.Session()
    started = live.run_to_end("hello-threads", threads=1, delay_ms=0)[0]  # one real id to fuzz with
    declared = declared_params(Interpreters(from_environment()["PYTHONS"]))  # as the live server has them
    seen = Counter()

    @settings(max_examples=LIVE_CASES, **FUZZ_SETTINGS)
    @given(case=cases(declared, [started["id"]]))
    def one(case: Case) -> None:
        assume(case.expect.run != "valid")  # nothing is meant to run on the shared server
        response = session.request(
            case.method, live.url + case.path, data=case.body, headers=case.headers, allow_redirects=False, timeout=10
        )
        if response.status_code in (201, 303) and case.kind in ("start-json", "start-raw", "form"):
            run_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]  # the model could not tell: undo it
            session.post(f"{live.url}/runs/{run_id}/cancel", json={}, timeout=10)
            seen["started"] += 1
            return
        check(case, response.status_code, response.headers, response.content)
        seen[response.status_code] += 1

    one()
    print(f"\n{sum(seen.values())} live cases: {sorted(seen.items(), key=str)}")
    assert sum(seen.values()) >= LIVE_CASES * 0.9
    deadline = time.monotonic() + 30
    while True:
        health = session.get(live.url + "/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["ok"] is True
        pool = health.json()["pool"]
        if pool["busy"] == 0 and pool["queued"] == 0:
            break
        assert time.monotonic() < deadline, f"the pool did not settle: {pool}"
        time.sleep(0.2)
    assert live.run_to_end("hello-threads", threads=2, delay_ms=0)[1][-1]["type"] == "end"  # and still runs things
