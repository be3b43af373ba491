"""hello-threads: create, start and join N threads (the first example of every tutorial)."""

import threading
import time

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def say_hello(number, delay_s, greetings):
    time.sleep(delay_s)  # a pause, so the lanes overlap visibly on the chart
    print(f"Hello from thread {number}")
    greetings.append(number)


def run(params, probe):
    count, delay_s = params["threads"], params["delay_ms"] / 1000
    greetings = []
    threads = [
        threading.Thread(target=say_hello, args=(n, delay_s, greetings), name=f"hello-{n}") for n in range(count)
    ]
    with probe.phase("start") as starting:
        for thread in threads:
            thread.start()
    with probe.phase("join"):
        for thread in threads:
            thread.join()  # returns only when that thread has finished

    still_running = sum(thread.is_alive() for thread in threads)
    held = still_running == 0 and sorted(greetings) == list(range(count))
    return Outcome(
        claim=f"After join(), all {count} threads have run to their end.",
        held=held,
        why=(
            f"{len(greetings)} of {count} threads said hello and {still_running} were still running "
            f"after join(); starting each thread took {starting.wall_ns / count / 1000:.0f} µs."
        ),
        metrics={
            "threads_started": count,
            "greetings": len(greetings),
            "still_running": still_running,
            "start_us_per_thread": round(starting.wall_ns / count / 1000, 1),
        },
    )


EXPERIMENT = Experiment(
    slug="hello-threads",
    title="Hello, threads",
    summary="Create, start and join threads: the threading module's first steps.",
    lesson=(
        "A Thread runs a function next to the main program. start() launches it and "
        "returns at once; join() waits until it has finished. Each thread below pauses, "
        "then prints: watch the prints land in their own lanes while the main thread waits."
    ),
    claim="After join(), every thread has run to its end.",
    params=(
        Param("threads", int, 4, "How many threads to start.", label="Threads", min=1, max=64),
        Param(
            "delay_ms", int, 100, "How long each thread pauses before it prints.", label="Pause (ms)", min=0, max=2000
        ),
    ),
    metrics=(
        Metric("threads_started", "threads", "Threads created and started."),
        Metric("greetings", "threads", "Threads that printed their greeting."),
        Metric("still_running", "threads", "Threads alive after join() returned (should be 0)."),
        Metric("start_us_per_thread", "µs", "Mean time of one Thread.start() call."),
    ),
    code=(say_hello, run),
    run=run,
    limits=Limits(wall_s=20, max_threads=64),
)
