"""The Gantt chart with 100 lanes and 100,000 spans: first paint, pan and zoom frame rate.

    python bench/gantt_render.py [--lanes 100] [--spans 100000] [--repeat 5] [--primitives]

Headless Chromium loads a bench page on the real server's origin (the page
itself is served by Playwright's router; ``/static/js/gantt.js`` and
``gantt.css`` come from ``python app.py``), generates synthetic events in the
page (state changes at ns-jittered times, as the sampler records them), and
measures with ``performance.now()``:

- first paint: ``new Gantt`` + ``addEvents`` (all at once, as a replay does)
  to the end of the frame that shows the first ``gantt:drawn`` (a rAF after it);
- pan and zoom: 2 s each of one wheel event per animation frame (zoom: wheel
  over the plot; pan: shift+wheel), frames/s = ``gantt:drawn`` per second,
  with the draw's own time (its ``detail.ms``) p50/p95.

With ``--primitives`` every lane also holds and waits for locks (about 400
hold bars and waiting spans per lane), a semaphore's row counts, and a busy-cores
row is drawn: the chart's drawing of issue 3 under the same load.

Median of ``--repeat`` page loads. Targets (issue 7): first paint <= 300 ms,
pan and zoom >= 30 frames/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from common import CHROMIUM_ARGS, LiveServer, load_average, percentile, record

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/static/css/gantt.css"></head>
<body style="margin:0"><div id="chart" style="width:1280px"></div>
<script type="module">
import { Gantt } from "/static/js/gantt.js";
const LANES = %(lanes)d, SPANS = %(spans)d, PRIMS = %(prims)d;
const STATES = ["running", "gil", "lock", "sleep", "io"];
let seed = 7; const rnd = () => (seed = (seed * 1103515245 + 12345) %% 2147483648) / 2147483648;
const events = [];
for (let l = 0; l < LANES; l++) events.push([0, l, "lane", { name: `worker-${l}`, tid: 40000 + l }]);
const per = Math.ceil(SPANS / LANES) + 1;
// --primitives: nine locks and a semaphore; every lane holds a lock while running, waits
// for one while blocked, and the semaphore's count changes on every I/O; busy cores every 10 ms.
if (PRIMS) for (let k = 1; k <= 10; k++) events.push([0, 0, "P", k < 10 ? { id: k, type: "Lock", name: `lock-${k}` } : { id: k, type: "Semaphore", name: "slots", bound: 4 }]);
let tMax = 0;
for (let l = 0; l < LANES; l++) {
  let t = Math.floor(rnd() * 1e6);
  for (let i = 0; i < per; i++) {
    t += 200000 + Math.floor(rnd() * 1.6e6); const s = STATES[(i + l) %% 5], id = 1 + ((l + i) %% 9);
    events.push([t, l, "S", s]);
    if (!PRIMS) continue;
    if (s === "running") events.push([t, l, "A", { id }], [t + 100000, l, "R", { id }]);
    if (s === "lock") events.push([t, l, "W", { id }], [t + 150000, l, "U", { id }]);
    if (s === "io") events.push([t, l, "C", { id: 10, name: "slots", value: i %% 5 }]);
  }
  tMax = Math.max(tMax, t);
}
if (PRIMS) for (let t = 10e6; t <= tMax; t += 10e6) events.push([t, -1, "cores", 1 + rnd()]);
events.sort((a, b) => a[0] - b[0]);
const frame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
const drawn = (el) => new Promise((r) => el.addEventListener("gantt:drawn", (e) => r(e.detail), { once: true }));
window.bench = async () => {
  const el = document.getElementById("chart");
  await frame();
  const t0 = performance.now();
  const g = new Gantt(el, { legend: true });
  const first = drawn(el);
  g.addEvents(events);
  const tAdded = performance.now();
  const d = await first;
  const tDrawn = performance.now();
  const tPaint = await frame();
  const out = { add_ms: tAdded - t0, draw_ms: d.ms, first_draw_ms: tDrawn - t0, first_paint_ms: tPaint - t0,
                spans: d.spans, lanes: d.lanes };
  await new Promise((r) => setTimeout(r, 400)); // the full (off-viewport) redraw after 250 ms idle
  const canvas = g.canvas, box = canvas.getBoundingClientRect();
  for (const mode of ["zoom", "pan"]) {
    const draws = []; const onDraw = (e) => draws.push(e.detail.ms);
    el.addEventListener("gantt:drawn", onDraw);
    const start = performance.now(); let n = 0, tEnd = start;
    while ((tEnd = await frame()) - start < 2000) {
      const zoomIn = Math.floor(n / 30) %% 2 === 0;
      const init = { clientX: box.left + 700, clientY: box.top + 300, bubbles: true, cancelable: true, deltaMode: 0 };
      if (mode === "zoom") init.deltaY = zoomIn ? -120 : 120; else { init.deltaY = n %% 60 < 30 ? 80 : -80; init.shiftKey = true; }
      canvas.dispatchEvent(new WheelEvent("wheel", init)); n++;
    }
    await frame();
    el.removeEventListener("gantt:drawn", onDraw);
    out[mode] = { frames: draws.length, seconds: (tEnd - start) / 1000, draw_ms: draws, inputs: n };
    g.fit(); await frame(); await frame();
  }
  return out;
};
window.benchReady = true;
</script></body></html>"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("--lanes", type=int, default=100)
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--primitives", action="store_true", help="add lock holds, waits, a counter and busy cores")
    args = parser.parse_args()
    load0 = load_average()
    server = LiveServer(os.path.join(tempfile.mkdtemp(prefix="bench-"), "runs.sqlite3")).start()
    html = PAGE % {"lanes": args.lanes, "spans": args.spans, "prims": int(args.primitives)}
    results = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for _ in range(args.repeat):
                page = browser.new_page(viewport={"width": 1300, "height": 900})
                page.route(
                    f"{server.url}/bench-gantt.html",
                    lambda route: route.fulfill(status=200, content_type="text/html", body=html),
                )
                page.goto(f"{server.url}/bench-gantt.html")
                page.wait_for_function("window.benchReady === true", timeout=30_000)
                results.append(page.evaluate("window.bench()"))
                page.close()
            browser.close()
    finally:
        server.stop()
    med = lambda f: statistics.median(f(r) for r in results)  # noqa: E731
    r0 = results[0]
    rows = [
        (
            f"first paint, {r0['lanes']} lanes, {r0['spans']:,} spans (median of {args.repeat})",
            f"**{med(lambda r: r['first_paint_ms']):.0f} ms** to the painted frame: addEvents {med(lambda r: r['add_ms']):.0f} ms, "
            f"first draw {med(lambda r: r['draw_ms']):.0f} ms; each run "
            + ", ".join(f"{r['first_paint_ms']:.0f}" for r in results)
            + " ms",
        ),
    ]
    for mode in ("zoom", "pan"):
        fps = [r[mode]["frames"] / r[mode]["seconds"] for r in results]
        draws = [ms for r in results for ms in r[mode]["draw_ms"]]
        rows.append(
            (
                f"{mode}: one wheel event per frame for 2 s (median of {args.repeat})",
                f"**{statistics.median(fps):.0f} frames/s** (each run " + ", ".join(f"{f:.0f}" for f in fps) + "); "
                f"draw p50 {percentile(draws, 50):.1f} ms, p95 {percentile(draws, 95):.1f} ms, max {max(draws):.1f} ms",
            )
        )
    rows.append(("load average before / after", f"{load0} / {load_average()}"))
    extra = ", holds, waits, counters and busy cores" if args.primitives else ""
    record(f"Gantt chart: {args.lanes} lanes, {args.spans:,} spans{extra}, headless Chromium", rows)


if __name__ == "__main__":
    main()
