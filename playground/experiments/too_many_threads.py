"""too-many-threads: past some count, more threads add memory and no throughput."""

import threading
import time

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def handle_reply(size):
    return sum(i * i for i in range(size))  # Python work on each reply: needs the GIL


def client(go, requests, wait_s, size):
    go.wait()  # every thread starts working at once, after all of them exist
    for _ in range(requests):
        time.sleep(wait_s)  # waiting for a reply: the GIL is released, threads overlap
        handle_reply(size)


def memory_kib():
    """This process's resident (VmRSS) and virtual (VmSize) memory, from /proc/self/status."""
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields["VmRSS"].split()[0]), int(fields["VmSize"].split()[0])


def run(params, probe):
    most, requests, wait_s = params["threads"], params["requests"], params["wait_ms"] / 1000
    counts = [2**n for n in range(most.bit_length()) if 2**n < most] + [most]  # 1, 2, 4, ... threads
    steps = []
    for count in counts:
        go = threading.Event()
        threads = [
            threading.Thread(target=client, args=(go, requests, wait_s, params["work"]), name=f"client-{count}-{n}")
            for n in range(count)
        ]
        with probe.phase(f"{count} threads"):
            started = time.perf_counter_ns()
            for thread in threads:
                thread.start()
            created_ns = time.perf_counter_ns() - started
            rss, virtual = memory_kib()  # all of them alive, waiting for go
            working = time.perf_counter_ns()
            go.set()
            for thread in threads:
                thread.join()
            throughput = count * requests / ((time.perf_counter_ns() - working) / 1e9)
        probe.count("requests/s", round(throughput))
        start_us = created_ns / count / 1000
        steps.append(
            {"threads": count, "start_us": start_us, "rss_kib": rss, "vm_kib": virtual, "requests_per_s": throughput}
        )
    return verdict(steps)


def verdict(steps):
    first, last = steps[0], steps[-1]
    # Against the best of all smaller counts, not only the one before: with hundreds of threads
    # fighting for the GIL, throughput can dip and recover, and a dip is not a gain.
    best = max(steps[:-1], key=lambda step: step["requests_per_s"])
    gain = last["requests_per_s"] / best["requests_per_s"]
    before = steps[-2]
    rss_grew, vm_grew = last["rss_kib"] - before["rss_kib"], last["vm_kib"] - before["vm_kib"]
    peak = max(steps, key=lambda step: step["requests_per_s"])
    held = gain < 1.3 and rss_grew > 0 and vm_grew > 0 and peak["requests_per_s"] > 4 * first["requests_per_s"]
    size = threading.stack_size()  # reading it also sets it (to the default): put it back
    threading.stack_size(size)
    stack = f"{size // 1024} KiB" if size else "default-sized"
    why = (
        f"Throughput rose from {first['requests_per_s']:.0f} requests/s with 1 thread to {peak['requests_per_s']:.0f} "
        f"with {peak['threads']}. {last['threads']} threads reached {gain:.2f}x the best of fewer threads "
        f"({best['threads']}), while from {before['threads']} to {last['threads']} threads resident memory grew by "
        f"{rss_grew / 1024:.1f} MiB and virtual memory by {vm_grew / 1024:.0f} MiB (a {stack} stack each). Starting "
        f"a thread took {last['start_us']:.0f} µs. The Python work on each reply runs one thread at a time under "
        "the GIL. Requests/s by thread count: "
        + ", ".join(f"{step['threads']}: {step['requests_per_s']:.0f}" for step in steps)
        + "."
    )
    metrics = {
        "peak_threads": peak["threads"],
        "peak_requests_per_s": round(peak["requests_per_s"]),
        "gain_over_fewer": round(gain, 3),
        "max_threads_rss_mib": round(last["rss_kib"] / 1024, 1),
        "max_threads_vm_mib": round(last["vm_kib"] / 1024, 1),
        "rss_per_thread_kib": round(rss_grew / (last["threads"] - before["threads"]), 1),
        "vm_per_thread_kib": round(vm_grew / (last["threads"] - before["threads"]), 1),
        "start_us_per_thread": round(last["start_us"], 1),
    }
    return Outcome(
        claim=f"Past some count, more threads add no throughput: {last['threads']} threads do less than 1.3x the best of fewer threads, while memory keeps growing (after a rise of at least 4x from 1 thread).",
        held=held,
        why=why,
        metrics=metrics,
    )


EXPERIMENT = Experiment(
    slug="too-many-threads",
    title="Too many threads",
    summary="Threads cost memory and start-up time; past some count they add no throughput.",
    lesson=(
        "Every thread reserves a stack and its Python work still runs one thread at a time under the GIL. "
        "Clients that wait for a reply, then handle it in Python, run with 1, 2, 4 ... threads: throughput "
        "grows until the Python work fills one core, then stalls while memory keeps growing. The ceiling is "
        "2000 threads, because the sandbox caps address space and every stack counts against it."
    ),
    claim="Past some thread count, throughput stops growing while memory keeps growing.",
    params=(
        Param(
            "threads",
            int,
            512,  # two doublings past the usual plateau (~128): one noisy step cannot make a false peak
            "The largest thread count tried (the ceiling here is 2000, set in the experiment's limits).",
            label="Threads",
            min=128,
            max=2000,
        ),
        Param("requests", int, 1, "Requests each thread makes.", label="Requests per thread", min=1, max=10),
        Param("wait_ms", int, 10, "How long each reply takes to arrive.", label="Wait (ms)", min=1, max=200),
        Param("work", int, 20_000, "Loop steps of Python work per reply.", label="Work per reply", min=0, max=100_000),
    ),
    metrics=(
        Metric("peak_threads", "threads", "Thread count with the highest throughput."),
        Metric("peak_requests_per_s", "requests/s", "The highest throughput measured."),
        Metric("gain_over_fewer", "x", "Throughput with the most threads / the best with fewer threads."),
        Metric("max_threads_rss_mib", "MiB", "Resident memory (VmRSS) with the most threads alive."),
        Metric("max_threads_vm_mib", "MiB", "Virtual memory (VmSize) with the most threads alive."),
        Metric("rss_per_thread_kib", "KiB", "Resident memory added per extra thread in the last step."),
        Metric("vm_per_thread_kib", "KiB", "Virtual memory added per extra thread in the last step."),
        Metric("start_us_per_thread", "µs", "Mean Thread.start() time with the most threads."),
    ),
    code=(handle_reply, client, memory_kib, run, verdict),
    run=run,
    # 2000 threads with 512 KiB stacks reserve about 1 GiB of address space, and RLIMIT_AS counts it:
    # 1.5 GiB leaves room for the interpreter and two malloc arenas (MALLOC_ARENA_MAX=2).
    limits=Limits(wall_s=60, cpu_s=60, memory_mb=1536, max_threads=2000),
    cases=({"threads": 2000},),
    notes=(
        "The ceiling of 2000 threads is this experiment's limit, not Python's: the sandbox caps address space "
        "(RLIMIT_AS, 1.5 GiB here), and every thread reserves a stack in it (512 KiB in this sandbox, 8 MiB by "
        "default, with which only a few dozen threads would start). Resident memory grows far less: a stack "
        "only takes real memory for the pages a thread touches."
    ),
)
