"""The live path, measured in the page: click to first lane, events/s into Chromium, live latency.

    python bench/live_path.py [--replays 3] [--floods 3] [--clicks 20] [--latency-runs 5] [--no-record]

A count of 0 skips that part (``--replays 0 --floods 0 --latency-runs 0`` measures
only the click); ``--no-record`` prints the figures without appending them to
bench/RESULTS.md (for trying changes out).

One server (``python app.py``, PLAYGROUND_FAULTS=1 for the hidden event-flood),
headless Chromium. An init script in every document wraps ``JSON.parse`` (run.js
parses each WebSocket message with it, synchronously before ``addEvents``) to
log each ``events`` message's arrival (``performance.now()``) and its events'
run times, and listens for the chart's ``gantt:drawn``.

1. Replay throughput: a stored 100,000-event run (100 lanes) to a Python
   WebSocket client, and into the run page (in-page: first to last events
   message; and page load until the run is finished in the chart).
2. Live throughput: the hidden ``fault?kind=event-flood`` run (prints ~1.5 M
   lines; the probe keeps 500,000) watched live: the page is connected while the
   run waits in the queue behind a blocker run, which is then cancelled.
   Events/s = events arrived / (last - first events message), in the page.
   Then ``fault?kind=mark-flood``, the same with ``probe.mark()`` in the loop:
   a print() loop makes ~190,000 lines/s here, so it measures the experiment as
   much as the path; the recorder's own marks outrun the path, which is then
   the bound.
3. Click on Run to the first lane drawn, warm pool: the click time
   (``performance.timeOrigin + performance.now()``) goes to sessionStorage in a
   capture listener on the experiment page; the page takes its own
   ``timeOrigin + now()`` at the first ``gantt:drawn`` with lanes > 0. Both are
   the same high-resolution epoch clock of one browser process. The Run button
   swaps the run view into the experiment page (static/js/launch.js), so the
   breakdown's response is that of the fetch of ``POST /runs`` (and the 303 to
   the run page, followed); were the run page loaded as a new document, it would
   be that document's navigation, with its start and DOMContentLoaded. ``socket
   new`` is when the page asked for its WebSocket (the init script wraps the
   constructor), ``socket open`` when the handshake was done.
4. Live latency, event recorded to event drawn (cpu-bound 8 threads and
   io-bound 16 threads, started from the page as a user does). Clock alignment:
   an event's ``t`` is ns since the worker probe's ``t0`` (CLOCK_MONOTONIC). The
   run's ``started_at`` (``GET /api/runs/<id>``; the server's ``time.time()``
   when it heard the worker's "started" message, which carries ``t0``) is
   taken as the epoch time of ``t0``; the page's draw time is
   ``performance.timeOrigin + now()``, corrected by the page's measured
   ``Date.now() - (timeOrigin + now())`` so both sides read CLOCK_REALTIME.
   started_at is stamped a little *after* t0 (the pipe, the sampler start: ~1 ms),
   so the figures are lower bounds by that much. "Drawn" is the first
   ``gantt:drawn`` after the message arrived (the chart draws on the next frame).

Targets (issue 7): >= 200,000 events/s; click to first lane p50 <= 100 ms,
p95 <= 250 ms; live latency p95 <= 150 ms.
"""

from __future__ import annotations

import argparse
import bisect
import os
import statistics
import sys
import tempfile
import time

import requests
from common import CHROMIUM_ARGS, LiveServer, load_average, percentile, record

from playground.runs import Run, RunState
from playground.store import Store

INIT = """
(() => {
  const parse = JSON.parse;
  const B = window.__bench = { msgs: [], drawn: [], firstLane: null, clickToLane: null, status: [] };
  JSON.parse = function (text, reviver) {
    const v = parse.call(this, text, reviver);
    if (v && v.type === "events" && Array.isArray(v.events)) {
      const ts = new Float64Array(v.events.length);
      for (let i = 0; i < ts.length; i++) ts[i] = v.events[i][0];
      B.msgs.push({ at: performance.now(), ts });
    } else if (v && v.type === "status") B.status.push({ at: performance.now(), state: v.state });
    else if (v && v.type === "hello") B.hello = performance.now();
    return v;
  };
  // When the page asks for its socket, and when the socket opens (the handshake done).
  const WS = window.WebSocket;
  window.WebSocket = function (...args) {
    B.socketNew = performance.now();
    const ws = new WS(...args);
    ws.addEventListener("open", () => { B.socketOpen = performance.now(); });
    return ws;
  };
  window.WebSocket.prototype = WS.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  document.addEventListener("gantt:drawn", (e) => {
    const now = performance.now();
    B.drawn.push(now);
    if (e.detail.lanes > 0 && B.firstLane === null) {
      B.firstLane = now;
      const click = sessionStorage.getItem("benchClick");
      if (click) {
        // c > 0: the click was in this document (the run view was swapped in, no navigation):
        // the run's response is the fetch of POST /runs; otherwise it is this document's navigation.
        const c = Number(click) - performance.timeOrigin, swapped = c > 0;
        const nav = (swapped ? performance.getEntriesByType("resource").find((r) => r.initiatorType === "fetch" && r.startTime >= c)
                             : performance.getEntriesByType("navigation")[0]) || {};
        const run = B.status.find((s) => s.state === "running");
        B.clickToLane = performance.timeOrigin + now - Number(click);
        B.steps = { nav_start: swapped ? NaN : -c, response_start: nav.responseStart - c, response_end: nav.responseEnd - c,
                    dom_content_loaded: swapped ? NaN : nav.domContentLoadedEventEnd - c, socket_new: B.socketNew - c,
                    socket_open: B.socketOpen - c, hello: B.hello - c,
                    status_running: run ? run.at - c : NaN, first_events: B.msgs.length ? B.msgs[0].at - c : NaN,
                    first_lane_drawn: now - c };
        sessionStorage.removeItem("benchClick");
      }
    }
  }, true);
  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("button.run-button"))
      sessionStorage.setItem("benchClick", String(performance.timeOrigin + performance.now()));
  }, true);
})();
"""

# What the page hands back: message arrivals (with their events' run times), draws, clocks.
COLLECT = """() => {
  const B = window.__bench;
  return { msgs: B.msgs.map((m) => ({ at: m.at, ts: Array.from(m.ts) })), drawn: B.drawn, firstLane: B.firstLane,
           clickToLane: B.clickToLane, status: B.status, timeOrigin: performance.timeOrigin,
           skew: Date.now() - (performance.timeOrigin + performance.now()) };
}"""
COUNTS = """() => { const B = window.__bench; const n = B.msgs.reduce((a, m) => a + m.ts.length, 0);
  return { n, first: B.msgs.length ? B.msgs[0].at : null, last: B.msgs.length ? B.msgs[B.msgs.length - 1].at : null, messages: B.msgs.length }; }"""


def synthetic_run(database: str, lanes: int = 100, per_lane: int = 1000) -> str:
    """A finished run of lanes x per_lane state changes, written straight to the store."""
    store = Store(database)
    store.open()
    # a valid run id (security.is_run_id: 10 characters of its alphabet)
    run = Run(id="benchrepa2", experiment="cpu-bound", params={"threads": lanes, "iterations": 10_000})
    store.insert_run(run)
    events = [[0, lane, "lane", {"name": f"worker-{lane}", "tid": 1000 + lane}] for lane in range(lanes)]
    states = ("running", "gil", "lock", "sleep", "io")
    for i in range(per_lane):
        for lane in range(lanes):
            events.append([i * 1_000_000 + lane * 1000, lane, "S", states[(i + lane) % 5]])
    run.add_events(events)
    run.finish(RunState.DONE, result=None, persist=store.finish_run)
    store.close()
    return run.id


def latencies_of(data: dict, started_at: float) -> list[float]:
    """ms from each event's record time (epoch) to the first draw after its message arrived."""
    drawn = data["drawn"]
    origin = data["timeOrigin"] + data["skew"]  # page clock -> Date.now()'s clock (CLOCK_REALTIME)
    out = []
    for m in data["msgs"]:
        i = bisect.bisect_left(drawn, m["at"])
        if i == len(drawn):
            continue
        drawn_epoch_ms = origin + drawn[i]
        out += [drawn_epoch_ms - (started_at * 1000 + t / 1e6) for t in m["ts"]]
    return out


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):.0f} ms, p95 {percentile(values, 95):.0f} ms, max {max(values):.0f} ms"


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("--replays", type=int, default=3)
    parser.add_argument("--floods", type=int, default=3)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--latency-runs", type=int, default=5)
    parser.add_argument("--no-record", action="store_true", help="print the figures, leave RESULTS.md alone")
    args = parser.parse_args()
    load0 = load_average()
    folder = tempfile.mkdtemp(prefix="bench-")
    database = os.path.join(folder, "runs.sqlite3")
    replay_id = synthetic_run(database)
    server = LiveServer(database, env={"PLAYGROUND_FAULTS": "1", "PLAYGROUND_PER_CLIENT": "0"}).start()
    rows = []
    try:
        # 1a. replay to a Python client
        if args.replays:
            rates = []
            for _ in range(args.replays):
                t0 = time.perf_counter()
                messages = server.read_socket(replay_id)
                seconds = time.perf_counter() - t0
                count = sum(len(m["events"]) for m in messages if m["type"] == "events")
                rates.append(count / seconds)
            rows.append(
                (
                    f"replay of a stored run to a Python WebSocket client (median of {args.replays})",
                    f"{count:,} events, {statistics.median(rates):,.0f} events/s",
                )
            )

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            # bypass_csp: the pages forbid eval, which wait_for_function(string) needs; nothing else changes
            context = browser.new_context(viewport={"width": 1300, "height": 900}, bypass_csp=True)
            context.add_init_script(INIT)
            page = context.new_page()

            # 1b. replay into Chromium
            if args.replays:
                in_page, whole, marks = [], [], []
                for _ in range(args.replays):
                    t0 = time.perf_counter()
                    page.goto(f"{server.url}/runs/{replay_id}")
                    page.wait_for_function("document.getElementById('run')?.dataset.finished === '1'", timeout=60_000)
                    page.wait_for_selector('#chart[data-drawn="1"]')
                    whole.append(count / (time.perf_counter() - t0))
                    c = page.evaluate(COUNTS)
                    in_page.append(c["n"] / max((c["last"] - c["first"]) / 1000, 1e-3))
                    marks.append(
                        page.evaluate("""() => { const n = performance.getEntriesByType("navigation")[0], B = window.__bench;
                      return { response_end: n.responseEnd, hello: B.hello, first_events: B.msgs[0].at, last_events: B.msgs[B.msgs.length - 1].at,
                               last_drawn: B.drawn[B.drawn.length - 1] }; }""")
                    )
                rows.append(
                    (
                        f"replay of the same run into Chromium (median of {args.replays})",
                        f"in page, first to last events message: **{statistics.median(in_page):,.0f} events/s** "
                        f"({c['messages']} messages); page load to run finished in the chart: {statistics.median(whole):,.0f} events/s",
                    )
                )
                rows.append(
                    (
                        "where the replay's time goes in the page (median ms after navigation start)",
                        ", ".join(
                            f"{k.replace('_', ' ')} {statistics.median(x[k] for x in marks):.0f}" for k in marks[0]
                        ),
                    )
                )

            # 2. live event floods: a print() loop (the experiment is the bound), and the
            # recorder's own marks as fast as they go (what the path to the page carries)
            for kind, what in (("event-flood", "print() loop"), ("mark-flood", "probe.mark() loop")):
                if not args.floods:
                    break
                floods = []
                for _ in range(args.floods):
                    blocker = server.start_run("io-bound", threads=1, sleep_ms=500)
                    flood = server.start_run("fault", kind=kind)
                    page.goto(f"{server.url}/runs/{flood['id']}")
                    page.wait_for_function("window.__bench.status.length > 0", timeout=30_000)
                    requests.post(f"{server.url}/runs/{blocker['id']}/cancel", json={}, timeout=30)
                    page.wait_for_function("document.getElementById('run')?.dataset.finished === '1'", timeout=120_000)
                    c = page.evaluate(COUNTS)
                    run = requests.get(f"{server.url}/api/runs/{flood['id']}", timeout=10).json()
                    span = (run["finished_at"] or 0) - (run["started_at"] or 0)
                    floods.append(
                        {
                            "n": c["n"],
                            "rate": c["n"] / max((c["last"] - c["first"]) / 1000, 1e-3),
                            "produced": run["counts"]["events"] / max(span, 1e-3),
                            "state": run["state"],
                            "seconds": (c["last"] - c["first"]) / 1000,
                            "messages": c["messages"],
                        }
                    )
                f = floods[len(floods) // 2]
                rows.append(
                    (
                        f"live {kind} run ({what}) into Chromium (median of {args.floods})",
                        f"**{statistics.median(x['rate'] for x in floods):,.0f} events/s** arriving in the page "
                        f"(each: " + ", ".join(f"{x['n']:,} in {x['seconds']:.2f} s" for x in floods) + "); "
                        f"the run produced {statistics.median(x['produced'] for x in floods):,.0f} events/s of its run time "
                        f"(started to finished; state {f['state']}), {f['messages']} messages",
                    )
                )

            # 3. click to first lane, warm pool
            if args.clicks:
                clicks, steps = [], []
                for _ in range(args.clicks):
                    # Warm: the replacement worker starts when the previous run ends (pool.py), so wait for it.
                    deadline = time.monotonic() + 30
                    while requests.get(f"{server.url}/healthz", timeout=5).json()["pool"]["warm"] < 1:
                        if time.monotonic() > deadline:
                            raise TimeoutError("no warm worker within 30 s")
                        time.sleep(0.05)
                    page.goto(f"{server.url}/experiments/hello-threads?threads=4&delay_ms=50")
                    page.click("button.run-button")
                    page.wait_for_function("window.__bench && window.__bench.clickToLane !== null", timeout=30_000)
                    clicks.append(page.evaluate("window.__bench.clickToLane"))
                    steps.append(page.evaluate("window.__bench.steps"))
                    page.wait_for_function("document.getElementById('run')?.dataset.finished === '1'", timeout=30_000)
                rows.append(
                    (
                        f"click on Run to first lane drawn, warm pool (hello-threads, {args.clicks} runs, in page)",
                        f"**p50 {percentile(clicks, 50):.0f} ms, p95 {percentile(clicks, 95):.0f} ms**, max {max(clicks):.0f} ms",
                    )
                )
                rows.append(
                    (
                        "where the click-to-lane time goes (median ms after the click)",
                        ", ".join(
                            f"{k.replace('_', ' ')} {statistics.median(x[k] for x in steps if x[k] == x[k]):.0f}"
                            for k in steps[0]
                            if any(x[k] == x[k] for x in steps)  # NaN: not this path (no navigation after a swap)
                        ),
                    )
                )

            # 4. live latency
            if args.latency_runs:
                for slug, query in (("cpu-bound", "threads=8"), ("io-bound", "threads=16&sleep_ms=100")):
                    lat, runs_ms = [], []
                    for _ in range(args.latency_runs):
                        page.goto(f"{server.url}/experiments/{slug}?{query}")
                        page.click("button.run-button")
                        page.wait_for_function(
                            "document.getElementById('run')?.dataset.finished === '1'", timeout=60_000
                        )
                        data = page.evaluate(COLLECT)
                        run_id = page.url.rstrip("/").rsplit("/", 1)[1].split("?")[0]
                        run = requests.get(f"{server.url}/api/runs/{run_id}", timeout=10).json()
                        one = latencies_of(data, run["started_at"])
                        runs_ms.append(f"{percentile(one, 95):.0f}")
                        lat += one
                    rows.append(
                        (
                            f"live latency, event recorded to drawn: {slug}?{query} ({args.latency_runs} runs, {len(lat):,} events)",
                            f"**{ms(lat)}**; p95 per run " + ", ".join(runs_ms) + " ms",
                        )
                    )
            browser.close()
    finally:
        server.stop()
    rows.append(("load average before / after", f"{load0} / {load_average()}"))
    if args.no_record:
        for what, figure in rows:
            print(f"{what}: {figure}")
        return
    record("Live path: events/s into Chromium, click to first lane, live latency (in page)", rows)


if __name__ == "__main__":
    sys.exit(main())
