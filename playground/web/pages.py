"""HTML pages. A request from htmx (``HX-Request``) gets the fragment alone."""

from __future__ import annotations

import os

from flask import Blueprint, abort, render_template, request

from .. import annotations, experiments
from ..services import services
from ..store import StoreError
from .launch import check
from .presenter import STATE_LEGEND, experiment_page_context
from .security import is_run_id

bp = Blueprint("pages", __name__)


@bp.get("/")
def catalog():
    return render_template("catalog.html", catalog=experiments.CATALOG, recent=services().store.recent_runs(10))


@bp.get("/experiments/<slug>")
def experiment(slug):
    found = experiments.get(slug)
    if found is None:
        abort(404, f"There is no experiment named {slug!r}.")
    raw = request.args.to_dict()
    params, _, errors = check(services(), found, raw)
    context = experiment_page_context(found, params, raw, errors)
    if request.headers.get("HX-Request"):
        return render_template("_form.html", **context)
    return render_template("experiment.html", **context)


def _run_or_404(run_id):
    run = services().runs.get(run_id) if is_run_id(run_id) else None  # a malformed id never reaches the database
    if run is None:
        abort(404, f"There is no run {run_id!r}: it never existed or was deleted.")
    return run, experiments.get(run.experiment, hidden=True)  # it ran, so it may be shown


@bp.get("/runs/<run_id>")
def run_page(run_id):
    run, experiment = _run_or_404(run_id)
    return render_template(
        "run.html",
        run=run,
        experiment=experiment,
        summary=run.summary(),
        legend=STATE_LEGEND,
        annotations=annotations.for_run(run),
        cores=len(os.sched_getaffinity(0)),  # the busy-cores row's dashed line: the cores runs may use
    )


@bp.get("/runs/<run_id>/status")
def run_status(run_id):
    run, experiment = _run_or_404(run_id)
    return render_template("_status.html", run=run, summary=run.summary())


@bp.get("/runs/<run_id>/result")
def run_result(run_id):
    run, experiment = _run_or_404(run_id)
    return render_template(
        "_result.html", run=run, experiment=experiment, summary=run.summary(), annotations=annotations.for_run(run)
    )


@bp.get("/runs/<run_id>/observation")
def run_observation(run_id):
    """The footer's "what observing this run cost": the sampler's figures exist once the run has ended."""
    run, experiment = _run_or_404(run_id)
    return render_template("_observation.html", run=run, summary=run.summary())


@bp.app_errorhandler(404)
def not_found(error):
    if request.path.startswith("/api/"):
        return {"error": error.description or "not found", "errors": []}, 404
    return render_template("error.html", message=error.description), 404


@bp.app_errorhandler(StoreError)
def store_failed(error):
    """A locked or full database: say so (503), keep serving everything else."""
    if request.path.startswith("/api/") or request.is_json:
        return {"error": str(error), "errors": []}, 503
    return render_template("error.html", message=str(error)), 503
