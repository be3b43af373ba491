"""Downloads of a run: its Chrome trace, its events and result as CSV, its chart as SVG.

A running run exports what it has so far; a finished one always the same.
The builders are in ``playground/export.py``; here only the lookup and the
headers (a file name a person recognises: experiment, run id, what it is).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort

from .. import experiments, export
from ..services import services
from .security import is_run_id

bp = Blueprint("exports", __name__)


def _run(run_id: str):
    run = services().runs.get(run_id) if is_run_id(run_id) else None  # a malformed id never reaches the database
    if run is None:
        abort(404, f"There is no run {run_id!r}: it never existed or was deleted.")
    # Events first, then the summary: the summary may then count a few more
    # events than the file holds, never fewer (a running run keeps appending).
    events = list(run.events)
    return run.summary(), events


def _file(body: str, mimetype: str, summary: dict, suffix: str, disposition: str = "attachment") -> Response:
    name = f"{summary['experiment']}-{summary['id']}{suffix}"  # slug and id: [a-z0-9-] only, no quoting needed
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f"{disposition}; filename={name}"})


@bp.get("/runs/<run_id>/trace.json")
def trace(run_id):
    summary, events = _run(run_id)
    body = json.dumps(export.trace(summary, events), separators=(",", ":"))
    return _file(body, "application/json", summary, ".trace.json")


@bp.get("/runs/<run_id>/events.csv")
def events_csv(run_id):
    summary, events = _run(run_id)
    return _file(export.events_csv(summary, events), "text/csv", summary, "-events.csv")


@bp.get("/runs/<run_id>/result.csv")
def result_csv(run_id):
    summary, _ = _run(run_id)
    return _file(export.result_csv(summary, _declared_metrics(summary)), "text/csv", summary, "-result.csv")


@bp.get("/runs/<run_id>/chart.svg")
def chart_svg(run_id):
    summary, events = _run(run_id)
    # inline: the link on the run page opens the picture; the name still applies to "save as"
    return _file(export.svg(summary, events), "image/svg+xml", summary, "-chart.svg", disposition="inline")


def _declared_metrics(summary: dict) -> list[dict]:
    experiment = experiments.get(summary["experiment"], hidden=True)  # it ran, so it may be shown
    return experiment.schema()["metrics"] if experiment else []
