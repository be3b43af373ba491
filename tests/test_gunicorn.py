"""Production serving: gunicorn's gthread worker, one process (the pool and the
live runs are in-process), the app factory, one experiment end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import requests
from conftest import ROOT, LiveServer, events_of, free_port, result_of


class GunicornServer(LiveServer):
    """``gunicorn -k gthread -w 1 --threads N`` on 127.0.0.1, as README "Production" says."""

    def __init__(self, database: str, env: dict | None = None, threads: int = 16):
        super().__init__(database, env)
        self.threads = threads

    def start(self) -> GunicornServer:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PLAYGROUND_WORKERS": "1", **self.env, "PLAYGROUND_DATABASE": self.database}
        self.log = open(self.database + ".log", "ab")
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        self.proc = subprocess.Popen(
            [
                gunicorn,
                "-k",
                "gthread",
                "-w",
                "1",
                "--threads",
                str(self.threads),
                "--worker-connections",
                str(self.threads + 100),  # sockets a worker takes at once; it must not be below the threads
                "--no-control-socket",  # gunicorn 25 otherwise shares ~/.gunicorn/gunicorn.ctl between servers
                "-b",
                f"127.0.0.1:{port}",
                "playground.application:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stop() can end master and worker together
        )
        return self.wait_healthy("gunicorn")

    def stop(self, kill: bool = False) -> None:
        """SIGINT, gunicorn's quick shutdown; but it still waits (up to --graceful-timeout)
        for open WebSockets, so after a few seconds the whole group is killed."""
        if self.proc and self.proc.poll() is None:
            if not kill:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    kill = True
            if kill:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


def test_gunicorn_runs_an_experiment_end_to_end(tmp_path):
    server = GunicornServer(str(tmp_path / "runs.sqlite3")).start()
    try:
        health = requests.get(server.url + "/healthz", timeout=5).json()
        assert health["ok"] and not health["pool"]["started"], "the pool starts on first use, not at import"
        assert "Threading Playground" in requests.get(server.url + "/", timeout=5).text

        started, messages = server.run_to_end("hello-threads", threads=3, delay_ms=0)
        kinds = [m["type"] for m in messages]
        assert kinds[0] == "hello" and kinds[-2:] == ["result", "end"]
        result = result_of(messages)
        assert result["state"] == "done" and result["result"]["held"] is True, result
        assert events_of(server.read_socket(started["id"])) == events_of(messages), "the replay is the same run"
        run = requests.get(f"{server.url}/api/runs/{started['id']}", timeout=5).json()
        assert run["state"] == "done" and run["counts"]["lanes"] == 4

        # One process: the pool and the run are in the worker, which is what -w 1 is for.
        workers = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 1, workers
    finally:
        server.stop()
    log = open(server.database + ".log", errors="replace").read()
    assert "Traceback" not in log, log[-3000:]
