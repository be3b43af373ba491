"""cpu-bound: pure-Python work split over threads is no faster under the GIL."""

import sys
import threading

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def crunch(iterations):
    total = 0
    for _ in range(iterations):
        # Pure Python, so it needs the GIL for every step. The numbers stay small,
        # so every step costs the same however the work is split (a growing sum
        # of squares made one long loop dearer per step than four short ones).
        total = (total * 31 + 7) % 1_000_003
    return total


def split_over_threads(iterations, count, name):
    share = iterations // count
    threads = [threading.Thread(target=crunch, args=(share,), name=f"{name}-{n}") for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run(params, probe):
    count, iterations = params["threads"], params["iterations"]
    # An untimed warm-up first: the first tens of ms of a fresh worker ran slower
    # (measured in CI: the baseline took up to 1.7x the CPU of the same work later).
    with probe.phase("warm-up"):
        split_over_threads(iterations // 4, 1, "warm-up")
    # The baseline is one *worker* thread, not the main thread: FACTS.md measured
    # the same loop 4-13% faster on a worker thread, which would skew the ratio.
    with probe.phase("baseline: 1 thread") as one:
        split_over_threads(iterations, 1, "baseline")
    with probe.phase(f"{count} threads") as many:
        split_over_threads(iterations, count, "worker")
    return verdict(one, many, count, probe.interpreter["gil_enabled"])


def verdict(one, many, count, gil):
    speedup = one.wall_ns / many.wall_ns  # what a stopwatch says
    # The work needs one.cpu_ns of CPU. If another program kept the CPU busy during
    # the baseline, its wall time grew but its CPU time did not: compare against
    # the CPU time, and busy neighbours can only make the threads look slower.
    speedup_vs_cpu = one.cpu_ns / many.wall_ns
    cores_busy = many.cpu_ns / many.wall_ns
    if gil:
        claim = f"With the GIL, {count} threads are no faster than one thread with a core to itself (below 1.3x) and keep about one core busy (below 1.3)."
        held = speedup_vs_cpu < 1.3 and cores_busy < 1.3
        reason = f"Only the thread holding the GIL runs Python code; the others wait and take turns every {sys.getswitchinterval() * 1000:g} ms (sys.getswitchinterval())."
    else:
        claim = f"Without the GIL, {count} threads doing pure-Python work run on several cores (above 1.3x)."
        held = speedup_vs_cpu > 1.3
        reason = "This interpreter runs without a GIL, so the threads can run in parallel."
    why = (
        f"One thread: {one.wall_ms:.0f} ms ({one.cpu_ms:.0f} ms of CPU); {count} threads: {many.wall_ms:.0f} ms, "
        f"{speedup_vs_cpu:.2f}x against the CPU the work needs, with {cores_busy:.2f} cores busy. "
    )
    if one.wall_ns > 1.3 * one.cpu_ns:
        why += f"The baseline waited {one.wall_ms - one.cpu_ms:.0f} ms for a CPU (another program was busy), so the stopwatch ratio ({speedup:.2f}x) flatters the threads. "
    metrics = {
        "baseline_ms": round(one.wall_ms, 2),
        "baseline_cpu_ms": round(one.cpu_ms, 2),
        "threaded_ms": round(many.wall_ms, 2),
        "speedup": round(speedup, 3),
        "speedup_vs_cpu": round(speedup_vs_cpu, 3),
        "cores_busy": round(cores_busy, 3),
        "switch_interval_ms": sys.getswitchinterval() * 1000,
    }
    return Outcome(claim=claim, held=held, why=why + reason, metrics=metrics)


EXPERIMENT = Experiment(
    slug="cpu-bound",
    title="CPU-bound work does not gain from threads",
    summary="Under the GIL, pure-Python work in N threads takes as long as in one.",
    lesson=(
        "Only the thread holding the Global Interpreter Lock runs Python bytecode. Split a pure-Python "
        "loop over N threads and they take turns: the total time stays that of one thread, and one core "
        "stays busy. On the chart, see the threads hand the GIL to each other every switch interval."
    ),
    claim="With the GIL, N threads of pure-Python work are no faster than one thread, and use about one core.",
    params=(
        Param("threads", int, 4, "How many threads share the work.", label="Threads", min=1, max=32),
        Param(
            "iterations",
            int,
            5_000_000,
            "Loop iterations in total, split evenly over the threads.",
            label="Iterations",
            min=10_000,
            max=30_000_000,
        ),
    ),
    metrics=(
        Metric("baseline_ms", "ms", "Wall time of all the work in one worker thread."),
        Metric("threaded_ms", "ms", "Wall time of the same work split over the threads."),
        Metric("baseline_cpu_ms", "ms", "CPU time the work needs: the baseline's process CPU time."),
        Metric("speedup", "x", "baseline_ms / threaded_ms: the stopwatch ratio."),
        Metric("speedup_vs_cpu", "x", "baseline_cpu_ms / threaded_ms: against one thread with a core to itself."),
        Metric("cores_busy", "cores", "Process CPU time / wall time in the threaded phase."),
        Metric(
            "switch_interval_ms", "ms", "sys.getswitchinterval(): how long a thread may hold the GIL while others wait."
        ),
    ),
    code=(crunch, split_over_threads, run, verdict),
    run=run,
    limits=Limits(wall_s=60, cpu_s=120, max_threads=32),
)
