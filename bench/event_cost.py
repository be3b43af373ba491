"""Cost of one recorded worker-side event: Probe.emit, Probe.mark, and print() through LaneWriter.

    python bench/event_cost.py [--repeat 7]

A real Probe (the worker's own class) with its deque; each timing loop drains
the deque between repeats so memory stays flat. Figures are per call, the
median of ``--repeat`` timeit repeats (the minimum beside it), from a worker
thread registered with a lane, as in a run. Target (issue 7): <= 100 ns.
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


def per_call(stmt, setup_globals, repeat: int, number: int = N) -> tuple[float, float]:
    probe = setup_globals["probe"]
    times = []
    for _ in range(repeat):
        probe._count = 0  # the soft cap would turn later calls into the cheaper "dropped" path
        t = timeit.timeit(stmt, globals=setup_globals, number=number)
        times.append(t / number * 1e9)
        probe.drain(limit=10**9)
    return statistics.median(times), min(times)


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
            "mark": probe.mark,
            "write": writer.write,
            "print": print,
            "sys": sys,
        }
        out["empty loop"] = per_call("pass", g, args.repeat)
        out["probe.emit('S', 'x')"] = per_call("emit('S', 'x')", g, args.repeat)
        out["probe.emit('C', None, lane=3)"] = per_call("emit('C', None, lane=3)", g, args.repeat)
        out["probe.mark('hello')"] = per_call("mark('hello')", g, args.repeat)
        out["writer.write('hello\\n')"] = per_call("write('hello\\n')", g, args.repeat)
        out["print('hello', file=writer)"] = per_call("print('hello', file=writer)", g, args.repeat)
        # reference: the floor FACTS.md quotes (append of a tuple with cached locals)
        g["append"] = probe._events.append
        from time import perf_counter_ns

        g["pc"] = perf_counter_ns
        out["reference: append([pc(), 0, 'S', None])"] = per_call("append([pc(), 0, 'S', None])", g, args.repeat)

    t = threading.Thread(target=body, name="bench-worker")
    t.start()
    t.join()
    base = out["empty loop"][0]
    rows = [
        (what, f"{med:.0f} ns per call (min {mn:.0f}; loop overhead {base:.0f} ns included)")
        for what, (med, mn) in out.items()
        if what != "empty loop"
    ]
    rows.append(("load average before / after", f"{load0} / {load_average()}"))
    record(f"Event cost: one recorded worker-side event (median of {args.repeat} x {N} calls)", rows)


if __name__ == "__main__":
    main()
