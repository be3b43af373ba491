"""Settings: defaults, overridden by PLAYGROUND_* environment variables, then by
the ``config`` mapping given to ``create_app`` (tests use that).

| variable | default | what |
| --- | --- | --- |
| PLAYGROUND_HOST | 127.0.0.1 | address ``python app.py`` listens on |
| PLAYGROUND_PORT | 5000 | port |
| PLAYGROUND_DATABASE | instance/playground.sqlite3 | the SQLite file of runs |
| PLAYGROUND_DB_TIMEOUT_S | 5 | how long a write waits for a locked database before failing with a clear error |
| PLAYGROUND_WORKERS | half the cores, at least 1 | runs at once (each needs its cores to itself for honest timings) |
| PLAYGROUND_QUEUE_MAX | 100 | runs waiting at most; more get 503 |
| PLAYGROUND_PER_CLIENT | 3 | runs one address may have queued or running; more get 429 (0: no cap) |
| PLAYGROUND_PYTHONS | this interpreter | comma-separated interpreter paths runs can pick from; the first is the default |
| PLAYGROUND_MAX_WALL_S | none | caps every experiment's wall-clock limit (seconds) on this host |
| PLAYGROUND_SANDBOX | layers | rlimits: only rlimits and process groups, no namespace/uid/cgroup layers |
| PLAYGROUND_FAULTS | 0 | 1: accept the hidden `fault` experiment (crashes, bombs), for the sandbox tests |
| PLAYGROUND_SAMPLER | on | off: no /proc sampling; the chart shows only what the worker records |
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}") from None


def from_environment() -> dict:
    return {
        "HOST": os.environ.get("PLAYGROUND_HOST", "127.0.0.1"),
        "PORT": _int("PLAYGROUND_PORT", 5000),
        "DATABASE": os.environ.get("PLAYGROUND_DATABASE", os.path.join(ROOT, "instance", "playground.sqlite3")),
        "DB_TIMEOUT_S": float(os.environ.get("PLAYGROUND_DB_TIMEOUT_S", "5")),
        "WORKERS": _int("PLAYGROUND_WORKERS", max(1, (os.cpu_count() or 2) // 2)),
        "QUEUE_MAX": _int("PLAYGROUND_QUEUE_MAX", 100),
        "PER_CLIENT": _int("PLAYGROUND_PER_CLIENT", 3),
        "PYTHONS": [p.strip() for p in os.environ.get("PLAYGROUND_PYTHONS", "").split(",") if p.strip()]
        or [sys.executable],
        "MAX_WALL_S": _int("PLAYGROUND_MAX_WALL_S", 0) or None,
        "FAULTS": os.environ.get("PLAYGROUND_FAULTS", "0") == "1",
        "SANDBOX": os.environ.get("PLAYGROUND_SANDBOX", "layers"),
        "SAMPLER": os.environ.get("PLAYGROUND_SAMPLER", "on") != "off",
        "MAX_CONTENT_LENGTH": 64 * 1024,  # no parameter set is near this; refuse big bodies unread
        "SOCK_SERVER_OPTIONS": {"ping_interval": 25, "max_message_size": 64 * 1024},
    }
