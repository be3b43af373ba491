"""Observer effect: an experiment observed (worker + probe + 1 kHz /proc sampler)
against the same code run with no instrumentation at all.

    python bench/perturbation.py [--runs 10] [--plain-start pool|immediate]

Both sides run the experiment module's own ``run()`` in a fresh interpreter.
The plain side uses a do-nothing probe (phases are timed, nothing recorded,
no thread hooks, no flusher, no sampler). Figures: median wall time of the
experiment's threaded phase and median voluntary context switches of the
process during the run, observed / plain; beside each median, the ratio of the
means with a bootstrap 95% interval (``common.mean_ratio``: a median of ~19
switches moves 5% a step). Runs alternate, so machine noise
hits both sides alike. Target (issues 3 and 7): ratios <= 1.10.

How the plain side starts (``--plain-start``) is the pool worker's way by
default: started at nice 19, it says it is ready, idles until a line comes on
its stdin from its parent, then runs at nice 10. ``immediate`` runs straight
after the imports, as this script did until 2026-11-25. The start is not
instrumentation, yet it moves the plain program's own count: deadlock
``ordered`` makes 15 switches run straight after its imports and 17-19 after
an idle wait for its start signal (bench/plain_start.py), because how soon a
woken thread reaches the GIL depends on what the CPUs were doing just before.

Switches twice: the whole worker process, and the process without the
flusher's own (the worker reports the flusher thread's count from /proc): the
observer's wakes are switches of the observer; what they do to the experiment
shows in its threads' counts (bench/switches.py attributes them per thread).

Where the plain side runs (``--plain-sandbox``). The observed run is a pool
worker inside the server's sandbox layers (network namespace, uid nobody, a
cgroup of its own, rlimits: playground/sandbox/layers.py). The sandbox records
nothing, yet it moves the count: deadlock ``ordered`` observed with
PLAYGROUND_SANDBOX=rlimits made one switch fewer than in the full sandbox
(18.7 vs 19.7, 100 interleaved runs; RESULTS (M)), and a worker leads a
session of its own, which is a scheduling group of its own where the kernel
has ``sched_autogroup_enabled``. So by default (``layers``) the plain program
runs in the same layers, set up by the same code (its own session,
``Layers.command``, ``Layers.confine``, the worker's ``confine_self`` and
``apply_limits``), and ``observed / plain`` is what observing costs; a
third side runs the plain program bare, and its rows say what the sandbox
itself costs. ``none``: the bare plain program only, as before 2026-12-05.
Layers this machine does not allow (not root, no cgroup) are simply off on
both sides, as in the server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import (
    NULL_PROBE,
    ROOT,
    LiveServer,
    case_label,
    load_average,
    mean_ratio,
    quartiles,
    record,
    run_child,
    wait_done,
    wait_idle,
)

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
{confine}
{start}
experiment = experiments.get({slug!r})
params = experiments.validate_or_raise(experiment.params, {params!r})
{limits}
u0 = resource.getrusage(resource.RUSAGE_SELF); t0 = time.perf_counter_ns()
outcome = experiment.run(params, NullProbe())
wall = (time.perf_counter_ns() - t0) / 1e6; u1 = resource.getrusage(resource.RUSAGE_SELF)
metrics = dict(outcome.metrics, wall_ms=wall)
print(json.dumps({{"metrics": metrics, "voluntary": u1.ru_nvcsw - u0.ru_nvcsw}}))
"""


# How the plain program begins its run (the ``{start}`` above). Niceness is the
# sandbox's, not the observer's: both sides run at nice 10, as the worker does.
IMMEDIATE = "os.nice(10)"
# As a pool worker: it was started at nice 19 (plain_run), says it is ready, and
# waits for its job on stdin; then it runs at RUN_NICE (worker.py).
POOL = """
try:
    resource.setrlimit(resource.RLIMIT_NICE, (10, 10))
except (OSError, ValueError):
    pass  # as in worker.py: then only CAP_SYS_NICE lets it go from 19 to 10
print("ready", flush=True)
sys.stdin.readline()
os.setpriority(os.PRIO_PROCESS, 0, 10)
"""
# A pool worker idles between its start and its job; here, between two observed runs.
POOL_IDLE_S = 0.3


# In the sandbox (``layers``): what the worker does to itself before its job and after it.
CONFINE = "from playground.sandbox.worker import apply_limits, confine_self\nconfine_self()"
LIMITS = "apply_limits(experiment.limits)"


def plain_code(slug: str, params: dict, start: str = "pool", sandboxed: bool = False) -> str:
    begin = POOL if start == "pool" else IMMEDIATE
    confine, limits = (CONFINE, LIMITS) if sandboxed else ("", "")
    return PLAIN.format(
        root=ROOT, slug=slug, params=params, null_probe=NULL_PROBE, start=begin, confine=confine, limits=limits
    )


def sandbox_layers():
    """The server's sandbox layers on this machine, detected as the pool does."""
    from playground.sandbox.layers import Layers

    layers = Layers()
    layers.detect(sys.executable)
    return layers


def plain_run(slug: str, params: dict, start: str = "pool", layers=None) -> dict:
    """The plain program once; ``layers``: inside the worker's sandbox layers (sandbox_layers())."""
    code = plain_code(slug, params, start, sandboxed=layers is not None)
    if start != "pool":
        return run_child(code)
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    if layers is not None:  # the worker's own command line, up to the interpreter: nice, unshare
        command, layer_env = layers.command(sys.executable)
        prefix, env = command[: command.index(sys.executable)], {**env, **layer_env}
    else:
        prefix = [shutil.which("nice"), "-n", "19"] if shutil.which("nice") else []
    child = subprocess.Popen(
        [*prefix, sys.executable, "-s", "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        # A session of its own, as every pool worker (its process group is how it is killed). With
        # sched_autogroup_enabled, a session is also a scheduling group of its own.
        start_new_session=layers is not None,
    )
    cgroup = None
    try:
        assert child.stdout.readline().strip() == "ready"
        if layers is not None:  # as the supervisor does before the job
            from playground import experiments

            limits = experiments.get(slug).limits
            cgroup = layers.confine(child.pid, max_pids=limits.max_threads + 64, memory_mb=limits.memory_mb)
        time.sleep(POOL_IDLE_S)
        child.stdin.write("job\n")
        child.stdin.flush()
        out, _ = child.communicate()
    finally:
        if cgroup is not None:
            cgroup.release()
    if child.returncode:
        raise RuntimeError(f"plain run failed ({child.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--only", help="run only the cases of this experiment slug")
    parser.add_argument(
        "--sampler", choices=("on", "off"), default="on", help="off: the observed side without the /proc sampler"
    )
    parser.add_argument(
        "--plain-start",
        choices=("pool", "immediate"),
        default="pool",
        help="pool: the plain side waits for its job as a pool worker does; immediate: runs after its imports",
    )
    parser.add_argument(
        "--plain-sandbox",
        choices=("layers", "none"),
        default="layers",
        help="layers: the plain side in the worker's sandbox layers, and once more bare; none: bare only",
    )
    args = parser.parse_args()
    layers = sandbox_layers() if args.plain_sandbox == "layers" else None
    load0 = load_average()
    env = {"PLAYGROUND_SAMPLER": "off"} if args.sampler == "off" else {}
    server = LiveServer(os.path.join(tempfile.mkdtemp(prefix="bench-"), "runs.sqlite3"), env).start()
    rows = []
    try:
        for slug, params, metric in CASES:
            if args.only and slug != args.only:
                continue
            observed_t, plain_t, observed_cs, plain_cs, experiment_cs = [], [], [], [], []
            bare_t, bare_cs = [], []
            for _ in range(args.runs):
                run = wait_done(server, server.start_run(slug, **params)["id"])
                wait_idle(server)  # the plain side runs on a machine as quiet as the observed one had
                observed_t.append(run["result"]["metrics"][metric])
                observed_cs.append(run["result"]["observed"]["voluntary_context_switches"])
                flusher = run["observation"].get("flusher_switches", {}).get("voluntary", 0)
                experiment_cs.append(observed_cs[-1] - flusher)
                plain = plain_run(slug, params, args.plain_start, layers)
                plain_t.append(plain["metrics"][metric])
                plain_cs.append(plain["voluntary"])
                if layers is not None:
                    bare = plain_run(slug, params, args.plain_start)
                    bare_t.append(bare["metrics"][metric])
                    bare_cs.append(bare["voluntary"])
            t_ratio = statistics.median(observed_t) / statistics.median(plain_t)
            cs_o, cs_p = statistics.median(observed_cs), statistics.median(plain_cs)
            label = case_label(slug, params)
            rows.append(
                (
                    f"{label}: {metric}, observed / plain (median of {args.runs})",
                    f"{statistics.median(observed_t):.1f} / {statistics.median(plain_t):.1f} ms = **{t_ratio:.3f}x**;"
                    f" means {mean_ratio(observed_t, plain_t)}",
                )
            )
            # The plain program's own spread between runs, for scale: with 15-50 switches a
            # run, one or two either way is a 10% ratio.
            rows.append(
                (
                    f"{label}: voluntary context switches, observed / plain",
                    f"{cs_o:g} / {cs_p:g}"
                    + (f" = **{cs_o / cs_p:.3f}x**" if cs_p else "")
                    + f" (quartiles: observed {quartiles(observed_cs)}, plain {quartiles(plain_cs)});"
                    + f" means **{mean_ratio(observed_cs, plain_cs)}**",
                )
            )
            cs_e = statistics.median(experiment_cs)
            rows.append(
                (
                    f"{label}: voluntary context switches without the flusher's own, observed / plain",
                    f"{cs_e:g} / {cs_p:g}" + (f" = **{cs_e / cs_p:.3f}x**" if cs_p else ""),
                )
            )
            if bare_cs:  # what the sandbox costs the plain program: not observation, shown beside it
                rows.append(
                    (
                        f"{label}: the sandbox itself, plain in it / plain bare: {metric}; voluntary switches",
                        f"{statistics.median(plain_t):.1f} / {statistics.median(bare_t):.1f} ms,"
                        f" means {mean_ratio(plain_t, bare_t)}; {cs_p:g} / {statistics.median(bare_cs):g},"
                        f" means **{mean_ratio(plain_cs, bare_cs)}**; observed / plain bare: means"
                        f" {mean_ratio(observed_cs, bare_cs)}",
                    )
                )
    finally:
        server.stop()
    rows.append(("load average before / after", f"{load0} / {load_average()}"))
    title = "Observer effect: observed vs uninstrumented"
    if layers is not None:
        on = ["session", "rlimits"] + [n for n, layer in (("netns", layers.netns), ("uid", layers.unprivileged),
                                                           ("cgroup", layers.cgroup)) if layer.active]  # fmt: skip
        title += f" (plain side in the same sandbox: {', '.join(on)})"
    if args.sampler == "off":
        title += " (observed without the /proc sampler)"
    if args.plain_start == "immediate":
        title += " (plain side run straight after its imports)"
    record(title, rows)


if __name__ == "__main__":
    main()
