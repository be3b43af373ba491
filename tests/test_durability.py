"""A locked database or a full disk gives a clear error, not a crash, and the
server keeps serving (finished runs were already made durable at their end)."""

import os
import sqlite3
import subprocess
import time

import pytest
import requests
from conftest import LiveServer, result_of


def test_a_locked_database_is_a_clear_503_and_the_server_recovers(tmp_path):
    database = str(tmp_path / "runs.sqlite3")
    server = LiveServer(database, env={"PLAYGROUND_DB_TIMEOUT_S": "0.3"}).start()
    try:
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
        response = requests.post(f"{server.url}/runs", json={"experiment": "hello-threads", "params": {}}, timeout=10)
        assert response.status_code == 503 and "locked" in response.json()["error"], response.text
        blocker.execute("ROLLBACK")
        blocker.close()
        _, messages = server.run_to_end("hello-threads", threads=2, delay_ms=0)
        assert result_of(messages)["state"] == "done"
    finally:
        server.stop()


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)])


def test_a_full_disk_ends_the_run_with_the_reason_and_the_server_keeps_serving(tiny_disk):
    database = str(tiny_disk / "runs.sqlite3")
    server = LiveServer(database).start()
    try:
        started = server.start_run("hello-threads", threads=2, delay_ms=300)
        with open(tiny_disk / "filler", "wb") as f:  # fill the disk while the run goes
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        result = result_of(server.read_socket(started["id"]))
        assert result["state"] == "done"
        assert "not saved" in result["reason"] and "full" in result["reason"], result
        assert requests.get(f"{server.url}/healthz", timeout=5).json()["ok"]
        os.remove(tiny_disk / "filler")
        time.sleep(0.1)
        _, messages = server.run_to_end("hello-threads", threads=1, delay_ms=0)
        assert result_of(messages)["state"] == "done"
    finally:
        server.stop()
