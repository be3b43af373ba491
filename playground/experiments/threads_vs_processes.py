"""threads-vs-processes: one CPU-bound job in a thread pool and in a process pool, side by side."""

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def crunch(iterations):
    total = 0
    for i in range(iterations):
        total += i * i  # pure Python: needs the GIL for every step
    return total


def timed_crunch(iterations):
    # The pool pickles this function by name: a child process imports this module to run it.
    cpu0 = time.thread_time_ns()  # CPU time of this thread only: what the work really got
    crunch(iterations)
    return os.getpid(), time.thread_time_ns() - cpu0


def run(params, probe):
    workers, iterations = params["threads"], params["iterations"]
    chunks = [iterations // workers] * workers
    # The baseline is one worker thread, not the main thread (FACTS.md: 4-13% faster there).
    with probe.phase("baseline: 1 thread") as one, ThreadPoolExecutor(max_workers=1) as pool:
        alone = list(pool.map(timed_crunch, chunks))
    with (
        probe.phase(f"{workers} threads") as threaded,
        ThreadPoolExecutor(workers, thread_name_prefix="thread") as pool,
    ):
        in_threads = list(pool.map(timed_crunch, chunks))
    # Never fork here: this process already runs threads, and a forked child inherits
    # their locks in whatever state they were. A forkserver child starts clean.
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        # Starting processes costs tens of milliseconds each: timed here, apart from the work.
        with probe.phase(f"start {workers} processes") as starting:
            started = {pid for pid, _ in pool.map(timed_crunch, [0] * workers)}
        with probe.phase(f"{workers} processes") as in_processes:
            in_children = list(pool.map(timed_crunch, chunks))
    runs = {"baseline": (one, alone), "threads": (threaded, in_threads), "processes": (in_processes, in_children)}
    return verdict(runs, starting, len(started), workers, probe.interpreter["gil_enabled"])


def verdict(runs, starting, started, workers, gil):
    needed = sum(cpu for _, cpu in runs["baseline"][1])  # the CPU time the whole job needs
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    usable = min(workers, cores)  # no pool can keep more cores busy than it has workers
    bar = 1 + 0.4 * (usable - 1)
    # Speedups against the CPU time the job needs, not the baseline's stopwatch: a busy
    # neighbour can stretch the baseline's wall time, which would flatter the pools.
    speedup = {name: needed / phase.wall_ns for name, (phase, _) in runs.items()}
    busy = {name: sum(cpu for _, cpu in tasks) / phase.wall_ns for name, (phase, tasks) in runs.items()}
    if usable < 2:
        claim = f"With {usable} usable core{'s' * (cores > 1)} for {workers} worker(s), neither threads nor processes beat 1x (both below 1.3x)."
        held = speedup["threads"] < 1.3 and speedup["processes"] < 1.3
    elif gil:
        claim = f"With the GIL, {workers} threads stay near 1x (below 1.3x) while {workers} processes on {cores} cores reach at least {bar:.1f}x."
        held = speedup["threads"] < 1.3 and speedup["processes"] >= bar
    else:
        claim = f"Without the GIL, {workers} threads and {workers} processes on {cores} cores both reach at least {bar:.1f}x."
        held = speedup["threads"] >= bar and speedup["processes"] >= bar
    with_start = needed / (starting.wall_ns + runs["processes"][0].wall_ns)
    why = (
        f"The job needs {needed / 1e6:.0f} ms of CPU (one thread took {runs['baseline'][0].wall_ms:.0f} ms). "
        f"{workers} threads: {runs['threads'][0].wall_ms:.0f} ms, {speedup['threads']:.2f}x, {busy['threads']:.2f} cores busy. "
        f"{workers} processes: {runs['processes'][0].wall_ms:.0f} ms, {speedup['processes']:.2f}x, {busy['processes']:.2f} cores busy; "
        f"starting them took {starting.wall_ms:.0f} ms more ({with_start:.2f}x counting the start). "
    )
    if usable >= 2 and busy["processes"] < 0.8 * usable:
        why += f"The processes got only {busy['processes']:.2f} of {usable} cores: another program was using the CPU. "
    metrics = {
        "cores": cores,
        "baseline_ms": round(runs["baseline"][0].wall_ms, 2),
        "job_cpu_ms": round(needed / 1e6, 2),
        "threads_ms": round(runs["threads"][0].wall_ms, 2),
        "processes_ms": round(runs["processes"][0].wall_ms, 2),
        "process_start_ms": round(starting.wall_ms, 2),
        "processes_started": started,
        "threads_speedup": round(speedup["threads"], 3),
        "processes_speedup": round(speedup["processes"], 3),
        "processes_speedup_with_start": round(with_start, 3),
        "threads_cores_busy": round(busy["threads"], 3),
        "processes_cores_busy": round(busy["processes"], 3),
    }
    return Outcome(claim=claim, held=held, why=why, metrics=metrics)


EXPERIMENT = Experiment(
    slug="threads-vs-processes",
    title="Threads or processes for CPU-bound work",
    summary="The same pure-Python job in a ThreadPoolExecutor and a ProcessPoolExecutor, side by side.",
    lesson=(
        "Threads share one interpreter and, on a GIL build, take turns running Python; processes each have "
        "their own interpreter and GIL, so they run on separate cores. Processes cost a start-up (timed in "
        "its own phase and left out of the speedup) and every argument and result is pickled between them."
    ),
    claim="With the GIL, threads stay near 1x; processes scale with the cores (at least 1.4x on 2 cores).",
    params=(
        Param("threads", int, 4, "Workers in each pool: threads, then processes.", label="Workers", min=1, max=8),
        Param(
            "iterations",
            int,
            6_000_000,
            "Loop iterations in the whole job, split evenly over the workers.",
            label="Iterations",
            min=100_000,
            max=30_000_000,
        ),
    ),
    metrics=(
        Metric("cores", "cores", "CPUs this process may run on (its affinity mask)."),
        Metric("baseline_ms", "ms", "Wall time of the job in one worker thread."),
        Metric("job_cpu_ms", "ms", "CPU time the job needs: the baseline tasks' thread CPU time."),
        Metric("threads_ms", "ms", "Wall time of the job in the thread pool."),
        Metric("processes_ms", "ms", "Wall time of the job in the process pool, processes already started."),
        Metric("process_start_ms", "ms", "Time to start the worker processes (a first, empty task each)."),
        Metric("processes_started", "processes", "Distinct worker processes that ran a start-up task."),
        Metric("threads_speedup", "x", "job_cpu_ms / threads_ms."),
        Metric("processes_speedup", "x", "job_cpu_ms / processes_ms."),
        Metric("processes_speedup_with_start", "x", "job_cpu_ms / (process_start_ms + processes_ms)."),
        Metric("threads_cores_busy", "cores", "The thread tasks' CPU time / threads_ms."),
        Metric("processes_cores_busy", "cores", "The process tasks' CPU time / processes_ms."),
    ),
    code=(crunch, timed_crunch, run, verdict),
    run=run,
    limits=Limits(wall_s=60, cpu_s=120, max_threads=8),
    notes=(
        "The worker processes start with 'forkserver', not 'fork': this process already runs threads, "
        "and fork copies a multi-threaded process with its locks frozen mid-use. The child processes "
        "are not on the chart: it shows this process's threads, and the main thread waiting for them."
    ),
)
