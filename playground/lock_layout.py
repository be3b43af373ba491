"""Where this interpreter keeps a Lock's futex and locked byte, and an RLock's owner.

The supervisor reads those fields from the worker's memory (ownership.py), so
:func:`calibrate` finds them on the interpreter that runs, instead of trusting
a struct layout from one version. Worker side, standard library only.
"""

from __future__ import annotations

import ctypes
import struct
import sys
import threading
import time

from playground.sandbox.syscalls import FUTEX

_allocate_lock = threading._allocate_lock  # the C factory, whatever threading.Lock is bound to
_RLock = getattr(threading, "_CRLock", None) or threading._PyRLock


def calibrate(wait_s: float = 0.5) -> dict:
    """Where this interpreter keeps a lock's futex and an RLock's owner.

    Lock: a helper thread blocks on a held lock; its futex address (from
    /proc/self/task/<tid>/syscall) is looked for among the lock object's
    pointer-sized fields. RLock: the word that holds this thread's
    ``threading.get_ident()`` while it holds the RLock is the owner field.
    Lock's locked byte: the one byte past the object header that differs
    between the lock free and held, and back (3.10-3.12: ``lockobject.locked``;
    3.13: its PyMutex), as [offset, mask, value when held].
    Offsets are None where not found: the supervisor then draws less, never
    something wrong. Called once per worker, before the job (~1-5 ms).
    """
    layout = {"lock_futex": None, "rlock_owner": None, "lock_locked": None}
    probe_lock = _allocate_lock()
    size, head = sys.getsizeof(probe_lock), object.__basicsize__
    free = ctypes.string_at(id(probe_lock), size)
    with probe_lock:
        held = ctypes.string_at(id(probe_lock), size)
    again = ctypes.string_at(id(probe_lock), size)
    differ = [i for i in range(head, size) if free[i] != held[i] and again[i] == free[i]]
    if len(differ) == 1:
        mask = free[differ[0]] ^ held[differ[0]]
        layout["lock_locked"] = [differ[0], mask, held[differ[0]] & mask]
    rlock, ident = _RLock(), threading.get_ident()
    if type(rlock).__module__ != "threading":  # the C RLock: its fields are in memory
        size = sys.getsizeof(rlock)
        with rlock:
            held = ctypes.string_at(id(rlock), size)
        words = [struct.unpack_from("<Q", held, off)[0] for off in range(0, size - 7, 8)]
        layout["rlock_owner"] = next((8 * i for i, w in enumerate(words) if w == ident), None)
    lock = _allocate_lock()
    lock.acquire()
    tids: list = []
    waiter = threading.Thread(target=lambda: (tids.append(threading.get_native_id()), lock.acquire(), lock.release()))
    waiter.daemon = True
    waiter.start()
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            time.sleep(0.001)
            if not tids:
                continue
            try:
                with open(f"/proc/self/task/{tids[0]}/syscall") as f:
                    fields = f.read().split()
            except OSError:
                break
            if fields and fields[0] == str(FUTEX):  # blocked on the lock
                futex = int(fields[1], 16)
                raw = ctypes.string_at(id(lock), sys.getsizeof(lock))
                for off in range(0, len(raw) - 7, 8):
                    if struct.unpack_from("<Q", raw, off)[0] == futex:
                        layout["lock_futex"] = off
                break
    finally:
        lock.release()
        waiter.join(timeout=1)
    return layout
