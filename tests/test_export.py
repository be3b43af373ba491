"""Exports: a real run's trace.json, CSVs and chart.svg over HTTP, checked against
the formats' own rules; then the builders on synthetic runs (nesting repairs,
escaping, a 100,000-event run)."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import xml.etree.ElementTree as ET
from collections import defaultdict

import pytest
import requests
from conftest import ROOT

from playground import export, textgantt

SVG = "{http://www.w3.org/2000/svg}"
STATES = {"running", "gil", "lock", "sleep", "io", "alive"}


def check_trace(trace: dict) -> dict:
    """The Chrome trace event format's rules, as Perfetto needs them; returns tid -> thread name."""
    assert trace["displayTimeUnit"] == "ms"
    names, used, slices, open_ = {}, set(), defaultdict(list), defaultdict(list)
    for event in trace["traceEvents"]:
        ph, tid = event["ph"], event["tid"]
        assert isinstance(event["pid"], int) and isinstance(tid, int), event
        if ph == "M":
            if event["name"] == "thread_name":
                names[tid] = event["args"]["name"]
            continue
        assert isinstance(event["ts"], (int, float)) and event["ts"] >= 0, event
        used.add(tid)
        if ph == "X":
            assert event["dur"] >= 0, event
            slices[tid].append((event["ts"], event["ts"] + event["dur"], event["name"]))
        elif ph == "B":
            open_[tid].append(event)
        elif ph == "E":
            assert open_[tid], f"an E without its B on tid {tid}: {event}"
            begin = open_[tid].pop()
            slices[tid].append((begin["ts"], event["ts"], begin["name"]))
        elif ph == "i":
            assert event["s"] in ("t", "p", "g") and isinstance(event["name"], str), event
        elif ph == "C":
            assert event["name"] and event["args"], event
            top = (os.cpu_count() or 1) + 0.5 if event["name"] == "busy cores" else 1  # cores, or a share of one
            assert all(isinstance(v, (int, float)) and 0 <= v <= top for v in event["args"].values()), event
        else:
            raise AssertionError(f"unexpected phase {ph!r}")
    assert not any(open_.values()), f"B events never ended: {dict(open_)}"
    for tid, spans in slices.items():  # strictly nested: a slice ends inside its parent, never across it
        stack = []
        for start, end, name in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1][1] <= start:
                stack.pop()
            assert not stack or end <= stack[-1][1], f"tid {tid}: {name} {start}-{end} overlaps {stack[-1]}"
            stack.append((start, end, name))
    assert used <= names.keys(), f"tids without a thread_name: {used - names.keys()}"
    return names


@pytest.fixture(scope="module")
def hello(live):
    started, _ = live.run_to_end("hello-threads", threads=3, delay_ms=50)
    run_id = started["id"]
    summary = requests.get(f"{live.url}/api/runs/{run_id}", timeout=5).json()
    files = {name: requests.get(f"{live.url}/runs/{run_id}/{name}", timeout=10) for name in FILES}
    return summary, files


FILES = ("trace.json", "events.csv", "result.csv", "chart.svg")


def test_every_export_is_a_named_file(hello):
    summary, files = hello
    for name, response in files.items():
        assert response.status_code == 200, (name, response.text[:200])
        disposition = response.headers["Content-Disposition"]
        assert summary["id"] in disposition and name.split(".")[-1] in disposition
    assert files["trace.json"].headers["Content-Type"].startswith("application/json")
    assert files["events.csv"].headers["Content-Type"].startswith("text/csv")
    assert files["chart.svg"].headers["Content-Type"].startswith("image/svg+xml")
    assert files["trace.json"].headers["Content-Disposition"].startswith("attachment")


def test_trace_follows_the_format_and_measures_in_microseconds(hello):
    summary, files = hello
    trace = files["trace.json"].json()
    names = check_trace(trace)
    events = trace["traceEvents"]
    lane_names = {lane["name"] for lane in summary["lanes"]}
    assert lane_names <= set(names.values())
    process = [e for e in events if e["ph"] == "M" and e["name"] == "process_name"]
    assert process[0]["args"]["name"] == f"hello-threads {summary['id']}"
    assert {e["name"] for e in events if e["ph"] == "X" and e["cat"] == "state"} <= STATES
    assert {"start", "join"} <= {e["name"] for e in events if e["ph"] == "X" and e["cat"] == "phase"}
    assert sorted(e["name"] for e in events if e["ph"] == "i") == [f"Hello from thread {n}" for n in range(3)]
    has_cpu = any(r["kind"] in ("cpu", "cores") for r in csv.DictReader(io.StringIO(files["events.csv"].text)))
    assert any(e["ph"] == "C" for e in events) == has_cpu  # a short, sleepy run may have no CPU window
    timed = [e for e in events if e["ph"] in "XiC"]
    span_us = max(e["ts"] + e.get("dur", 0) for e in timed) - min(e["ts"] for e in timed)
    wall_us = summary["result"]["metrics"]["wall_ms"] * 1000
    assert 0.3 < span_us / wall_us < 5, (span_us, wall_us)  # ms or ns would be 1000x off
    assert trace["metadata"]["id"] == summary["id"]


def test_a_cpu_bound_trace_has_cpu_counters_and_its_phases(live):
    started, _ = live.run_to_end("cpu-bound", threads=2, iterations=1_000_000)
    summary = requests.get(f"{live.url}/api/runs/{started['id']}", timeout=5).json()
    trace = requests.get(f"{live.url}/runs/{started['id']}/trace.json", timeout=10).json()
    names = check_trace(trace)
    counters = [e for e in trace["traceEvents"] if e["ph"] == "C" and e["name"] != "busy cores"]
    assert counters and {names[e["tid"]] for e in counters} <= {lane["name"] for lane in summary["lanes"]}
    assert max(e["args"]["share"] for e in counters) > 0
    cores = [e["args"]["cores"] for e in trace["traceEvents"] if e["ph"] == "C" and e["name"] == "busy cores"]
    assert cores and 0.5 < max(cores) <= 2.5  # 2 threads holding the GIL in turns: about one core
    phases = [e for e in trace["traceEvents"] if e.get("cat") == "phase"]
    # The worker's wait for its observer (worker.py), then the experiment's: warm-up, 1, N.
    assert len(phases) == 4 and {names[e["tid"]] for e in phases} == {"MainThread phases"}
    end_us = max(e["ts"] + e.get("dur", 0) for e in trace["traceEvents"] if e["ph"] != "M")
    assert 0.3 < end_us / (summary["result"]["metrics"]["wall_ms"] * 1000) < 5


def test_events_csv_has_every_event(hello):
    summary, files = hello
    rows = list(csv.DictReader(io.StringIO(files["events.csv"].text)))
    assert len(rows) == summary["counts"]["events"]
    assert list(rows[0]) == ["t_ms", "lane", "thread", "kind", "data"]
    times = [float(r["t_ms"]) for r in rows]
    assert times == sorted(times)
    marks = sorted(r["data"] for r in rows if r["kind"] == "M")
    assert marks == [f"Hello from thread {n}" for n in range(3)]
    lanes = {r["lane"]: r["thread"] for r in rows if r["kind"] == "lane"}
    assert sorted(lanes.values()) == sorted(lane["name"] for lane in summary["lanes"])


def test_result_csv_has_the_verdict_and_the_metrics(hello):
    summary, files = hello
    rows = {r["metric"]: r for r in csv.DictReader(io.StringIO(files["result.csv"].text))}
    assert rows["state"]["value"] == "done"
    assert rows["claim"]["value"] == summary["result"]["claim"]
    assert rows["held"]["value"] == "true"
    assert rows["wall_ms"]["unit"] == "ms" and rows["wall_ms"]["meaning"]
    assert float(rows["threads_started"]["value"]) == 3
    assert set(summary["result"]["metrics"]) <= set(rows)


def test_chart_svg_draws_one_lane_per_thread_in_the_css_palette(hello):
    summary, files = hello
    root = ET.fromstring(files["chart.svg"].text)
    assert root.tag == SVG + "svg"
    assert summary["id"] in root.find(SVG + "title").text
    lanes = [g for g in root.iter(SVG + "g") if g.get("class") == "lane"]
    assert [g.find(SVG + "title").text for g in lanes] == [lane["name"] for lane in summary["lanes"]]
    css = open(os.path.join(ROOT, "static", "css", "gantt.css")).read()
    palette = {v.lower() for v in re.findall(r"--(?:state|gantt)-[\w-]+:\s*(#[0-9A-Fa-f]+)", css)}
    fills = {p.get("fill").lower() for g in lanes for p in g.iter(SVG + "path")}
    assert fills and fills <= palette


def test_run_page_links_the_exports(live, hello):
    summary, _ = hello
    page = requests.get(f"{live.url}/runs/{summary['id']}", timeout=5).text
    for name in FILES:
        assert f'href="/runs/{summary["id"]}/{name}"' in page


def test_unknown_runs_are_404(live):
    for path in ("/runs/abcdefghjk/trace.json", "/runs/nope/chart.svg", "/runs/..%2f/events.csv"):
        assert requests.get(live.url + path, timeout=5).status_code == 404, path


# -- the builders on synthetic runs (no server) ------------------------------------


def summary_of(lanes: int) -> dict:
    named = [{"lane": n, "name": f"t-{n}", "tid": 100 + n} for n in range(lanes)]
    return {"id": "synthetic0", "experiment": "demo", "state": "done", "reason": "", "result": None, "lanes": named}


def test_mis_nested_and_unclosed_phases_still_nest():
    events = [[0, 0, "lane", {"name": "t-0"}], [10_000, 0, "B", "outer"], [20_000, 0, "B", "inner"]]
    events += [[30_000, 0, "E", "outer"], [40_000, 0, "E", "inner"], [50_000, 0, "B", "never ends"]]
    events += [[60_000, 0, "S", "running"], [90_000, 0, "end", None]]
    trace = export.trace(summary_of(1), events)
    check_trace(trace)
    phases = {e["name"]: (e["ts"], e["ts"] + e["dur"]) for e in trace["traceEvents"] if e.get("cat") == "phase"}
    assert phases == {"outer": (10, 30), "inner": (20, 30), "never ends": (50, 90)}


def test_a_100k_event_run_stays_a_small_valid_svg_and_trace():
    lanes, events, states = 10, [], ("running", "gil", "lock", "sleep", "io")
    for lane in range(lanes):
        pick = random.Random(lane).choice  # switches every 50 µs: 10 per pixel column
        events.append([0, lane, "lane", {"name": f"t-{lane}"}])
        events += [[i * 50_000 + lane, lane, "S", pick(states)] for i in range(10_000)]
        events.append([500_000_000, lane, "end", None])
    assert len(events) > 100_000
    body = export.svg(summary_of(lanes), events)
    root = ET.fromstring(body)
    assert len([g for g in root.iter(SVG + "g") if g.get("class") == "lane"]) == lanes
    assert len(body) < 400_000, len(body)  # at most one rectangle per pixel column and lane
    check_trace(export.trace(summary_of(lanes), events))


def test_csv_cells_are_quoted_and_formulas_defused():
    text = 'said "hi", then\nleft'
    events = [[0, 0, "lane", {"name": "=HYPERLINK()"}], [1_500_000, 0, "M", text], [2_000_000, 0, "cpu", -1]]
    rows = list(csv.reader(io.StringIO(export.events_csv(summary_of(0), events))))
    assert rows[1][2] == "'=HYPERLINK()"
    assert rows[2] == ["1.500000", "0", "'=HYPERLINK()", "M", text]
    assert rows[3][4] == "-1"  # a number, not a formula
    assert json.loads(rows[1][4]) == {"name": "=HYPERLINK()"}


def test_text_gantt_shows_a_thread_shorter_than_a_bucket():
    events = [[0, 0, "S", "sleep"], [1_000_000_000, 0, "end", None], [500_000_000, 1, "S", "running"]]
    events += [[500_000_100, 1, "end", None]]
    text = textgantt.render(summary_of(2), events, width=20)
    rows = text.splitlines()
    assert rows[0] == "t-0 |" + "z" * 20 + "|"
    assert rows[1] == "t-1 |" + "." * 10 + "#" + "." * 9 + "|"
    assert "# running" in rows[-1] and "\x1b[" not in text
    assert "\x1b[32m" in textgantt.render(summary_of(2), events, width=20, color=True)
