"""``WS /runs/<id>/events``: a run's messages, live or replayed.

Each socket is served by its own handler thread (flask-sock), which is the
only thread that sends messages on it (DESIGN.md: concurrent sends corrupt the
stream in Chromium). The handler follows the run with its own cursor (runs.py), so a
late joiner gets everything so far first, then the rest live.

Messages: ``hello``, ``status``, ``events`` (batches), ``result``, ``end``.
After ``end`` the server waits for the *client* to close: a server-initiated
close on Werkzeug loses the last messages in Chromium.

Slow readers. A viewer that stops reading (a suspended laptop, a stuck tab, a
script that never reads) cannot slow the run or the other viewers: nobody waits
for a viewer, each only lags behind on its own cursor into the one shared event
list, so lagging costs no memory here either. What it does cost is its handler
thread: once the kernel's socket buffers are full, a send blocks, and
simple-websocket's plain ``sock.send`` would block forever (under gunicorn
gthread that is one of the ``--threads`` gone for good). So every send is
bounded: a message not taken by the kernel within ``SEND_TIMEOUT_S`` drops the
viewer with a reason (logged; sent as an ``error`` message when the stream
still allows it) and the server closes the socket. There is no bound on lag in
events: a late joiner is "behind" by the whole run and is not slow. The send
buffer is fixed (``SEND_BUFFER``) rather than left to the kernel's autotuning,
which grows it to 4 MB on Linux: that bounds the kernel memory a stuck viewer
pins, and makes "stuck" mean "has not read the last few hundred kB".
"""

from __future__ import annotations

import errno
import json
import select
import socket
import threading
import time

from flask import current_app, request
from flask_sock import ConnectionClosed, Sock

from ..services import services
from .security import is_run_id

sock = Sock()

BATCH_S = 0.03  # one message per 30 ms at most, many events each
# Fan-out costs the server about 50 us of CPU per message, under the GIL, on the
# cores the experiments run on: 1,200 sockets at one message per BATCH_S would
# take two cores and slow the very run they watch (measured: 2.7x). So all
# sockets together send about this many messages a second at most: a socket
# with events to send waits max(BATCH_S, such sockets / SENDS_PER_S) between
# messages (200 of them: 50 ms). Idle sockets (a queued run) do not count.
SENDS_PER_S = 4000
MAX_BATCH = 20_000  # events per message, so a replay streams in steps
CLOSE_WAIT_S = 10  # how long to wait for the client's close after "end"
# A message (at most MAX_BATCH events, ~600 kB before compression) must be taken
# by the kernel within this time. The kernel buffers hundreds of kB to MBs per
# socket, so a reader that reads at all never gets near it; one that has read
# nothing for this long is gone or stuck.
SEND_TIMEOUT_S = 10.0
NOTICE_TIMEOUT_S = 1.0  # for the last words to a dropped viewer
# Bytes the kernel may hold for one viewer (Linux doubles it): a LAN's bandwidth x
# delay is far less, so it never limits a reader; 700 stuck viewers pin ~350 MB
# with it, up to 2.8 GB without it.
SEND_BUFFER = 256 * 1024
# Clients send nothing on this socket (commands go over HTTP), so what they send
# is read and dropped. simple-websocket queues incoming messages without bound
# until someone calls receive(), and caps only each one (max_message_size, 64
# KiB: a bigger one closes the socket with 1009). So the handler drains the
# queue on every turn, and a client that sends more than this in all is dropped.
CLIENT_BYTES_MAX = 64 * 1024


class SlowReader(OSError):
    """A send did not finish within its bound. An OSError, so simple-websocket's
    reader thread, whose ping replies go through the same send, treats it as a
    dead connection too."""


class BoundedSocket:
    """The connection's socket as simple-websocket uses it, with sends bounded in time.

    ``send`` hands over the whole frame or raises (simple-websocket ignores short
    writes), holds a lock so the reader thread's pings and pongs never cut into
    a frame, and gives up with SlowReader after ``timeout`` seconds. Everything
    else (recv, close, fileno, shutdown) is the socket's own.
    """

    def __init__(self, raw: socket.socket, timeout: float):
        self._raw = raw
        self.timeout = timeout
        self.intact = True  # no frame was cut short: the stream can still carry a message
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._raw, name)

    def send(self, data) -> int:
        view = memoryview(data)
        with self._lock:
            deadline = time.monotonic() + self.timeout
            while view:
                try:
                    view = view[self._raw.send(view, socket.MSG_DONTWAIT) :]
                    continue
                except BlockingIOError:
                    pass
                left = deadline - time.monotonic()
                if left <= 0:
                    self.intact = self.intact and len(view) == len(data)
                    raise SlowReader(f"a send was blocked for {self.timeout:g} s")
                fd = self._raw.fileno()
                if fd < 0:  # closed by the server meanwhile (gunicorn does after the handler returns)
                    raise OSError(errno.EBADF, "the socket is closed")
                poller = select.poll()
                poller.register(fd, select.POLLOUT)
                poller.poll(left * 1000)
        return len(data)


class _Counter:
    """Sockets with events to send right now, over all handler threads."""

    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.count += n


_senders = _Counter()


def _send(ws, message: dict) -> None:
    ws.send(json.dumps(message, separators=(",", ":")))


class EndUpgradedConnections:
    """WSGI middleware: after a WebSocket handler ends, Werkzeug must write nothing more.

    flask-sock 0.7 returns an ordinary response once the handler is done, and
    Werkzeug's server writes it ("HTTP/1.1 200 OK ...") onto the socket that
    carried the WebSocket: Chromium reports "Invalid frame header" and the
    clean close is lost. Raising ConnectionError instead is what Werkzeug
    treats as "the connection is gone": it writes nothing and closes.
    (gunicorn is unaffected: flask-sock stops it with StopIteration.)
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        response = self.wsgi_app(environ, start_response)
        if environ.get(_UPGRADED) and "werkzeug.socket" in environ:
            close = getattr(response, "close", None)
            if close:
                close()
            raise ConnectionError("the WebSocket is finished")
        return response


_UPGRADED = "playground.websocket_upgraded"


@sock.route("/runs/<run_id>/events")
def events(ws, run_id):
    request.environ[_UPGRADED] = True  # the handshake is done: see EndUpgradedConnections
    bounded = ws.sock = BoundedSocket(ws.sock, SEND_TIMEOUT_S)
    try:
        bounded.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    except OSError:
        pass  # not a TCP socket we can tune (a test double): the time bound still holds
    try:
        _stream(ws, run_id)
    except SlowReader as exc:
        _drop(ws, bounded, run_id, f"{exc}: the client is not reading")
    except OSError:
        pass  # the client went away mid-stream (reset, broken pipe): nothing to tell anyone


def _stream(ws, run_id) -> None:
    run = services().runs.get(run_id) if is_run_id(run_id) else None  # a malformed id never reaches the database
    if run is None:
        _send(ws, {"type": "error", "error": f"no run {run_id!r}"})
        _send(ws, {"type": "end"})
        _wait_for_close(ws, run_id)
        return
    summary = run.summary()
    _send(
        ws,
        {
            "type": "hello",
            "run": run.id,
            "experiment": run.experiment,
            "params": run.params,
            "lanes": summary["lanes"],
            "state": summary["state"],
        },
    )
    run.viewer_joined.set()
    cursor, version = 0, -1
    busy = False  # counted in _senders while the last turn had events to send
    try:
        while True:
            _ignore_incoming(ws, run_id)
            new, status, version, done = run.follow(cursor, version, timeout=1.0)
            if status is not None:
                _send(ws, status)
            for start in range(0, len(new), MAX_BATCH):
                _send(ws, {"type": "events", "events": new[start : start + MAX_BATCH]})
            cursor += len(new)
            if done:
                break
            if busy != bool(new):
                busy = bool(new)
                _senders.add(1 if busy else -1)
            if busy:  # let events gather into the next message; a status alone goes out at once
                time.sleep(max(BATCH_S, _senders.count / SENDS_PER_S))
    finally:
        if busy:
            _senders.add(-1)
    summary = run.summary()
    _send(ws, {"type": "result", "state": summary["state"], "reason": summary["reason"], "result": summary["result"]})
    _send(ws, {"type": "end"})
    _wait_for_close(ws, run_id)


def _ignore_incoming(ws, run_id: str, wait: float = 0) -> None:
    """Read and drop what the client sent (text or binary, never parsed).

    Raises ConnectionClosed when the client is gone, or after dropping one that
    sent more than CLIENT_BYTES_MAX.
    """
    message = ws.receive(timeout=wait)
    while message is not None:
        ws.client_bytes = getattr(ws, "client_bytes", 0) + len(message)
        if ws.client_bytes > CLIENT_BYTES_MAX:
            _drop(
                ws, ws.sock, run_id, f"the client sent over {CLIENT_BYTES_MAX // 1024} KiB; clients send nothing here"
            )
            raise ConnectionClosed(1008, "the client sent too much")
        message = ws.receive(timeout=0)


def _drop(ws, bounded: BoundedSocket, run_id: str, why: str) -> None:
    """Log, say why if the stream still can, then close: this is the one close the server starts."""
    current_app.logger.warning("dropped a viewer of run %s from %s: %s", run_id, request.remote_addr, why)
    if bounded.intact:
        bounded.timeout = NOTICE_TIMEOUT_S
        try:
            _send(ws, {"type": "error", "error": f"dropped: {why}"})
            ws.close(reason=1008, message=f"dropped: {why}"[:120])  # a close reason fits in 123 bytes
        except (OSError, ConnectionClosed):
            pass
    ws.connected = False  # flask-sock's close() after us must not send again
    try:
        bounded.shutdown(socket.SHUT_RDWR)  # wakes simple-websocket's reader thread, which closes the socket
    except OSError:
        pass


def _wait_for_close(ws, run_id: str) -> None:
    deadline = time.monotonic() + CLOSE_WAIT_S
    try:
        while time.monotonic() < deadline:
            _ignore_incoming(ws, run_id, wait=1)  # anything the client sends is ignored: commands go over HTTP
    except ConnectionClosed:
        pass
