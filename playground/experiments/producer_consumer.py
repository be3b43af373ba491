"""producer-consumer: a bounded queue.Queue between producers and consumers; a full queue pushes back."""

import queue
import threading
import time

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def producer(number, items, make_s, q, blocked, longest, probe):
    for k in range(items):
        time.sleep(make_s)  # making the item
        item = number * items + k  # every item is a distinct number: duplicates and losses show
        try:
            q.put_nowait(item)
        except queue.Full:  # the consumers are behind: wait for room, and show the wait on the chart
            with probe.phase("blocked in put()") as wait:
                q.put(item)
            blocked[number] += wait.wall_ns
        # qsize() takes the queue's lock only briefly; a consumer may already have taken the item.
        longest[number] = max(longest[number], q.qsize())  # each producer writes only its own slot


def consumer(q, use_s, taken):
    while (item := q.get()) is not None:  # None: no more items
        time.sleep(use_s)  # using the item
        taken.append(item)  # this consumer's own list: no lock needed


def run(params, probe):
    producers = params["threads"] // 2
    consumers = params["threads"] - producers
    items, slow_s = params["items"], params["work_ms"] / 1000
    fast_s = slow_s / 10
    make_s, use_s = (fast_s, slow_s) if params["variant"] == "fast-producers" else (slow_s, fast_s)
    q = queue.Queue(maxsize=params["maxsize"])
    blocked = [0] * producers  # ns each producer spent blocked in put()
    longest = [0] * producers  # the longest queue each producer saw after its put()
    taken = [[] for _ in range(consumers)]
    making = [
        threading.Thread(target=producer, args=(n, items, make_s, q, blocked, longest, probe), name=f"producer-{n}")
        for n in range(producers)
    ]
    using = [
        threading.Thread(target=consumer, args=(q, use_s, taken[n]), name=f"consumer-{n}") for n in range(consumers)
    ]
    with probe.phase("producing") as producing:
        for thread in making + using:
            thread.start()
        for thread in making:
            thread.join()
    for _ in using:
        q.put(None)  # one stop signal per consumer, after every item
    for thread in using:
        thread.join()
    return verdict(params, producers, taken, blocked, max(longest), producing.wall_ns)


def verdict(params, producers, taken, blocked, longest, producing_ns):
    total = producers * params["items"]
    everything = [item for mine in taken for item in mine]
    once = len(everything) == total and len(set(everything)) == total and sum(everything) == sum(range(total))
    blocked_share = sum(blocked) / (producers * producing_ns)  # of the producers' time, spent blocked in put()
    if params["variant"] == "fast-producers":
        pushback = f"the producers spent at least half their time blocked in put() (measured {blocked_share:.0%})"
        held = once and longest <= params["maxsize"] and blocked_share >= 0.5
    else:
        pushback = f"the producers spent under 10% of their time blocked in put() (measured {blocked_share:.0%})"
        held = once and longest <= params["maxsize"] and blocked_share < 0.1
    return Outcome(
        claim=(
            f"The queue never holds more than {params['maxsize']}, every item is consumed exactly once, "
            f"and {pushback.split(' (')[0]}."
        ),
        held=held,
        why=(
            f"{len(everything)} of {total} items consumed, {len(set(everything))} distinct, sum "
            f"{sum(everything)} (expected {sum(range(total))}); {pushback}. The longest queue seen after a put() was {longest} "
            f"(maxsize {params['maxsize']}): a full queue.Queue makes put() wait for room instead."
        ),
        metrics={
            "produced": total,
            "consumed": len(everything),
            "distinct": len(set(everything)),
            "per_consumer": [len(mine) for mine in taken],
            "longest_queue": longest,
            "blocked_ms": round(sum(blocked) / 1e6, 2),
            "blocked_share": round(blocked_share, 3),
            "producing_ms": round(producing_ns / 1e6, 2),
        },
    )


EXPERIMENT = Experiment(
    slug="producer-consumer",
    title="Producers, consumers and a bounded queue",
    summary="queue.Queue(maxsize) between producer and consumer threads: when it is full, put() waits.",
    lesson=(
        "A queue.Queue is a thread-safe hand-off: producers put() items, consumers get() them, and its own "
        "lock means no item is lost or taken twice. With a maxsize, a full queue makes put() wait: fast "
        "producers are slowed to the consumers' pace (back-pressure) instead of piling up memory."
    ),
    claim="The queue never exceeds maxsize, every item is consumed once, and fast producers wait in put().",
    params=(
        Param("threads", int, 4, "Threads in all: half producers, the rest consumers.", label="Threads", min=2, max=16),
        Param("items", int, 15, "Items each producer makes.", label="Items per producer", min=1, max=100),
        Param("maxsize", int, 4, "Capacity of the queue.", label="Queue size", min=1, max=50),
        Param("work_ms", int, 20, "Time per item on the slow side; the fast side takes a tenth.", min=5, max=100),
        Param(
            "variant",
            str,
            "fast-producers",
            "Which side is faster.",
            label="Faster side",
            choices=("fast-producers", "fast-consumers"),
            choice_help={
                "fast-producers": "the queue fills up and put() blocks",
                "fast-consumers": "the queue stays nearly empty and get() waits",
            },
        ),
    ),
    metrics=(
        Metric("produced", "items", "threads // 2 producers x items."),
        Metric("consumed", "items", "Items the consumers took off the queue."),
        Metric("distinct", "items", "Distinct items consumed: equal to produced if none was taken twice."),
        Metric("per_consumer", "items", "How many items each consumer took."),
        Metric("longest_queue", "items", "Longest queue a producer saw right after its put()."),
        Metric("blocked_ms", "ms", "Total time the producers spent blocked in put()."),
        Metric("blocked_share", "", "blocked_ms / (producers x producing_ms)."),
        Metric("producing_ms", "ms", "Wall time until the last producer finished."),
    ),
    code=(producer, consumer, run, verdict),
    run=run,
    limits=Limits(wall_s=60, max_threads=16),
    cases=({"variant": "fast-consumers"}, {"threads": 5, "maxsize": 2, "items": 20}),
)
