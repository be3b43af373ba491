"""The JSON API and the one POST that starts runs (form or JSON).

Errors are JSON ``{"error": ..., "errors": [{"field", "rule", "message"}]}``
with 400 (malformed body), 404 (unknown experiment or run), 422 (a parameter
broke a rule) or 503 (queue full); the page shows the same messages inline.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from .. import annotations, experiments
from ..interpreters import run_params
from ..sandbox.pool import ClientBusy, QueueFull
from ..sandbox.syscalls import proc_readable
from ..services import services
from .launch import UnknownExperiment, launch
from .presenter import experiment_page_context
from .security import is_run_id

bp = Blueprint("api", __name__)


def _error(status: int, message: str, errors: list | None = None):
    body = {"error": message, "errors": [e.as_dict() if hasattr(e, "as_dict") else e for e in errors or []]}
    return jsonify(body), status


def _schema(experiment) -> dict:
    """The declaration, with ``python`` among the parameters and where it can run."""
    interpreters = services().interpreters
    schema = experiment.schema()
    schema["params"] = [p.schema() for p in run_params(experiment, interpreters)]
    schema["available_on"] = [i.id for i in interpreters.usable() if not i.missing(experiment.requires)]
    return schema


@bp.get("/api/experiments")
def catalog():
    interpreters = [i.as_dict() for i in services().interpreters.all()]
    return jsonify({"experiments": [_schema(e) for e in experiments.CATALOG], "interpreters": interpreters})


@bp.get("/api/experiments/<slug>")
def experiment(slug):
    found = experiments.get(slug)
    if found is None:
        return _error(
            404,
            f"no experiment named {slug!r}",
            [{"field": "experiment", "rule": "exists", "message": f"no experiment named {slug!r}"}],
        )
    return jsonify({**_schema(found), "code": found.source()})


@bp.post("/runs")
def start_run():
    if request.is_json:
        return _start_from_json()
    return _start_from_form()


def _start_from_json():
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # "[[[[...": the json module recurses per level, and 64 KiB holds ~65,000 of them
        return _error(400, "the JSON body is nested too deeply")
    if not isinstance(body, dict):
        return _error(400, 'the body must be a JSON object like {"experiment": slug, "params": {...}}')
    unknown = sorted(set(body) - {"experiment", "params"})
    if unknown:
        return _error(
            400,
            "unknown top-level keys",
            [
                {"field": k, "rule": "unknown", "message": f"{k} is not a known key (experiment, params)"}
                for k in unknown
            ],
        )
    slug, params = body.get("experiment"), body.get("params", {})
    if not isinstance(slug, str):
        return _error(
            400,
            "experiment is required",
            [{"field": "experiment", "rule": "required", "message": "experiment must be a slug string"}],
        )
    if not isinstance(params, dict):
        return _error(
            400,
            "params must be an object",
            [{"field": "params", "rule": "type", "message": "params must be an object"}],
        )
    try:
        run, errors = launch(services(), slug, params, client=request.remote_addr or "")
    except UnknownExperiment:
        return _error(
            404,
            f"no experiment named {slug!r}",
            [{"field": "experiment", "rule": "exists", "message": f"no experiment named {slug!r}"}],
        )
    except QueueFull as exc:  # 429 when it is this client's share that is used up
        return _error(429 if isinstance(exc, ClientBusy) else 503, str(exc))
    if errors:
        return _error(422, "invalid parameters", errors)
    body = {
        "id": run.id,
        "url": url_for("pages.run_page", run_id=run.id, _external=True),
        "events_url": url_for("pages.run_page", run_id=run.id, _external=True).replace("http", "ws", 1) + "/events",
        "api_url": url_for("api.run_json", run_id=run.id, _external=True),
        "delete_token": issue_delete_token(run.id),
    }
    return jsonify(body), 201, {"Location": body["url"]}


def _start_from_form():
    form = request.form.to_dict()
    slug = form.pop("experiment", "")
    try:
        run, errors = launch(services(), slug, form, await_viewer=True, client=request.remote_addr or "")
    except UnknownExperiment:
        return render_template("error.html", message=f"There is no experiment named {slug!r}."), 404
    except QueueFull as exc:
        return render_template("error.html", message=str(exc)), 429 if isinstance(exc, ClientBusy) else 503
    if errors:
        found = experiments.get(slug, hidden=services().faults)  # as launch() found it, hidden ones included
        params = run_params(found, services().interpreters)
        return render_template("experiment.html", **experiment_page_context(found, params, form, errors)), 422
    response = redirect(url_for("pages.run_page", run_id=run.id), code=303)
    set_delete_cookie(response, run.id, issue_delete_token(run.id))
    return response


@bp.get("/api/runs/<run_id>")
def run_json(run_id):
    run = services().runs.get(run_id) if is_run_id(run_id) else None  # a malformed id never reaches the database
    if run is None:
        return _error(404, f"no run {run_id!r}", [{"field": "run", "rule": "exists", "message": f"no run {run_id!r}"}])
    return jsonify({**run.summary(), "annotations": annotations.for_run(run)})


@bp.post("/runs/<run_id>/cancel")
def cancel(run_id):
    run = services().runs.get(run_id) if is_run_id(run_id) else None  # a malformed id never reaches the database
    if run is None:
        return _error(404, f"no run {run_id!r}", [{"field": "run", "rule": "exists", "message": f"no run {run_id!r}"}])
    if not run.state.finished:
        services().pool.cancel(run)
    if request.is_json or request.accept_mimetypes.best == "application/json":
        return jsonify({"id": run.id, "state": run.state.value})
    return redirect(url_for("pages.run_page", run_id=run.id), code=303)


# -- deletion by whoever started the run ------------------------------------------------
# The creator gets a secret: in the JSON answer (``delete_token``; the page keeps it in
# localStorage) or, from the form, in a cookie scoped to the run's address. The store
# keeps only its hash.


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_delete_token(run_id: str) -> str:
    token = secrets.token_urlsafe(18)
    services().store.set_delete_hash(run_id, _digest(token))
    return token


def delete_cookie_name(run_id: str) -> str:
    return f"delete_{run_id}"


def set_delete_cookie(response, run_id: str, token: str) -> None:
    response.set_cookie(
        delete_cookie_name(run_id), token, max_age=365 * 86400, path=f"/runs/{run_id}", httponly=True, samesite="Lax"
    )


@bp.post("/runs/<run_id>/delete")
def delete(run_id):
    run = services().runs.get(run_id) if is_run_id(run_id) else None
    if run is None:
        return _error(404, f"no run {run_id!r}", [{"field": "run", "rule": "exists", "message": f"no run {run_id!r}"}])
    body = request.get_json(silent=True) if request.is_json else request.form
    token = (
        (body or {}).get("token")
        or request.headers.get("X-Delete-Token")
        or request.cookies.get(delete_cookie_name(run_id))
        or ""
    )
    stored = services().store.delete_hash(run_id)
    if not isinstance(token, str) or not stored or not hmac.compare_digest(_digest(token), stored):
        return _error(403, "only whoever started this run can delete it (their browser holds the key)")
    if not run.state.finished:
        return _error(409, "the run is still going: cancel it or let it end, then delete it")
    services().store.delete_run(run_id)
    services().runs.forget(run_id)
    if request.is_json or request.accept_mimetypes.best == "application/json":
        return jsonify({"id": run_id, "deleted": True})
    response = redirect(url_for("rooms.runs_page"), code=303)
    response.delete_cookie(delete_cookie_name(run_id), path=f"/runs/{run_id}")
    return response


@bp.get("/healthz")
def healthz():
    readable, why = proc_readable(os.getpid())
    return jsonify({"ok": True, "pool": services().pool.statistics(), "os_states": {"available": readable, "why": why}})
