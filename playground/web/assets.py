"""Static files under versioned URLs, cached by browsers for a year.

Without this, every page load revalidated each stylesheet and script with a
conditional request (a 304 each, 35-55 ms apiece through Werkzeug, in a
waterfall: bench/RESULTS.md (E)), and the page waited for all of them.

``url_for('static', filename=...)`` builds ``/static/v/<version>/<filename>``,
where ``version`` is a hash of every file under ``static/``, computed once
when the app is built. One version for the whole folder rather than one per
file, because the ES modules import each other by relative path
(``import ... from "./gantt.js"``): from ``/static/v/<version>/js/run.js`` that
resolves to the same version of ``gantt.js``, so a module is fetched once
whether it was preloaded, imported, or both. Any change to any file changes
every URL: stale copies are never used, at the price of refetching the rest
after a deploy.

Responses on the current version say ``immutable`` with a year's max-age; an
older version's URL (a page from before a restart) gets today's file, to be
revalidated; plain ``/static/<filename>`` keeps working as before (Flask's own
rule, revalidated each time), for anything that links to it directly. The
version is taken at start: a file edited under a running server keeps its URL,
so in debug mode nothing is marked immutable.
"""

from __future__ import annotations

import hashlib
import os

from flask import Flask, current_app

YEAR_S = 365 * 24 * 3600


def folder_version(folder: str) -> str:
    """A short hash of every file's path and contents under ``folder``."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, folder).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:12]


def init_app(app: Flask) -> None:
    """Called by create_app: hashes the static folder (once) and adds the versioned rule."""
    version = folder_version(app.static_folder)
    app.extensions["static_version"] = version
    send = app.send_static_file

    def static(filename: str, version_in_url: str | None = None):
        response = send(filename)
        if version_in_url == version and not current_app.debug:  # debug: files change under a running server
            response.cache_control.no_cache = None  # Flask's default for static files
            response.cache_control.public = True
            response.cache_control.max_age = YEAR_S
            response.cache_control.immutable = True
        elif version_in_url is not None:
            response.cache_control.no_cache = True  # an old page's URL: today's file, checked each time
        return response

    # Same endpoint as Flask's own static rule, whose view this replaces (it serves
    # both rules). Werkzeug builds with the rule that uses the most arguments, so
    # url_for picks the versioned one once _versioned has filled the version in.
    app.view_functions["static"] = static
    app.add_url_rule(f"{app.static_url_path}/v/<version_in_url>/<path:filename>", endpoint="static", view_func=static)

    @app.url_defaults
    def _versioned(endpoint, values):
        if endpoint == "static":
            values.setdefault("version_in_url", version)
