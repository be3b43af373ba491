"""The application factory: ``create_app()`` builds everything, starts nothing.

Building opens the SQLite file (and marks runs a previous server left in
flight as interrupted) but starts no process and no thread: the worker pool
starts on its first use, or when ``serve()`` (``python app.py``) warms it.
"""

from __future__ import annotations

import ctypes
import os

from flask import Flask

from . import experiments, settings
from .interpreters import Interpreters
from .runs import Runs
from .sandbox.layers import Layers
from .sandbox.pool import LocalPool
from .services import Services, services
from .store import Store
from .web import api, assets, exports, pages, rooms, security, stream, workshop

__all__ = ["bound_native_memory", "create_app", "services"]

# glibc <malloc.h> mallopt parameters, the environment variable that overrides
# each (glibc reads it at start; bound_native_memory then leaves it), and the value.
_MALLOC_SETTINGS = (
    (-1, "MALLOC_TRIM_THRESHOLD_", 4 << 20),  # M_TRIM_THRESHOLD
    (-3, "MALLOC_MMAP_THRESHOLD_", 2 << 20),  # M_MMAP_THRESHOLD
    (-8, "MALLOC_ARENA_MAX", 2),  # M_ARENA_MAX
)


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=os.path.join(settings.ROOT, "templates"),
        static_folder=os.path.join(settings.ROOT, "static"),
        instance_path=os.path.join(settings.ROOT, "instance"),
    )
    app.config.from_mapping(settings.from_environment())
    app.config.update(config or {})

    store = Store(app.config["DATABASE"], timeout=app.config["DB_TIMEOUT_S"])
    store.open()
    runs = Runs(store)
    interpreters = Interpreters(app.config["PYTHONS"])
    pool = LocalPool(
        size=app.config["WORKERS"],
        interpreters=interpreters,
        queue_max=app.config["QUEUE_MAX"],
        persist=runs.persist,
        catalog={e.slug: e for e in experiments.CATALOG + experiments.HIDDEN},
        layers=Layers(enabled=app.config["SANDBOX"] != "rlimits"),
        per_client=app.config["PER_CLIENT"],
        max_wall_s=app.config["MAX_WALL_S"],
        sample=app.config["SAMPLER"],
    )
    app.extensions["playground"] = Services(
        store=store, runs=runs, pool=pool, interpreters=interpreters, faults=app.config["FAULTS"]
    )

    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(exports.bp)
    app.register_blueprint(workshop.bp)  # sweeps, repeats, compare (its own SeriesBook)
    app.register_blueprint(rooms.bp)  # workshop rooms (its own RoomBook), the list of runs
    security.init_app(app)
    assets.init_app(app)  # versioned /static URLs, cached for a year
    stream.sock.init_app(app)
    app.wsgi_app = stream.EndUpgradedConnections(app.wsgi_app)
    return app


def bound_native_memory() -> None:
    """Pin glibc malloc's settings so the server's RSS levels off (issue 7, bench/memory.py).

    For ``python app.py``, before any thread starts (an arena limit binds only
    arenas not made yet); never at import or in create_app, whose callers own
    their process. Where there is no glibc ``mallopt``, nothing happens.

    - Fixed mmap and trim thresholds. glibc raises both as big blocks are
      freed (trim = 2 x mmap threshold), and Werkzeug's server drains each
      connection with ``rfile.read(10_000_000)``, a 10 MB buffer freed at once:
      the thresholds went to 10 and 20 MB, every arena kept a ~10 MB top it
      never gave back, and RSS crept up as pages of it were touched (+4 MB
      over 1,000 runs). Set by hand, glibc leaves them alone. 2 MB / 4 MB, not
      glibc's 128 KiB: a live stream's messages (up to 20,000 events, ~600 kB
      of JSON, copied a few times) then reuse an arena's pages; at 128 KiB
      each was a fresh mmap, and a 100,000-event replay cost the server 40 ms
      of CPU instead of 30 (page faults).
    - At most 2 arenas: a thread per run, per request and per socket got up
      to 8 x cores = 16, each keeping up to the trim threshold free. Python
      allocates under the GIL, so more arenas bought no parallelism (the
      workers run with MALLOC_ARENA_MAX=2 as well).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    for param, variable, value in _MALLOC_SETTINGS:
        if variable not in os.environ:  # set by hand: glibc has applied it already
            mallopt(param, value)
