"""``WS /runs/<id>/events``: a run's messages, live or replayed.

Each socket is served by its own handler thread (flask-sock), which is the
only thread that sends on it (DESIGN.md: concurrent sends corrupt the stream
in Chromium). The handler follows the run with its own cursor (runs.py), so a
late joiner gets everything so far first, then the rest live.

Messages: ``hello``, ``status``, ``events`` (batches), ``result``, ``end``.
After ``end`` the server waits for the *client* to close: a server-initiated
close on Werkzeug loses the last messages in Chromium.
"""

from __future__ import annotations

import json
import time

from flask_sock import ConnectionClosed, Sock

from ..services import services

sock = Sock()

BATCH_S = 0.03  # one message per 30 ms at most, many events each
MAX_BATCH = 20_000  # events per message, so a replay streams in steps
CLOSE_WAIT_S = 10  # how long to wait for the client's close after "end"


def _send(ws, message: dict) -> None:
    ws.send(json.dumps(message, separators=(",", ":")))


@sock.route("/runs/<run_id>/events")
def events(ws, run_id):
    run = services().runs.get(run_id)
    if run is None:
        _send(ws, {"type": "error", "error": f"no run {run_id!r}"})
        _send(ws, {"type": "end"})
        _wait_for_close(ws)
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
    while True:
        new, status, version, done = run.follow(cursor, version, timeout=1.0)
        if status is not None:
            _send(ws, status)
        for start in range(0, len(new), MAX_BATCH):
            _send(ws, {"type": "events", "events": new[start : start + MAX_BATCH]})
        cursor += len(new)
        if done:
            break
        time.sleep(BATCH_S)
    summary = run.summary()
    _send(ws, {"type": "result", "state": summary["state"], "reason": summary["reason"], "result": summary["result"]})
    _send(ws, {"type": "end"})
    _wait_for_close(ws)


def _wait_for_close(ws) -> None:
    deadline = time.monotonic() + CLOSE_WAIT_S
    try:
        while time.monotonic() < deadline:
            ws.receive(timeout=1)  # anything the client sends is ignored: commands go over HTTP
    except ConnectionClosed:
        pass
