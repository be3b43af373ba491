"""Who waits for which primitive, who holds it, and the wait-for graph's cycles.

The supervisor's side of docs/events.md. The worker registers each Lock and
RLock the experiment creates (``P``: address, and for a Lock the address of
the futex it sleeps on). From then on nothing runs in the observed process:

- a thread the sampler sees blocked on a futex waits for the primitive whose
  futex that is (``W``/``U``);
- an RLock's owner is read from the process's memory (``/proc/<pid>/mem``)
  at each sample (``A``/``R``);
- a plain Lock stores no owner, but its "locked" byte is read at each sample
  (``locks_seen``): when it turns locked, the one thread that ran since the
  last sample took it, or the one whose untimed wait on it just ended; a
  holder keeps it while it does not run, or runs alone. Anything else is left
  unknown, never guessed (a ``sampled`` hold, exact to the sample).
- when threads are stuck for good and a Lock's holder is unknown, the worker
  lists, per thread, the locks its frames refer to (``K``), and the owner is
  taken to be the one stuck thread that refers to the lock and does not wait
  for it; if all of them wait for it, the one that refers to it from more
  frames, two at least (a recursive function that re-took its own Lock). No
  guess while a thread that can still move (not stuck, not in ``join()``)
  refers to it. Such owners are marked ``inferred``.

Pure bookkeeping plus one file read; the LaneMap calls everything here while
holding its lock, from the supervisor thread (worker events) and the sampler
thread (sampled events, memory reads).
"""

from __future__ import annotations

import struct

from .process_memory import ProcessMemory

MAX_LOCKS = 64  # Locks whose byte is read at each sample: a 1-byte read each


class Ownership:
    def __init__(self, pid: int, layout: dict | None):
        self.pid = pid
        self.layout = layout or {}
        self.primitives: dict[int, dict] = {}  # id -> {"type", "name", "addr"}
        self._by_futex: dict[int, int] = {}  # futex address -> Lock id
        self._rlocks: dict[int, int] = {}  # RLock id -> owner ident last read (0: free)
        self.waiting: dict[int, int] = {}  # lane -> id of the primitive it waits for now
        self.holders: dict[int, int] = {}  # Lock or RLock id -> lane holding it now (from memory)
        self.refs: dict[int, dict] = {}  # lane -> {"direct": [ids], "listed": [ids]} (K events)
        self._unnamed: dict[int, tuple[int, int]] = {}  # lane -> (t, futex) of a wait on no known primitive yet
        # Lock id -> locked, as locks_seen last had it; None: not had yet (at most MAX_LOCKS)
        self._locks: dict[int, bool | None] = {}
        self._read: dict[int, bool] = {}  # Lock id -> locked at the sampler's last read
        self._untimed: dict[int, bool] = {}  # lane -> its current wait has no timeout
        self._left: dict[int, list[int]] = {}  # Lock id -> lanes whose untimed wait on it ended since the last read
        self._since: dict[int, tuple[int, bool]] = {}  # Lock id held by someone unknown -> (since, changed hands?)
        # Native tids of the holders: the sampler reads them every sample, never backing
        # off, since "its holder did not run" must be seen, not assumed (LaneMap keeps it
        # current; sampler thread only).
        self.holder_tids: set[int] = set()
        # Unreadable: waits are still named, RLock owners and Lock holders are not.
        self.memory = ProcessMemory(pid)

    # -- registration and waits ----------------------------------------------------

    def register(self, data: dict) -> tuple[dict, list[tuple[int, int, dict]]]:
        """A ``P`` event's data -> (the data without the addresses, which the page has no use
        for; ``W`` events (t, lane, data) for waits on it the sampler saw before it was known).

        The sampler's events travel faster than the worker's batches: a thread may be seen
        blocked on a lock's futex before the worker's word that the lock exists arrives.
        """
        pid = data["id"]
        self.primitives[pid] = {"type": data.get("type"), "name": data.get("name"), "addr": data.get("addr")}
        if data.get("futex"):
            self._by_futex[data["futex"]] = pid
        if data.get("type") == "RLock" and data.get("addr") and self.layout.get("rlock_owner") is not None:
            self._rlocks[pid] = 0
        if data.get("type") == "Lock" and data.get("addr") and self.layout.get("lock_locked"):
            if len(self._locks) < MAX_LOCKS:
                self._locks[pid] = None
        waits = []
        for lane, (t, futex) in list(self._unnamed.items()):
            if self._by_futex.get(futex) == pid or (data.get("type") == "RLock" and self._rlock_by_futex(futex) == pid):
                del self._unnamed[lane]
                self.waiting[lane] = pid
                waits.append((t, lane, {"id": pid}))
        return {k: v for k, v in data.items() if k not in ("addr", "futex")}, waits

    def wait_changed(self, lane: int, on, t: int = 0) -> list[tuple[str, dict]]:
        """The sampler saw ``lane`` block at ``t`` on ``on`` = [futex, untimed?] (None: it stopped waiting on a lock)."""
        out = []
        futex, untimed = on if on is not None else (None, False)
        before = self.waiting.pop(lane, None)
        if before is not None and self._untimed.pop(lane, False) and before in self._locks:
            self._left.setdefault(before, []).append(lane)  # an untimed acquire() returns only with the lock
        self._untimed[lane] = untimed
        self._unnamed.pop(lane, None)
        now = self._by_futex.get(futex) if futex is not None else None
        if now is None and futex is not None:
            now = self._rlock_by_futex(futex)
            if now is None:
                self._unnamed[lane] = (t, futex)  # perhaps a primitive the worker has not told of yet
        if before is not None and before != now:
            out.append(("U", {"id": before}))
        if now is not None:
            self.waiting[lane] = now
            if before != now:
                out.append(("W", {"id": now}))
        return out

    def _rlock_by_futex(self, futex: int) -> int | None:
        # An RLock wraps a lock of its own: the futex pointer sits at the same offset as a Lock's.
        offset = self.layout.get("lock_futex")
        if offset is None:
            return None
        for pid in self._rlocks:
            if self._read_word(self.primitives[pid]["addr"] + offset) == futex:
                self._by_futex[futex] = pid  # found once, kept
                return pid
        return None

    # -- RLock owners, read from memory ----------------------------------------------

    def read_changes(self) -> list[tuple[int, int]]:
        """(owner ident or 0, RLock id) for each RLock whose owner changed since the last read.

        Sampler thread, every sample: one 8-byte read per RLock (a few µs).
        """
        out = []
        offset = self.layout.get("rlock_owner")
        for pid, previous in list(self._rlocks.items()):  # a C-level copy: register() may add meanwhile
            owner = self._read_word(self.primitives[pid]["addr"] + offset)
            if owner is not None and owner != previous:
                self._rlocks[pid] = owner
                out.append((owner, pid))
        return out

    def sample(self, ran: list[int], since_read=list) -> list[tuple[int, str, object]]:
        """The sampler's watch: RLock owners that changed (``own``), and every tracked Lock's
        state with the tids that ran (``locks``, for ``locks_seen`` once tids are lanes).

        ``ran`` was read before the Locks: when one changed, ``since_read()`` adds whoever
        ran in between, and 0 (a tid with no lane) for a thread not listed yet, so that
        no thread is named as the one that ran alone when another did too.
        """
        out: list[tuple[int, str, object]] = [(owner, "own", pid) for owner, pid in self.read_changes()]
        states = self.read_locks()
        if states:
            if any(self._read.get(pid) != locked for pid, locked in states):
                ran = [*ran, *since_read()]
            self._read = dict(states)
            out.append((0, "locks", {"states": states, "ran": ran}))
        return out

    def read_locks(self) -> list[tuple[int, bool]]:
        """(Lock id, locked?) for each tracked Lock. Sampler thread, every sample: a 1-byte read each."""
        offset, mask, locked = self.layout["lock_locked"] if self._locks else (0, 0, 0)
        out = []
        for pid in list(self._locks):  # a C-level copy: register() may add meanwhile
            raw = self.memory.read(self.primitives[pid]["addr"] + offset, 1)
            if raw is not None:
                out.append((pid, raw[0] & mask == locked))
        return out

    def locks_seen(self, t: int, states: list, ran: set[int], unknown: bool) -> list[tuple[int, int, str, dict]]:
        """What the Locks' bytes say about who holds them: (time, lane, kind, data) events.

        ``ran``: lanes that ran since the last read (or were not read); ``unknown``: a
        thread with no lane yet ran, so it could be the one. Only certainties are drawn:
        - it turned locked while one thread ran: that thread took it;
        - an untimed wait on it ended: that thread took it (acquire() returns only so);
        - a holder keeps it while it does not run, or runs alone;
        - it turned locked while several ran, and it stayed so with no two of them
          running at once until it turned free while one ran: that one held it all along
          (drawn from the time it was taken, once it is let go). This one assumes the
          thread that lets a Lock go is the one that took it, as ``with lock:`` does and
          every lesson here; a Lock released by another thread, as a signal, breaks it.
        """
        out = []
        for pid, locked in states:
            before, self._locks[pid] = self._locks.get(pid), locked
            if before is None:  # its first read: if locked, taken before it, by anyone
                if locked:
                    self._since[pid] = (t, True)
                continue
            left = self._left.pop(pid, [])
            holder = self.holders.get(pid)
            takers = {lane for lane in ran if self.waiting.get(lane) != pid}  # who could take or free it
            one = next(iter(takers)) if len(takers) == 1 and not unknown else None
            if not locked:
                if holder is not None:
                    out.append((t, holder, "R", {"id": pid}))
                    del self.holders[pid]
                elif pid in self._since:
                    since, mixed = self._since.pop(pid)
                    if not mixed and one is not None:  # the one that let it go had it since then
                        out += [(since, one, "A", {"id": pid, "sampled": True}), (t, one, "R", {"id": pid})]
                continue
            if before and holder is not None:
                if not left and (holder not in takers or (one == holder)):
                    continue  # its holder did not run, or ran alone: it holds it still
                out.append((t, holder, "R", {"id": pid}))  # it may have passed on: unknown from here
                del self.holders[pid]
                holder = None
                self._since[pid] = (t, True)
            new = left[0] if len(left) == 1 else (one if not before else None)
            if new is not None:
                self._since.pop(pid, None)
                self.holders[pid] = new
                out.append((t, new, "A", {"id": pid, "sampled": True}))
            elif not before:
                self._since[pid] = (t, False)  # one of several took it: its release may tell which
            elif pid in self._since and (left or unknown or len(takers) > 1):
                self._since[pid] = (self._since[pid][0], True)  # two ran at once: it may have changed hands
        return out

    def lane_gone(self, t: int, lane: int | None = None) -> list[tuple[int, int, str, dict]]:
        """``lane``'s thread has ended (None: sampling has), and every bar it held ends with it.

        Its last release may fall after the last sample that could read the Lock (the
        process exits right after), and a Lock left locked by a thread that ended is
        held by no thread: from here its holder is unknown, as after a hand-off.
        Sampler thread; or the supervisor's, once the sampler has stopped.
        """
        out = []
        for pid, holder in list(self.holders.items()):
            if lane is None or holder == lane:
                del self.holders[pid]
                out.append((t, holder, "R", {"id": pid}))
        return out

    def owner_changed(self, pid: int, lane: int) -> list[tuple[int, str, dict]]:
        """RLock ``pid`` is now held by ``lane`` (-1: free): (lane, kind, data) events."""
        out = []
        before = self.holders.pop(pid, None)
        if before is not None and before != lane:
            out.append((before, "R", {"id": pid}))
        if lane >= 0:
            self.holders[pid] = lane
            if before != lane:
                out.append((lane, "A", {"id": pid}))
        return out

    def _read_word(self, address: int) -> int | None:
        raw = self.memory.read(address, 8)
        return struct.unpack("<Q", raw)[0] if raw is not None else None

    def close(self) -> None:
        """Supervisor thread, after the sampler has stopped."""
        self.memory.close()

    # -- the wait-for graph ------------------------------------------------------------

    def owner(self, pid: int, stuck: set[int]) -> tuple[int | None, bool]:
        """(lane holding primitive ``pid``, inferred?) or (None, False) if unknown."""
        if pid in self.holders:
            return self.holders[pid], False
        if self.primitives.get(pid, {}).get("type") != "Lock":
            return None, False
        # Only a thread blocked on one of the run's primitives can be part of a cycle: the main
        # thread, stuck in join() with the lock in its locals, is no candidate.
        candidates = [lane for lane in stuck if lane in self.waiting]
        for field in ("direct", "listed"):
            frames = {lane: self.refs.get(lane, {}).get(field, []).count(pid) for lane in candidates}
            refer = {lane for lane, n in frames.items() if n}
            if any(
                pid in refs.get(field, ()) and lane not in candidates and not refs.get("joining")
                for lane, refs in self.refs.items()
            ):
                return None, False  # a thread that can still move refers to it: it may be the owner
            others = {lane for lane in refer if self.waiting.get(lane) != pid}
            if len(others) == 1:
                return others.pop(), True
            if others:
                return None, False  # two candidates: no guess
            deepest = sorted(refer, key=lambda lane: frames[lane], reverse=True)
            if deepest and frames[deepest[0]] >= 2 and (len(deepest) == 1 or frames[deepest[0]] > frames[deepest[1]]):
                return deepest[0], True  # all wait for it; one refers to it from an outer frame too: it holds it
        return None, False

    def cycle(self, stuck: set[int]) -> list[dict] | None:
        """A cycle among the ``stuck`` lanes: lane -> waited primitive -> owner lane -> ..."""
        edges = {}
        for lane in stuck:
            pid = self.waiting.get(lane)
            if pid is not None:
                held_by, inferred = self.owner(pid, stuck)
                if held_by is not None:
                    edges[lane] = (pid, held_by, inferred)
        for start in sorted(edges):
            path, seen = [], {}
            lane = start
            while lane in edges and lane not in seen:
                seen[lane] = len(path)
                pid, held_by, inferred = edges[lane]
                path.append({"lane": lane, "waits_for": pid, "held_by": held_by, "inferred": inferred})
                lane = held_by
            if lane in seen:
                return path[seen[lane] :]
        return None
