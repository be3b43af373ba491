"""Worker process entry point: wait for one job, run it, stream events, exit.

The pool starts this ahead of time (``python -m playground.sandbox.worker``)
so a click finds an interpreter already up with the catalog imported. One
process runs one experiment and then exits: nothing an experiment leaves
behind (threads, locks held, a broken interpreter) can reach the next run.

Protocol, JSON lines. The job arrives on stdin. Messages leave on a private
copy of the original stdout; fd 1 itself is pointed at stderr so that a
C-level write to stdout can never corrupt the protocol::

    -> {"type": "ready", "pid", "interpreter"}            before the job
    <- {"experiment": slug, "params": {...}}              the job (stdin)
    -> {"type": "started", "t0", "main_tid", "internal_tids"}
    -> {"type": "events", "events": [[t_ns, lane, kind, data], ...]}   every ~25 ms
    -> {"type": "result", "outcome", "output", "dropped"}  or
    -> {"type": "error", "error", "traceback", "output", "dropped"}

Threads: the main thread runs the experiment; one flusher thread (excluded
from the chart) drains the probe and writes batches. Writes to the channel
are serialised by a lock that no experiment code ever touches.

Standard library only: this runs on whatever interpreter the user configured.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
import traceback

from playground import experiments
from playground.probe import LaneWriter, Probe, interpreter_info

FLUSH_INTERVAL_S = 0.025  # DESIGN.md: one message every 20-50 ms, many events each
THREAD_STACK_BYTES = 512 * 1024  # small stacks, so RLIMIT_AS leaves room for many threads


class Channel:
    """The protocol pipe to the supervisor; safe to call from any worker thread."""

    def __init__(self, fd: int):
        self._fd = fd
        self._lock = threading.Lock()

    def send(self, message: dict) -> None:
        data = (json.dumps(message, separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]


class Flusher(threading.Thread):
    """Drains the probe every FLUSH_INTERVAL_S and sends one batch per tick."""

    def __init__(self, probe: Probe, channel: Channel):
        super().__init__(name="playground-flusher", daemon=True)
        self.probe = probe
        self.channel = channel
        self.go = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        self.go.wait()
        while not self.done.wait(FLUSH_INTERVAL_S):
            self.flush()
        self.flush()

    def flush(self) -> None:
        while batch := self.probe.drain():
            self.channel.send({"type": "events", "events": batch})

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)


def apply_limits(limits: experiments.Limits) -> None:
    """Limits for the run, set on this process before any experiment thread starts.

    Each limit names what it protects against; the supervisor's wall-clock kill
    of the whole process group is the backstop for anything these miss.
    """
    threading.stack_size(THREAD_STACK_BYTES)
    memory = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))  # a memory bomb fails here, not the host
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))  # SIGXCPU then SIGKILL
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))  # fd leaks
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a segfault leaves no core file behind
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))  # no filling the disk


def main() -> None:
    channel = Channel(os.dup(1))
    os.dup2(2, 1)
    try:
        os.nice(10)  # the web server stays responsive while experiments burn CPU
    except OSError:
        pass
    channel.send({"type": "ready", "pid": os.getpid(), "interpreter": interpreter_info()})

    line = sys.stdin.readline()
    if not line.strip():
        return  # the pool is shutting down
    job = json.loads(line)
    experiment = experiments.get(job["experiment"])
    if experiment is None:
        channel.send({"type": "error", "error": f"unknown experiment {job['experiment']!r}", "traceback": ""})
        return
    # The server validated already; validating again costs microseconds and
    # means the worker never runs on parameters its own catalog would refuse.
    params = experiments.validate_or_raise(experiment.params, job.get("params") or {})
    apply_limits(experiment.limits)

    probe = Probe()
    probe.register_current_thread()  # the main thread is lane 0
    flusher = Flusher(probe, channel)
    flusher.start()  # before install(): the flusher is ours, not the experiment's
    probe.install()
    writer = LaneWriter(probe)
    channel.send(
        {
            "type": "started",
            "t0": probe.t0,
            "main_tid": threading.get_native_id(),
            "internal_tids": [flusher.native_id],
        }
    )
    flusher.go.set()

    sys.stdout = writer
    wall0, cpu0 = time.perf_counter_ns(), time.process_time_ns()
    try:
        outcome = experiment.run(params, probe)
        message = {"type": "result", "outcome": outcome.as_dict()}
        message["outcome"]["metrics"]["wall_ms"] = round((time.perf_counter_ns() - wall0) / 1e6, 2)
        message["outcome"]["metrics"]["cpu_ms"] = round((time.process_time_ns() - cpu0) / 1e6, 2)
    except BaseException as exc:  # the run's own failure, reported with its traceback
        message = {"type": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    sys.stdout = sys.__stdout__
    writer.close()
    probe.emit("end", None, lane=0)
    flusher.stop()
    message["output"] = writer.output()
    message["dropped"] = probe.dropped
    channel.send(message)


if __name__ == "__main__":
    try:
        main()
    finally:
        # Experiment threads may still be alive (a deadlock, a runaway loop):
        # never wait for them. The supervisor kills the process group anyway.
        sys.stderr.flush()
        os._exit(0)
