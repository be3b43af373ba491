"""The Gantt chart's locks, waits, counters and busy cores, in a real browser.

Two ways in: synthetic events fed to the real /static modules on a page of the
live server's origin (served by Playwright's router, with the app's own CSP, so
every module must load without inline script or eval), for drawing correctness;
and a real ``deadlock`` run, for what a learner does: hover a lock's row and see
the threads that touched it light up (``data-highlight`` on the canvas).
"""

import json

from conftest import events_of, needs_chromium

from playground.web.security import CONTENT_SECURITY_POLICY

pytestmark = needs_chromium

MS = 1_000_000


def synthetic_events() -> list:
    """Two threads deadlocked on two locks, one with a semaphore slot, an Event, a queue, busy cores."""
    ev = [[0, 0, "lane", {"name": "MainThread", "tid": 100}]]
    names = {1: "takes-a-then-b", 2: "takes-b-then-a", 3: "slot-user"}
    for lane, name in names.items():
        ev.append([1 * MS, lane, "lane", {"name": name, "tid": 100 + lane}])
    ev += [
        [0, 0, "P", {"id": 1, "type": "Lock", "name": "lock_a"}],
        [0, 0, "P", {"id": 2, "type": "Lock", "name": "lock_b"}],
        [0, 0, "P", {"id": 3, "type": "Semaphore", "name": "slots", "bound": 2}],
        [0, 0, "P", {"id": 4, "type": "Event", "name": "ready"}],
        [0, 0, "P", {"id": 5, "type": "Queue", "name": "jobs", "maxsize": 3}],
        [0, -1, "M", "lane -1 is the process: this must not make a lane"],
        [0, -1, "S", "running"],
    ]
    for lane in (0, 1, 2, 3):
        ev.append([1 * MS, lane, "S", "running"])
    # lane 1 holds lock_a (its owner as the supervisor read it), then waits for lock_b;
    # lane 2 holds lock_b (inferred, as for a plain Lock), then waits for lock_a.
    ev += [
        [5 * MS, 1, "A", {"id": 1}],
        [6 * MS, 2, "A", {"id": 2, "inferred": True}],
        [7 * MS, 1, "S", "sleep"],
        [7 * MS, 2, "S", "sleep"],
        [55 * MS, 1, "S", "lock"],
        [55 * MS, 1, "W", {"id": 2}],
        [56 * MS, 2, "S", "lock"],
        [56 * MS, 2, "W", {"id": 1}],
    ]
    # lane 3 takes a semaphore slot for a while; the queue fills and drains; an Event is set then cleared.
    ev += [
        [10 * MS, 3, "A", {"id": 3}],
        [10 * MS, 3, "C", {"id": 3, "name": "slots", "value": 1}],
        [40 * MS, 3, "R", {"id": 3}],
        [40 * MS, 3, "C", {"id": 3, "name": "slots", "value": 2}],
        [20 * MS, 0, "F", {"id": 4, "set": True}],
        [70 * MS, 0, "F", {"id": 4, "set": False}],
        [42 * MS, 3, "S", "io"],
    ]
    for i, n in enumerate([1, 2, 3, 2, 1, 0]):
        ev.append([(12 + 8 * i) * MS, 0, "C", {"id": 5, "name": "jobs", "value": n}])
    for i, n in enumerate([5, 7, 6]):
        ev.append([(15 + 10 * i) * MS, 3, "C", {"name": "items done", "value": n}])  # a counter without id
    for i in range(1, 11):
        ev.append([i * 10 * MS, -1, "cores", 1.9 if i < 6 else 0.05])
    ev.append([100 * MS, 0, "S", "lock"])
    return sorted(ev, key=lambda e: e[0])


def open_chart(page, origin: str, events: list, options: dict) -> None:
    """A page on the live server's origin that feeds `events` to the real /static/js/gantt.js."""
    html = (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<link rel="stylesheet" href="/static/css/gantt.css"></head>'
        '<body><div id="chart"></div>'
        '<script type="module" src="/chart-test/feed.js"></script></body></html>'
    )
    feed = (
        'import { Gantt } from "/static/js/gantt.js";\n'
        f"const chart = new Gantt(document.getElementById('chart'), {json.dumps(options)});\n"
        f"chart.addEvents({json.dumps(events)});\n"
        "chart.fit();\n"
        "window.chart = chart;\n"
        "document.body.dataset.ready = '1';\n"
    )
    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}
    page.route(
        f"{origin}/chart-test/page.html", lambda r: r.fulfill(body=html, content_type="text/html", headers=headers)
    )
    page.route(
        f"{origin}/chart-test/feed.js", lambda r: r.fulfill(body=feed, content_type="text/javascript", headers=headers)
    )
    page.goto(f"{origin}/chart-test/page.html")
    page.wait_for_selector('body[data-ready="1"]', timeout=10_000)
    page.wait_for_selector('#chart[data-drawn="1"]', timeout=10_000)


def rows_of(page, host="#chart") -> dict:
    return {row["id"]: row for row in json.loads(page.get_attribute(f"{host} canvas", "data-rows"))}


def point(page, y: float, x_share: float = 0.6, host="#chart") -> None:
    """Moves the mouse to (x_share of the plot, y px from the canvas top), scrolling y into view first."""
    canvas = page.locator(f"{host} canvas")
    canvas.evaluate("(c, y) => window.scrollTo(0, c.getBoundingClientRect().top + window.scrollY + y - 300)", y)
    box = canvas.bounding_box()
    gutter = 130
    page.mouse.move(box["x"] + gutter + (box["width"] - gutter - 8) * x_share, box["y"] + y)


def lane_top(page, index: int, host="#chart") -> float:
    """The top of the index-th lane: the 22 px axis, then lanes of data-lane-height px."""
    return 22 + index * float(page.get_attribute(f"{host} canvas", "data-lane-height"))


def test_synthetic_events_draw_holds_waits_counters_and_cores(live, page):
    open_chart(page, live.url, synthetic_events(), {"legend": True, "cores": 2})
    chart = page.locator("#chart")
    assert chart.get_attribute("data-lanes") == "4"  # lane -1 never became a thread lane
    assert chart.get_attribute("data-primitives") == "5"
    assert chart.get_attribute("data-holds") == "3" and chart.get_attribute("data-waits") == "2"
    assert chart.get_attribute("data-counters") == "3"  # slots, jobs, and the id-less "items done"
    assert chart.get_attribute("data-cores") == "10"
    assert page.evaluate("chart.primitives()") == [
        {"id": 1, "type": "Lock", "name": "lock_a"},
        {"id": 2, "type": "Lock", "name": "lock_b"},
        {"id": 3, "type": "Semaphore", "name": "slots"},
        {"id": 4, "type": "Event", "name": "ready"},
        {"id": 5, "type": "Queue", "name": "jobs"},
    ]
    rows = rows_of(page)
    assert list(rows) == ["cores", 1, 2, 3, 4, 5, "counter:items done"]
    legend = page.inner_text("#chart .gantt-legend")
    assert "holds a lock" in legend and "waits for a lock" in legend and "waiting its turn for the GIL" in legend

    # Pixels: hold bars in the Okabe-Ito blue, the busy-cores line in the running green.
    colours = page.eval_on_selector(
        "#chart canvas",
        """(c, ys) => {
            const ctx = c.getContext('2d'), dpr = c.width / c.clientWidth, n = {hold: 0, cores: 0};
            const count = (key, rgb, y0, y1) => {
                const d = ctx.getImageData(0, Math.round(y0 * dpr), c.width, Math.round((y1 - y0) * dpr)).data;
                for (let i = 0; i < d.length; i += 4)
                    if (Math.abs(d[i] - rgb[0]) + Math.abs(d[i + 1] - rgb[1]) + Math.abs(d[i + 2] - rgb[2]) < 30) n[key]++;
            };
            count('hold', [0, 114, 178], 22, ys.lanesEnd);
            count('cores', [0, 158, 115], ys.coresTop, ys.coresTop + ys.coresHeight);
            return n;
        }""",
        {
            "lanesEnd": rows["cores"]["top"] - 6,
            "coresTop": rows["cores"]["top"],
            "coresHeight": rows["cores"]["height"],
        },
    )
    assert colours["hold"] > 200 and colours["cores"] > 50, colours

    # Hovering a lock's row lights up the lanes that held or waited for it, and only those.
    point(page, rows[1]["top"] + rows[1]["height"] / 2)
    page.wait_for_selector('#chart canvas[data-highlight="1,2"]', timeout=5_000)
    assert "held by takes-a-then-b" in page.inner_text("#chart .gantt-tip")
    point(page, rows[3]["top"] + rows[3]["height"] / 2, x_share=0.2)
    page.wait_for_selector('#chart canvas[data-highlight="3"]', timeout=5_000)
    assert "free slot" in page.inner_text("#chart .gantt-tip")

    # A waiting span says what it waits for and who holds that; its lanes light up too.
    lane1 = lane_top(page, 1)
    point(page, lane1 + 17, x_share=0.8)  # the state bar, late in the run: waiting for lock_b
    page.wait_for_selector('#chart canvas[data-highlight="1,2"]', timeout=5_000)
    tip = page.inner_text("#chart .gantt-tip")
    assert "waiting for lock_b (Lock), held by takes-b-then-a" in tip, tip
    # The hold strip under lane 3: its semaphore slot.
    point(page, lane_top(page, 3) + 32 + 5, x_share=0.25)
    page.wait_for_selector('#chart canvas[data-highlight="3"]', timeout=5_000)
    assert "holds slots (Semaphore)" in page.inner_text("#chart .gantt-tip")
    # Off every primitive: no highlight.
    point(page, lane_top(page, 0) + 17, x_share=0.5)
    page.wait_for_selector("#chart canvas:not([data-highlight])", timeout=5_000)

    # The page's own calls, reflected the same way.
    page.evaluate("chart.highlightLanes([3, 0])")
    assert chart.locator("canvas").get_attribute("data-highlight") == "0,3"
    page.evaluate("chart.highlightPrimitive(2)")
    assert chart.locator("canvas").get_attribute("data-highlight") == "1,2"
    page.evaluate("chart.highlightPrimitive(null)")
    assert chart.locator("canvas").get_attribute("data-highlight") is None


def test_keys_zoom_pan_and_fit(live, page):
    open_chart(page, live.url, synthetic_events(), {"legend": True})
    page.focus("#chart canvas")
    fit = page.locator("#chart .gantt-fit")
    assert fit.is_disabled()
    for key, zoomed in (("+", True), ("0", False), ("-", True), ("Home", False), ("ArrowLeft", True), ("0", False)):
        page.keyboard.press(key)
        page.wait_for_selector(f"#chart .gantt-fit{':not([disabled])' if zoomed else '[disabled]'}", timeout=5_000)


def test_a_real_deadlock_run_hovering_a_lock_row_highlights_its_lanes(live, page):
    """Needs the worker and supervisor to emit P, W and A for the run's locks (issue 3)."""
    started = live.start_run("deadlock", variant="naive", threads=2, hold_ms=50)
    events = events_of(live.read_socket(started["id"]))
    locks = {e[3]["id"]: e[3]["name"] for e in events if e[2] == "P" and e[3].get("type") in ("Lock", "RLock")}
    assert len(locks) == 2, f"the run named no locks: {sorted({e[2] for e in events})}"
    touched = {
        lock: sorted({e[1] for e in events if e[2] in ("W", "A") and e[3].get("id") == lock and e[1] >= 0})
        for lock in locks
    }
    assert all(len(lanes) == 2 for lanes in touched.values()), touched  # each lock: its holder and its waiter

    page.goto(f"{live.url}/runs/{started['id']}")
    page.wait_for_selector('#run[data-finished="1"]', timeout=30_000)
    page.wait_for_selector('#chart[data-drawn="1"]', timeout=30_000)
    rows = rows_of(page)
    for lock, lanes in touched.items():
        assert lock in rows, (lock, list(rows))
        point(page, rows[lock]["top"] + rows[lock]["height"] / 2, x_share=0.5)
        page.wait_for_selector(f'#chart canvas[data-highlight="{",".join(map(str, lanes))}"]', timeout=5_000)
        assert locks[lock] in page.inner_text("#chart .gantt-tip")
