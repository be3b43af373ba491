"""The application factory: ``create_app()`` builds everything, starts nothing.

Building opens the SQLite file (and marks runs a previous server left in
flight as interrupted) but starts no process and no thread: the worker pool
starts on its first use, or when ``serve()`` (``python app.py``) warms it.
"""

from __future__ import annotations

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

__all__ = ["create_app", "services"]


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
