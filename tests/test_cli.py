"""The command line as a user runs it: ``python -m playground ...`` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from conftest import ROOT

from playground import experiments
from playground.cli import EXIT_HELD, EXIT_NO_VERDICT, EXIT_NOT_HELD, exit_status

LANE_ROW = re.compile(r"^(\S.*?)\s+\|([#gLzi=.]+)\|$")


def playground(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    return subprocess.run(
        [sys.executable, "-m", "playground", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_run_prints_the_verdict_and_a_text_gantt():
    done = playground("run", "hello-threads", "--threads", "3", "--delay-ms", "20")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "held:  true" in out and "claim: After join(), all 3 threads" in out
    assert re.search(r"^wall_ms\s+[\d.]+\s+ms\s+Wall time", out, re.M), out
    lanes = [m.group(1) for line in out.splitlines() if (m := LANE_ROW.match(line))]
    assert lanes == ["MainThread", "hello-0", "hello-1", "hello-2"], out
    widths = {len(m.group(2)) for line in out.splitlines() if (m := LANE_ROW.match(line))}
    assert widths == {60}
    assert "# running  g gil  L lock  z sleep  i io  . not alive" in out
    assert "\x1b[" not in out  # not a terminal: no colours


def test_a_bad_parameter_exits_2_with_the_validators_message():
    hello = experiments.get("hello-threads")
    _, errors = experiments.validate(hello.params, {"threads": "0"})
    done = playground("run", "hello-threads", "--threads", "0")
    assert done.returncode == 2
    assert errors[0].message in done.stderr and done.stdout == ""
    for args in (("run", "no-such-thing"), ("run", "hello-threads", "--thread=3"), ("run", "hello-threads", "3")):
        assert playground(*args).returncode == 2, args


def test_json_output_parses():
    done = playground("run", "hello-threads", "--threads", "2", "--delay-ms", "0", "--json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["experiment"] == "hello-threads" and run["state"] == "done"
    assert run["params"]["threads"] == 2 and run["result"]["held"] is True
    assert run["counts"]["lanes"] == 3


def test_list_and_help():
    listed = playground("list")
    assert listed.returncode == 0
    for experiment in experiments.CATALOG:
        assert re.search(rf"^{re.escape(experiment.slug)}\s", listed.stdout, re.M)
    assert "--threads 4  (1..64)" in listed.stdout
    helped = playground("--help")
    assert helped.returncode == 0 and "run" in helped.stdout and "Exit status" in helped.stdout
    assert playground("run", "--help").returncode == 0


def test_exit_status_follows_the_verdict():
    assert exit_status({"result": {"held": True}}) == EXIT_HELD == 0
    assert exit_status({"result": {"held": False}}) == EXIT_NOT_HELD == 1
    assert exit_status({"result": None, "state": "timed_out"}) == EXIT_NO_VERDICT == 3
