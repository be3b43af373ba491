"""Workshop rooms (rooms.py) and the browsable list of runs.

| method + path | what |
| --- | --- |
| `POST /rooms` | a new room: HTML → 303 to the instructor's link `/rooms/<code>?key=…` (and a cookie); JSON → 201 `{"code", "url", "key", "instructor_url", "api_url"}` |
| `GET /rooms/<code>`, `/api/rooms/<code>` | the room: its QR code, the instructor's latest run live, the class view |
| `GET /rooms/<code>/qr.svg` | the QR code of the room's address |
| `POST /rooms/<code>/runs` | a room run, with the key (`key` field, `X-Room-Key` header or the cookie); else 403 |
| `POST /rooms/<code>/class` | anyone's run for the class view: `{"experiment", "params", "who"}` or a form `recipe` + `who` |
| `GET /runs?page=N`, `/api/runs?page=N` | recent runs, newest first, paged |

``who`` travels beside the parameters, never among them: the experiment never sees it.
Both kinds of room run go through launch(), the path the Run button takes.
"""

from __future__ import annotations

import io
from urllib.parse import parse_qsl, urlsplit

import segno
from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, url_for

from .. import experiments
from ..rooms import WHO_MAX, Room, RoomBook
from ..sandbox.pool import ClientBusy, QueueFull
from ..services import services
from .api import issue_delete_token, set_delete_cookie
from .launch import UnknownExperiment, launch

bp = Blueprint("rooms", __name__)

PAGE_SIZE = 25
KEY_METRICS = ("speedup", "lost_updates")  # what the class view shows, when a run reports it


@bp.record_once
def _init(state) -> None:
    rooms = RoomBook(state.app.extensions["playground"].store)
    rooms.open()
    state.app.extensions["rooms"] = rooms


def book() -> RoomBook:
    return current_app.extensions["rooms"]


@bp.app_template_global()
def catalog_slugs() -> list[str]:
    """The catalog's order, for presenter mode's next / previous keys."""
    return [e.slug for e in experiments.CATALOG]


def _cookie(code: str) -> str:
    return f"room_{code}"


def _room_or_404(code: str) -> Room:
    room = book().get(code.upper())
    if room is None:
        abort(404, f"There is no room {code!r}: check the code.")
    return room


def _key() -> str:
    body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    return (
        (body.get("key") if isinstance(body, dict) else None)
        or request.args.get("key")
        or request.headers.get("X-Room-Key")
        or request.cookies.get(_cookie(request.view_args["code"].upper()))
        or ""
    )


def _error(status: int, message: str, errors=()):
    if request.is_json or request.path.startswith("/api/"):
        return jsonify(
            {"error": message, "errors": [e.as_dict() if hasattr(e, "as_dict") else e for e in errors]}
        ), status
    messages = [e.message if hasattr(e, "message") else e["message"] for e in errors] or [message]
    return render_template("error.html", message="; ".join(messages)), status


# -- what a room shows ---------------------------------------------------------------------


def key_metric(slug: str, result: dict | None) -> dict | None:
    """speedup, else lost_updates, else the experiment's first declared metric the run reported."""
    metrics = (result or {}).get("metrics") or {}
    experiment = experiments.get(slug, hidden=True)
    declared = [m.name for m in experiment.metrics] if experiment else []
    for name in (*KEY_METRICS, *declared):
        if name in metrics:
            return {"name": name, "value": metrics[name]}
    return None


def _with_live_state(rows: list[dict]) -> list[dict]:
    live = {run.id: run for run in services().runs.live()}
    for row in rows:
        if row["run"] in live:
            row["state"] = live[row["run"]].state.value
    return rows


def _run_links(run_id: str) -> dict:
    url = url_for("pages.run_page", run_id=run_id, _external=True)
    return {"url": url, "events_url": url.replace("http", "ws", 1) + "/events"}


def room_data(room: Room) -> dict:
    led = _with_live_state(book().runs(room.code, "instructor", 20))
    learners = _with_live_state(book().runs(room.code, "learner"))
    current = next((r for r in led if r["run"] == room.current_run), None)
    return {
        "code": room.code,
        "url": url_for("rooms.room_page", code=room.code, _external=True),
        "qr_url": url_for("rooms.room_qr", code=room.code),
        "api_url": url_for("rooms.room_json", code=room.code),
        "created_at": room.created_at,
        "current": current
        and {
            "id": current["run"],
            "experiment": current["experiment"],
            "params": current["params"],
            "state": current["state"],
            "recipe": _recipe(current["experiment"], current["params"]),
            **_run_links(current["run"]),
        },
        "room_runs": [
            {"id": r["run"], "experiment": r["experiment"], "state": r["state"], "created_at": r["created_at"]}
            for r in led
        ],
        "class": [
            {
                "who": r["who"],
                "run": r["run"],
                "url": url_for("pages.run_page", run_id=r["run"]),
                "experiment": r["experiment"],
                "params": r["params"],
                "state": r["state"],
                "metric": key_metric(r["experiment"], r["result"]),
                "held": (r["result"] or {}).get("held"),
                "created_at": r["created_at"],
            }
            for r in learners
        ],
    }


def _recipe(slug: str, params: dict) -> str:
    """The experiment page's address as a recipe, ``io-bound?threads=8``, without the interpreter."""
    query = "&".join(f"{k}={v}" for k, v in params.items() if k != "python")
    return f"{slug}?{query}" if query else slug


def _qr(room: Room):
    return segno.make(url_for("rooms.room_page", code=room.code, _external=True), error="m")


@bp.post("/rooms")
def create_room():
    room, key = book().create()
    instructor_url = url_for("rooms.room_page", code=room.code, key=key, _external=True)
    if request.is_json:
        body = {
            "code": room.code,
            "url": url_for("rooms.room_page", code=room.code, _external=True),
            "key": key,
            "instructor_url": instructor_url,
            "api_url": url_for("rooms.room_json", code=room.code, _external=True),
        }
        response = jsonify(body)
        response.status_code = 201
    else:
        response = redirect(instructor_url, code=303)
    response.set_cookie(_cookie(room.code), key, max_age=30 * 86400, httponly=True, samesite="Lax")
    return response


@bp.get("/rooms/<code>")
def room_page(code):
    room = _room_or_404(code)
    if code != room.code:
        return redirect(url_for("rooms.room_page", code=room.code, **request.args), code=301)
    key = _key()
    instructor = room.opens_with(key)
    data = room_data(room)
    qr_svg = _qr(room).svg_inline(scale=5, dark="#111", light="#fff", omitsize=True)  # a viewBox: CSS sizes it
    body = render_template(
        "room.html",
        room=data,
        instructor=instructor,
        instructor_url=url_for("rooms.room_page", code=room.code, key=key, _external=True) if instructor else None,
        qr_svg=qr_svg,
        slugs=catalog_slugs(),
        who_max=WHO_MAX,
    )
    response = current_app.make_response(body)
    if instructor and request.cookies.get(_cookie(room.code)) != key:  # the secret link works on a second laptop
        response.set_cookie(_cookie(room.code), key, max_age=30 * 86400, httponly=True, samesite="Lax")
    return response


@bp.get("/rooms/<code>/class")
def room_class(code):
    return render_template("_room_class.html", room=room_data(_room_or_404(code)))


@bp.get("/api/rooms/<code>")
def room_json(code):
    return jsonify(room_data(_room_or_404(code)))


@bp.get("/rooms/<code>/qr.svg")
def room_qr(code):
    buffer = io.BytesIO()
    _qr(_room_or_404(code)).save(buffer, kind="svg", scale=5, dark="#111", light="#fff")
    return buffer.getvalue(), 200, {"Content-Type": "image/svg+xml", "Cache-Control": "max-age=86400"}


# -- starting runs in a room ---------------------------------------------------------------


def _run_request() -> tuple[str, dict] | None:
    """(slug, raw params) from JSON ``{"experiment", "params"}`` or a form's ``recipe``
    (``io-bound?threads=8``, or an experiment page's whole address); None when malformed."""
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("experiment"), str):
            return None
        params = body.get("params", {})
        return (body["experiment"], params) if isinstance(params, dict) else None
    recipe = request.form.get("recipe", "").strip()
    if not recipe:
        return None
    parts = urlsplit(recipe)
    slug = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return slug, dict(parse_qsl(parts.query))


def _start(room: Room, role: str, who: str = ""):
    parsed = _run_request()
    if parsed is None:
        return _error(400, 'the body must be {"experiment": slug, "params": {...}} or a form with a recipe')
    slug, raw = parsed
    try:
        run, errors = launch(services(), slug, raw, client=request.remote_addr or "")
    except UnknownExperiment:
        return _error(404, f"no experiment named {slug!r}")
    except QueueFull as exc:
        return _error(429 if isinstance(exc, ClientBusy) else 503, str(exc))
    if errors:
        return _error(422, "invalid parameters", errors)
    book().add_run(room.code, run.id, role=role, who=who)
    token = issue_delete_token(run.id)
    if request.is_json:
        body = {"id": run.id, **_run_links(run.id), "delete_token": token, "room": room.code}
        return jsonify(body), 201, {"Location": body["url"]}
    target = url_for("rooms.room_page", code=room.code) if role == "instructor" else None
    response = redirect(target or url_for("pages.run_page", run_id=run.id), code=303)
    set_delete_cookie(response, run.id, token)
    return response


@bp.post("/rooms/<code>/runs")
def start_room_run(code):
    room = _room_or_404(code)
    if not room.opens_with(_key()):
        return _error(403, "only the room's instructor (who holds its key) can start room runs")
    return _start(room, "instructor")


@bp.post("/rooms/<code>/class")
def start_class_run(code):
    room = _room_or_404(code)
    body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    who = body.get("who") if isinstance(body, dict) else None
    who = who.strip() if isinstance(who, str) else ""
    if not who:
        return _error(422, "who is required", [{"field": "who", "rule": "required", "message": "type your name"}])
    return _start(room, "learner", who[:WHO_MAX])


# -- the runs, newest first ----------------------------------------------------------------


def _runs_page_data() -> dict:
    page = max(1, request.args.get("page", 1, type=int) or 1)
    rows, total = services().store.runs_page(PAGE_SIZE, (page - 1) * PAGE_SIZE)
    live = {run.id: run.state.value for run in services().runs.live()}
    for row in rows:
        row["state"] = live.get(row["id"], row["state"])
        row["url"] = url_for("pages.run_page", run_id=row["id"])
    pages = max(1, -(-total // PAGE_SIZE))
    return {"runs": rows, "page": page, "pages": pages, "total": total, "page_size": PAGE_SIZE}


@bp.get("/runs")
def runs_page():
    return render_template("runs.html", **_runs_page_data())


@bp.get("/api/runs")
def runs_json():
    return jsonify(_runs_page_data())
