"""Load, bounded and on loopback only (issue 6): many viewers of one run, many
idle sockets, a client that never reads, many clients starting runs at once.

Clients are raw sockets driven by wsproto, all read by one selector thread, so
hundreds of them cost the test process little. They offer no compression and
close after ``end`` (DESIGN.md), as the page does. Every loop here is bounded
in count and in time; bench/load.py runs the same scenarios bigger, with figures.

Each socket holds a server thread (plus simple-websocket's reader thread), so
700 sockets are some 1,400 threads in the server: the open-files limit is
raised for this process and the server it starts (it inherits it).
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import resource
import select
import selectors
import socket
import time

import pytest
import requests
from conftest import LiveServer, events_of, result_of
from test_gunicorn import GunicornServer
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, RejectConnection, Request, TextMessage

VIEWERS = 200
IDLE = 500
SOCKETS_NEEDED = VIEWERS + IDLE + 200  # plus files, pipes and HTTP requests on each side
BIG_RUN_ID = "bgrpybgrpy"  # a valid id (10 characters of runs._ID_ALPHABET), or the server never looks it up


def raise_open_files_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Viewer:
    """One WebSocket client on a raw socket. ``messages`` holds (arrival ns, message)."""

    def __init__(self, port: int, path: str, *, rcvbuf: int | None = None, timeout: float = 20):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # before connect, so the window the server sees is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{port}", target=path)))
        self.messages: list[tuple[int, dict]] = []
        self.accepted = self.ended = self.closed = False
        self._text: list[str] = []

    def handshake(self) -> Viewer:
        while not self.accepted:
            self.feed(self.sock.recv(65536))
            if self.closed:
                raise ConnectionError("closed during the handshake")
        return self

    def feed(self, data: bytes) -> None:
        """Take bytes from the socket; answer pings; close after ``end`` (the client closes)."""
        now = time.monotonic_ns()
        if not data:
            self.closed = True
            return
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
            elif isinstance(event, RejectConnection):
                raise ConnectionError(f"refused: {event.status_code}")
            elif isinstance(event, TextMessage):
                self._text.append(event.data)
                if event.message_finished:
                    message = json.loads("".join(self._text))
                    self._text = []
                    self.messages.append((now, message))
                    if message["type"] == "end" and not self.ended:
                        self.ended = True
                        self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
            elif isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.closed = True

    def typed(self, kind: str) -> list[dict]:
        return [m for _, m in self.messages if m["type"] == kind]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def connect_many(port: int, path: str, count: int, parallel: int = 8, **kwargs) -> list[Viewer]:
    """``count`` handshaken viewers, a few connecting at a time (the listen backlog is finite)."""
    with concurrent.futures.ThreadPoolExecutor(parallel) as executor:
        return list(executor.map(lambda _: Viewer(port, path, **kwargs).handshake(), range(count)))


def read_until_end(viewers: list[Viewer], timeout: float) -> None:
    """Read every viewer (one thread, one selector) until each got ``end`` and closed, or the time is up."""
    selector = selectors.DefaultSelector()
    for viewer in viewers:
        viewer.sock.setblocking(False)
        if not viewer.ended:
            selector.register(viewer.sock, selectors.EVENT_READ, viewer)
    deadline = time.monotonic() + timeout
    try:
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                viewer = key.data
                try:
                    data = viewer.sock.recv(262144)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                viewer.feed(data)
                if viewer.ended or viewer.closed:
                    selector.unregister(viewer.sock)
    finally:
        selector.close()
    missing = [v for v in viewers if not v.ended]
    assert not missing, f"{len(missing)} of {len(viewers)} viewers got no end within {timeout} s"


def wait_for_state(server: LiveServer, run_id: str, states: tuple, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = requests.get(f"{server.url}/api/runs/{run_id}", timeout=10).json()
        if run["state"] in states:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} not in {states} within {timeout} s: {run['state']}")


def seconds_of(run: dict) -> float:
    return run["finished_at"] - run["started_at"]


def socket_open(viewer: Viewer) -> bool:
    """Not closed or reset by the server (an idle socket may have unread data: peek)."""
    readable, _, _ = select.select([viewer.sock], [], [], 0)
    if not readable:
        return True
    try:
        return viewer.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def hold_the_pool(server: LiveServer) -> dict:
    """A long run that keeps the one worker busy, so the next run waits in the queue."""
    blocker = server.start_run("io-bound", threads=32, sleep_ms=500)  # 16 s of sleeps unless cancelled
    wait_for_state(server, blocker["id"], ("running",))
    return blocker


def start_server(kind: str, database: str, **env) -> LiveServer:
    env = {"PLAYGROUND_WORKERS": "1", **env}
    if kind == "gunicorn":
        return GunicornServer(database, env=env, threads=SOCKETS_NEEDED).start()
    return LiveServer(database, env=env).start()


# -- 200 viewers of one run, 500 idle sockets --------------------------------------------


@pytest.mark.parametrize("kind", ["werkzeug", "gunicorn"])
def test_200_viewers_and_500_idle_sockets(tmp_path, kind):
    assert raise_open_files_limit(4 * SOCKETS_NEEDED) >= 2 * SOCKETS_NEEDED, "ulimit -n too low for this test"
    server = start_server(kind, str(tmp_path / "runs.sqlite3"))
    viewers, idle = [], []
    try:
        blocker = hold_the_pool(server)
        run = server.start_run("cpu-bound", threads=8)
        path = f"/runs/{run['id']}/events"
        # The idle ones: handshaken sockets on the same run that never read a byte
        # (what the run sends them waits in kernel buffers; it is a few kB).
        idle = connect_many(int(server.url.rsplit(":", 1)[1]), path, IDLE)
        viewers = connect_many(int(server.url.rsplit(":", 1)[1]), path, VIEWERS)
        t0 = time.monotonic()
        page = requests.get(server.url + "/", timeout=10)
        page_s = time.monotonic() - t0
        assert page.ok and page_s < 5, f"the catalog took {page_s:.1f} s with {IDLE + VIEWERS} sockets open"
        requests.post(f"{server.url}/runs/{blocker['id']}/cancel", json={}, timeout=10)

        read_until_end(viewers, timeout=60)
        assert all(socket_open(v) for v in idle), "the server closed idle sockets"
        stored = server.read_socket(run["id"])  # a late read: the run as stored
        assert result_of(stored)["state"] == "done"
        expected = events_of(stored)
        assert len(expected) > 0
        for viewer in viewers:
            messages = [m for _, m in viewer.messages]
            assert result_of(messages)["state"] == "done"
            assert events_of(messages) == expected, "a viewer missed or reordered events"
        positions = [s["position"] for s in viewers[0].typed("status") if s["state"] == "queued"]
        assert positions and positions[0] == 1, "viewers of a queued run see its place"
    finally:
        for viewer in viewers + idle:
            viewer.close()
        server.stop()
    log = open(server.database + ".log", errors="replace").read()
    assert "Traceback" not in log and "dropped a viewer" not in log, log[-3000:]


# -- a client that never reads ---------------------------------------------------------


def test_a_bounded_send_is_whole_or_fails_in_time():
    from playground.web.stream import BoundedSocket, SlowReader

    server_side, client_side = socket.socketpair()
    try:
        server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        bounded = BoundedSocket(server_side, timeout=0.3)
        assert bounded.send(b"x" * 1000) == 1000 and client_side.recv(2000) == b"x" * 1000
        t0 = time.monotonic()
        with pytest.raises(SlowReader):
            bounded.send(b"y" * 10_000_000)  # more than any buffer: the peer never reads
        assert 0.3 <= time.monotonic() - t0 < 3
        assert not bounded.intact, "a frame was cut short: nothing more may be sent on this stream"
    finally:
        server_side.close()
        client_side.close()


def big_stored_run(database: str, lanes: int = 100, per_lane: int = 1000) -> str:
    """A finished run of 100,000 events (~2.5 MB of JSON), written to the store before the server starts."""
    from playground.runs import Run, RunState
    from playground.store import Store

    store = Store(database)
    store.open()
    run = Run(id=BIG_RUN_ID, experiment="cpu-bound", params={"threads": lanes, "iterations": 10_000})
    store.insert_run(run)
    events = [[0, lane, "lane", {"name": f"worker-{lane}", "tid": 1000 + lane}] for lane in range(lanes)]
    for i in range(per_lane):
        events += [
            [i * 1_000_000 + lane, lane, "S", ("running", "gil", "sleep")[(i + lane) % 3]] for lane in range(lanes)
        ]
    run.add_events(events)
    run.finish(RunState.DONE, result=None, persist=store.finish_run)
    store.close()
    return run.id


def watched_run(server: LiveServer, count: int) -> tuple[float, list[Viewer], str]:
    """Start a run with ``count`` viewers connected while it waits; (seconds it ran, viewers, id)."""
    port = int(server.url.rsplit(":", 1)[1])
    blocker = hold_the_pool(server)
    run = server.start_run("cpu-bound", threads=4, iterations=10_000_000)  # ~0.7 s: long beside start-up noise
    viewers = connect_many(port, f"/runs/{run['id']}/events", count)
    requests.post(f"{server.url}/runs/{blocker['id']}/cancel", json={}, timeout=10)
    read_until_end(viewers, timeout=60)
    stored = wait_for_state(server, run["id"], ("done",))
    expected = events_of(server.read_socket(run["id"]))
    for viewer in viewers:
        assert events_of([m for _, m in viewer.messages]) == expected
        viewer.close()
    return seconds_of(stored), viewers, run["id"]


@pytest.mark.parametrize("kind", ["werkzeug", "gunicorn"])
def test_a_client_that_never_reads_is_dropped_and_slows_no_one(tmp_path, kind):
    from playground.web.stream import SEND_TIMEOUT_S

    database = str(tmp_path / "runs.sqlite3")
    replay_id = big_stored_run(database)
    server = start_server(kind, database)
    log = database + ".log"
    try:
        port = int(server.url.rsplit(":", 1)[1])
        before_s, _, _ = watched_run(server, 20)

        # Connects to the big replay with a small window and never reads: the
        # server's send to it blocks once the kernel's buffers are full.
        slow = Viewer(port, f"/runs/{replay_id}/events", rcvbuf=4096).handshake()
        connected = time.monotonic()
        beside_s, _, _ = watched_run(server, 20)  # every viewer got every event: checked inside
        assert time.monotonic() - connected < SEND_TIMEOUT_S, "the run did not overlap the stuck send"

        deadline = connected + SEND_TIMEOUT_S + 15
        while f"dropped a viewer of run {BIG_RUN_ID}" not in open(log, errors="replace").read():
            assert time.monotonic() < deadline, "the never-reading client was not dropped"
            time.sleep(0.2)
        assert time.monotonic() - connected >= SEND_TIMEOUT_S - 1, "dropped before its bound"
        # Now read: what the kernel held, then the end of the stream the server closed.
        slow.sock.settimeout(10)
        received = 0
        while True:
            try:
                chunk = slow.sock.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += len(chunk)
        assert 0 < received < 1_000_000, f"{received:,} bytes of a 2.7 MB replay: the server's buffer is bounded"

        # Ratios, not times: this machine may be busy. Against the slower of the runs before and after.
        after_s, _, _ = watched_run(server, 20)
        assert beside_s < 3 * max(before_s, after_s), (
            f"beside a stuck reader the run took {beside_s:.2f} s; {before_s:.2f} s before, {after_s:.2f} s after"
        )
        assert "Traceback" not in open(log, errors="replace").read()
        slow.close()
    finally:
        server.stop()


# -- 30 clients starting runs at once --------------------------------------------------


def post_run_from(address: str, port: int, experiment: str, params: dict) -> tuple[int, dict]:
    """POST /runs from a loopback address of its own (all of 127/8 is loopback on
    Linux): a client of its own to the pool's per-address fairness."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(address, 0))
    try:
        body = json.dumps({"experiment": experiment, "params": params})
        connection.request("POST", "/runs", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_30_clients_start_runs_at_once(tmp_path):
    server = LiveServer(str(tmp_path / "runs.sqlite3"), env={"PLAYGROUND_WORKERS": "1"}).start()
    viewers = []
    try:
        port = int(server.url.rsplit(":", 1)[1])
        blocker = hold_the_pool(server)  # so every one of the 30 waits, and shows its place

        def start(n):
            status, body = post_run_from(f"127.0.0.{n + 2}", port, "hello-threads", {"threads": 2, "delay_ms": 0})
            assert status == 201, body
            return Viewer(port, f"/runs/{body['id']}/events").handshake()

        with concurrent.futures.ThreadPoolExecutor(30) as executor:
            viewers = list(executor.map(start, range(30)))
        requests.post(f"{server.url}/runs/{blocker['id']}/cancel", json={}, timeout=10)
        read_until_end(viewers, timeout=120)

        first_places = []
        for viewer in viewers:
            messages = [m for _, m in viewer.messages]
            assert result_of(messages)["state"] == "done", result_of(messages)
            places = [s["position"] for s in viewer.typed("status") if s["state"] == "queued"]
            assert places and all(1 <= p <= 30 for p in places), f"a queued run shows its place: {places}"
            first_places.append(places[0])
        assert max(first_places) >= 25, f"the 30 queued one behind another: {sorted(first_places)}"
    finally:
        for viewer in viewers:
            viewer.close()
        server.stop()
