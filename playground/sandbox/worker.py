"""Worker process entry point: wait for one job, run it, stream events, exit.

The pool starts this ahead of time (``python -m playground.sandbox.worker``)
so a click finds an interpreter already up with the catalog imported. One
process runs one experiment and then exits: nothing an experiment leaves
behind (threads, locks held, a broken interpreter) can reach the next run.

Protocol, JSON lines. The job arrives on stdin. Messages leave on a private
copy of the original stdout; fd 1 itself is pointed at stderr so that a
C-level write to stdout can never corrupt the protocol::

    -> {"type": "ready", "pid", "interpreter", "layout"}  before the job
    <- {"experiment": slug, "params": {...}}              the job (stdin)
    -> {"type": "started", "t0", "main_tid", "internal_tids", "probe_state"}
    -> {"type": "events", "events": [[t_ns, lane, kind, data], ...]}   when sent
    <- any bytes on stdin after the job: "send what is waiting" (the flusher);
       the first, once the supervisor's sampler has read the process: "begin"
    -> {"type": "result", "outcome", "output", "dropped"}  or
    -> {"type": "error", "error", "traceback", "output", "dropped"}

Threads: the main thread runs the experiment; recording threads send their
own batches when due; one flusher thread (excluded from the chart) sends the
rest when the supervisor asks (channel.py's Flusher). Writes to the channel
are serialised by a lock that no experiment code ever touches.

Standard library only: this runs on whatever interpreter the user configured.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import threading
import time
import traceback

from playground import experiments
from playground.lock_layout import calibrate
from playground.primitives import Primitives
from playground.probe import LaneWriter, Probe, interpreter_info
from playground.sandbox.channel import Channel, Flusher

PIPE_BYTES = 1 << 20  # the protocol pipe's size: fs.pipe-max-size's default
THREAD_STACK_BYTES = 512 * 1024  # small stacks, so RLIMIT_AS leaves room for many threads
RUN_NICE = 10  # the web server stays responsive while experiments burn CPU
WATCHED_WAIT_S = 2.0  # the longest the run waits for the supervisor to be watching


def thread_switches(tid: int) -> tuple[int, int] | None:
    """(voluntary, involuntary) context switches of one of this process's threads so far.

    Called on the main thread about the flusher: the observer's own switches, so
    they can be told apart from the experiment's (bench/switches.py found the
    flusher's wakes were nearly all of the observed run's extra switches).
    """
    counts = {}
    try:
        with open(f"/proc/self/task/{tid}/status") as f:
            for line in f:
                if "ctxt_switches:" in line:
                    key, value = line.split(":")
                    counts[key] = int(value)
    except (OSError, ValueError):
        return None
    if len(counts) != 2:
        return None
    return counts["voluntary_ctxt_switches"], counts["nonvoluntary_ctxt_switches"]


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
    if os.getuid() != 0:  # the kernel ignores RLIMIT_NPROC for root
        nproc = limits.max_threads + 64  # the experiment's ceiling, plus the interpreter's own threads
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))  # thread and fork bombs


def bring_up_loopback() -> bool:
    """In a fresh network namespace ``lo`` is down; the in-sandbox servers need it.

    Plain ioctls (SIOCGIFFLAGS / SIOCSIFFLAGS), so no ``ip`` binary is needed.
    Needs CAP_NET_ADMIN in the namespace: call before dropping privileges.
    """
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            flags = struct.unpack("16sh", fcntl.ioctl(s, siocgifflags, struct.pack("16sh", b"lo", 0))[:18])[1]
            if not flags & iff_up:
                fcntl.ioctl(s, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))
        return True
    except OSError:
        return False


def confine_self() -> dict:
    """The layers the worker applies to itself at start, before any job.

    The pool asks for an unprivileged uid with PLAYGROUND_WORKER_UID (the
    server is root); after the switch, RLIMIT_NPROC binds and nothing the
    experiment does can touch root's files.
    """
    lo_up = bring_up_loopback()
    try:  # room to go from the pool's nice 19 to RUN_NICE once the job comes, even without root
        resource.setrlimit(resource.RLIMIT_NICE, (20 - RUN_NICE, 20 - RUN_NICE))
    except (OSError, ValueError):
        pass
    uid = os.environ.get("PLAYGROUND_WORKER_UID")
    if uid and os.getuid() == 0:
        os.setgroups([])
        os.setresgid(int(uid), int(uid), int(uid))
        os.setresuid(int(uid), int(uid), int(uid))
    return {"uid": os.getuid(), "lo_up": lo_up, "interfaces": [name for _, name in socket_interfaces()]}


def usable_after_confinement() -> dict:
    """Can this interpreter still work as the confined user? An interpreter under a
    private directory (pyenv in /root) starts, then fails on its next import."""
    import importlib

    try:
        interpreter_info()  # what the worker sends first, with its lazy imports
        for name in ("subprocess", "concurrent.futures", "multiprocessing", "hashlib", "zlib", "http.server"):
            importlib.import_module(name)
        import subprocess

        code = "import sysconfig, concurrent.futures; sysconfig.get_config_vars()"
        subprocess.run([sys.executable, "-s", "-c", code], check=True, capture_output=True, timeout=30)
    except Exception as exc:  # any failure means: not usable this way
        detail = getattr(exc, "stderr", b"") or b""
        return {
            "usable": False,
            "error": f"{type(exc).__name__}: {exc} {detail.decode(errors='replace')[-200:]}".strip(),
        }
    return {"usable": True}


def socket_interfaces() -> list:
    import socket

    try:
        return socket.if_nameindex()
    except OSError:
        return []


def explain(exc: BaseException, limits: experiments.Limits) -> str:
    """The error line, naming the limit when a limit is what the run hit."""
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if isinstance(exc, MemoryError):
        return f"{text} (the run hit its memory limit of {limits.memory_mb} MiB of address space)"
    if isinstance(exc, RuntimeError) and "thread" in str(exc):
        return (
            f"{text} (a thread, memory or process limit: at most {limits.max_threads} threads, {limits.memory_mb} MiB)"
        )
    if isinstance(exc, OSError) and exc.errno == 24:  # EMFILE
        return f"{text} (the run hit its limit of {limits.open_files} open files)"
    if isinstance(exc, BlockingIOError) or (isinstance(exc, OSError) and exc.errno == 11):  # EAGAIN from fork
        return f"{text} (the process limit: at most {limits.max_threads + 64} threads and processes)"
    return text


def main() -> None:
    channel = Channel(os.dup(1))
    try:  # room for ~150 ms of a flood: a thread that sends must not wait on the pipe (flood 174k -> 196k/s)
        import fcntl

        fcntl.fcntl(channel.fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except OSError:
        pass  # not a pipe, or above /proc/sys/fs/pipe-max-size: the default 64 KiB
    os.dup2(2, 1)
    confine_self()
    layout = calibrate()  # where this interpreter keeps a lock's futex and an RLock's owner
    channel.send({"type": "ready", "pid": os.getpid(), "interpreter": interpreter_info(), "layout": layout})

    line = sys.stdin.readline()
    if not line.strip():
        return  # the pool is shutting down
    job = json.loads(line)
    try:  # from the pool's nice 19 while waiting; this thread's threads inherit it
        os.setpriority(os.PRIO_PROCESS, 0, RUN_NICE)
    except OSError:
        pass  # not allowed (no RLIMIT_NICE room): the run stays at the waiting priority
    experiment = experiments.get(job["experiment"], hidden=True)  # the server decided what may run
    if experiment is None:
        channel.send({"type": "error", "error": f"unknown experiment {job['experiment']!r}", "traceback": ""})
        return
    # The server validated already; validating again costs microseconds and
    # means the worker never runs on parameters its own catalog would refuse.
    params = experiments.validate_or_raise(experiment.params, job.get("params") or {})
    apply_limits(experiment.limits)

    probe = Probe()
    probe.register_current_thread()  # the main thread is lane 0
    # The job came on stdin; from now on the supervisor writes a byte there to ask
    # for a send. (sys.stdin's buffer held only the job line: nothing comes before "started".)
    flusher = Flusher(probe, channel, wake_fd=sys.stdin.fileno())
    flusher.start()  # before install(): the flusher is ours, not the experiment's
    probe.install()
    primitives = Primitives(probe, experiment.run.__module__, layout)
    primitives.install()
    # The supervisor's question when threads are stuck for good: who refers to which lock?
    signal.signal(signal.SIGUSR1, lambda *_: primitives.references())
    writer = LaneWriter(probe)
    channel.send(
        {
            "type": "started",
            "t0": probe.t0,
            "main_tid": threading.get_native_id(),
            "internal_tids": [flusher.native_id],
            "probe_state": probe.state_address(),
        }
    )
    flusher.send(wait=True)  # lane 0 leaves now, so the page draws a lane at once
    probe.send_with(flusher.send)
    # Begin once the supervisor watches: its first byte on stdin comes after its sampler
    # has read this process once. Its setup (a thread, /proc files) beside the experiment's
    # first milliseconds cost deadlock ordered a switch in 19 (bench/RESULTS.md, (M)).
    with probe.phase("waiting for the observer"):
        flusher.wait_heard(WATCHED_WAIT_S)

    sys.stdout = writer
    flusher0 = thread_switches(flusher.native_id)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0, cpu0 = time.perf_counter_ns(), time.process_time_ns()
    try:
        outcome = experiment.run(params, probe)
        message = {"type": "result", "outcome": outcome.as_dict()}
        message["outcome"]["metrics"]["wall_ms"] = round((time.perf_counter_ns() - wall0) / 1e6, 2)
        message["outcome"]["metrics"]["cpu_ms"] = round((time.process_time_ns() - cpu0) / 1e6, 2)
    except BaseException as exc:  # the run's own failure, reported with its traceback
        message = {"type": "error", "error": explain(exc, experiment.limits), "traceback": traceback.format_exc()}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    flusher1 = thread_switches(flusher.native_id)
    primitives.uninstall()
    sys.stdout = sys.__stdout__
    writer.close()
    probe.emit_in(0, "end")
    # The last events leave before the result: wait for a sender still at work.
    # The flusher thread stays blocked in select(); the process exits under it.
    flusher.send(wait=True, batches=None)
    message["output"] = writer.output()
    message["dropped"] = probe.dropped
    # Context switches of the whole process during the run: how much threads
    # handed the CPU around (bench/perturbation.py compares them with no observer).
    message["switches"] = {
        "voluntary": usage.ru_nvcsw - usage0.ru_nvcsw,
        "involuntary": usage.ru_nivcsw - usage0.ru_nivcsw,
    }
    if flusher0 and flusher1:  # of which the flusher's own: the observer, not the experiment
        message["observer_switches"] = {
            "voluntary": flusher1[0] - flusher0[0],
            "involuntary": flusher1[1] - flusher0[1],
        }
    channel.send(message)


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:  # layers.py: which layers does this machine allow?
        print(json.dumps({**confine_self(), **usable_after_confinement()}))
        sys.exit(0)
    status = 0
    try:
        main()
    except BaseException:  # the worker's own failure: the supervisor shows stderr's tail
        traceback.print_exc()
        status = 1
    finally:
        # Experiment threads may still be alive (a deadlock, a runaway loop):
        # never wait for them. The supervisor kills the process group anyway.
        sys.stderr.flush()
        os._exit(status)
