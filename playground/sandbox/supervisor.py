"""Supervise one run on one worker process, from job to verdict.

Runs on the run's own supervisor thread (``run-<id>``), started by the pool::

    job --stdin--> worker ----JSON lines----> read loop ---> Run.add_events
                     ^                            |  (tid -> lane, t - t0)
                     |  /proc/<pid>/task/*        v
                  Sampler thread --------------> LaneMap ---> Run.add_events

The read loop enforces the wall-clock deadline and cancellation: either one
kills the worker's whole process group (it was started in its own session),
so threads, children and grandchildren all go at once. The worker's own
events name each thread's lane and native tid; the sampler only knows tids,
so its events wait in the LaneMap until the worker has named their thread.
"""

from __future__ import annotations

import json
import os
import select
import signal
import threading
import time

from ..runs import Run, RunState
from ..timeline import state_totals
from .sampler import Sampler, proc_readable

READ_CHUNK = 1 << 16
POLL_S = 0.05  # how often the loop checks for cancellation while the worker is quiet
VIEWER_GRACE_S = 3.0  # longest wait for the page that started a run to connect
DEADLOCK_NS = 500_000_000  # every thread stuck on a lock this long: deadlocked (no timeout can end it)


class LaneMap:
    """Turns sampler events (absolute time, tid) into run events (run time, lane).

    Called from the supervisor thread (``add_worker_events``) and the sampler
    thread (``add_sampled``). Both hand their events to ``sink`` while holding
    the lock, so each lane's events reach the run in time order even when a
    thread's first samples had to wait for the worker to name it.
    """

    def __init__(self, t0: int, sink):
        self.t0 = t0
        self.sink = sink
        self._lanes: dict[int, int] = {}
        self._pending: dict[int, list] = {}
        self._lock = threading.Lock()

    def add_worker_events(self, batch: list) -> None:
        with self._lock:
            released = []
            for event in batch:
                if event[2] == "lane":
                    tid, lane = event[3]["tid"], event[1]
                    self._lanes[tid] = lane
                    released.extend([t, lane, kind, data] for t, kind, data in self._pending.pop(tid, ()))
            self.sink(batch + released)

    def add_sampled(self, batch: list) -> None:
        with self._lock:
            out = []
            for t, tid, kind, data in batch:
                if kind == "gone":
                    continue  # the worker's own "end" event closes the lane
                t -= self.t0
                lane = self._lanes.get(tid)
                if lane is not None:
                    out.append([t, lane, kind, data])
                else:
                    pending = self._pending.setdefault(tid, [])
                    if len(pending) < 10_000:  # a thread the worker never names: bounded
                        pending.append((t, kind, data))
            self.sink(out)


class LineReader:
    """Reads JSON lines from a pipe with a timeout (select), on one thread."""

    def __init__(self, fd: int):
        self.fd = fd
        self._buffer = b""
        self.eof = False

    def read(self, timeout: float) -> list[dict]:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        chunk = os.read(self.fd, READ_CHUNK)
        if not chunk:
            self.eof = True
            return []
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def describe_exit(returncode: int | None, limits=None) -> str:
    if returncode is None:
        return "the worker stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        cpu = f" of {limits.cpu_s} s" if limits else ""
        hints = {
            "SIGSEGV": " (a segmentation fault)",
            "SIGXCPU": f" (the CPU-time limit{cpu})",
            "SIGXFSZ": " (the file-size limit)",
            "SIGKILL": " (killed from outside, or by the memory limit)",
        }
        return f"the worker was killed by {name}{hints.get(name, '')}"
    return f"the worker exited with status {returncode}"


def supervise(
    run: Run, worker, experiment, persist, *, layers=None, max_wall_s: float | None = None, sample: bool = True
) -> None:
    """Run ``run`` on ``worker`` (a started, ready WorkerProcess) to its end.

    ``max_wall_s`` is the host's cap on any run's wall time (PLAYGROUND_MAX_WALL_S);
    ``sample`` false leaves the OS sampler off (PLAYGROUND_SAMPLER=off).
    """
    wall_s = min(experiment.limits.wall_s, max_wall_s or experiment.limits.wall_s)
    reader = worker.reader
    limits = experiment.limits
    # Before the job: the worker is idle, so nothing can fork past pids.max first.
    cgroup = (
        layers.confine(worker.pid, max_pids=limits.max_threads + 64, memory_mb=limits.memory_mb) if layers else None
    )
    if run.await_viewer:
        run.viewer_joined.wait(VIEWER_GRACE_S)
    params = {k: v for k, v in run.params.items() if k != "python"}  # the pool's choice, not the experiment's
    worker.send_job({"experiment": run.experiment, "params": params})
    deadline = time.monotonic() + wall_s
    sampler = None
    lanes: LaneMap | None = None
    final: dict | None = None
    ending: tuple[RunState, str] | None = None
    try:
        while final is None and ending is None:
            if run.cancel_requested.is_set():
                ending = (RunState.CANCELLED, "cancelled by a user")
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                ending = (RunState.TIMED_OUT, f"wall-clock limit of {wall_s:g} s reached; the worker was killed")
                break
            stuck = sampler.all_stuck_since() if sampler is not None else None
            if stuck is not None and time.perf_counter_ns() - stuck >= DEADLOCK_NS:
                names = sorted(info["name"] for info in run.lanes.values() if info.get("tid") in sampler.tids())
                ending = (
                    RunState.DEADLOCKED,
                    f"every thread waited on a lock with no timeout for {DEADLOCK_NS / 1e9:g} s "
                    f"({', '.join(names) or 'all threads'}); nothing in the process could wake them, so the run was stopped",
                )
                break
            for message in reader.read(min(remaining, POLL_S)):
                kind = message.get("type")
                if kind == "events" and lanes is not None:
                    lanes.add_worker_events(message["events"])
                elif kind == "started":
                    lanes = LaneMap(message["t0"], run.add_events)
                    gil = worker.interpreter.get("gil_enabled", True)
                    sampler, observation = start_sampler(worker.pid, lanes, message["internal_tids"], sample, gil)
                    run.set_running(worker.interpreter, {**observation, "worker_pid": worker.pid})
                elif kind in ("result", "error"):
                    final = message
            if reader.eof and final is None:
                worker.wait(timeout=2)
                ending = (RunState.FAILED, describe_exit(worker.returncode, limits) + worker.stderr_tail())
    finally:
        kill_group(worker.pid)
        if cgroup is not None:
            cgroup.release()  # also kills what escaped the process group (setsid, double fork)
        worker.wait(timeout=5)
        if sampler is not None:
            sampler.stop()
            stats = sampler.statistics()
            if sampler.last_error:
                stats["last_error"] = sampler.last_error  # shown, never swallowed
            run.observation = {**run.observation, "sampler": stats}
        worker.close()

    if ending is not None and ending[0] is RunState.DEADLOCKED and experiment.on_deadlock is not None:
        params = {k: v for k, v in run.params.items() if k != "python"}
        result = experiment.on_deadlock(params, ending[1]).as_dict()
        run.finish(RunState.DEADLOCKED, result=result, reason=ending[1], persist=persist)
    elif ending is not None:
        run.finish(ending[0], reason=ending[1], persist=persist)
    elif final["type"] == "result":
        result = dict(final["outcome"])
        observed = state_totals(run.events) if run.observation.get("os_states") else {}
        for kind, count in final.get("switches", {}).items():
            observed[f"{kind}_context_switches"] = count
        if observed:
            result["observed"] = observed
        run.finish(RunState.DONE, result=result, output=final.get("output", ""), persist=persist)
    else:
        output = final.get("output", "") + "\n" + final.get("traceback", "")
        run.finish(RunState.FAILED, reason=final["error"], output=output.strip(), persist=persist)


def start_sampler(pid: int, lanes: LaneMap, internal_tids, sample: bool, gil: bool) -> tuple[Sampler | None, dict]:
    if not sample:
        return None, {
            "os_states": False,
            "why": "the OS sampler is switched off on this server (PLAYGROUND_SAMPLER=off)",
        }
    readable, why = proc_readable(pid)
    if not readable:
        return None, {"os_states": False, "why": why}
    sampler = Sampler(pid, lanes.add_sampled, exclude_tids=tuple(internal_tids), gil=gil)
    sampler.start()
    return sampler, {"os_states": True, "why": "states sampled from /proc at about 1 kHz"}
