"""The interpreters runs can pick from (PLAYGROUND_PYTHONS), and what each one is.

Each configured interpreter is asked once, on first use, what it is: version,
free-threaded build or not, whether the GIL is on when it runs, and which
optional modules it can import (an experiment that needs ``requests`` is
unavailable on an interpreter without it). The answer comes from running the
interpreter itself, the same way a worker will run, so it cannot drift.

Ids are short and stable, because they are part of share links:
``3.12`` for a GIL build, ``3.13t`` for a free-threaded one, with ``-2`` etc.
when two configured interpreters share a version.

Called from request threads; the probe runs under a lock, once.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass, field

from . import settings

OPTIONAL_MODULES = ("requests", "numpy")

_PROBE = """
import importlib.util, json, sys
sys.path.insert(0, {root!r})
from playground.probe import interpreter_info
info = interpreter_info()
info["modules"] = {{m: importlib.util.find_spec(m) is not None for m in {modules!r}}}
print(json.dumps(info))
"""


@dataclass(frozen=True)
class Interpreter:
    id: str
    path: str
    version: str = ""
    gil_enabled: bool = True
    free_threaded_build: bool = False
    modules: dict = field(default_factory=dict)
    error: str = ""  # why it cannot be used, when it cannot

    @property
    def usable(self) -> bool:
        return not self.error

    def label(self) -> str:
        if self.error:
            return f"{self.path} (unusable: {self.error})"
        gil = "GIL on" if self.gil_enabled else "no GIL"
        build = ", free-threaded build" if self.free_threaded_build else ""
        return f"Python {self.version} ({gil}{build})"

    def missing(self, required: tuple[str, ...]) -> list[str]:
        return [m for m in required if not self.modules.get(m, False)]

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "path": self.path,
            "version": self.version,
            "gil_enabled": self.gil_enabled,
            "free_threaded_build": self.free_threaded_build,
            "modules": self.modules,
            "error": self.error,
        }


def probe(path: str) -> dict:
    """Ask the interpreter at ``path`` what it is (a few tens of ms, once)."""
    code = _PROBE.format(root=settings.ROOT, modules=OPTIONAL_MODULES)
    try:
        done = subprocess.run([path, "-s", "-c", code], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed to start"])[-1]}
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "it did not answer the probe"}


class Interpreters:
    def __init__(self, paths: list[str]):
        self.paths = paths
        self._lock = threading.Lock()
        self._known: list[Interpreter] | None = None

    def all(self) -> list[Interpreter]:
        with self._lock:
            if self._known is None:
                self._known = self._discover()
            return list(self._known)

    def _discover(self) -> list[Interpreter]:
        found, seen = [], {}
        for path in self.paths:
            info = probe(path)
            if info.get("error"):
                base = os.path.basename(path)
                found.append(Interpreter(id=base, path=path, error=info["error"]))
                continue
            major, minor = info["version_info"][:2]
            base = f"{major}.{minor}{'t' if info['free_threaded_build'] else ''}"
            seen[base] = seen.get(base, 0) + 1
            found.append(
                Interpreter(
                    id=base if seen[base] == 1 else f"{base}-{seen[base]}",
                    path=path,
                    version=info["version"],
                    gil_enabled=info["gil_enabled"],
                    free_threaded_build=info["free_threaded_build"],
                    modules=info.get("modules", {}),
                )
            )
        return found

    def usable(self) -> list[Interpreter]:
        return [i for i in self.all() if i.usable]

    def default(self) -> Interpreter | None:
        usable = self.usable()
        return usable[0] if usable else None

    def get(self, interpreter_id: str) -> Interpreter | None:
        return next((i for i in self.usable() if i.id == interpreter_id), None)


def run_params(experiment, interpreters: Interpreters) -> tuple:
    """The experiment's parameters plus ``python``: every run picks its interpreter.

    One declaration for the page, the JSON API and the CLI, so the interpreter
    is validated like any other field and is part of the share link.
    """
    from .experiments import Param

    usable = interpreters.usable()
    choices = tuple(i.id for i in usable)
    default = choices[0] if choices else ""
    python = Param(
        "python",
        str,
        default,
        "Which interpreter runs the experiment.",
        label="Interpreter",
        choices=choices,
        choice_help={i.id: i.label() for i in usable},
    )
    return (*experiment.params, python)


def requirement_errors(experiment, interpreter: Interpreter | None) -> list:
    """Field errors on ``python`` when the interpreter lacks what the experiment needs."""
    from .experiments import FieldError

    if interpreter is None:
        return [FieldError("python", "enum", "python names no usable interpreter on this server")]
    missing = interpreter.missing(experiment.requires)
    if not missing:
        return []
    return [
        FieldError(
            "python",
            "requires",
            f"{experiment.slug} needs {', '.join(missing)}, which {interpreter.id} ({interpreter.path}) cannot import",
        )
    ]
