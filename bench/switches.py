"""Who makes an observed run's extra context switches: per-thread counts, plain vs observed.

    python bench/switches.py [--runs 10] [--only SLUG]

perturbation.py compares the whole process's voluntary context switches,
observed / plain. This script says which thread makes them. Each side runs the
experiment's own ``run()`` in a fresh interpreter, as the worker does (stack
size, nice 10), under one of:

- ``plain``: a do-nothing probe, no hooks (perturbation.py's plain side);
- ``hooks``: the real Probe with its thread start hook and a LaneWriter, no flusher;
- ``flusher``: the above plus the worker's own Flusher and Channel, writing to /dev/null,
  and a forked process asking for sends as the supervisor does (FlushRequests);
- ``worker``: the above plus the worker's Primitives hooks, when the module exists.

Every thread's voluntary switches come from ``getrusage(RUSAGE_THREAD)`` read by
the thread itself as it ends (a wrapper around ``Thread._bootstrap_inner``
installed outermost), the main thread's around ``run()``. Medians over runs,
per role: main, experiment threads (sum), flusher. The OS sampler is not
here: it runs in another process (the supervisor), and RESULTS.md (A) found it
adds none.
"""

from __future__ import annotations

import argparse
import statistics

from common import NULL_PROBE, ROOT, case_label, load_average, record, run_child

CASES = [
    ("cpu-bound", {}),
    ("race-condition", {"variant": "locked"}),
    ("io-bound", {}),
    ("deadlock", {"variant": "ordered", "threads": 4}),
]
MODES = ("plain", "hooks", "flusher", "worker")

CHILD = r"""
import json, os, resource, sys, threading, time
sys.path.insert(0, {root!r})
from playground import experiments
from playground.probe import LaneWriter, Probe, interpreter_info
from playground.sandbox.flush_requests import FlushRequests
from playground.sandbox.process_memory import ProcessMemory
from playground.sandbox.channel import Channel, Flusher
from playground.sandbox.worker import thread_switches

mode, slug, params = {mode!r}, {slug!r}, {params!r}

def vol():
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw

{null_probe}

threading.stack_size(512 * 1024)
os.nice(10)
experiment = experiments.get(slug)
params = experiments.validate_or_raise(experiment.params, params)
ended = []  # (thread name, voluntary switches), appended by each thread as it ends

flusher = None
if mode == "plain":
    probe = NullProbe()
else:
    probe = Probe()
    probe.register_current_thread()
    if mode in ("flusher", "worker"):
        # The supervisor's side, as in a run: a separate process reads the probe's
        # state from this one's memory and writes a byte when events wait too long.
        wake_r, wake_w = os.pipe()
        asker = os.fork()
        if asker == 0:
            memory = ProcessMemory(os.getppid())
            requests = FlushRequests(memory, probe.state_address(), lambda: os.write(wake_w, b"\n"))
            while not requests.gone:
                requests.check(time.perf_counter_ns())
                time.sleep(0.02)
            os._exit(0)
        flusher = Flusher(probe, Channel(os.open(os.devnull, os.O_WRONLY)), wake_r)
        flusher.start()
        probe.send_with(flusher.send)
    probe.install()
    if mode == "worker":
        try:
            from playground.lock_layout import calibrate
            from playground.primitives import Primitives
        except ImportError:
            Primitives = None
        if Primitives is not None:
            primitives = Primitives(probe, experiment.run.__module__, calibrate())
            primitives.install()
    writer = LaneWriter(probe)
    sys.stdout = writer

inner = threading.Thread._bootstrap_inner
def counted(thread):
    try:
        inner(thread)
    finally:
        ended.append((thread.name, vol()))
threading.Thread._bootstrap_inner = counted

f0 = thread_switches(flusher.native_id) if flusher else (0, 0)
u0 = resource.getrusage(resource.RUSAGE_SELF); main0 = vol()
outcome = experiment.run(params, probe)
u1 = resource.getrusage(resource.RUSAGE_SELF); main1 = vol()
f1 = thread_switches(flusher.native_id) if flusher else (0, 0)
sys.stdout = sys.__stdout__
if flusher is not None:
    flusher.send(wait=True, batches=None)
    os.kill(asker, 9)
print(json.dumps({{
    "process": u1.ru_nvcsw - u0.ru_nvcsw,
    "main": main1 - main0,
    "threads": sum(n for _, n in ended),
    "thread_count": len(ended),
    "flusher": f1[0] - f0[0],
}}))
"""


def child(mode: str, slug: str, params: dict) -> dict:
    return run_child(CHILD.format(root=ROOT, mode=mode, slug=slug, params=params, null_probe=NULL_PROBE))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--only", help="run only the cases of this experiment slug")
    args = parser.parse_args()
    load0 = load_average()
    rows = []
    for slug, params in CASES:
        if args.only and slug != args.only:
            continue
        seen: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for _ in range(args.runs):  # modes alternate, so machine noise hits all alike
            for mode in MODES:
                seen[mode].append(child(mode, slug, params))
        label = case_label(slug, params)
        for mode in MODES:
            med = {
                key: statistics.median(r[key] for r in seen[mode]) for key in ("process", "main", "threads", "flusher")
            }
            rows.append(
                (
                    f"{label}, {mode} (median of {args.runs})",
                    f"process **{med['process']:g}**: main {med['main']:g}, "
                    f"{seen[mode][0]['thread_count']} experiment threads {med['threads']:g}, flusher {med['flusher']:g}",
                )
            )
    rows.append(("load average before / after", f"{load0} / {load_average()}"))
    record("Context switches per thread: plain vs each part of the observer", rows)


if __name__ == "__main__":
    main()
