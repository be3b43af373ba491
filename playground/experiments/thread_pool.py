"""thread-pool: W worker threads take T queued tasks; map() and as_completed() hand back results differently."""

import functools
import math
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def task(i, seconds, submitted_ns, probe):
    waited_ms = (time.perf_counter_ns() - submitted_ns) / 1e6  # from submit() to a worker taking it
    probe.mark(f"task {i} waited {waited_ms:.0f} ms in the queue")
    with probe.phase(f"task {i}"):  # a span on this worker's lane
        time.sleep(seconds)  # stands for I/O: a download, a query
    return i, waited_ms, time.perf_counter_ns()


def run(params, probe):
    workers, count, order = params["threads"], params["tasks"], params["order"]
    # Three durations, so that tasks finish in another order than they were submitted.
    durations_ms = [params["task_ms"] * (1 + (count - i) % 3) / 2 for i in range(count)]
    with probe.phase(f"{order}: {count} tasks, {workers} workers") as pool_phase:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pool") as pool:
            # Both APIs submit every task at once, microseconds apart: one timestamp serves all.
            job = functools.partial(task, submitted_ns=time.perf_counter_ns(), probe=probe)
            if order == "map":
                results = list(pool.map(job, range(count), [ms / 1000 for ms in durations_ms]))
            else:
                futures = [pool.submit(job, i, durations_ms[i] / 1000) for i in range(count)]
                results = [future.result() for future in as_completed(futures)]
    return verdict(results, durations_ms, workers, order, pool_phase.wall_ms, params["task_ms"])


def finish_times(durations_ms, workers):
    """When each task should end: each goes, in submission order, to the first free worker."""
    free_at, ends = [0.0] * workers, []
    for ms in durations_ms:
        soonest = min(free_at)
        free_at[free_at.index(soonest)] = soonest + ms
        ends.append(soonest + ms)
    return ends


def verdict(results, durations_ms, workers, order, wall_ms, task_ms):
    count = len(durations_ms)
    ends = finish_times(durations_ms, workers)
    expected_ms, waves = max(ends), math.ceil(count / workers)
    got = [i for i, _, _ in results]
    finished = [i for i, _, _ in sorted(results, key=lambda result: result[2])]
    if order == "map":
        promise, kept = "in submission order", got == list(range(count))
    else:
        # Predicted ends differ by at least task_ms / 2 unless they tie; a tie may come out either way.
        promise = "in the order they finished"
        kept = sorted(got) == list(range(count)) and all(
            ends[got[k]] <= ends[got[k + 1]] + task_ms / 4 for k in range(count - 1)
        )
    on_time = 0.95 * expected_ms <= wall_ms <= 1.5 * expected_ms
    waits = [waited for _, waited, _ in results]
    claim = (
        f"{count} tasks on {workers} workers take about {expected_ms:.0f} ms ({waves} waves; measured within "
        f"0.95x-1.5x), and {order} yields the results {promise}."
    )
    why = (
        f"The pool took {wall_ms:.0f} ms for {count} tasks of {min(durations_ms):.0f}-{max(durations_ms):.0f} ms "
        f"on {workers} workers ({wall_ms / expected_ms:.2f}x the {expected_ms:.0f} ms a pool with no overhead "
        f"would take). The tasks finished as {finished}, the results came as {got}; "
        f"task 0, 1, ... were due to finish at {[round(end) for end in ends]} ms. "
        f"The longest queue wait was {max(waits):.0f} ms."
    )
    metrics = {
        "pool_ms": round(wall_ms, 2),
        "expected_ms": round(expected_ms, 2),
        "waves": waves,
        "results": len(results),
        "order_kept": kept,
        "max_queue_wait_ms": round(max(waits), 2),
        "mean_queue_wait_ms": round(sum(waits) / count, 2),
    }
    return Outcome(claim=claim, held=on_time and kept, why=why, metrics=metrics)


EXPERIMENT = Experiment(
    slug="thread-pool",
    title="A thread pool and its queue",
    summary="ThreadPoolExecutor: T tasks queue up for W workers; map() and as_completed() order results differently.",
    lesson=(
        "A ThreadPoolExecutor keeps W threads and a queue: each task waits in the queue until a worker is free, "
        "so T tasks run in about T/W waves. map() gives results back in the order you submitted the tasks, "
        "waiting for a slow one even if later ones are done; as_completed() gives each result as soon as it is ready."
    ),
    claim="T tasks on W workers take about ceil(T/W) waves; map keeps submission order, as_completed completion order.",
    params=(
        Param("threads", int, 3, "Worker threads in the pool (max_workers).", label="Workers", min=1, max=16),
        Param("tasks", int, 8, "How many tasks are submitted.", label="Tasks", min=1, max=64),
        Param(
            "task_ms",
            int,
            100,
            "Mean task length; tasks take 0.5x, 1x or 1.5x of it.",
            label="Task (ms)",
            min=20,
            max=500,
        ),
        Param(
            "order",
            str,
            "as_completed",
            "How the results are collected.",
            label="Results via",
            choices=("as_completed", "map"),
            choice_help={"as_completed": "each result as soon as it is ready", "map": "results in submission order"},
        ),
    ),
    metrics=(
        Metric("pool_ms", "ms", "Wall time from the first submit to the pool's shutdown."),
        Metric("expected_ms", "ms", "When the last task ends if each task goes to the first free worker, no overhead."),
        Metric("waves", "waves", "ceil(tasks / threads): rounds of tasks if all took the same time."),
        Metric("results", "results", "Results collected (should equal tasks)."),
        Metric("order_kept", "", "Whether the results came in the order the chosen API promises."),
        Metric("max_queue_wait_ms", "ms", "Longest time a task waited in the queue for a free worker."),
        Metric("mean_queue_wait_ms", "ms", "Mean time a task waited in the queue."),
    ),
    code=(task, run, finish_times, verdict),
    run=run,
    limits=Limits(wall_s=60, max_threads=16),
    cases=({"order": "map"}, {"order": "map", "threads": 2, "tasks": 5}),
)
