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
import time

from ..runs import Run, RunState
from ..timeline import state_totals
from .flush_requests import FlushRequests
from .lane_map import LaneMap
from .memory_map import MemoryMap
from .ownership import Ownership
from .sampler import Sampler
from .syscalls import proc_readable

READ_CHUNK = 1 << 16
POLL_S = 0.02  # how often the loop checks for cancellation and waiting events while the worker is quiet
VIEWER_GRACE_S = 3.0  # longest wait for the page that started a run to connect
DEADLOCK_NS = 500_000_000  # threads stuck on a lock this long: look for a cycle (no timeout can end it)
REFS_WAIT_NS = 400_000_000  # how long the worker gets to say which locks its threads refer to
FIRST_READ_WAIT_S = 0.2  # the longest the worker waits for the sampler's first read (not for ever under load)


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


class DeadlockWatch:
    """Supervisor thread, every poll: are threads stuck for good, and is there a cycle?

    A thread "stuck" waits on a lock with no timeout (sampler). Once some have
    been stuck for DEADLOCK_NS, the wait-for graph (ownership.py) is searched
    for a cycle; if a plain Lock's owner is needed, the worker is asked once
    (SIGUSR1) which locks each thread refers to. Every thread stuck and no
    cycle found (owners unknown) still ends the run, unnamed, as before.
    """

    def __init__(self, pid: int, sampler: Sampler, lanes: LaneMap, run: Run):
        self.pid, self.sampler, self.lanes, self.run = pid, sampler, lanes, run
        self.asked_at: int | None = None

    def check(self, now: int) -> tuple[str, list | None] | None:
        stuck_tids = [tid for tid, since in self.sampler.stuck().items() if now - since >= DEADLOCK_NS]
        if not stuck_tids:
            return None
        own = self.lanes.ownership
        stuck = self.lanes.stuck_lanes(stuck_tids)
        cycle = own.cycle(stuck) if own is not None else None
        if cycle:
            self.lanes.add_holds(cycle, self.sampler.stuck())
            named = self._named(cycle)
            return self._describe(named), named
        unknown = own is not None and any(
            own.primitives.get(own.waiting.get(lane), {}).get("type") == "Lock"
            and own.owner(own.waiting[lane], stuck)[0] is None
            for lane in stuck
        )
        if unknown and self.asked_at is None:
            self.asked_at = now
            try:
                os.kill(self.pid, signal.SIGUSR1)  # the worker answers with K events (primitives.py)
            except ProcessLookupError:
                pass
            return None
        since = self.sampler.all_stuck_since()
        if since is None or now - since < DEADLOCK_NS or (self.asked_at and now - self.asked_at < REFS_WAIT_NS):
            return None
        names = sorted(self._name(lane) for lane in stuck) or ["all threads"]
        return (
            f"every thread waited on a lock with no timeout for {DEADLOCK_NS / 1e9:g} s ({', '.join(names)}); "
            "nothing in the process could wake them, so the run was stopped",
            None,
        )

    def _name(self, lane: int) -> str:
        return self.run.lanes.get(lane, {}).get("name", f"thread {lane}")

    def _named(self, cycle: list) -> list:
        primitives = self.lanes.ownership.primitives
        return [
            {
                "lane": step["lane"],
                "thread": self._name(step["lane"]),
                "waits_for": {"id": step["waits_for"], "name": primitives[step["waits_for"]]["name"]},
                "held_by": step["held_by"],
                "inferred": step["inferred"],
            }
            for step in cycle
        ]

    def _describe(self, named: list) -> str:
        steps = "; ".join(
            f"{step['thread']} waits for {step['waits_for']['name']}, "
            + ("which it holds itself" if step["held_by"] == step["lane"] else f"held by {self._name(step['held_by'])}")
            for step in named
        )
        what = f"a cycle of {len(named)} threads" if len(named) > 1 else "a thread waits for itself"
        return f"{what}: {steps}. Nothing in the process could break it, so the run was stopped"


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
    gil = worker.interpreter.get("gil_enabled", True)
    # The worker waits for its job: read its memory map now, not as its threads start (memory_map.py).
    maps = MemoryMap(worker.pid, gil).load_before_job(time.perf_counter_ns()) if sample else None
    worker.send_job({"experiment": run.experiment, "params": params})
    deadline = time.monotonic() + wall_s
    sampler = watch = cycle = requests = None
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
            now = time.perf_counter_ns()
            if requests is not None:
                requests.check(now)
            found = watch.check(now) if watch is not None else None
            if found is not None:
                ending = (RunState.DEADLOCKED, found[0])
                cycle = found[1]
                break
            messages = reader.read(min(remaining, POLL_S))
            for message in messages:
                kind = message.get("type")
                if kind == "events" and lanes is not None:
                    lanes.add_worker_events(message["events"])
                elif kind == "started":
                    lanes = LaneMap(message["t0"], run.add_events, Ownership(worker.pid, worker.layout))
                    sampler, observation = start_sampler(worker.pid, lanes, message["internal_tids"], maps)
                    watch = DeadlockWatch(worker.pid, sampler, lanes, run) if sampler is not None else None
                    requests = FlushRequests(lanes.ownership.memory, message.get("probe_state"), worker.ask_to_send)
                    run.set_running(worker.interpreter, {**observation, "worker_pid": worker.pid})
                    if sampler is not None:
                        sampler.has_read.wait(FIRST_READ_WAIT_S)
                    worker.ask_to_send()  # the first byte: the worker's experiment begins now (worker.py)
                elif kind in ("result", "error"):
                    final = message
            if messages and requests is not None:
                requests.heard(time.perf_counter_ns())  # FlushRequests reads the worker's memory only once it is quiet
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
            lanes.sampling_ended()
            stats = sampler.statistics()
            if sampler.last_error:
                stats["last_error"] = sampler.last_error  # shown, never swallowed
            if maps.first_read is not None:  # > 0: read before the run began, as it should be
                stats["maps_read_before_run_ms"] = round((lanes.t0 - maps.first_read) / 1e6, 3)
            run.observation = {**run.observation, "sampler": stats}
        if lanes is not None and lanes.ownership is not None:
            lanes.ownership.close()
        if requests is not None:
            # How often the worker's flusher was woken; "blind": asked on a timer (memory unreadable).
            run.observation = {
                **run.observation,
                "send_requests": requests.asked,
                "send_requests_blind": requests.blind,
            }
        worker.close()

    if ending is not None and ending[0] is RunState.DEADLOCKED and experiment.on_deadlock is not None:
        params = {k: v for k, v in run.params.items() if k != "python"}
        result = experiment.on_deadlock(params, ending[1]).as_dict()
        if cycle:
            result["cycle"] = cycle
        run.finish(RunState.DEADLOCKED, result=result, reason=ending[1], persist=persist)
    elif ending is not None:
        run.finish(ending[0], result={"cycle": cycle} if cycle else None, reason=ending[1], persist=persist)
    elif final["type"] == "result":
        result = dict(final["outcome"])
        observed = state_totals(run.events) if run.observation.get("os_states") else {}
        for kind, count in final.get("switches", {}).items():
            observed[f"{kind}_context_switches"] = count
        if observed:
            result["observed"] = observed
        if final.get("observer_switches"):  # the flusher's own share of the switches above
            run.observation = {**run.observation, "flusher_switches": final["observer_switches"]}
        run.finish(RunState.DONE, result=result, output=final.get("output", ""), persist=persist)
    else:
        output = final.get("output", "") + "\n" + final.get("traceback", "")
        run.finish(RunState.FAILED, reason=final["error"], output=output.strip(), persist=persist)


def start_sampler(pid: int, lanes: LaneMap, internal_tids, maps: MemoryMap | None) -> tuple[Sampler | None, dict]:
    """``maps``: the worker's memory map, read before the job; None: no sampling on this server."""
    if maps is None:
        return None, {
            "os_states": False,
            "why": "the OS sampler is switched off on this server (PLAYGROUND_SAMPLER=off)",
        }
    readable, why = proc_readable(pid)
    if not readable:
        return None, {"os_states": False, "why": why}
    own = lanes.ownership
    sampler = Sampler(
        pid,
        lanes.add_sampled,
        exclude_tids=tuple(internal_tids),
        watch=own.sample if own is not None else None,
        always_read=own.holder_tids if own is not None else frozenset(),
        memory=own.memory if own is not None else None,  # sleepers' deadlines: the sampler pauses till then
        maps=maps,
    )
    sampler.start()
    return sampler, {"os_states": True, "why": "states sampled from /proc at about 1 kHz"}
