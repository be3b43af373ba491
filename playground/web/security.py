"""What every response and every request body gets, whichever view handles it.

- Headers: a Content-Security-Policy the pages work under (they use no inline
  script or style: htmx's own indicator ``<style>`` is switched off by the
  ``htmx-config`` meta tag in base.html), ``nosniff`` and ``same-origin``
  referrers.
- Bodies: a declared ``Content-Length`` above ``MAX_CONTENT_LENGTH`` (64 KiB)
  is refused with 413 here, on every route, before a byte is read. A chunked
  body has no length to check up front. Werkzeug reads it through a stream
  that stops at the limit (when the server terminates the input, as the dev
  server and gunicorn do; otherwise it reads as empty), but stopping is all it
  does: ``get_data()`` returns the first 64 KiB as if they were the body, so a
  form would be parsed from a truncated body. So chunked bodies are read here,
  once, at most 64 KiB plus one byte: more is a 413, a broken chunk a 400, and
  the views parse the cached bytes.
- Errors: an HTTP error (400, 405, 413...) raised outside the views' own
  handling answers a JSON client in the API's shape ``{"error", "errors"}``.
- Run ids: :func:`is_run_id`, so a view can refuse a malformed id with 404
  before it asks the database anything.
"""

from __future__ import annotations

from flask import Flask, abort, jsonify, request
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge

from ..runs import _ID_ALPHABET

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",  # htmx, run.js and gantt.js are files; no inline script, no eval
        "style-src 'self'",  # stylesheets only; gantt.js sets styles through the CSSOM, which CSP allows
        "img-src 'self' data:",
        "connect-src 'self'",  # in CSP 3 'self' also matches ws:/wss: to the same host and port (the run's socket)
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

RUN_ID_LENGTH = 10  # runs.new_run_id draws 10 characters from _ID_ALPHABET
_RUN_ID_CHARS = frozenset(_ID_ALPHABET)


def is_run_id(value: str) -> bool:
    """Whether ``value`` could be a run id at all (length and alphabet)."""
    return len(value) == RUN_ID_LENGTH and _RUN_ID_CHARS.issuperset(value)


def init_app(app: Flask) -> None:
    app.before_request(_bound_body)
    app.after_request(_add_headers)
    app.register_error_handler(HTTPException, _http_error)


def _bound_body() -> None:
    limit = request.max_content_length
    if limit is None:
        return
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()  # every route, even one that never reads its body
    if "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return
    if "wsgi.input_terminated" not in request.environ:
        return  # Werkzeug will not read an unterminated stream at all: the body is empty
    try:
        data = request.get_data(cache=True)  # stops at the limit; form and JSON parsing reuse the cache
        more = len(data) >= limit and request.environ["wsgi.input"].read(1)  # past the limit, unwrapped
    except (ClientDisconnected, OSError):  # the dechunker's "Invalid chunk header", or the client left
        abort(400, "the chunked request body is malformed or cut short")
    if more:
        raise RequestEntityTooLarge()


def _add_headers(response):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.is_json or request.accept_mimetypes.best == "application/json"


def _http_error(error: HTTPException):
    """HTTP errors in the API's shape for JSON clients; the usual page for browsers.

    404 keeps its own handler (pages.not_found); this one sees the rest.
    """
    if error.code is None or not _wants_json():
        return error
    message = error.description or error.name
    if isinstance(error, RequestEntityTooLarge):
        limit = request.max_content_length
        message = f"the request body is larger than {limit // 1024} KiB" if limit else error.name
    return jsonify({"error": message, "errors": []}), error.code
