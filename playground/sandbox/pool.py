"""A pool of pre-started worker processes and a bounded queue of runs.

Actors and their threads:

- request threads call ``submit`` and ``cancel``;
- one dispatcher thread (``pool-dispatcher``) hands queued runs to free slots;
- one supervisor thread per running run (``run-<id>``, see supervisor.py);
- short-lived spawner threads (``pool-spawn``) start replacement workers.

Workers are started with ``subprocess`` (fork+exec of a fresh interpreter,
never a fork of this threaded server) in their own session, so the whole
process group can be killed at once. Each worker runs one experiment and
exits; its replacement starts when the run ends (never beside it: booting an
interpreter took a core from the run, bench/RESULTS.md (G)), so the next click
usually finds it warm, and a run queued behind waits for it. The interface (submit, cancel, statistics,
close) is what a Redis-backed pool would implement too.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import tempfile
import threading
import time

from ..runs import Run, RunState
from .layers import Layers
from .supervisor import LineReader, kill_group, supervise

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READY_TIMEOUT_S = 30.0


class QueueFull(Exception):
    """The queue is at its bound; the caller should answer 503 and retry later."""


class ClientBusy(QueueFull):
    """This client already has its share of the pool queued or running (429)."""


class WorkerError(Exception):
    """A worker process could not be started or did not report ready."""


class WorkerProcess:
    """One pre-started worker: a fresh interpreter waiting for its one job."""

    def __init__(self, python: str, layers: Layers):
        command, layer_env = layers.command(python)
        env = dict(os.environ)
        env.update(layer_env)
        env.update(
            PYTHONPATH=ROOT,
            PYTHONDONTWRITEBYTECODE="1",
            MALLOC_ARENA_MAX="2",  # FACTS.md: with RLIMIT_AS, more arenas stop threads from starting
            OPENBLAS_NUM_THREADS="1",  # a NumPy matmul must not be parallel on its own
        )
        self._stderr = tempfile.TemporaryFile()
        self.popen = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self.reader = LineReader(self.popen.stdout.fileno())
        self.interpreter: dict = {}
        self.layout: dict = {}  # where its locks keep their futex and owner (lock_layout.calibrate)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.reader.eof:
            for message in self.reader.read(deadline - time.monotonic()):
                if message.get("type") == "ready":
                    self.interpreter = message["interpreter"]
                    self.layout = message.get("layout") or {}
                    return
        self.kill()
        raise WorkerError(f"the worker did not start: {self.stderr_tail() or 'no output'}")

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def send_job(self, job: dict) -> None:
        self.popen.stdin.write((json.dumps(job) + "\n").encode())
        self.popen.stdin.flush()

    def ask_to_send(self) -> None:
        """One byte on stdin after the job: the worker's flusher sends what waits (channel.py).
        The first one also tells the worker that the supervisor watches: its experiment begins."""
        try:
            os.write(self.popen.stdin.fileno(), b"\n")
        except (OSError, ValueError):  # gone, or closed: the run is ending anyway
            pass

    def wait(self, timeout: float) -> None:
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass

    def kill(self) -> None:
        kill_group(self.pid)
        self.wait(timeout=5)
        self.close()

    def close(self) -> None:
        for stream in (self.popen.stdin, self.popen.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def stderr_tail(self, limit: int = 2000) -> str:
        try:
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - limit))
            text = self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return f": {text}" if text else ""


class LocalPool:
    def __init__(
        self,
        *,
        size: int,
        interpreters,
        queue_max: int,
        persist,
        catalog,
        layers: Layers,
        per_client=0,
        max_wall_s=None,
        sample=True,
    ):
        self.size = size
        self.layers = layers
        self.per_client = per_client
        self.interpreters = interpreters  # run.params["python"] id -> Interpreter
        self.max_wall_s = max_wall_s
        self.sample = sample
        self.queue_max = queue_max
        self.persist = persist
        self.catalog = catalog  # slug -> Experiment
        self._cond = threading.Condition()
        self._queue: collections.deque[Run] = collections.deque()
        # Warm workers run the default interpreter; a run on another one starts its own.
        self._idle: collections.deque[WorkerProcess] = collections.deque()
        self._spawning = 0
        self._busy = 0
        self._running_by_client: dict[str, int] = {}
        self._started = False
        self._closing = False
        self._completed = 0
        self.last_error = ""

    # -- request threads --------------------------------------------------------

    def start(self) -> None:
        """Start the dispatcher and warm the workers; called on first use, idempotent."""
        with self._cond:
            if self._started:
                return
            self._started = True
        self.layers.detect(self._default_path())
        threading.Thread(target=self._dispatch, name="pool-dispatcher", daemon=True).start()
        self._refill()

    def check_room(self, client: str = "") -> None:
        with self._cond:
            self._check_room(client)

    def _check_room(self, client: str) -> None:
        """Caller holds the condition. Fairness: one client (one address) may have
        at most ``per_client`` runs queued or running, so it cannot take the pool."""
        if len(self._queue) >= self.queue_max:
            raise QueueFull(f"the queue is full ({self.queue_max} runs waiting); try again in a minute")
        if client and self.per_client:
            mine = sum(1 for r in self._queue if r.client == client) + self._running_by_client.get(client, 0)
            if mine >= self.per_client:
                raise ClientBusy(
                    f"you already have {mine} runs queued or running (at most {self.per_client} each); "
                    "wait for one to finish"
                )

    def submit(self, run: Run) -> None:
        self.start()
        with self._cond:
            self._check_room(run.client)
            self._queue.append(run)
            self._renumber()
            self._cond.notify_all()

    def cancel(self, run: Run) -> None:
        with self._cond:
            queued = run in self._queue
            if queued:
                self._queue.remove(run)
                self._renumber()
        if queued:
            run.finish(RunState.CANCELLED, reason="cancelled by a user while queued", persist=self.persist)
        else:
            run.cancel_requested.set()  # the supervisor kills the worker within POLL_S

    def statistics(self) -> dict:
        with self._cond:
            return {
                "started": self._started,
                "workers": self.size,
                "busy": self._busy,
                "warm": len(self._idle),
                "queued": len(self._queue),
                "queue_max": self.queue_max,
                "completed": self._completed,
                "python": self._default_path(),
                "last_error": self.last_error,
                "sandbox": self.layers.describe(),
            }

    def close(self) -> None:
        with self._cond:
            self._closing = True
            queued, self._queue = list(self._queue), collections.deque()
            idle, self._idle = list(self._idle), collections.deque()
            self._cond.notify_all()
        for worker in idle:
            worker.kill()
        for run in queued:
            run.finish(RunState.INTERRUPTED, reason="the server is shutting down", persist=self.persist)

    # -- dispatcher thread ------------------------------------------------------

    def _renumber(self) -> None:
        """Caller holds the condition: tell every queued run its place."""
        for position, run in enumerate(self._queue, start=1):
            run.set_queued(position)

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closing or (self._queue and self._busy < self.size))
                if self._closing:
                    return
                run = self._queue.popleft()
                self._busy += 1
                self._running_by_client[run.client] = self._running_by_client.get(run.client, 0) + 1
                self._renumber()
            threading.Thread(target=self._execute, args=(run,), name=f"run-{run.id}", daemon=True).start()

    # -- supervisor threads -----------------------------------------------------

    def _execute(self, run: Run) -> None:
        try:
            worker = self._take_worker(run)
            supervise(
                run, worker, self.catalog[run.experiment], self.persist, max_wall_s=self.max_wall_s, sample=self.sample
            )
        except Exception as exc:  # the run ends with the reason; the pool goes on
            self.last_error = f"{type(exc).__name__}: {exc}"
            run.finish(RunState.FAILED, reason=f"could not run: {self.last_error}", persist=self.persist)
        finally:
            self._refill()  # first: the next run, started below, then waits for this one, not a second
            with self._cond:
                self._busy -= 1
                self._completed += 1
                left = self._running_by_client.pop(run.client, 1) - 1
                if left:
                    self._running_by_client[run.client] = left
                self._cond.notify_all()

    def _default_path(self) -> str:
        default = self.interpreters.default()
        return default.path if default else ""

    def _take_worker(self, run: Run) -> WorkerProcess:
        interpreter = self.interpreters.get(run.params.get("python", ""))
        if interpreter is None:
            raise WorkerError(f"no usable interpreter {run.params.get('python')!r} on this server")
        worker = None
        if interpreter.path == self._default_path():
            # No replacement is started here: one booting beside this run would take CPU from it
            # (race-condition locked ran 10-15% slower on 2 cores, bench/RESULTS.md (G)). _execute
            # refills when the run ends; a run that finds none idle waits for one being started.
            deadline = time.monotonic() + READY_TIMEOUT_S
            with self._cond:
                while worker is None and (self._idle or (self._spawning and time.monotonic() < deadline)):
                    if not self._idle:
                        self._cond.wait(timeout=0.05)
                        continue
                    worker = self._idle.popleft()
                    if not worker.alive:
                        worker.close()  # killed from outside while idle: discard
                        worker = None
        if worker is None:
            worker = WorkerProcess(interpreter.path, self.layers)
            worker.wait_ready()
        return worker

    def _refill(self) -> None:
        """Keep ``size`` warm workers waiting; spawning happens off the caller's thread."""
        with self._cond:
            missing = self.size - len(self._idle) - self._spawning
            if self._closing or missing <= 0:
                return
            self._spawning += missing
        for _ in range(missing):
            threading.Thread(target=self._spawn_one, name="pool-spawn", daemon=True).start()

    def _spawn_one(self) -> None:
        worker = None
        try:
            worker = WorkerProcess(self._default_path(), self.layers)
            worker.wait_ready()
        except (OSError, WorkerError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            worker = None
        with self._cond:
            self._spawning -= 1
            if worker is not None and not self._closing:
                self._idle.append(worker)
                worker = None
            self._cond.notify_all()  # a run may be waiting for it (_take_worker)
        if worker is not None:
            worker.kill()
