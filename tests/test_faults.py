"""Runs that crash, hang, deadlock or explode end only themselves: each ends
with a reason (its events so far kept), the pool refills, the server serves.

Every fault runs against one real server started with PLAYGROUND_FAULTS=1
(the hidden ``fault`` experiment) and a wall-clock cap of 4 s."""

import os
import signal
import time

import pytest
import requests
from conftest import LiveServer, result_of


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = LiveServer(
        str(tmp_path_factory.mktemp("faults") / "runs.sqlite3"),
        env={"PLAYGROUND_FAULTS": "1", "PLAYGROUND_MAX_WALL_S": "4"},
    ).start()
    yield server
    server.stop()


def sandbox(server) -> dict:
    return requests.get(f"{server.url}/healthz", timeout=5).json()["pool"]["sandbox"]


def ends_alone(server, kind: str) -> dict:
    """Run one fault to its end, then prove the server and the pool still work."""
    started, messages = server.run_to_end("fault", kind=kind)
    result = result_of(messages)
    _, after = server.run_to_end("hello-threads", threads=2, delay_ms=0)
    assert result_of(after)["state"] == "done", f"the pool did not recover after {kind}"
    assert requests.get(f"{server.url}/healthz", timeout=5).json()["ok"]
    return result


@pytest.mark.parametrize(
    "kind, state, reason",
    [
        ("crash", "failed", "RuntimeError: this experiment crashes on purpose"),
        ("segfault", "failed", "SIGSEGV"),
        ("infinite-loop", "timed_out", "wall-clock limit of 4 s"),
        ("deadlock", "deadlocked", "a cycle of 2 threads: takes-1-then-2 waits for second, held by takes-2-then-1"),
        ("memory-bomb", "failed", "memory limit of 512 MiB"),
    ],
)
def test_a_fault_ends_its_own_run_with_a_reason(server, kind, state, reason):
    result = ends_alone(server, kind)
    assert result["state"] == state, result
    assert reason in result["reason"], result


def test_the_fault_experiment_is_hidden_unless_enabled(live):
    response = requests.post(f"{live.url}/runs", json={"experiment": "fault", "params": {"kind": "crash"}}, timeout=5)
    assert response.status_code == 404


def test_a_thread_bomb_is_stopped_by_a_limit(server):
    result = ends_alone(server, "thread-bomb")
    assert result["state"] in ("failed", "timed_out"), result
    if result["state"] == "failed":
        assert "limit" in result["reason"], result


def processes_in_group(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:  # field 5 of stat: the process group
                found.append(int(entry))
    return found


def test_a_fork_bomb_is_contained(server):
    layers = sandbox(server)
    if not (layers["cgroup"]["active"] or layers["unprivileged_uid"]["active"]):
        pytest.skip("no pids cap on this machine (neither a cgroup nor an unprivileged uid): not running a fork bomb")
    started, messages = server.run_to_end("fault", kind="fork-bomb")
    result = result_of(messages)
    assert result["state"] in ("failed", "timed_out"), result
    pid = requests.get(f"{server.url}/api/runs/{started['id']}", timeout=5).json()["observation"]["worker_pid"]
    deadline = time.monotonic() + 5
    while processes_in_group(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_in_group(pid) == [], "fork bomb processes outlived their run"
    assert not os.path.exists(f"/sys/fs/cgroup/pids/playground-{pid}"), "the run's cgroup was not removed"
    assert result_of(server.run_to_end("hello-threads", threads=1, delay_ms=0)[1])["state"] == "done"


@pytest.mark.parametrize("kind", ["print-flood", "event-flood", "mark-flood"])
def test_floods_are_bounded(server, kind):
    started, messages = server.run_to_end("fault", kind=kind)
    result = result_of(messages)
    assert result["state"] in ("done", "timed_out"), result
    run = requests.get(f"{server.url}/api/runs/{started['id']}", timeout=5).json()
    assert run["counts"]["events"] <= 600_000  # the probe's cap plus the sampler's few
    assert len(run["output"]) <= 70_000  # output kept is bounded too
    assert result_of(server.run_to_end("hello-threads", threads=1, delay_ms=0)[1])["state"] == "done"


def test_kill_9_of_a_worker_from_outside(server):
    started = server.start_run("fault", kind="sleep-forever")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        run = requests.get(f"{server.url}/api/runs/{started['id']}", timeout=5).json()
        if run["state"] == "running" and run["observation"].get("worker_pid"):
            break
        time.sleep(0.05)
    os.kill(run["observation"]["worker_pid"], signal.SIGKILL)  # the sampler loses its target too
    result = result_of(server.read_socket(started["id"]))
    assert result["state"] == "failed" and "SIGKILL" in result["reason"], result
    assert result_of(server.run_to_end("hello-threads", threads=1, delay_ms=0)[1])["state"] == "done"


def test_no_network_from_the_worker(server):
    layers = sandbox(server)
    if not layers["network_namespace"]["active"]:
        pytest.skip(f"no network namespace here: {layers['network_namespace']['why']}")
    # Only with the namespace on: then there is no route, the attempt fails here
    # and nothing leaves the machine (without it, the test must not try at all).
    assert "only loopback" in layers["network_namespace"]["why"]
    result = ends_alone(server, "connect-out")
    assert result["state"] == "failed" and "unreachable" in result["reason"].lower(), result
