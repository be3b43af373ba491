"""What the workshop pages and their JSON twins show, computed in one place:
a series with its runs' states, sweep points and histograms, the aligned rows
of two compared runs, and the SVG geometry of the charts (drawn on the server,
so the pages need no script of their own and the JSON is the same numbers).
"""

from __future__ import annotations

import math
import os

from flask import url_for

from .. import experiments
from ..experiments.declaration import RUN_METRICS
from ..runs import RunState
from ..series import histogram, metric_values, sweep_points
from ..services import services

REPEAT_METRIC = {"race-condition": "lost_updates"}  # experiments whose outcome varies, and what to count
FINISHED = frozenset(s.value for s in RunState if s.finished)  # however a run ended


def param(experiment, name):
    return next((p for p in experiment.params if p.name == name), None)


def metric_names(experiment) -> list[str]:
    return [m.name for m in experiment.metrics + RUN_METRICS]


def has_locked_variant(experiment) -> bool:
    variant = param(experiment, "variant")
    return bool(variant and "locked" in variant.choices)


def powers_of_two(up_to: int) -> list[int]:
    return [2**k for k in range(int(math.log2(max(1, up_to))) + 1)]


def series_options(experiment) -> dict:
    """What the experiment page offers: a sweep when there is a thread count, a repeat when outcomes vary."""
    threads = param(experiment, "threads")
    sweep = {"counts": powers_of_two(int(threads.max))} if threads and threads.max else None
    repeat = None
    if experiment.slug in REPEAT_METRIC:
        names = metric_names(experiment)
        repeat = {"metrics": names, "default": REPEAT_METRIC[experiment.slug], "locked": has_locked_variant(experiment)}
    return {"sweep": sweep, "repeat": repeat}


# -- series ---------------------------------------------------------------------------


def rows(run_ids: list[str]) -> dict:
    """State and result of each run: the store's rows, overlaid by the runs in flight in memory."""
    found = services().store.run_rows(run_ids)
    wanted = set(run_ids)
    for run in services().runs.live():
        if run.id in wanted:
            found[run.id] = {"id": run.id, "state": run.state.value, "position": run.position, "result": None}
    return found


def series_json(snap: dict, found: dict) -> dict:
    runs = []
    for run_id in snap["run_ids"]:
        row = found.get(run_id) or {}
        runs.append(
            {
                "id": run_id,
                "url": url_for("pages.run_page", run_id=run_id),
                "state": row.get("state", "queued"),
                "position": row.get("position"),
            }
        )
    endpoint = f"workshop.{snap['kind']}"
    return {
        **{k: snap[k] for k in ("id", "kind", "experiment", "params", "options", "state", "reason")},
        **{k: snap[k] for k in ("created_at", "finished_at")},
        "planned": len(snap["plan"]),
        "finished": sum(1 for r in runs if r["state"] in FINISHED),  # ended, however
        "done": sum(1 for r in runs if r["state"] == "done"),  # ended with a result
        "runs": runs,
        "url": url_for(endpoint + "_page", series_id=snap["id"]),
        "api_url": url_for(endpoint + "_json", series_id=snap["id"]),
    }


def sweep_data(series) -> dict:
    snap = series.snapshot()
    experiment = experiments.get(snap["experiment"], hidden=True)
    own = next((m for m in experiment.metrics if m.name == "speedup"), None)
    found = rows(snap["run_ids"])
    how = (
        f"the experiment's own speedup metric ({own.help.rstrip('.')}), measured inside each run"
        if own
        else "wall_ms of the 1-thread run / wall_ms of each run"
    )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {
        **series_json(snap, found),
        "speedup": {"source": "metric" if own else "wall_ms", "explanation": how},
        "cores": cores,
        "points": sweep_points(snap, found, own is not None),
    }


def _repeat_side(series, metric: str) -> dict | None:
    if series is None:
        return None
    snap = series.snapshot()
    found = rows(snap["run_ids"])
    values = metric_values(snap, found, metric)
    return {**series_json(snap, found), "metric": metric, "values": values, "histogram": histogram(values)}


def repeat_data(series, companion) -> dict:
    """This series and its twin (the locked variant, or the one it is the locked twin of).

    Each side has its own bins, so the spread within each shows (one shared
    range would squeeze ~6,000 lost updates and 0 into the two end bins), and
    both share one count scale, ``ymax``."""
    metric = series.options["metric"]
    main, twin = _repeat_side(series, metric), _repeat_side(companion, metric)
    ymax = max([0, *main["histogram"]["counts"], *(twin["histogram"]["counts"] if twin else [])])
    return {**main, "companion": twin, "ymax": ymax}


def stats(values: list[float]) -> dict | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return {"min": ordered[0], "median": f"{median:g}", "mean": f"{sum(values) / len(values):.4g}", "max": ordered[-1]}


# -- compare -------------------------------------------------------------------------


def compare_rows(a: dict, b: dict, ea, eb) -> list[dict]:
    """One row per metric either run reported, in the declared order: the tables align by name."""
    ra, rb = a.get("result") or {}, b.get("result") or {}
    ma, mb = ra.get("metrics") or {}, rb.get("metrics") or {}
    out, seen = [], set()
    declared = [(m.name, m.unit, m.help) for e in (ea, eb) for m in e.metrics + RUN_METRICS]
    observed = list(dict.fromkeys([*(ra.get("observed") or {}), *(rb.get("observed") or {})]))
    declared += [
        (f"observed.{k}", "ms" if k.endswith("_ms") else "", "summed over all threads, as the OS saw them")
        for k in observed
    ]
    for name, unit, help_text in declared:
        if name in seen:
            continue
        seen.add(name)
        key = name.removeprefix("observed.")
        va = (ra.get("observed") or {}).get(key) if name.startswith("observed.") else ma.get(name)
        vb = (rb.get("observed") or {}).get(key) if name.startswith("observed.") else mb.get(name)
        if va is None and vb is None:
            continue
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (va, vb))
        ratio = round(vb / va, 3) if numeric and va else None
        out.append({"name": name, "unit": unit, "help": help_text, "a": va, "b": vb, "ratio": ratio})
    return out


# -- chart geometry (SVG user units) -----------------------------------------------------

W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 380, 56, 24, 18, 46


def _two(v: float) -> str:
    return f"{v:g}" if v >= 1 else f"{v:.3g}"


def sweep_plot(points: list[dict], cores: int) -> dict:
    """Speedup against threads, both on log2 axes: the ideal y = x is the diagonal."""
    counts = [p["threads"] for p in points] or [1]
    x1 = math.log2(max(2, *counts))
    logs = [math.log2(p["speedup"]) for p in points if p["speedup"]]
    y0 = min([-1, *(math.floor(v) for v in logs)])
    y1 = max([math.ceil(x1), *(math.ceil(v) for v in logs)])

    def px(v):
        return LEFT + v / x1 * (W - LEFT - RIGHT)

    def py(v):
        return H - BOTTOM - (v - y0) / (y1 - y0) * (H - TOP - BOTTOM)

    dots = [{**p, "x": px(math.log2(p["threads"])), "y": py(math.log2(p["speedup"]))} for p in points if p["speedup"]]
    inside = cores <= 2**x1
    return {
        "w": W,
        "h": H,
        "left": LEFT,
        "right": W - RIGHT,
        "top": TOP,
        "bottom": H - BOTTOM,
        "xticks": [{"x": px(math.log2(c)), "label": c} for c in counts],
        "yticks": [{"y": py(k), "label": _two(2.0**k)} for k in range(y0, y1 + 1)],
        "ideal": {"x1": px(0), "y1": py(0), "x2": px(x1), "y2": py(x1)},
        "cores": {"x": px(math.log2(cores)) if inside else W - RIGHT, "inside": inside, "count": cores},
        "line": " ".join(f"{d['x']:.1f},{d['y']:.1f}" for d in dots),
        "dots": dots,
    }


HW, HH, HLEFT, HRIGHT, HTOP, HBOTTOM = 380, 240, 40, 12, 14, 62


def bin_label(edges: list, i: int, integer: bool) -> str:
    a, b = edges[i], edges[i + 1]
    if integer:
        return f"{a:,}" if b - a == 1 else f"{a:,}–{b - 1:,}"
    return f"{a:.3g}–{b:.3g}"


def histogram_plot(hist: dict, ymax: int) -> dict:
    """Bars on a shared count scale (``ymax`` over both sides), labelled with their bins."""
    n, ymax, room = len(hist["counts"]), max(1, ymax), HW - HLEFT - HRIGHT
    width = min(room / max(1, n), 60)  # one bin (all zeros) is a bar, not a wall
    bars = []
    for i, count in enumerate(hist["counts"]):
        height = count / ymax * (HH - HTOP - HBOTTOM)
        x = HLEFT + (room - n * width) / 2 + i * width
        bars.append(
            {
                "x": x + 1,
                "w": max(1, width - 2),
                "y": HH - HBOTTOM - height,
                "h": height,
                "count": count,
                "cx": x + width / 2,
                "label": bin_label(hist["edges"], i, hist["integer"]),
            }
        )
    ticks = sorted({0, ymax, ymax // 2} if ymax >= 4 else set(range(ymax + 1)))
    return {
        "w": HW,
        "h": HH,
        "left": HLEFT,
        "right": HW - HRIGHT,
        "top": HTOP,
        "bottom": HH - HBOTTOM,
        "bars": bars,
        "yticks": [{"y": HH - HBOTTOM - t / ymax * (HH - HTOP - HBOTTOM), "label": t} for t in ticks],
    }
