"""Primitives drawn: what the worker registers, what the supervisor reads from outside,
and the wait-for graph that names a deadlock's cycle (docs/events.md).

The graph is tested on its own (cycles of 2 and 3, a thread that re-took its own Lock,
no false cycle where the locks are taken in order); every primitive type from real
worker processes; deadlocks, waits and RLock owners from a real server.
"""

import threading

import pytest
from conftest import events_of, outcome_of, result_of, run_worker

from playground.sandbox.ownership import Ownership


def graph(waits: dict, refs: dict, kinds=None, joining=(0,)) -> Ownership:
    """An Ownership with primitives 1..n registered and lane -> waited id / referenced ids
    (lane 0, the main thread, is in join())."""
    own = Ownership(pid=0, layout={})  # /proc/0 does not exist: no memory reads
    ids = set(waits.values()) | {pid for r in refs.values() for pid in r}
    for pid in sorted(ids):
        own.register({"id": pid, "type": (kinds or {}).get(pid, "Lock"), "name": f"locks[{pid}]"})
    own.waiting.update(waits)
    own.refs.update({lane: {"direct": r, "listed": [], "joining": lane in joining} for lane, r in refs.items()})
    return own


def test_a_cycle_of_two_threads_is_named():
    # lane 1 holds lock 1 and waits for 2; lane 2 holds 2 and waits for 1; lane 0 (main) joins.
    own = graph({1: 2, 2: 1}, {0: [1, 2], 1: [1, 2], 2: [2, 1]})
    cycle = own.cycle({0, 1, 2})
    assert [(s["lane"], s["waits_for"], s["held_by"]) for s in cycle] == [(1, 2, 2), (2, 1, 1)]
    assert all(s["inferred"] for s in cycle)  # plain Locks store no owner: it was inferred


def test_a_cycle_of_three_threads_is_named():
    own = graph({1: 2, 2: 3, 3: 1}, {1: [1, 2], 2: [2, 3], 3: [3, 1]})
    cycle = own.cycle({1, 2, 3})
    assert [(s["lane"], s["held_by"]) for s in cycle] == [(1, 2), (2, 3), (3, 1)]


def test_rlock_owners_read_from_memory_are_not_inferred():
    own = graph({1: 2, 2: 1}, {}, kinds={1: "RLock", 2: "RLock"})
    own.owner_changed(1, 1)
    own.owner_changed(2, 2)
    cycle = own.cycle({1, 2})
    assert [(s["lane"], s["held_by"], s["inferred"]) for s in cycle] == [(1, 2, False), (2, 1, False)]


def test_a_thread_that_retakes_its_own_lock_waits_for_itself():
    # recursive-0 is two frames deep in `with lock:`; recursive-1 waits at its first.
    own = graph({1: 1, 2: 1}, {1: [1, 1], 2: [1]})
    assert [(s["lane"], s["held_by"]) for s in own.cycle({0, 1, 2})] == [(1, 1)]


def test_no_false_cycle_when_locks_are_taken_in_one_order():
    # ordered: lane 1 holds 1 and waits for 2, held by lane 2, which sleeps (not stuck).
    own = graph({1: 2, 3: 1}, {1: [1, 2], 2: [1, 2], 3: [1, 3]})
    assert own.cycle({1, 3}) is None
    # Two threads could hold it: no guess, no cycle.
    own = graph({1: 2, 2: 1, 3: 1}, {1: [1, 2], 2: [1, 2], 3: [2, 1]})
    assert own.owner(2, {1, 2, 3}) == (None, False)
    # Only the waiter refers to it, from one frame: it does not hold it (someone else does).
    own = graph({1: 2}, {1: [1, 2]})
    assert own.owner(2, {1}) == (None, False)


def test_waits_follow_the_futex_a_thread_sleeps_on():
    own = Ownership(pid=0, layout={})
    data, waits = own.register({"id": 7, "type": "Lock", "name": "lock", "addr": 1000, "futex": 0xABC})
    assert data == {"id": 7, "type": "Lock", "name": "lock"} and waits == []  # no addresses for the page
    assert own.wait_changed(3, [0xABC, True]) == [("W", {"id": 7})]
    assert own.wait_changed(3, [0xABC, True]) == []  # the same wait, sampled again
    assert own.wait_changed(3, [0xDEF, False]) == [("U", {"id": 7})]  # some other futex: not one of ours
    assert own.wait_changed(3, None) == []


def lock_seen(own, locked, ran, unknown=False, t=0):
    return [event[1:] for event in own.locks_seen(t, [(7, locked)], set(ran), unknown)]


def free_lock() -> Ownership:
    """Lock 7 registered and read free once: from here the sampler sees it change."""
    own = Ownership(pid=0, layout={"lock_locked": [32, 1, 1]})
    own.register({"id": 7, "type": "Lock", "name": "lock", "addr": 1000, "futex": 0xABC})
    assert lock_seen(own, False, {1}) == []
    return own


def test_a_lock_already_locked_when_first_read_is_nobodys():
    # The worker's batch naming a Lock can reach the supervisor after the Lock was taken:
    # whoever ran in the sample that first reads it did not necessarily take it.
    own = Ownership(pid=0, layout={"lock_locked": [32, 1, 1]})
    own.register({"id": 7, "type": "Lock", "name": "lock", "addr": 1000, "futex": 0xABC})
    assert lock_seen(own, True, {1}) == []
    assert lock_seen(own, True, {1}) == []
    assert lock_seen(own, False, {1}) == []  # nor is its release: it may have changed hands before


def test_a_locks_holder_is_the_one_thread_that_could_have_taken_it():
    own = free_lock()
    assert lock_seen(own, True, {1, 2}) == []  # it turned locked while two threads ran: no guess
    assert lock_seen(own, True, {1, 2, 3}) == []  # two ran at once while it was held: it may have changed hands
    assert lock_seen(own, False, {1}) == []  # so its release names no one
    assert lock_seen(own, True, {2}) == [(2, "A", {"id": 7, "sampled": True})]  # only lane 2 ran
    assert lock_seen(own, True, {1, 3}) == []  # its holder did not run: it cannot have let go
    assert lock_seen(own, True, {2}) == []  # only its holder ran: it holds it still
    assert lock_seen(own, True, {2}, unknown=True) == [(2, "R", {"id": 7})]  # a thread with no lane ran too
    assert lock_seen(own, False, set()) == []
    assert lock_seen(own, True, {2}, unknown=True) == []  # an unnamed thread could be the taker


def test_a_lock_taken_while_several_ran_is_named_by_its_release():
    own = free_lock()
    assert lock_seen(own, True, {0, 1}, t=5) == []  # the main thread and lane 1 ran: one of them took it
    assert lock_seen(own, True, {0}, t=6) == []  # one at a time since: it cannot have changed hands
    assert own.locks_seen(9, [(7, False)], {1}, False) == [
        (5, 1, "A", {"id": 7, "sampled": True}),
        (9, 1, "R", {"id": 7}),
    ]


def test_a_lock_passes_to_the_thread_whose_untimed_wait_on_it_ended():
    own = free_lock()
    assert lock_seen(own, True, {1}) == [(1, "A", {"id": 7, "sampled": True})]
    own.wait_changed(2, [0xABC, True])  # lane 2 waits for it, with no timeout
    own.wait_changed(3, [0xABC, False])  # lane 3 waits for it, with a timeout
    assert lock_seen(own, True, {2, 3}) == []  # the waiters do not count as takers
    own.wait_changed(3, None)  # lane 3 gave up (timed out): not a taker of the lock
    own.wait_changed(2, None)  # lane 2's acquire() returned: it has the lock
    assert lock_seen(own, True, {1, 2, 3}) == [(1, "R", {"id": 7}), (2, "A", {"id": 7, "sampled": True})]


def test_a_wait_seen_before_its_lock_was_registered_is_named_when_it_is():
    own = Ownership(pid=0, layout={})
    assert own.wait_changed(4, [0x123, True], t=5_000) == []  # the sampler is faster than the worker's batches
    _, waits = own.register({"id": 2, "type": "Lock", "name": "late", "addr": 1, "futex": 0x123})
    assert waits == [(5_000, 4, {"id": 2})] and own.waiting == {4: 2}
    assert own.wait_changed(4, None) == [("U", {"id": 2})]


# -- every primitive type, from real runs on a real server --------------------------------------


def primitives_of(messages):
    return {e[3]["id"]: e[3] for e in events_of(messages) if e[2] == "P"}


def of_primitive(messages, pid, kind):
    return [e for e in events_of(messages) if e[2] == kind and e[3].get("id") == pid]


@pytest.mark.parametrize("signal, kind", [("event", "Event"), ("condition", "Condition"), ("barrier", "Barrier")])
def test_each_start_signal_is_registered_and_its_waits_recorded(live, signal, kind):
    _, messages = live.run_to_end("event", signal=signal, threads=3, delay_ms=100, work_ms=0)
    assert result_of(messages)["result"]["held"]
    [(pid, data)] = [(pid, p) for pid, p in primitives_of(messages).items() if p["type"] == kind]
    assert data["name"] == "start"
    waits, ends = of_primitive(messages, pid, "W"), of_primitive(messages, pid, "U")
    workers = {e[1] for e in waits} - {0}  # the main thread is a Barrier's last party: it may wait too
    assert len(workers) == 3 and len(ends) == len(waits)  # every worker waited, and stopped waiting
    if kind == "Event":
        assert [e[3]["set"] for e in of_primitive(messages, pid, "F")] == [True]
        assert of_primitive(messages, pid, "F")[0][0] <= min(e[0] for e in ends)  # set() came first
    if kind == "Barrier":
        assert data["parties"] == 4 and max(e[3]["value"] for e in of_primitive(messages, pid, "C")) <= 4


def test_a_semaphores_count_never_exceeds_its_bound(live):
    _, messages = live.run_to_end("semaphore", threads=6, slots=2, hold_ms=30)
    assert result_of(messages)["result"]["held"]
    [pool] = [p for p in primitives_of(messages).values() if p["type"] == "BoundedSemaphore"]
    free = [e[3]["value"] for e in of_primitive(messages, pool["id"], "C")]
    assert pool["bound"] == 2 and len(free) == 12  # after each acquire and each release
    assert min(free) == 0 and all(0 <= n <= 2 for n in free)  # all slots taken at times, never more
    holds, releases = of_primitive(messages, pool["id"], "A"), of_primitive(messages, pool["id"], "R")
    assert len(holds) == len(releases) == 6
    assert len(of_primitive(messages, pool["id"], "W")) >= 3  # 6 clients, 2 slots: some waited


def test_a_queues_length_is_recorded_and_bounded(live):
    _, messages = live.run_to_end("producer-consumer", threads=4, maxsize=3, items=10, work_ms=10)
    assert result_of(messages)["result"]["held"]
    [q] = [p for p in primitives_of(messages).values() if p["type"] == "Queue"]
    lengths = [e[3]["value"] for e in of_primitive(messages, q["id"], "C")]
    assert q["maxsize"] == 3 and max(lengths) == 3 and all(0 <= n <= 3 for n in lengths)
    assert of_primitive(messages, q["id"], "W")  # fast producers: put() waited for room


def test_locks_are_registered_by_name_and_left_as_they_are():
    messages = run_worker("race-condition", {"variant": "locked", "threads": 2, "increments": 10_000})
    assert outcome_of(messages)["metrics"]["lost_updates"] == 0
    [lock] = primitives_of(messages).values()
    assert (lock["type"], lock["name"]) == ("Lock", "lock")  # the module's global, found at install
    assert lock["addr"] and lock["futex"]  # for the supervisor, which keeps them from the page
    # Nothing per acquire: the C lock stays unwrapped (docs/events.md, the observer effect).
    assert not [e for e in events_of(messages) if e[2] in ("A", "R", "W", "U")]


# -- a real server: waits, owners and cycles read from outside ---------------------------------


@pytest.mark.parametrize("threads", [2, 3])
def test_a_deadlock_names_its_cycle(live, threads):
    _, messages = live.run_to_end("deadlock", threads=threads, variant="naive", hold_ms=50)
    result = result_of(messages)
    assert result["state"] == "deadlocked", result
    cycle = result["result"]["cycle"]
    assert len(cycle) == threads
    lanes = {step["lane"] for step in cycle}
    assert {step["held_by"] for step in cycle} == lanes  # a cycle: each waits for the next
    names = {f"locks[{n}]" for n in range(threads)}
    assert {step["waits_for"]["name"] for step in cycle} == names
    assert f"a cycle of {threads} threads:" in result["reason"] and "held by" in result["reason"]
    events = events_of(messages)
    assert not [e for e in events if e[2] == "P" and ({"addr", "futex"} & e[3].keys())]  # never sent to a page
    waits = {(e[1], e[3]["id"]) for e in events if e[2] == "W"}
    assert {(s["lane"], s["waits_for"]["id"]) for s in cycle} <= waits  # drawn: who waits for what
    holds = {(e[1], e[3]["id"]) for e in events if e[2] == "A"}  # sampled, or inferred at the end
    assert {(s["held_by"], s["waits_for"]["id"]) for s in cycle} <= holds


def test_plain_lock_holders_are_read_from_outside_and_never_overlap(live):
    # ordered: thread takes-a-then-b holds one of locks[a], locks[b] for 40 ms while a
    # neighbour waits for it; which thread held which Lock is read from the Locks' bytes.
    _, messages = live.run_to_end("deadlock", threads=4, variant="ordered", hold_ms=40)
    assert result_of(messages)["result"]["held"]
    events = events_of(messages)
    names = {e[3]["id"]: e[3]["name"] for e in events if e[2] == "P"}
    threads = {e[1]: e[3]["name"] for e in events if e[2] == "lane"}
    held: dict[int, list] = {}  # lock id -> [(lane, from, to)]
    taken: dict[tuple, int] = {}
    for t, lane, kind, data in sorted(events, key=lambda e: e[0]):
        if kind == "A" and data.get("sampled"):
            taken[(lane, data["id"])] = t
        elif kind == "R" and (lane, data["id"]) in taken:
            held.setdefault(data["id"], []).append((lane, taken.pop((lane, data["id"])), t))
    assert held, "no Lock holder was read from outside"  # a hand-off at least: a waiter took it
    for pid, spans in held.items():
        for lane, _, _ in spans:  # only a thread that takes this Lock is ever drawn holding it
            _, a, _, b = threads[lane].split("-")  # takes-a-then-b
            assert names[pid] in (f"locks[{a}]", f"locks[{b}]"), (threads[lane], names[pid])
        spans.sort(key=lambda span: span[1])  # and one holder at a time
        assert all(x[2] <= y[1] for x, y in zip(spans, spans[1:], strict=False)), spans
    # takes-3-then-0 waits for locks[0], takes it, and sleeps hold_ms holding it. Its bar spans
    # that sleep: a holder is read at every sample, never left to the idle back-off, so
    # "it did not run" is seen, not assumed (the bar used to end 20 ms into the sleep).
    last = [
        b - a
        for pid, spans in held.items()
        for lane, a, b in spans
        if (names[pid], threads[lane]) == ("locks[0]", "takes-3-then-0")
    ]
    assert last and max(last) >= 0.75 * 40e6, (last, held)


def test_the_librarys_own_primitives_stay_the_librarys_classes():
    """Every Thread's ``_started`` Event and its Condition are threading's own: a subclass would
    run Python on each of their waits and sets to record nothing (primitives._Observed)."""
    from playground.primitives import _ORIGINAL, Primitives
    from playground.probe import Probe

    primitives = Primitives(Probe(), __name__, {"lock_futex": None, "rlock_owner": None, "lock_locked": None})
    primitives.install()  # this test module plays the experiment's
    try:
        mine = threading.Event()
        thread = threading.Thread(target=lambda: None)
    finally:
        primitives.uninstall()
    assert type(thread._started) is _ORIGINAL["Event"] and type(thread._started._cond) is _ORIGINAL["Condition"]
    assert type(mine).__name__ == "ObservedEvent" and mine._pg_id


def test_a_primitive_created_by_the_library_is_not_the_lessons():
    # thread-pool's ThreadPoolExecutor makes Semaphores and Locks of its own: none is registered.
    messages = run_worker("thread-pool", {"threads": 2, "tasks": 3})
    assert outcome_of(messages)["held"] and not primitives_of(messages)


def test_a_thread_that_retakes_its_own_lock_is_named(live):
    _, messages = live.run_to_end("rlock", lock="lock", threads=2, hold_ms=5)
    result = result_of(messages)
    assert result["state"] == "deadlocked" and result["result"]["held"], result
    [step] = result["result"]["cycle"]
    assert step["lane"] == step["held_by"] and step["waits_for"]["name"] == "lock"
    assert "waits for lock, which it holds itself" in result["reason"]


def test_an_rlocks_owner_and_its_waiters_are_read_from_outside(live):
    _, messages = live.run_to_end("rlock", threads=3, depth=3, hold_ms=40)
    result = result_of(messages)
    assert result["state"] == "done" and result["result"]["held"], result
    events = events_of(messages)
    [rlock] = [e[3] for e in events if e[2] == "P" and e[3]["type"] == "RLock"]
    holders = [e[1] for e in events if e[2] == "A" and e[3]["id"] == rlock["id"]]
    waiters = {e[1] for e in events if e[2] == "W" and e[3]["id"] == rlock["id"]}
    # Each thread holds it for 4 x 40 ms in turn: the first one still holds it when the worker's
    # word that the RLock exists reaches the supervisor (one flush, 50 ms), so all three are seen.
    assert len(set(holders)) == 3 and len(holders) == 3
    assert len(waiters) >= 2  # while one holds it, the others wait for it, on its futex
    assert not [e for e in events if e[2] == "A" and e[3].get("inferred")]  # read from memory, not guessed
