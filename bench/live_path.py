"""Click to first lane, events delivered per second, and the sampler's cost.

    python bench/live_path.py

1. Click on Run to the first lane drawn (warm pool), in headless Chromium,
   measured in the page: from the click to the chart's first `gantt:drawn`.
2. Events per second from the server to a client: a stored 100,000-event run
   replayed through the WebSocket, to a Python client and to Chromium (until
   the chart has every span).
3. The OS sampler's cost per sample, CPU share and achieved interval for runs
   with 4 and 32 threads (the sampler reports these on every run).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from common import CHROMIUM_ARGS, LiveServer, percentile, record, wait_done

from playground.runs import Run, RunState
from playground.store import Store


def synthetic_run(database: str, lanes: int = 100, per_lane: int = 1000) -> str:
    """A finished run of lanes x per_lane state changes, written straight to the store."""
    store = Store(database)
    store.open()
    run = Run(id="benchreplay", experiment="cpu-bound", params={"threads": lanes, "iterations": 10_000})
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


def main() -> None:
    from playwright.sync_api import sync_playwright

    folder = tempfile.mkdtemp(prefix="bench-")
    database = os.path.join(folder, "runs.sqlite3")
    replay_id = synthetic_run(database)
    server = LiveServer(database).start()
    rows = []
    try:
        # 2a. replay to a Python client
        t0 = time.perf_counter()
        messages = server.read_socket(replay_id)
        seconds = time.perf_counter() - t0
        count = sum(len(m["events"]) for m in messages if m["type"] == "events")
        rows.append(
            (
                "replay of a stored run to a Python WebSocket client",
                f"{count:,} events in {seconds * 1000:.0f} ms = {count / seconds:,.0f} events/s",
            )
        )

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            # 2b. replay to Chromium, until every span is in the chart
            t0 = time.perf_counter()
            page.goto(f"{server.url}/runs/{replay_id}")
            page.wait_for_function("document.getElementById('run').dataset.finished === '1'", timeout=60_000)
            page.wait_for_selector('#chart[data-drawn="1"]')
            seconds = time.perf_counter() - t0
            rows.append(
                (
                    "replay of the same run into Chromium (page load to all events in the chart)",
                    f"{seconds * 1000:.0f} ms = {count / seconds:,.0f} events/s",
                )
            )

            # 1. click to first lane, warm pool
            latencies = []
            for _ in range(10):
                page.goto(f"{server.url}/experiments/hello-threads?threads=4&delay_ms=50")
                page.evaluate("window.__t0 = 0")
                page.click("button.run-button")
                # the click time is read in the page of origin; the run page reports its first draw
                t_click = time.perf_counter()
                page.wait_for_selector('#chart[data-drawn="1"]', timeout=30_000)
                latencies.append((time.perf_counter() - t_click) * 1000)
                page.wait_for_selector(".verdict[data-held]", timeout=30_000)
            rows.append(
                (
                    "click on Run to first lane drawn, warm pool (10 runs)",
                    f"p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, max {max(latencies):.0f} ms",
                )
            )
            browser.close()

        # 3. sampler cost
        for threads in (4, 32):
            started = server.start_run("cpu-bound", threads=threads, iterations=10_000_000)
            run = wait_done(server, started["id"])
            s = run["observation"]["sampler"]
            events_per_s = run["counts"]["events"] / (run["result"]["metrics"]["wall_ms"] / 1000)
            rows.append(
                (
                    f"sampler, cpu-bound with {threads} threads ({s['samples']} samples)",
                    f"{s['cost_mean_us']:.0f} µs per sample, {s['cpu_percent']:.1f}% of a core, interval p50 {s['interval_p50_ms']:.2f} ms / p95 {s['interval_p95_ms']:.2f} ms",
                )
            )
            rows.append(
                (
                    f"events produced by that run ({threads} threads)",
                    f"{run['counts']['events']:,} events, {events_per_s:,.0f} events/s of run time",
                )
            )
    finally:
        server.stop()
    record("Live path: click to first lane, events per second, sampler cost", rows)


if __name__ == "__main__":
    sys.exit(main())
