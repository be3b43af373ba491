"""Cost of one recorded worker-side event: Probe.emit, Probe.mark, and print() through LaneWriter.

    python bench/event_cost.py [--repeat 7]

A real Probe (the worker's own class) with its deque. Figures are per call, the
median of ``--repeat`` timeit repeats (the minimum beside it), from a worker
thread registered with a lane, as in a run. Target (issue 7): <= 100 ns.

Each figure twice, because what is queued changes the cost: drained every
``CHUNK`` calls, as the worker's flusher does every 50 ms (a run recording
100,000 events/s queues 5,000), and with all ``N`` calls queued, as in a flood
that outruns the flusher (fresh memory for every event: about twice the cost,
for the inline reference line as much as for the probe).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import timeit

from common import load_average, record

from playground.probe import LaneWriter, Probe

N = 200_000
CHUNK = 5_000


def per_call(stmt, setup_globals, repeat: int, chunk: int = N) -> tuple[float, float]:
    probe = setup_globals["probe"]
    times = []
    for _ in range(repeat):
        t = 0.0
        for _ in range(N // chunk):
            t += timeit.timeit(stmt, globals=setup_globals, number=chunk)
            probe.drain(limit=10**9)
        times.append(t / N * 1e9)
    return statistics.median(times), min(times)


def both(stmt, setup_globals, repeat: int) -> tuple:
    return per_call(stmt, setup_globals, repeat, CHUNK) + per_call(stmt, setup_globals, repeat, N)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    load0 = load_average()
    out: dict = {}

    def body():
        probe = Probe(max_events=10**9)
        probe.register_current_thread()
        writer = LaneWriter(probe, max_chars=0)  # keeps nothing: only the mark path is timed
        g = {
            "probe": probe,
            "writer": writer,
            "emit": probe.emit,
            "emit_in": probe.emit_in,
            "mark": probe.mark,
            "write": writer.write,
            "print": print,
            "sys": sys,
        }
        out["empty loop"] = per_call("pass", g, args.repeat)
        out["probe.emit('S', 'x')"] = both("emit('S', 'x')", g, args.repeat)
        out["probe.emit_in(3, 'C')"] = both("emit_in(3, 'C')", g, args.repeat)
        out["probe.mark('hello')"] = both("mark('hello')", g, args.repeat)
        out["writer.write('hello\\n')"] = both("write('hello\\n')", g, args.repeat)
        out["print('hello', file=writer)"] = both("print('hello', file=writer)", g, args.repeat)
        # reference: the floor FACTS.md quotes (append of a tuple with cached locals)
        g["append"] = probe._events.append
        from time import perf_counter_ns

        g["pc"] = perf_counter_ns
        out["reference: append([pc(), 0, 'S', None])"] = both("append([pc(), 0, 'S', None])", g, args.repeat)
        # reference: what any Python-level emit pays before recording anything
        exec("def nothing(kind, data=None, lane=None):\n    pass", g)
        out["reference: nothing('S', 'x'), an empty Python function"] = both("nothing('S', 'x')", g, args.repeat)

    t = threading.Thread(target=body, name="bench-worker")
    t.start()
    t.join()
    base = out["empty loop"][0]
    rows = [
        (
            what,
            f"**{med:.0f} ns** per call drained every {CHUNK:,} (min {mn:.0f}); {qmed:.0f} ns with {N:,} queued"
            f" (min {qmn:.0f}); loop overhead {base:.0f} ns included",
        )
        for what, (med, mn, *queued) in out.items()
        if what != "empty loop"
        for qmed, qmn in [queued]
    ]
    rows.append(("load average before / after", f"{load0} / {load_average()}"))
    record(f"Event cost: one recorded worker-side event (median of {args.repeat} x {N} calls)", rows)


if __name__ == "__main__":
    main()
