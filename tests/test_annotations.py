"""Annotations: what the chart shows, named from measured data (playground/annotations.py).

Synthetic events for each kind, then real runs: cpu-bound with 4 threads on the live
server, race-condition's collisions from a real worker, and a real browser that clicks
an annotation and sees the chart zoom.
"""

import requests
from conftest import needs_chromium, outcome_of, run_worker

from playground import annotations
from playground.annotations import annotate, switch_interval_ns
from playground.experiments.race_condition import find_collisions
from playground.runs import Run, RunState

MS = 1_000_000
INTERPRETER = {"gil_enabled": True, "switch_interval_s": 0.005}


def lane(n, name, t=0):
    return [t, n, "lane", {"name": name, "tid": 1000 + n, "ident": 2000 + n}]


def states(n, steps, t=0):
    """S events for lane ``n`` from ``steps`` [(state, duration_ns)], then its end."""
    out = []
    for state, duration in steps:
        out.append([t, n, "S", state])
        t += duration
    out.append([t, n, "end", None])
    return out


def round_robin(lanes, turn_ns, rounds):
    """CPU-bound threads taking turns with the GIL: each runs ``turn_ns``, then waits for the others."""
    events = []
    for i, n in enumerate(lanes):
        start = i * turn_ns
        steps = [("gil", start)] if start else []
        for _ in range(rounds):
            steps += [("running", turn_ns), ("gil", turn_ns * (len(lanes) - 1))]
        events += [lane(n, f"worker-{i}")] + states(n, steps[:-1] + [("running", turn_ns)])
    return events


def kinds(found):
    return [a["kind"] for a in found]


def test_gil_stripes_at_the_switch_interval_name_it():
    found = annotate(round_robin([1, 2, 3], 5 * MS, rounds=6), {}, INTERPRETER)
    assert kinds(found) == ["gil-stripes"]
    stripes = found[0]
    assert "sys.getswitchinterval() = 5 ms" in stripes["text"] and "~5 ms stripes" in stripes["text"]
    assert stripes["lanes"] == [1, 2, 3]
    assert 0 <= stripes["t0"] < stripes["t1"]
    assert set(stripes) == {"kind", "title", "text", "t0", "t1", "lanes"}


def test_gil_stripes_far_from_the_interval_say_what_was_measured():
    found = annotate(round_robin([1, 2], 1 * MS, rounds=6), {}, INTERPRETER)
    assert kinds(found) == ["gil-stripes"]
    text = found[0]["text"]
    assert "lasted 1 ms" in text and "shorter than sys.getswitchinterval() = 5 ms" in text
    assert "stripes are" not in text


def test_no_stripes_from_one_lane_or_from_threads_that_never_wait():
    one = [lane(1, "a")] + states(1, [("gil", MS), ("running", 5 * MS)] * 8)
    assert annotate(one, {}, INTERPRETER) == []
    free = [lane(1, "a"), lane(2, "b")] + states(1, [("running", 50 * MS)]) + states(2, [("running", 50 * MS)])
    assert annotate(free, {}, {"gil_enabled": False}) == []


def test_the_interval_the_experiment_set_wins_over_the_interpreters_default():
    assert switch_interval_ns(INTERPRETER, {}, {}) == 5 * MS
    assert switch_interval_ns(INTERPRETER, {}, {"switch_interval_ms": 0.5}) == 500_000
    assert switch_interval_ns(INTERPRETER, {"metrics": {"switch_interval_ms": 20}}, {}) == 20 * MS
    assert switch_interval_ns({}, {}, {}) is None
    found = annotate(round_robin([1, 2], 20 * MS, rounds=4), {}, INTERPRETER, {"switch_interval_ms": 20})
    assert "sys.getswitchinterval() = 20 ms" in found[0]["text"]


def test_convoy_counts_gil_waits_after_io_or_sleep_and_points_at_the_worst():
    events = [lane(1, "echo-client"), lane(2, "sleeper"), lane(3, "spinner")]
    events += states(1, [("io", 3 * MS), ("gil", 4 * MS), ("running", MS), ("io", MS), ("gil", 2 * MS), ("io", MS)])
    events += states(2, [("sleep", 10 * MS), ("gil", 300_000), ("running", MS)])  # too short to name
    events += states(3, [("running", 20 * MS)])
    found = annotate(events, {}, INTERPRETER)
    assert kinds(found) == ["convoy"]
    convoy = found[0]
    assert convoy["text"].startswith("2 times,") and "echo-client stayed in gil for 4 ms after I/O" in convoy["text"]
    assert (convoy["t0"], convoy["t1"]) == (3 * MS, 7 * MS)
    assert convoy["lanes"] == [1]


def test_a_gil_wait_after_running_is_no_convoy():
    events = [lane(1, "a")] + states(1, [("running", 3 * MS), ("gil", 5 * MS), ("running", MS)])
    assert annotate(events, {}, INTERPRETER) == []


def test_find_collisions_reports_two_threads_that_read_the_same_value():
    t0 = 1_000
    reads = {
        "widened-0": [(0, 1_100), (1, 1_400), (3, 1_900)],
        "widened-1": [(0, 1_200), (2, 1_600)],
        "widened-2": [(1, 1_500), (1, 1_700)],  # its second read of 1 collides with widened-0 again
    }
    collisions, seen = find_collisions(reads, t0)
    assert seen == 3
    assert collisions[0] == {
        "value": 0,
        "reads": [{"thread": "widened-0", "t_ns": 100}, {"thread": "widened-1", "t_ns": 200}],
    }
    assert [c["value"] for c in collisions] == [0, 1, 1]
    assert find_collisions({"a": [(0, 1), (0, 2)], "b": [(1, 3)]}, 0) == ([], 0)  # one thread twice: no collision


def test_lost_updates_point_at_the_first_collisions():
    events = [lane(0, "MainThread"), lane(1, "widened-0"), lane(2, "widened-1"), lane(3, "widened-2")]
    result = {
        "collisions": [
            {"value": 41, "reads": [{"thread": "widened-0", "t_ns": 2 * MS}, {"thread": "widened-1", "t_ns": 3 * MS}]},
            {"value": 57, "reads": [{"thread": "widened-2", "t_ns": 4 * MS}, {"thread": "widened-1", "t_ns": 5 * MS}]},
        ],
        "reads_kept": 10_000,
        "metrics": {"lost_updates": 1234, "read_collisions": 900},
    }
    found = annotate(events, result, INTERPRETER)
    assert kinds(found) == ["lost-updates"]
    lost = found[0]
    assert "widened-0 read counter = 41" in lost["text"] and "widened-1 read the same value" in lost["text"]
    assert "both then wrote 42" in lost["text"] and "1,234 updates" in lost["text"]
    assert (lost["t0"], lost["t1"]) == (2 * MS, 5 * MS)
    assert lost["lanes"] == [1, 2, 3]
    assert annotate(events, {"metrics": {"lost_updates": 5}}, INTERPRETER) == []  # no reads kept: nothing to point at


def test_deadlock_names_the_cycle_from_the_first_wait_to_the_end():
    events = [lane(0, "MainThread"), lane(1, "takes-0-then-1"), lane(2, "takes-1-then-0")]
    events += [[MS, 0, "P", {"id": 1, "type": "Lock", "name": "locks[0]"}]]
    events += [[MS, 0, "P", {"id": 2, "type": "Lock", "name": "locks[1]"}]]
    events += [[50 * MS, 1, "S", "lock"], [50 * MS, 1, "W", {"id": 2}]]
    events += [[52 * MS, 2, "S", "lock"], [52 * MS, 2, "W", {"id": 1}]]
    events += [[600 * MS, 0, "M", "last"]]
    cycle = [
        {"lane": 1, "thread": "takes-0-then-1", "waits_for": {"id": 2, "name": "locks[1]"}, "held_by": 2},
        {"lane": 2, "thread": "takes-1-then-0", "waits_for": {"id": 1}, "held_by": 1},  # name from its P event
    ]
    found = annotate(events, {"cycle": cycle}, INTERPRETER)
    assert kinds(found) == ["deadlock"]
    dead = found[0]
    assert dead["text"].startswith(
        "takes-0-then-1 waits for locks[1] held by takes-1-then-0; takes-1-then-0 waits for locks[0] held by takes-0-then-1."
    )
    assert (dead["t0"], dead["t1"]) == (50 * MS, 600 * MS)
    assert dead["lanes"] == [1, 2]


def test_deadlock_without_wait_events_starts_where_the_lanes_blocked():
    events = [lane(1, "a"), lane(2, "b")]
    events += [
        [10 * MS, 1, "S", "running"],
        [30 * MS, 1, "S", "lock"],
        [20 * MS, 2, "S", "lock"],
        [90 * MS, 2, "M", "x"],
    ]
    cycle = [
        {"lane": 1, "waits_for": {"id": 7}, "held_by": 2},
        {"lane": 2, "waits_for": {"id": 8}, "held_by": None},
    ]
    dead = annotate(events, {"cycle": cycle}, INTERPRETER)[0]
    assert (
        "a waits for lock #7 held by b" in dead["text"]
        and "held by a thread the sampler could not name" in dead["text"]
    )
    assert (dead["t0"], dead["t1"]) == (20 * MS, 90 * MS)


def test_nothing_to_say_about_an_empty_or_failed_run():
    assert annotate([], None, None) == []
    assert annotate([lane(0, "MainThread")], {"claim": "x", "held": False, "why": "", "metrics": {}}, {}) == []


def test_a_finished_run_is_annotated_once(monkeypatch):
    calls = []
    monkeypatch.setattr(annotations, "annotate", lambda *args: calls.append(args) or [{"kind": "x"}])
    run = Run(id="abcdefghjk", experiment="cpu-bound", params={})
    assert annotations.for_run(run) == [] and calls == []  # still queued: nothing yet
    run.finish(RunState.DONE, result={"claim": "", "held": True, "why": "", "metrics": {}})
    assert annotations.for_run(run) == [{"kind": "x"}]
    assert annotations.for_run(run) == [{"kind": "x"}]
    assert len(calls) == 1


# -- real runs ---------------------------------------------------------------------------


def test_widened_race_keeps_the_first_collisions_in_its_result():
    outcome = outcome_of(run_worker("race-condition", {"threads": 4, "increments": 2_000, "variant": "widened"}))
    assert outcome["metrics"]["lost_updates"] > 0
    assert outcome["metrics"]["read_collisions"] > 0 and 1 <= len(outcome["collisions"]) <= 5
    first = outcome["collisions"][0]
    assert first["reads"][0]["thread"] != first["reads"][1]["thread"]
    assert 0 <= first["reads"][0]["t_ns"] <= first["reads"][1]["t_ns"]
    plain = outcome_of(run_worker("race-condition", {"threads": 2, "increments": 1_000, "variant": "locked"}))
    assert "collisions" not in plain and "read_collisions" not in plain["metrics"]


def test_cpu_bound_with_four_threads_names_its_gil_stripes(live):
    started, _ = live.run_to_end("cpu-bound", threads=4)
    run = requests.get(f"{live.url}/api/runs/{started['id']}", timeout=10).json()
    stripes = [a for a in run["annotations"] if a["kind"] == "gil-stripes"]
    assert len(stripes) == 1, run["annotations"]
    assert "sys.getswitchinterval()" in stripes[0]["text"]
    assert len(stripes[0]["lanes"]) >= 2 and stripes[0]["t0"] < stripes[0]["t1"]
    page = requests.get(started["url"], timeout=10).text
    assert 'data-annotation="gil-stripes"' in page
    assert 'id="observation-cost"' in page and 'data-sampled="1"' in page  # the sampler's own cost, in the footer


def test_widened_race_annotation_through_the_server(live):
    started, _ = live.run_to_end("race-condition", threads=4, increments=5_000, variant="widened")
    run = requests.get(f"{live.url}/api/runs/{started['id']}", timeout=10).json()
    lost = [a for a in run["annotations"] if a["kind"] == "lost-updates"]
    assert len(lost) == 1 and len(lost[0]["lanes"]) >= 2, run["annotations"]


# -- a real browser ----------------------------------------------------------------------


def canvas_digest(page) -> str:
    return page.eval_on_selector("#chart canvas", "c => c.toDataURL()")


@needs_chromium
def test_clicking_the_gil_stripes_annotation_zooms_the_chart(live, page):
    started = live.start_run("cpu-bound", threads=4)
    page.goto(started["url"])
    page.wait_for_selector('#run[data-finished="1"]', timeout=60_000)
    page.wait_for_load_state("networkidle")  # htmx has swapped in the finished run's result panel
    page.wait_for_selector('#observation-cost[data-sampled="1"]')  # the footer: what this run's sampler cost
    button = page.locator('#annotations button[data-annotation="gil-stripes"]')
    assert button.get_attribute("aria-pressed") == "false"
    whole = canvas_digest(page)
    button.click()
    page.wait_for_selector('#annotations[data-active="gil-stripes"][data-range]', timeout=5_000)
    assert button.get_attribute("aria-pressed") == "true"
    shown = [float(x) for x in page.get_attribute("#annotations", "data-range").split()]
    t0, t1 = float(button.get_attribute("data-t0")), float(button.get_attribute("data-t1"))
    assert shown[0] <= t0 < t1 <= shown[1]
    for _ in range(50):  # the chart redraws on its next animation frame
        if canvas_digest(page) != whole:
            break
        page.wait_for_timeout(100)
    assert canvas_digest(page) != whole, "the chart did not change after the zoom"
    button.click()  # again: the whole run
    page.wait_for_selector('#annotations:not([data-range]) button[aria-pressed="false"]', timeout=5_000)
