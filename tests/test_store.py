"""SQLite store: runs and events round-trip, survive reopening, and in-flight
runs are marked interrupted when a new server opens the file."""

import json
import os

from playground.runs import Run, Runs, RunState
from playground.store import CHUNK_EVENTS, Store


def make_store(tmp_path):
    store = Store(str(tmp_path / "sub" / "runs.sqlite3"))
    store.open()
    return store


def test_a_finished_run_round_trips_with_its_events(tmp_path):
    store = make_store(tmp_path)
    run = Run(id="abc234", experiment="io-bound", params={"threads": 2, "sleep_ms": 10})
    store.insert_run(run)
    events = [[i * 1000, i % 3, "S", "sleep" if i % 2 else "running"] for i in range(CHUNK_EVENTS * 2 + 5)]
    events.append([10**9, 1, "lane", {"name": "io-0", "tid": 42}])
    run.add_events(events)
    run.set_running({"version": "3.11.7", "gil_enabled": True}, {"os_states": True})
    run.finish(
        RunState.DONE,
        result={"claim": "c", "held": True, "why": "w", "metrics": {"speedup": 1.9}},
        output="hi",
        persist=store.finish_run,
    )
    store.close()

    reopened = make_store(tmp_path)
    loaded = reopened.load_run("abc234")
    assert loaded.state is RunState.DONE
    assert loaded.events == events
    assert loaded.result["metrics"]["speedup"] == 1.9
    assert loaded.lanes == {1: {"name": "io-0", "tid": 42}}
    assert loaded.output == "hi"
    assert loaded.interpreter["version"] == "3.11.7"
    new, status, version, done = loaded.follow(0, -1, timeout=0)
    assert len(new) == len(events) and status["state"] == "done" and not done
    assert loaded.follow(len(events), version, timeout=0)[3] is True


def test_events_are_compact_on_disk(tmp_path):
    store = make_store(tmp_path)
    run = Run(id="compact2", experiment="cpu-bound", params={})
    store.insert_run(run)
    run.add_events([[i * 1_000_003, i % 8, "S", ("running", "gil")[i % 2]] for i in range(100_000)])
    run.finish(RunState.DONE, result=None, persist=store.finish_run)
    size = sum(len(row[0]) for row in store._connect().execute("SELECT data FROM run_events"))
    assert size / 100_000 < 20, f"{size / 100_000:.1f} bytes per event"


def test_runs_in_flight_become_interrupted_on_reopen(tmp_path):
    store = make_store(tmp_path)
    for run_id, state in (("q1", RunState.QUEUED), ("r1", RunState.RUNNING)):
        run = Run(id=run_id, experiment="io-bound", params={}, state=state)
        store.insert_run(run)
    store.close()
    reopened = make_store(tmp_path)
    for run_id in ("q1", "r1"):
        loaded = reopened.load_run(run_id)
        assert loaded.state is RunState.INTERRUPTED and "server stopped" in loaded.reason


def test_unknown_run_is_none_and_recent_runs_list(tmp_path):
    store = make_store(tmp_path)
    runs = Runs(store)
    created = runs.create("hello-threads", {"threads": 2})
    assert store.load_run("nope") is None
    recent = store.recent_runs()
    assert recent[0]["id"] == created.id and recent[0]["params"] == {"threads": 2}
    assert json.dumps(recent)
    assert os.path.exists(store.path)


def test_finish_happens_once(tmp_path):
    store = make_store(tmp_path)
    run = Run(id="once22", experiment="io-bound", params={})
    store.insert_run(run)
    assert run.finish(RunState.TIMED_OUT, reason="deadline", persist=store.finish_run)
    assert not run.finish(RunState.DONE, persist=store.finish_run)
    assert store.load_run("once22").state is RunState.TIMED_OUT
