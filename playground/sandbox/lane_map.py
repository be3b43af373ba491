"""Where a run's sampled and recorded events meet: native tids become lanes, times
become run-relative, and what Ownership reads from memory becomes holds and waits.

The worker's events name each thread's lane and native tid; the sampler only
knows tids, so its events wait here until the worker has named their thread.
"""

from __future__ import annotations

import threading

from .ownership import Ownership


class LaneMap:
    """Turns sampler events (absolute time, tid) into run events (run time, lane).

    Called from the supervisor thread (``add_worker_events``) and the sampler
    thread (``add_sampled``). Both hand their events to ``sink`` while holding
    the lock, so each lane's events reach the run in time order even when a
    thread's first samples had to wait for the worker to name it. With an
    :class:`Ownership` it also turns futex waits and RLock owners read from
    memory into ``W``/``U``/``A``/``R`` events (docs/events.md).
    """

    def __init__(self, t0: int, sink, ownership: Ownership | None = None):
        self.t0 = t0
        self.sink = sink
        self.ownership = ownership
        self._lanes: dict[int, int] = {}  # native tid -> lane
        self._idents: dict[int, int] = {}  # threading.get_ident() -> lane (an RLock's owner field)
        self._pending: dict[int, list] = {}
        self._pending_owners: dict[int, list] = {}  # ident not named yet -> [(t, primitive id)]
        self._lock = threading.Lock()
        self._last_t: int | None = None  # run time of the last sampled event (sampler thread)
        self._holding: set[int] = set()  # lanes in Ownership.holder_tids (sampler thread)

    def add_worker_events(self, batch: list) -> None:
        with self._lock:
            out = []
            for event in batch:
                kind = event[2]
                if kind == "lane":
                    tid, lane = event[3]["tid"], event[1]
                    self._lanes[tid] = lane
                    out.append(event)
                    for t, pending_kind, data in self._pending.pop(tid, ()):
                        out.extend(self._translate(t, lane, pending_kind, data))
                    if "ident" in event[3]:
                        self._idents[event[3]["ident"]] = lane
                        for t, pid in self._pending_owners.pop(event[3]["ident"], ()):
                            out.extend(self._translate(t, lane, "own", pid))
                elif kind == "P" and self.ownership is not None:
                    data, waits = self.ownership.register(event[3])
                    out.append([event[0], event[1], "P", data])
                    out.extend([t, lane, "W", wait] for t, lane, wait in waits)
                elif kind == "K":  # which locks a stuck thread refers to: for the supervisor only
                    if self.ownership is not None:
                        self.ownership.refs[event[1]] = event[3]
                else:
                    out.append(event)
            self.sink(out)

    def add_sampled(self, batch: list) -> None:
        with self._lock:
            out = []
            for t, key, kind, data in batch:
                t -= self.t0
                self._last_t = t
                if kind == "gone":  # the worker's own "end" event closes the lane; holds end here
                    lane = self._lanes.get(key)
                    if self.ownership is not None and lane is not None:
                        out.extend(map(list, self.ownership.lane_gone(t, lane)))
                    continue
                if kind == "cores":
                    out.append([t, -1, kind, data])  # the process as a whole
                    continue
                if kind == "locks":  # Locks' states read from memory, and the tids that ran
                    if self.ownership is not None:
                        ran = {self._lanes.get(tid) for tid in data["ran"]}
                        unknown = None in ran  # a thread not named yet ran: it could be the taker
                        ran.discard(None)
                        out.extend(map(list, self.ownership.locks_seen(t, data["states"], ran, unknown)))
                        self._read_holders()
                    continue
                if kind == "own":  # key: the RLock owner's ident (0: free), data: the RLock's id
                    lane = self._idents.get(key) if key else -1
                    if lane is None:
                        self._pending_owners.setdefault(key, []).append((t, data))
                    else:
                        out.extend(self._translate(t, lane, kind, data))
                    continue
                lane = self._lanes.get(key)
                if lane is not None:
                    out.extend(self._translate(t, lane, kind, data))
                else:
                    pending = self._pending.setdefault(key, [])
                    if len(pending) < 10_000:  # a thread the worker never names: bounded
                        pending.append((t, kind, data))
            self.sink(out)

    def sampling_ended(self) -> None:
        """Supervisor thread, after the sampler stopped: holds still drawn end at its last sample.

        The run may end before a sample sees the last holder let go or its thread end
        (the worker exits at once); past the last sample, nothing is known.
        """
        if self.ownership is not None and self._last_t is not None:
            with self._lock:
                self.sink([list(e) for e in self.ownership.lane_gone(self._last_t)])

    def _read_holders(self) -> None:
        """Sampler thread: have the sampler read every Lock holder at each sample (Ownership.holder_tids)."""
        holding = set(self.ownership.holders.values())
        if holding == self._holding:
            return  # the usual case, at every sample: nothing to look up
        self._holding = holding
        tids = {tid for tid, lane in self._lanes.items() if lane in holding}
        self.ownership.holder_tids.clear()
        self.ownership.holder_tids.update(tids)

    def _translate(self, t: int, lane: int, kind: str, data) -> list:
        own = self.ownership
        if kind == "on":  # the futex a thread blocks on (None: no longer on a lock)
            return [[t, lane, k, d] for k, d in own.wait_changed(lane, data, t)] if own else []
        if kind == "own":
            return [[t, n, k, d] for n, k, d in own.owner_changed(data, lane)] if own else []
        return [[t, lane, kind, data]]

    def add_holds(self, cycle: list, stuck_since: dict) -> None:
        """The owners the deadlock watch inferred, as ``A`` events (supervisor thread).

        They arrive late, dated when the owner began to wait: it held the lock at
        least from then on (it could not have taken it while blocked).
        """
        with self._lock:
            since = {self._lanes.get(tid): t - self.t0 for tid, t in stuck_since.items()}
            self.sink(
                [
                    [since[step["held_by"]], step["held_by"], "A", {"id": step["waits_for"], "inferred": True}]
                    for step in cycle
                    if step["inferred"] and step["held_by"] in since
                ]
            )

    def stuck_lanes(self, tids) -> set[int]:
        """Lanes of these native tids (any thread)."""
        lanes = dict(self._lanes)  # a C-level copy: safe beside the other threads
        return {lanes[tid] for tid in tids if tid in lanes}
