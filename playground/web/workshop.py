"""Workshop pages: sweeps and repeats (series of runs, series.py), and two runs compared.

| method + path | what |
| --- | --- |
| `POST /sweeps` | form or JSON `{"experiment", "params", "up_to"}`: one run per thread count 1, 2, 4… up_to |
| `GET /sweeps/<id>`, `/api/sweeps/<id>` | speedup against thread count, filling in live |
| `POST /repeats` | form or JSON `{"experiment", "params", "repeats", "metric", "with_locked"}` |
| `GET /repeats/<id>`, `/api/repeats/<id>` | a histogram of the metric over the runs, beside its locked twin |
| `POST /series/<id>/cancel` | stop a sweep or repeat and its run in flight |
| `GET /compare?a=&b=`, `/api/compare?a=&b=` | two runs side by side on one time scale |

Every run of a series goes through launch(), the one path the Run button
takes: validated by check() before anything is stored, counted in the
requester's per-client share (series.py says why one at a time).
"""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, url_for

from .. import experiments
from ..experiments import Param
from ..sandbox.pool import QueueFull
from ..series import Series, SeriesBook
from ..services import services
from ..store import StoreError
from . import workshop_view as view
from .launch import check, launch
from .security import is_run_id

bp = Blueprint("workshop", __name__)


@bp.record_once
def _init(state) -> None:
    state.app.extensions["workshop"] = SeriesBook(state.app.extensions["playground"].store)


def book() -> SeriesBook:
    return current_app.extensions["workshop"]


class PoolSource:
    """The pool as a feeder sees it: launch() for the person who asked, as if they pressed Run."""

    def __init__(self, svc, slug: str, client: str):
        self.svc, self.slug, self.client = svc, slug, client
        self._runs = {}

    def submit(self, params: dict) -> str | None:
        try:
            run, errors = launch(self.svc, self.slug, params, client=self.client)
        except QueueFull:  # the client's share or the whole queue: ask again later
            return None
        if errors:  # validated up front; only a changed interpreter list gets here
            raise ValueError("; ".join(e.message for e in errors))
        self._runs[run.id] = run
        return run.id

    def wait(self, run_id: str, timeout: float) -> bool:
        run, version, deadline = self._runs[run_id], -1, time.monotonic() + timeout
        while True:
            # A cursor past every event: follow() wakes on status changes only and says
            # "ended" once the run's end is durable (runs.py), so the next point can read it.
            _, _, version, ended = run.follow(2**62, version, max(0.0, deadline - time.monotonic()))
            if ended:
                self._runs.pop(run_id, None)
                return True
            if time.monotonic() >= deadline:
                return False

    def cancel(self, run_id: str) -> None:
        run = self._runs.get(run_id)
        if run is not None and not run.state.finished:
            self.svc.pool.cancel(run)


# -- what the experiment page's section and the run page's form need ------------------


bp.add_app_template_global(view.series_options)


@bp.app_template_global()
def compare_picks(run) -> list[dict]:
    """Recent runs of the same experiment, for the run page's "compare with…" form."""
    try:
        recent = services().store.recent_runs_of(run.experiment, 11)
    except StoreError:  # a locked or broken database must not take the run page down: pasting an id still works
        return []
    return [r for r in recent if r["id"] != run.id][:10]


# -- starting a series ------------------------------------------------------------


def _refuse(status: int, message: str, errors=()):
    errors = [e.as_dict() if hasattr(e, "as_dict") else e for e in errors]
    if request.is_json:
        return jsonify({"error": message, "errors": errors}), status
    messages = [e["message"] for e in errors] or [message]
    if request.headers.get("HX-Request"):  # htmx swaps 2xx only: the section shows the messages in place
        return render_template("_series_errors.html", messages=messages)
    return render_template("error.html", message="; ".join(messages)), status


def _body(extra: tuple[str, ...]):
    """(slug, raw params, raw series options) from a form or a JSON body; None when malformed."""
    if request.is_json:
        body = request.get_json(silent=True)
        ok = isinstance(body, dict) and isinstance(body.get("experiment"), str)
        if not ok or not isinstance(body.get("params", {}), dict) or set(body) - {"experiment", "params", *extra}:
            return None
        return body["experiment"], body.get("params", {}), {k: body[k] for k in extra if k in body}
    form = request.form.to_dict()
    return (
        form.pop("experiment", ""),
        {k: v for k, v in form.items() if k not in extra},
        {k: form[k] for k in extra if k in form},
    )


def _validated(slug: str, raw: dict, overrides: list[dict]):
    """(experiment, base values, plan, errors): every run of the plan checked before any starts."""
    experiment = experiments.get(slug, hidden=services().faults)
    if experiment is None:
        abort(404, f"There is no experiment named {slug!r}.")
    _, base, errors = check(services(), experiment, raw)
    plan = []
    for override in overrides if not errors else ():
        _, values, errors = check(services(), experiment, {**raw, **override})
        if errors:
            break
        plan.append(values)
    return experiment, base, plan, errors


def _started(first: Series, *others: Series):
    for series in (first, *others):  # a source each: a feeder waits on its own runs only
        book().start(series, PoolSource(services(), series.experiment, request.remote_addr or ""))
    endpoint = f"workshop.{first.kind}_page"
    url = url_for(endpoint, series_id=first.id)
    if request.is_json:
        body = {
            "id": first.id,
            "url": url_for(endpoint, series_id=first.id, _external=True),
            "api_url": url_for(f"workshop.{first.kind}_json", series_id=first.id, _external=True),
            "companion": first.options.get("companion"),
        }
        return jsonify(body), 201, {"Location": body["url"]}
    if request.headers.get("HX-Request"):
        return "", 200, {"HX-Redirect": url}
    return redirect(url, code=303)


@bp.post("/sweeps")
def start_sweep():
    parsed = _body(("up_to",))
    if parsed is None:
        return _refuse(400, 'the body must be {"experiment": slug, "params": {...}, "up_to": n}')
    slug, raw, extra = parsed
    experiment = experiments.get(slug, hidden=services().faults)
    threads = experiment and view.param(experiment, "threads")
    if not threads or threads.kind is not int or not threads.max:
        abort(404, f"There is no experiment named {slug!r} with a thread count to sweep.")
    cap = Param("up_to", int, int(threads.max), "The largest thread count of the sweep.", min=1, max=threads.max)
    options, errors = experiments.validate((cap,), extra)
    if errors:
        return _refuse(422, "invalid sweep", errors)
    counts = view.powers_of_two(options["up_to"])
    experiment, base, plan, errors = _validated(slug, raw, [{"threads": n} for n in counts])
    if errors:
        return _refuse(422, "invalid parameters", errors)
    return _started(Series.new("sweep", slug, base, plan, up_to=options["up_to"]))


@bp.post("/repeats")
def start_repeat():
    parsed = _body(("repeats", "metric", "with_locked"))
    if parsed is None:
        return _refuse(400, 'the body must be {"experiment": slug, "params": {...}, "repeats": n, "metric": name}')
    slug, raw, extra = parsed
    experiment = experiments.get(slug, hidden=services().faults)
    if experiment is None:
        abort(404, f"There is no experiment named {slug!r}.")
    names = view.metric_names(experiment)
    declared = (
        Param("repeats", int, 10, "How many runs.", min=2, max=50),
        Param("metric", str, view.REPEAT_METRIC.get(slug, names[0]), "The metric to count.", choices=tuple(names)),
        Param("with_locked", bool, False, "Repeat the locked variant beside it."),
    )
    options, errors = experiments.validate(declared, extra)
    if errors:
        return _refuse(422, "invalid repeat", errors)
    experiment, base, plan, errors = _validated(slug, raw, [{}])
    if errors:
        return _refuse(422, "invalid parameters", errors)
    n, metric = options["repeats"], options["metric"]
    series = Series.new("repeat", slug, base, plan * n, metric=metric)
    if not (options["with_locked"] and view.has_locked_variant(experiment) and base.get("variant") != "locked"):
        return _started(series)
    _, twin_base, twin_plan, errors = _validated(slug, {**raw, "variant": "locked"}, [{}])
    if errors:
        return _refuse(422, "invalid parameters for the locked variant", errors)
    twin = Series.new("repeat", slug, twin_base, twin_plan * n, metric=metric, companion=series.id)
    series.options["companion"] = twin.id
    return _started(series, twin)


@bp.post("/series/<series_id>/cancel")
def cancel_series(series_id):
    series = _series_or_404(series_id, None)
    book().cancel(series.id)
    companion = series.options.get("companion")
    if companion:
        book().cancel(companion)
    if request.headers.get("HX-Request") or request.is_json:
        return jsonify({"id": series.id, "state": series.snapshot()["state"]})
    return redirect(url_for(f"workshop.{series.kind}_page", series_id=series.id), code=303)


# -- reading a series -------------------------------------------------------------------


def _series_or_404(series_id: str, kind: str | None) -> Series:
    series = book().get(series_id) if is_run_id(series_id) else None  # same id shape as runs
    if series is None or (kind and series.kind != kind):
        abort(404, f"There is no {kind or 'series'} {series_id!r}.")
    return series


def _data(series: Series) -> dict:
    if series.kind == "sweep":
        return view.sweep_data(series)
    companion = series.options.get("companion")
    return view.repeat_data(series, book().get(companion) if companion else None)


def _series_page(kind: str, series_id: str, template: str):
    series = _series_or_404(series_id, kind)
    experiment = experiments.get(series.experiment, hidden=True)
    return render_template(template, data=_data(series), experiment=experiment, view=view)


@bp.get("/sweeps/<series_id>")
def sweep_page(series_id):
    return _series_page("sweep", series_id, "sweep.html")


@bp.get("/sweeps/<series_id>/chart")
def sweep_chart(series_id):
    return _series_page("sweep", series_id, "_sweep_chart.html")


@bp.get("/api/sweeps/<series_id>")
def sweep_json(series_id):
    return jsonify(_data(_series_or_404(series_id, "sweep")))


@bp.get("/repeats/<series_id>")
def repeat_page(series_id):
    return _series_page("repeat", series_id, "repeat.html")


@bp.get("/repeats/<series_id>/chart")
def repeat_chart(series_id):
    return _series_page("repeat", series_id, "_repeat_chart.html")


@bp.get("/api/repeats/<series_id>")
def repeat_json(series_id):
    return jsonify(_data(_series_or_404(series_id, "repeat")))


# -- two runs compared ---------------------------------------------------------------------


def _pair() -> dict:
    """Both runs (a, b) as summaries with their experiments, or 404 naming the missing one."""
    found = {}
    for side in ("a", "b"):
        run_id = request.args.get(side, "").strip().rstrip("/").rsplit("/", 1)[-1]  # an id, or a run's address
        run = services().runs.get(run_id) if is_run_id(run_id) else None
        if run is None:
            abort(
                404, f"There is no run {run_id!r} to compare ({side}=…): paste the id of a run, e.g. from its address."
            )
        found[side] = run.summary()
        found["e" + side] = experiments.get(run.experiment, hidden=True)
    found["rows"] = view.compare_rows(found["a"], found["b"], found["ea"], found["eb"])
    return found


@bp.get("/compare")
def compare_page():
    return render_template("compare.html", **_pair())


@bp.get("/compare/table")
def compare_table():
    return render_template("_compare_table.html", **_pair())


@bp.get("/api/compare")
def compare_json():
    pair = _pair()
    return jsonify({"a": pair["a"], "b": pair["b"], "metrics": pair["rows"]})
