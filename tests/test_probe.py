"""The in-worker recorder, on real threads: lanes, names, ends, phases, prints."""

import threading
import time

from playground.probe import LaneWriter, Probe, interpreter_info


def test_threads_get_lanes_names_and_ends_without_touching_their_code():
    probe = Probe()
    probe.register_current_thread()
    probe.install()
    try:
        threads = [threading.Thread(target=time.sleep, args=(0.01,), name=f"t-{n}") for n in range(3)]
        with probe.phase("threads") as phase:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        probe.uninstall()
    events = probe.drain()
    lanes = {e[1]: e[3]["name"] for e in events if e[2] == "lane"}
    assert lanes[0] == threading.current_thread().name
    assert sorted(lanes[k] for k in lanes if k) == ["t-0", "t-1", "t-2"]
    assert sorted(e[1] for e in events if e[2] == "end") == [1, 2, 3]
    assert [e[2:] for e in events if e[2] in "BE"] == [["B", "threads"], ["E", "threads"]]
    assert phase.wall_ns >= 0.01e9 * 0.5  # a ratio to the sleep, not an absolute bound
    times = [e[0] for e in events]
    assert times == sorted(times) or len(set(e[1] for e in events)) > 1


def test_prints_become_marks_in_the_printing_threads_lane():
    probe = Probe()
    probe.register_current_thread()
    probe.install()
    writer = LaneWriter(probe)
    try:
        thread = threading.Thread(target=lambda: print("hello from a thread", file=writer), name="printer")
        thread.start()
        thread.join()
        writer.write("partial")
        writer.close()
    finally:
        probe.uninstall()
    events = probe.drain()
    printer_lane = next(e[1] for e in events if e[2] == "lane" and e[3]["name"] == "printer")
    marks = [(e[1], e[3]) for e in events if e[2] == "M"]
    assert (printer_lane, "hello from a thread") in marks
    assert (0, "partial") in marks
    assert writer.output() == "hello from a thread\npartial"


def test_event_volume_is_capped():
    probe = Probe(max_events=10)
    for _ in range(25):
        probe.emit_in(0, "M", "x")
    assert len(probe.drain()) == 10 and probe.dropped == 15


def test_interpreter_info_reports_the_gil_state():
    info = interpreter_info()
    assert isinstance(info["gil_enabled"], bool)
    assert info["version_info"][0] == 3
