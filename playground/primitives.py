"""The synchronisation primitives an experiment creates, and what happens to them.

``Lock`` and ``RLock`` objects stay the interpreter's own C objects. Wrapping
them in Python puts Python code inside every critical section, and each call
there is a point where the GIL changes hands while the lock is held: in
bench/'s measurement, 4 threads x 200k ``with lock: counter += 1`` went from
141 voluntary context switches to 121,000. So for those two the worker only
*registers* each one when the experiment creates it (a ``P`` event with its
address); the supervisor reads the rest from outside: which lock a blocked
thread's futex belongs to, and an RLock's owner, straight from the process's
memory. :func:`playground.lock_layout.calibrate` finds where in the objects those fields
sit, on the interpreter that runs, instead of trusting a struct layout from one version.

``Semaphore``, ``BoundedSemaphore``, ``Condition``, ``Event``, ``Barrier`` and
``queue.Queue`` are Python classes already, each with a lock inside. Their
subclasses here record *after* each operation, once that inner lock is
released: the recording adds a few hundred ns to calls that cost a few µs.

Only primitives created by the experiment's own module are observed: the ones
``threading``, ``queue`` or ``concurrent.futures`` make for themselves stay
plain, so the chart shows the lesson's primitives, not the library's.

Threads: :meth:`Primitives.install` and :meth:`uninstall` run on the worker's
main thread around the run; the factories and subclass methods run on
whichever experiment thread calls them; :meth:`Primitives.references` runs in
a signal handler on the main thread when the supervisor asks who may hold what.

Standard library only.
"""

from __future__ import annotations

import ctypes
import linecache
import queue
import re
import sys
import threading

_allocate_lock = threading._allocate_lock  # the C factory, whatever threading.Lock is bound to
_RLock = getattr(threading, "_CRLock", None) or threading._PyRLock
_ORIGINAL = {name: getattr(threading, name) for name in ("Lock", "RLock", "Semaphore", "BoundedSemaphore",
                                                         "Condition", "Event", "Barrier")}  # fmt: skip
_ORIGINAL_QUEUE = queue.Queue
_TARGET = re.compile(r"^\s*([\w.\[\], ]+?)\s*(?::[^=]*)?=(?!=)")  # `x = ...`, `self.x: T = ...`, `a, b = ...`

# Set by install(), cleared by uninstall(): the factories and subclasses below read it.
_active: Primitives | None = None


def _creator():
    """The frame that asked for a primitive: the first one outside this module."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame


def _creation_site() -> tuple[str | None, list[str], tuple, bool]:
    """(module, assignment targets, (file, line), made in a loop?) of the code that created
    a primitive: the first frame outside this module."""
    frame = _creator()
    if frame is None:
        return None, [], (), False
    site = (frame.f_code.co_filename, frame.f_lineno)
    line = linecache.getline(*site)
    match = _TARGET.match(line)
    targets = [name.strip() for name in match.group(1).split(",")] if match else []
    looped = frame.f_code.co_name in ("<listcomp>", "<genexpr>") or " for " in line.partition("#")[0]
    return frame.f_globals.get("__name__"), targets, site, looped


class Primitives:
    """The registry of one run's primitives, and the hooks that fill it."""

    def __init__(self, probe, module: str, layout: dict):
        self.probe = probe
        self.module = module  # only primitives created by this module are observed
        self.layout = layout
        self._objects: dict[int, object] = {}  # primitive id -> object (kept alive: addresses stay valid)
        self._names: dict[str, int] = {}  # how many primitives were created under each name
        self._sites: dict[tuple, int] = {}  # how many at each (file, line): `a, b = Lock(), Lock()`
        self._ids = iter(range(1, 1 << 30))
        self._lock = _allocate_lock()  # registration only: creation is never inside a critical section

    # -- main thread, around the run ---------------------------------------------

    def install(self) -> None:
        """Hook the factories; register what the module created at import (its globals)."""
        global _active
        _active = self
        threading.Lock, threading.RLock = _lock_factory, _rlock_factory
        for name, cls in _OBSERVED.items():
            setattr(threading, name, cls)
        queue.Queue = ObservedQueue
        for name, value in list(vars(sys.modules[self.module]).items()):
            kind = _kind_of(value)
            if kind and not name.startswith("__"):
                self.register(value, kind, name)

    def uninstall(self) -> None:
        global _active
        _active = None
        for name, original in _ORIGINAL.items():
            setattr(threading, name, original)
        queue.Queue = _ORIGINAL_QUEUE

    # -- any experiment thread ---------------------------------------------------

    def register(self, obj, kind: str, name: str, looped: bool = False, **extra) -> int:
        with self._lock:
            pid = next(self._ids)
            name = name or f"{kind.lower()}-{pid}"
            seen = self._names.get(name, 0)
            self._names[name] = seen + 1
            self._objects[pid] = obj
        label = f"{name}[{seen}]" if seen or looped else name  # locks = [Lock() for ...]: locks[0], locks[1]
        data = {"id": pid, "type": kind, "name": label, **extra}
        if kind in ("Lock", "RLock"):
            data["addr"] = id(obj)  # for the supervisor's memory reads; it drops it before the page
            if kind == "Lock" and self.layout.get("lock_futex") is not None:
                data["futex"] = ctypes.c_uint64.from_address(id(obj) + self.layout["lock_futex"]).value
        try:
            obj._pg_id = pid  # the subclasses below record only for registered instances
        except AttributeError:
            pass  # a C lock has no attribute slots: it records nothing anyway
        self.probe.emit("P", data)
        self.probe.nudge()
        return pid

    # -- signal handler on the main thread ------------------------------------------

    def references(self) -> None:
        """For each thread, the registered locks its frames refer to (``K`` events).

        A plain Lock does not store its owner. When the supervisor finds threads
        blocked for good it asks (SIGUSR1) and infers the owner of a lock as the
        one thread that refers to it without waiting for it. Runs once, at the
        end of a stuck run: its cost does not matter any more.
        """
        by_address = {id(obj): pid for pid, obj in self._objects.items() if _kind_of(obj) in ("Lock", "RLock")}
        lanes = self.probe._lanes  # ident -> lane, filled by the thread start hook
        for ident, frame in sys._current_frames().items():
            lane = lanes.get(ident)
            if lane is None:
                continue
            direct, listed = [], set()  # `first` in a frame (once per frame), or a lock inside a list
            joining = False  # in Thread.join(): it may refer to the locks, it is not taking them
            while frame is not None:
                joining = joining or frame.f_code is threading.Thread.join.__code__
                values = list(frame.f_locals.values())
                values += [frame.f_globals.get(name) for name in frame.f_code.co_names]
                here = set()
                for value in values:
                    if id(value) in by_address:
                        here.add(by_address[id(value)])
                    elif isinstance(value, (list, tuple)):
                        listed.update(by_address[id(v)] for v in value if id(v) in by_address)
                direct.extend(sorted(here))  # a recursive holder refers to its lock from several frames
                frame = frame.f_back
            refs = {"direct": direct, "listed": sorted(listed - set(direct)), "joining": joining}
            self.probe.emit_in(lane, "K", refs)
        self.probe.nudge()


def _kind_of(value) -> str | None:
    if isinstance(value, type(_allocate_lock())):
        return "Lock"
    if isinstance(value, _RLock):
        return "RLock"
    for name, cls in _ORIGINAL.items():
        if isinstance(cls, type) and isinstance(value, cls) and name not in ("Lock", "RLock"):
            return "BoundedSemaphore" if isinstance(value, _ORIGINAL["BoundedSemaphore"]) else name
    return "Queue" if isinstance(value, _ORIGINAL_QUEUE) else None


def _observe(obj, kind: str, **extra):
    """Register ``obj`` if the experiment's module created it (called from a factory or __init__)."""
    registry = _active
    if registry is not None:
        module, targets, site, looped = _creation_site()
        if module == registry.module:
            nth = registry._sites[site] = registry._sites.get(site, -1) + 1
            name = targets[nth % len(targets)] if targets else ""
            registry.register(obj, kind, name, looped, **extra)
    return obj


def _lock_factory():
    return _observe(_allocate_lock(), "Lock")


def _rlock_factory(*args, **kwargs):
    return _observe(_RLock(*args, **kwargs), "RLock")


def _record(obj, kind: str, **data) -> None:
    """An event about a registered composite primitive, from the calling thread's lane."""
    pid, registry = getattr(obj, "_pg_id", None), _active
    if pid is not None and registry is not None:
        registry.probe.emit(kind, {"id": pid, **data})
        registry.probe.nudge()


class _Observed:
    """First base of the subclasses below. An instance the experiment's module does not
    create is the library's own class: threading's own primitives (every Thread's
    ``_started`` Event and its Condition, an executor's Semaphore) then run none of the
    methods below, which would record nothing for them at the cost of Python calls on
    each wait and set. A subclass the experiment defines is always its own."""

    def __new__(cls, *args, **kwargs):
        plain, registry = _PLAIN.get(cls), _active
        if plain is not None and not (
            registry and getattr(_creator(), "f_globals", {}).get("__name__") == registry.module
        ):
            return plain(*args, **kwargs)  # not an instance of cls: Python skips cls.__init__
        return super().__new__(cls)


class _SlotRecording:
    """Acquire and release of a semaphore, recorded once its inner Condition is released."""

    def acquire(self, blocking=True, timeout=None):
        got = super().acquire(False)
        if not got and blocking:
            with _Waiting(self):  # no slot free: it is going to wait
                got = super().acquire(True, timeout)
        if got:
            _record(self, "A")
            _record(self, "C", name="free slots", value=self._value)
        return got

    __enter__ = acquire

    def release(self, n=1):
        super().release(n)
        _record(self, "R")
        _record(self, "C", name="free slots", value=self._value)


class ObservedSemaphore(_Observed, _SlotRecording, _ORIGINAL["Semaphore"]):
    def __init__(self, value=1):
        # Not super(): threading's own BoundedSemaphore calls `Semaphore.__init__(self, ...)`,
        # and while installed that name is this class.
        _ORIGINAL["Semaphore"].__init__(self, value)
        _observe(self, "Semaphore", bound=value)


class ObservedBoundedSemaphore(_Observed, _SlotRecording, _ORIGINAL["BoundedSemaphore"]):
    def __init__(self, value=1):
        super().__init__(value)
        _observe(self, "BoundedSemaphore", bound=value)


class _Waiting:
    """``with _Waiting(primitive):`` around a call that blocks: ``W`` before, ``U`` after (if ``really``)."""

    __slots__ = ("primitive", "really")

    def __init__(self, primitive, really=True):
        self.primitive, self.really = primitive, really

    def __enter__(self):
        if self.really:
            _record(self.primitive, "W")

    def __exit__(self, *exc):
        if self.really:
            _record(self.primitive, "U")


class ObservedCondition(_Observed, _ORIGINAL["Condition"]):
    def __init__(self, lock=None):
        super().__init__(lock)
        _observe(self, "Condition")

    def wait(self, timeout=None):
        with _Waiting(self):
            return super().wait(timeout)


class ObservedEvent(_Observed, _ORIGINAL["Event"]):
    def __init__(self):
        super().__init__()
        _observe(self, "Event")

    def set(self):
        super().set()
        _record(self, "F", set=True)

    def clear(self):
        super().clear()
        _record(self, "F", set=False)

    def wait(self, timeout=None):
        with _Waiting(self, not self.is_set()):
            return super().wait(timeout)


class ObservedBarrier(_Observed, _ORIGINAL["Barrier"]):
    def __init__(self, parties, action=None, timeout=None):
        super().__init__(parties, action, timeout)
        _observe(self, "Barrier", parties=parties)

    def wait(self, timeout=None):
        _record(self, "C", name="arrived", value=min(self.n_waiting + 1, self.parties))
        with _Waiting(self):
            return super().wait(timeout)


class ObservedQueue(_Observed, _ORIGINAL_QUEUE):
    def __init__(self, maxsize=0):
        super().__init__(maxsize)
        _observe(self, "Queue", maxsize=maxsize)

    def put(self, item, block=True, timeout=None):
        with _Waiting(self, block and 0 < self.maxsize <= len(self.queue)):  # full: put is going to wait
            super().put(item, block, timeout)
        _record(self, "C", name="length", value=len(self.queue))

    def get(self, block=True, timeout=None):
        with _Waiting(self, block and not self.queue):  # empty: get is going to wait
            item = super().get(block, timeout)
        _record(self, "C", name="length", value=len(self.queue))
        return item


_PLAIN = {
    ObservedSemaphore: _ORIGINAL["Semaphore"],
    ObservedBoundedSemaphore: _ORIGINAL["BoundedSemaphore"],
    ObservedCondition: _ORIGINAL["Condition"],
    ObservedEvent: _ORIGINAL["Event"],
    ObservedBarrier: _ORIGINAL["Barrier"],
    ObservedQueue: _ORIGINAL_QUEUE,
}
_OBSERVED = {
    "Semaphore": ObservedSemaphore,
    "BoundedSemaphore": ObservedBoundedSemaphore,
    "Condition": ObservedCondition,
    "Event": ObservedEvent,
    "Barrier": ObservedBarrier,
}
