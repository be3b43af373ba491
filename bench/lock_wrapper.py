"""Why the worker leaves Lock and RLock unwrapped (playground/primitives.py).

    python bench/lock_wrapper.py [--threads 4] [--ops 200000] [--repeat 3]

Each child interpreter runs ``--threads`` threads doing ``--ops`` times
``with lock: counter += 1``, with three kinds of ``lock``:

- ``plain``: ``threading.Lock()``, as the experiment wrote it;
- ``c-only``: a class whose ``__enter__``/``__exit__`` are properties returning
  the C lock's own methods: no Python runs inside the critical section;
- ``python``: a class whose ``__enter__``/``__exit__`` are Python methods that
  store the owner, the least a recording wrapper would do.

Figures: wall time and voluntary context switches of the child (getrusage),
median of ``--repeat``, on this interpreter and on any pyenv ones found. Each
Python call inside the critical section is a point where the GIL may change
hands while the lock is held; the waiting threads then sleep on the lock.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import subprocess
import sys

from common import load_average, record

CHILD = r"""
import _thread, json, operator, resource, sys, threading, time
mode, threads, ops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
get_ident = _thread.get_ident

class PythonWrapper:
    __slots__ = ("_lock", "owner", "_acquire", "_release")
    def __init__(self):
        self._lock = _thread.allocate_lock()
        self.owner, self._acquire, self._release = None, self._lock.acquire, self._lock.release
    def __enter__(self):
        self._acquire()
        self.owner = get_ident()
    def __exit__(self, *exc):
        self.owner = None
        self._release()

class COnly:
    __slots__ = ("_lock", "_enter", "_exit")
    def __init__(self):
        self._lock = _thread.allocate_lock()
        self._enter, self._exit = self._lock.__enter__, self._lock.__exit__
    __enter__ = property(operator.attrgetter("_enter"))
    __exit__ = property(operator.attrgetter("_exit"))

lock = {"plain": threading.Lock, "c-only": COnly, "python": PythonWrapper}[mode]()
counter = 0

def work():
    global counter
    for _ in range(ops):
        with lock:
            counter += 1

workers = [threading.Thread(target=work) for _ in range(threads)]
before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for t in workers:
    t.start()
for t in workers:
    t.join()
after = resource.getrusage(resource.RUSAGE_SELF)
assert counter == threads * ops
print(json.dumps({"ms": (time.perf_counter() - start) * 1000, "switches": after.ru_nvcsw - before.ru_nvcsw}))
"""

MODES = ("plain", "c-only", "python")


def measure(python: str, mode: str, threads: int, ops: int) -> dict:
    out = subprocess.run(
        [python, "-c", CHILD, mode, str(threads), str(ops)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load0 = load_average()
    pythons = {}  # version -> interpreter: this one, then pyenv's (one per version)
    for python in [sys.executable] + sorted(glob.glob("/root/.pyenv/versions/3.1[0-9]*/bin/python")):
        done = subprocess.run(
            [python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True
        )
        pythons.setdefault(done.stdout.strip(), python)
    rows = []
    for version, python in pythons.items():
        figures = []
        for mode in MODES:
            runs = [measure(python, mode, args.threads, args.ops) for _ in range(args.repeat)]
            ms = statistics.median(r["ms"] for r in runs)
            switches = statistics.median(r["switches"] for r in runs)
            figures.append(f"{mode} {ms:.0f} ms, {switches:,.0f} switches")
        rows.append((f"Python {version}: {args.threads} threads x {args.ops:,} `with lock:`", "; ".join(figures)))
    rows.append(("load average before / after", f"{load0} / {load_average()}"))
    record("Lock wrappers: the observer inside the critical section", rows)


if __name__ == "__main__":
    main()
