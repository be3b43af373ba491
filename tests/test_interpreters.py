"""Interpreters: what each configured one is, and the catalog on a second one."""

import glob
import os
import subprocess
import sys

import pytest
import requests
from conftest import LiveServer, result_of

from playground import truth
from playground.interpreters import Interpreters


def test_the_servers_own_interpreter_is_described():
    (found,) = Interpreters([sys.executable]).all()
    assert found.usable and found.id == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert found.version == ".".join(map(str, sys.version_info[:3]))
    assert found.gil_enabled is (getattr(sys, "_is_gil_enabled", lambda: True)())
    assert found.modules["requests"] is True  # the test environment has it


def test_a_broken_path_is_unusable_with_a_reason_and_ids_stay_unique():
    listed = Interpreters([sys.executable, "/nonexistent/python3", sys.executable]).all()
    assert [i.usable for i in listed] == [True, False, True]
    assert "No such file" in listed[1].error or "FileNotFoundError" in listed[1].error
    assert listed[2].id == listed[0].id + "-2"


def other_interpreter() -> str | None:
    """Another CPython 3.10+ on this machine (pyenv), of a different version than ours."""
    ours = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for path in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-9]*/bin/python3"))):
        version = subprocess.run(
            [path, "-c", "import sys; print(*sys.version_info[:2], sep='.')"], capture_output=True, text=True
        )
        if version.returncode == 0 and version.stdout.strip() != ours:
            return path
    return None


def test_the_catalog_holds_on_a_second_interpreter(tmp_path):
    other = other_interpreter()
    if other is None:
        print("no second CPython 3.10+ on this machine (pyenv): skipped")
        pytest.skip("no second CPython 3.10+ on this machine (looked in ~/.pyenv/versions)")
    server = LiveServer(str(tmp_path / "runs.sqlite3"), env={"PLAYGROUND_PYTHONS": f"{sys.executable},{other}"}).start()
    try:
        catalog = requests.get(f"{server.url}/api/experiments", timeout=10).json()
        second = catalog["interpreters"][1]
        assert second["path"] == other and not second["error"]
        for experiment, case in truth.cases():
            if (
                second["id"]
                not in next(e for e in catalog["experiments"] if e["slug"] == experiment.slug)["available_on"]
            ):
                continue
            _, messages = server.run_to_end(experiment.slug, python=second["id"], **case)
            result = result_of(messages)
            assert result["state"] in ("done", "deadlocked"), (experiment.slug, case, result)
            assert result["result"]["held"], (experiment.slug, case, result["result"])
            runs = requests.get(f"{server.url}/api/runs/{messages[0]['run']}", timeout=5).json()
            assert runs["interpreter"]["version"] == second["version"]
    finally:
        server.stop()


def test_an_experiment_needing_a_missing_module_is_refused_on_that_interpreter(app):
    import dataclasses

    from playground import experiments
    from playground.interpreters import requirement_errors

    interpreter = app.extensions["playground"].interpreters.default()
    needy = dataclasses.replace(experiments.get("io-bound"), requires=("no_such_module_xyz",))
    errors = requirement_errors(needy, interpreter)
    assert errors and errors[0].field == "python" and "no_such_module_xyz" in errors[0].message
    assert requirement_errors(experiments.get("io-bound"), interpreter) == []
