"""Observer effect: an experiment observed (worker + probe + 1 kHz /proc sampler)
against the same code run with no instrumentation at all.

    python bench/perturbation.py [--runs 10]

Both sides run the experiment module's own ``run()`` in a fresh interpreter.
The plain side uses a do-nothing probe (phases are timed, nothing recorded,
no thread hooks, no flusher, no sampler). Figures: median wall time of the
experiment's threaded phase and median voluntary context switches of the
process during the run, observed / plain. Runs alternate, so machine noise
hits both sides alike. Target (issue 7): ratios <= 1.10.

Switches twice: the whole worker process, and the process without the
flusher's own (the worker reports the flusher thread's count from /proc): the
observer's wakes are switches of the observer; what they do to the experiment
shows in its threads' counts (bench/switches.py attributes them per thread).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from common import NULL_PROBE, ROOT, LiveServer, case_label, load_average, record, run_child, wait_done

CASES = [
    ("cpu-bound", {}, "threaded_ms"),
    ("race-condition", {"variant": "locked"}, "elapsed_ms"),
    ("io-bound", {}, "threaded_ms"),
    ("deadlock", {"variant": "ordered", "threads": 4}, "wall_ms"),
]

PLAIN = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from playground import experiments
from playground.probe import interpreter_info

{null_probe}

import os, threading
threading.stack_size(512 * 1024)  # as the worker does
os.nice(10)  # as the worker does: niceness is the sandbox's, not the observer's
experiment = experiments.get({slug!r})
params = experiments.validate_or_raise(experiment.params, {params!r})
u0 = resource.getrusage(resource.RUSAGE_SELF); t0 = time.perf_counter_ns()
outcome = experiment.run(params, NullProbe())
wall = (time.perf_counter_ns() - t0) / 1e6; u1 = resource.getrusage(resource.RUSAGE_SELF)
metrics = dict(outcome.metrics, wall_ms=wall)
print(json.dumps({{"metrics": metrics, "voluntary": u1.ru_nvcsw - u0.ru_nvcsw}}))
"""


def plain_run(slug: str, params: dict) -> dict:
    return run_child(PLAIN.format(root=ROOT, slug=slug, params=params, null_probe=NULL_PROBE))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--only", help="run only the cases of this experiment slug")
    parser.add_argument(
        "--sampler", choices=("on", "off"), default="on", help="off: the observed side without the /proc sampler"
    )
    args = parser.parse_args()
    load0 = load_average()
    env = {"PLAYGROUND_SAMPLER": "off"} if args.sampler == "off" else {}
    server = LiveServer(os.path.join(tempfile.mkdtemp(prefix="bench-"), "runs.sqlite3"), env).start()
    rows = []
    try:
        for slug, params, metric in CASES:
            if args.only and slug != args.only:
                continue
            observed_t, plain_t, observed_cs, plain_cs, experiment_cs = [], [], [], [], []
            for _ in range(args.runs):
                run = wait_done(server, server.start_run(slug, **params)["id"])
                observed_t.append(run["result"]["metrics"][metric])
                observed_cs.append(run["result"]["observed"]["voluntary_context_switches"])
                flusher = run["observation"].get("flusher_switches", {}).get("voluntary", 0)
                experiment_cs.append(observed_cs[-1] - flusher)
                plain = plain_run(slug, params)
                plain_t.append(plain["metrics"][metric])
                plain_cs.append(plain["voluntary"])
            t_ratio = statistics.median(observed_t) / statistics.median(plain_t)
            cs_o, cs_p = statistics.median(observed_cs), statistics.median(plain_cs)
            label = case_label(slug, params)
            rows.append(
                (
                    f"{label}: {metric}, observed / plain (median of {args.runs})",
                    f"{statistics.median(observed_t):.1f} / {statistics.median(plain_t):.1f} ms = **{t_ratio:.3f}x**",
                )
            )
            # The plain program's own spread between runs, for scale: with 15-50 switches a
            # run, one or two either way is a 10% ratio.
            q_o, q_p = statistics.quantiles(observed_cs, n=4), statistics.quantiles(plain_cs, n=4)
            rows.append(
                (
                    f"{label}: voluntary context switches, observed / plain",
                    f"{cs_o:g} / {cs_p:g}"
                    + (f" = **{cs_o / cs_p:.3f}x**" if cs_p else "")
                    + f" (quartiles: observed {q_o[0]:g}-{q_o[2]:g}, plain {q_p[0]:g}-{q_p[2]:g})",
                )
            )
            cs_e = statistics.median(experiment_cs)
            rows.append(
                (
                    f"{label}: voluntary context switches without the flusher's own, observed / plain",
                    f"{cs_e:g} / {cs_p:g}" + (f" = **{cs_e / cs_p:.3f}x**" if cs_p else ""),
                )
            )
    finally:
        server.stop()
    rows.append(("load average before / after", f"{load0} / {load_average()}"))
    title = "Observer effect: observed vs uninstrumented"
    record(title + (" (observed without the /proc sampler)" if args.sampler == "off" else ""), rows)


if __name__ == "__main__":
    main()
