"""The real server on a free port: runs through POST /runs, the WebSocket read
to ``end``, claims checked, thread states seen, records surviving a restart."""

import importlib.util
import time

import pytest
import requests
from conftest import LiveServer, events_of, result_of

from playground import truth
from playground.experiments import CATALOG

MESSAGE_ORDER = ("hello", "status", "events", "result", "end")


def states_seen(events, lane_prefix=""):
    names = {e[1]: e[3]["name"] for e in events if e[2] == "lane"}
    return {e[3] for e in events if e[2] == "S" and names.get(e[1], "").startswith(lane_prefix)}


AVAILABLE = {e.slug for e in CATALOG if all(importlib.util.find_spec(m) for m in e.requires)}


@pytest.mark.parametrize(
    "experiment, case",
    [(e.slug, case) for e, case in truth.cases()],
    ids=[truth.case_label(e, case) for e, case in truth.cases()],
)
def test_each_experiment_runs_at_its_defaults_and_its_claim_holds(live, experiment, case):
    if experiment not in AVAILABLE:
        pytest.skip(f"{experiment} needs a module this interpreter lacks")
    started, messages = live.run_to_end(experiment, **case)
    assert started["url"].endswith(f"/runs/{started['id']}")
    assert started["events_url"].startswith("ws://") and started["events_url"].endswith("/events")
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "hello" and kinds[-2:] == ["result", "end"]
    assert "events" in kinds
    result = result_of(messages)
    if result["state"] == "deadlocked":  # the claim of a deadlocking variant: the supervisor's verdict
        assert (result["result"] or {}).get("held") is True, result
    else:
        assert result["state"] == "done", result
        outcome = result["result"]
        assert outcome["held"] is True, f"{outcome['claim']} {outcome['why']} {outcome['metrics']}"
        assert result["result"]["metrics"]["wall_ms"] > 0
    lanes = {e[3]["name"] for e in events_of(messages) if e[2] == "lane"}
    assert "MainThread" in lanes and len(lanes) >= 2


def test_cpu_bound_threads_wait_for_the_gil(live):
    started, messages = live.run_to_end("cpu-bound", threads=4)
    assert "gil" in states_seen(events_of(messages), "worker-")
    sampler = requests.get(f"{live.url}/api/runs/{started['id']}", timeout=5).json()["observation"]["sampler"]
    assert sampler["errors"] == 0 and sampler["samples"] > 0, sampler
    # Read while the worker waited for its job, not as its threads started (memory_map.py).
    # (A futex in memory mapped since, a new malloc arena's lock, reads it again: counted, never first.)
    assert sampler["maps_reads"] >= 1 and sampler["maps_read_before_run_ms"] > 0, sampler
    observed = result_of(messages)["result"]["observed"]
    assert observed["gil_ms"] > 0 and observed["gil_acquisitions_after_wait"] > 0


def test_the_experiment_begins_once_the_sampler_has_read_the_worker(live):
    # The sampler's start (a thread, /proc files) beside the experiment's first
    # milliseconds disturbed it (worker.py): the worker waits for the supervisor's word.
    _, messages = live.run_to_end("deadlock", variant="ordered", threads=2, hold_ms=5)
    events = events_of(messages)
    begun = next(e[0] for e in events if e[1] == 0 and e[2] == "E" and e[3] == "waiting for the observer")
    assert min(e[0] for e in events if e[2] == "S") <= begun
    assert all(e[0] >= begun for e in events if e[2] == "lane" and e[1] > 0)
    # Main takes none of deadlock's locks: its wait for the observer is named no wait on them
    # (its last sampled futex must not be matched to a Lock made later at the same address).
    assert not [e for e in events if e[1] == 0 and e[2] in ("W", "A")], events


def test_io_bound_threads_sleep(live):
    _, messages = live.run_to_end("io-bound", threads=4, sleep_ms=100)
    assert "sleep" in states_seen(events_of(messages), "io-")
    metrics = result_of(messages)["result"]["metrics"]
    assert metrics["speedup"] > 2  # ratio, not a time: 4 overlapping sleeps vs 4 in a row


def test_race_condition_variants_report_their_counts(live):
    for variant, lost in (("widened", lambda n: n > 0), ("locked", lambda n: n == 0)):
        _, messages = live.run_to_end("race-condition", threads=4, increments=20_000, variant=variant)
        result = result_of(messages)["result"]
        metrics = result["metrics"]
        assert metrics["expected"] == 80_000 and metrics["expected"] - metrics["actual"] == metrics["lost_updates"]
        assert lost(metrics["lost_updates"]), (variant, metrics)
        assert result["held"] is True


def test_prints_arrive_as_marks(live):
    _, messages = live.run_to_end("hello-threads", threads=3, delay_ms=10)
    marks = [e[3] for e in events_of(messages) if e[2] == "M"]
    assert sorted(marks) == [f"Hello from thread {n}" for n in range(3)]


def test_a_late_joiner_gets_everything(live):
    started, first = live.run_to_end("hello-threads", threads=5, delay_ms=0)
    again = live.read_socket(started["id"])
    assert events_of(again) == events_of(first)
    assert result_of(again)["result"] == result_of(first)["result"]


def test_api_run_json_and_pages(live):
    started, _ = live.run_to_end("io-bound", threads=2, sleep_ms=20)
    run = requests.get(f"{live.url}/api/runs/{started['id']}", timeout=5).json()
    assert run["state"] == "done" and run["params"] == {"threads": 2, "sleep_ms": 20, "python": run["params"]["python"]}
    assert run["interpreter"]["version"].startswith(run["params"]["python"].rstrip("t"))
    assert run["counts"]["events"] > 0 and run["counts"]["lanes"] == 3
    page = requests.get(started["url"], timeout=5).text
    assert "held: <strong>true</strong>" in page
    health = requests.get(f"{live.url}/healthz", timeout=5).json()
    assert health["ok"] and health["pool"]["started"]


def test_bad_input_is_refused_and_starts_nothing(live):
    before = requests.get(f"{live.url}/healthz", timeout=5).json()["pool"]["completed"]
    response = requests.post(f"{live.url}/runs", json={"experiment": "io-bound", "params": {"threads": 0}}, timeout=5)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "threads"
    assert requests.post(f"{live.url}/runs", json={"experiment": "nope", "params": {}}, timeout=5).status_code == 404
    after = requests.get(f"{live.url}/healthz", timeout=5).json()["pool"]
    assert after["completed"] == before and after["queued"] == 0


def test_queue_positions_and_cancel(live):
    long_one = live.start_run("io-bound", threads=32, sleep_ms=500)  # 16 s of sequential sleeps
    queued = live.start_run("hello-threads")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = requests.get(f"{live.url}/api/runs/{queued['id']}", timeout=5).json()
        if state["state"] == "queued" and state["position"] == 1:
            break
        time.sleep(0.05)
    assert state["state"] == "queued" and state["position"] == 1
    while time.monotonic() < deadline:  # cancel once the long run has recorded something
        running = requests.get(f"{live.url}/api/runs/{long_one['id']}", timeout=5).json()
        if running["state"] == "running" and running["counts"]["events"] > 0:
            break
        time.sleep(0.05)
    requests.post(f"{live.url}/runs/{long_one['id']}/cancel", json={}, timeout=5)
    messages = live.read_socket(long_one["id"])
    assert result_of(messages)["state"] == "cancelled"
    assert any(m["type"] == "events" for m in messages), "events so far are kept"
    assert result_of(live.read_socket(queued["id"]))["state"] == "done"


def test_a_run_past_its_deadline_is_killed_and_the_pool_recovers(tmp_path):
    server = LiveServer(str(tmp_path / "runs.sqlite3"), env={"PLAYGROUND_MAX_WALL_S": "1"}).start()
    try:
        started, messages = server.run_to_end("io-bound", threads=8, sleep_ms=400)
        result = result_of(messages)
        assert result["state"] == "timed_out" and "wall-clock limit of 1 s" in result["reason"]
        assert events_of(messages), "events recorded before the kill are kept"
        _, after = server.run_to_end("hello-threads", threads=2, delay_ms=0)
        assert result_of(after)["state"] == "done"
    finally:
        server.stop()


def test_finished_runs_survive_a_restart_and_in_flight_ones_are_interrupted(tmp_path):
    database = str(tmp_path / "runs.sqlite3")
    server = LiveServer(database).start()
    finished, messages = server.run_to_end("hello-threads", threads=3, delay_ms=0)
    in_flight = server.start_run("io-bound", threads=32, sleep_ms=500)
    time.sleep(0.5)
    server.stop(kill=True)  # kill -9: no chance to clean up

    server = LiveServer(database).start()
    try:
        replay = server.read_socket(finished["id"])
        assert events_of(replay) == events_of(messages)
        assert result_of(replay)["result"] == result_of(messages)["result"]
        stored = requests.get(f"{server.url}/api/runs/{in_flight['id']}", timeout=5).json()
        assert stored["state"] == "interrupted"
    finally:
        server.stop()


def test_one_client_cannot_take_the_whole_pool(tmp_path):
    server = LiveServer(str(tmp_path / "runs.sqlite3"), env={"PLAYGROUND_PER_CLIENT": "2"}).start()
    try:
        first = server.start_run("io-bound", threads=8, sleep_ms=200)
        second = server.start_run("hello-threads")
        third = requests.post(f"{server.url}/runs", json={"experiment": "hello-threads", "params": {}}, timeout=5)
        assert third.status_code == 429 and "at most 2" in third.json()["error"]
        for started in (first, second):
            assert result_of(server.read_socket(started["id"]))["state"] == "done"
        assert server.start_run("hello-threads")["id"]  # a share frees up when a run ends
    finally:
        server.stop()


@pytest.mark.parametrize("threads", [2, 3])
def test_a_deadlock_is_detected_well_before_the_deadline(live, threads):
    started, messages = live.run_to_end("deadlock", threads=threads, variant="naive")
    result = result_of(messages)
    assert result["state"] == "deadlocked" and result["result"]["held"] is True, result
    names = [f"takes-{n}-then-{(n + 1) % threads}" for n in range(threads)]
    assert all(name in result["reason"] for name in names), result["reason"]
    run = requests.get(f"{live.url}/api/runs/{started['id']}", timeout=5).json()
    assert run["finished_at"] - run["started_at"] < 20 / 4  # stopped long before its 20 s deadline (a ratio)


@pytest.mark.parametrize("variant", ["ordered", "timeout"])
def test_no_false_deadlock_when_threads_can_finish(live, variant):
    _, messages = live.run_to_end("deadlock", threads=3, variant=variant)
    result = result_of(messages)
    assert result["state"] == "done" and result["result"]["held"] is True, result
