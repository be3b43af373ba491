"""Tests for the syscall-line classifier (playground/sandbox/syscalls.py).

They replay syscall lines recorded from real interpreters
(tests/fixtures/proc/<version>.json) and synthetic ones, and need no /proc.
Re-record the fixtures (Linux x86_64, pyenv interpreters) with::

    .venv/bin/python tests/test_syscalls.py --record /root/.pyenv/versions/3.1*/bin/python
"""

from __future__ import annotations

import collections
import glob
import json
import os
import struct
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from proc_scenario import EXPECTED, go, start_child  # noqa: E402

from playground.sandbox.syscalls import (  # noqa: E402
    MACHINE,
    STATES,
    classify,
    parse_maps,
    sleep_deadline_address,
    timespec_ns,
)

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "proc")
FIXTURE_FILES = sorted(glob.glob(os.path.join(FIXTURES, "*.json")))


def hexranges(ranges):
    return [[hex(a), hex(b)] for a, b in ranges]


def load(path):
    with open(path) as f:
        data = json.load(f)
    data["gil_ranges"] = [(int(a, 16), int(b, 16)) for a, b in data["gil_ranges"]]
    return data


# ---- classify on recorded lines -------------------------------------------------


def test_fixtures_exist():
    assert {os.path.basename(p)[:4] for p in FIXTURE_FILES} >= {"3.10", "3.11", "3.12", "3.13"}


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=os.path.basename)
def test_classify_recorded_lines(path):
    data = load(path)
    assert data["machine"] == "x86_64"  # the numbers in the lines are x86_64's
    for sample in data["samples"]:
        assert classify(sample["line"], data["gil_ranges"]) == sample["state"], sample


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=os.path.basename)
def test_recorded_roles_show_their_states(path):
    # Each role's recorded lines cover the state the scenario puts it in, so
    # the fixture still tests what matters if it is re-recorded.
    seen = collections.defaultdict(set)
    for sample in load(path)["samples"]:
        seen[sample["role"]].add(sample["state"])
    for role, states in EXPECTED.items():
        assert states <= seen[role], (role, seen[role])


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=os.path.basename)
def test_futex_state_follows_the_mapping(path):
    # Checked against the maps pathname, independently of parse_maps: a futex
    # wait in python's or libpython's data (or the anonymous .bss after it) is
    # the GIL; on [heap], [stack] or a malloc arena it is a lock.
    data = load(path)
    for s in data["samples"]:
        if s.get("region") is not None:
            gil = s["region"] in ("bss", os.path.basename(data["exe"])) or s["region"].startswith("libpython")
            assert s["state"] == ("gil" if gil else "lock"), s


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=os.path.basename)
def test_parse_maps_on_recorded_maps(path):
    data = load(path)
    gil, spans = parse_maps(data["maps"], data["exe"])
    assert gil == data["gil_ranges"]
    assert spans == sorted(spans) and len(spans) == len(data["maps"].splitlines())


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=os.path.basename)
def test_a_recorded_sleep_says_where_its_deadline_is_from_311_on(path):
    # 3.11+: clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline); 3.10: pselect6 with a
    # relative timeout, no deadline to read. Only a sleep has one (the sampler's pauses, quiet.py).
    data = load(path)
    sleeps = [s["line"] for s in data["samples"] if s["state"] == "sleep"]
    assert sleeps
    for line in sleeps:
        expected = None if data["python"].startswith("3.10.") else int(line.split()[3], 16)
        assert sleep_deadline_address(line) == expected, line
    assert all(sleep_deadline_address(s["line"]) is None for s in data["samples"] if s["state"] != "sleep")


def test_python313_lock_and_join_are_not_gil():
    data = load(os.path.join(FIXTURES, "3.13.0.json"))
    regions = {(s["role"], s["region"]) for s in data["samples"] if s["state"] == "lock"}
    assert ("waiter", "[heap]") in regions  # threading.Lock: malloc'd semaphore
    assert ("main", "[stack]") in regions  # Thread.join: parking lot, waiter's stack


# ---- classify on synthetic lines ------------------------------------------------

X86 = pytest.mark.skipif(MACHINE != "x86_64", reason="syscall numbers below are x86_64's")
GIL = [(0x7F0000001000, 0x7F0000003000)]


@X86
@pytest.mark.parametrize(
    "line, state",
    [
        ("running", "running"),
        ("", "running"),
        ("-1 0x7ffd5e0a9f70 0x7f4b1c2a3f16", "running"),  # blocked outside a syscall
        ("202 0x7f0000001808 0x89 0x0 0x7f 0x0 0xffffffff 0x7f 0x7f", "gil"),  # WAIT_BITSET|PRIVATE
        ("202 0x7f0000002810 0x80 0x2 0x0 0x0 0x7f 0x7f 0x7f", "gil"),  # WAIT|PRIVATE (GIL mutex)
        ("202 0x7f0000002ffc 0x189 0x0 0x0 0x0 0xffffffff 0x7f 0x7f", "gil"),  # |CLOCK_REALTIME
        ("202 0x7f0000003000 0x89 0x0 0x0 0x0 0xffffffff 0x7f 0x7f", "lock"),  # end is exclusive
        ("202 0x55c7b944d320 0x189 0x0 0x0 0x0 0xffffffff 0x7f 0x7f", "lock"),  # heap
        ("202 0x7ffc989b4f90 0x189 0x0 0x0 0x0 0xffffffff 0x7f 0x7f", "lock"),  # stack
        ("202 0x55c7b944d320 0x86 0x0 0x0 0x0 0x0 0x7f 0x7f", "lock"),  # LOCK_PI
        ("202 0x7f0000001808 0x81 0x1 0x0 0x0 0x0 0x7f 0x7f", "running"),  # WAKE never waits
        ("202 0x7f0000001808 0x85 0x1 0x0 0x0 0x0 0x7f 0x7f", "running"),  # WAKE_OP
        ("449 0x7ffc989b4f90 0x2 0x0 0x0 0x1 0x0 0x7f 0x7f", "lock"),  # futex_waitv
        ("230 0x1 0x1 0x7f922e7fbab0 0x0 0x0 0x7f 0x7f 0x7f", "sleep"),  # clock_nanosleep
        ("35 0x7ffd0 0x0 0x0 0x0 0x0 0x0 0x7f 0x7f", "sleep"),  # nanosleep
        ("270 0x0 0x0 0x0 0x0 0x7f0eedf836b0 0x0 0x7f 0x7f", "sleep"),  # pselect6, nfds 0
        ("270 0x4 0x7f90b09a68f0 0x0 0x0 0x7f 0x0 0x7f 0x7f", "io"),  # pselect6 with fds
        ("23 0x0 0x0 0x0 0x0 0x7ffd0 0x0 0x7f 0x7f", "sleep"),  # select, nfds 0
        ("7 0x7f90b17a47f0 0x1 0x7d0 0x1 0x0 0x0 0x7f 0x7f", "io"),  # poll, 1 fd
        ("7 0x0 0x0 0x7d0 0x0 0x0 0x0 0x7f 0x7f", "sleep"),  # poll, no fds
        ("271 0x7f9 0x2 0x0 0x0 0x8 0x0 0x7f 0x7f", "io"),  # ppoll
        ("0 0x3 0x7f4 0x1 0x0 0x0 0x0 0x7f 0x7f", "io"),  # read
        ("45 0x5 0x7f9 0x1 0x0 0x0 0x0 0x7f 0x7f", "io"),  # recvfrom
        ("288 0x7 0x7f9 0x7f9 0x80000 0x0 0x0 0x7f 0x7f", "io"),  # accept4
        ("61 0x1f91 0x7f9 0x0 0x0 0x0 0x0 0x7f 0x7f", "io"),  # wait4
        ("232 0x8 0x7f9 0x3ff 0x7d0 0x0 0x0 0x7f 0x7f", "io"),  # epoll_wait
        ("24 0x0 0x0 0x0 0x0 0x0 0x0 0x7f 0x7f", "running"),  # sched_yield
        ("9 0x0 0x1000 0x3 0x22 0xffffffff 0x0 0x7f 0x7f", "running"),  # mmap
        ("99999 0x0 0x0 0x0 0x0 0x0 0x0 0x7f 0x7f", "io"),  # unknown: some blocking call
        ("202 0xzz 0x89", "io"),  # garbled
        ("202", "io"),  # truncated
    ],
)
def test_classify_synthetic(line, state):
    assert classify(line, GIL) == state
    assert state in STATES


@X86
@pytest.mark.parametrize(
    "line, address",
    [
        ("230 0x1 0x1 0x7f922e7fbab0 0x0 0x0 0x7f 0x7f 0x7f", 0x7F922E7FBAB0),  # monotonic, absolute
        ("230 0x1 0x0 0x7f922e7fbab0 0x7f922e7fbac0 0x0 0x7f 0x7f 0x7f", None),  # relative: no deadline
        ("230 0x0 0x1 0x7f922e7fbab0 0x0 0x0 0x7f 0x7f 0x7f", None),  # CLOCK_REALTIME: another clock
        ("35 0x7ffd0 0x0 0x0 0x0 0x0 0x0 0x7f 0x7f", None),  # nanosleep: relative
        ("running", None),
        ("230 0x1", None),  # truncated
    ],
)
def test_sleep_deadline_address_synthetic(line, address):
    assert sleep_deadline_address(line) == address


def test_timespec_ns():
    assert timespec_ns(struct.pack("@qq", 12, 345)) == 12_000_000_345


def test_states_vocabulary():
    assert STATES == ("running", "gil", "lock", "sleep", "io")


def test_parse_maps_takes_writable_python_data_and_its_bss():
    maps = "\n".join(
        [
            "55d000000000-55d000001000 r--p 00000000 fe:00 1 /opt/py/bin/python3.12",
            "55d000003000-55d000004000 rw-p 00003000 fe:00 1 /opt/py/bin/python3.12",
            "55d000004000-55d000005000 rw-p 00000000 00:00 0 ",  # exe .bss
            "55d000100000-55d000200000 rw-p 00000000 00:00 0 [heap]",
            "7f0000000000-7f0000100000 rw-p 00000000 00:00 0 ",  # arena: not adjacent
            "7f1000000000-7f1000100000 r-xp 00000000 fe:00 2 /opt/py/lib/libpython3.12.so.1.0",
            "7f1000100000-7f1000110000 r--p 00100000 fe:00 2 /opt/py/lib/libpython3.12.so.1.0",
            "7f1000110000-7f1000120000 rw-p 00110000 fe:00 2 /opt/py/lib/libpython3.12.so.1.0",
            "7f1000120000-7f1000128000 rw-p 00000000 00:00 0",  # libpython .bss
            "7f1000128000-7f1000130000 rw-p 00000000 00:00 0",  # next anon: not .bss
            "7f2000000000-7f2000001000 rw-p 00001000 fe:00 3 /usr/lib/libc.so.6",
            "7f2000001000-7f2000002000 rw-p 00000000 00:00 0",  # libc's .bss: not ours
            "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]",
        ]
    )
    gil, spans = parse_maps(maps, "/opt/py/bin/python3.12")
    assert gil == [(0x55D000003000, 0x55D000005000), (0x7F1000110000, 0x7F1000128000)]
    assert len(spans) == 13


# ---- recording the fixtures -------------------------------------------------------


def ours(maps_line, exe):
    path = maps_line.split(None, 5)[5].strip() if len(maps_line.split()) > 5 else ""
    return bool(path) and (path == exe or os.path.basename(path).startswith("libpython"))


def where(addr, lines, spans, exe):
    """The maps pathname (basename) holding addr; "bss" for the anonymous map after python's data."""
    for i, (a, b) in enumerate(spans):
        if a <= addr < b:
            fields = lines[i].split(None, 5)
            if len(fields) > 5 and fields[5].strip():
                return os.path.basename(fields[5].strip())
            return "bss" if i and spans[i - 1][1] == a and ours(lines[i - 1], exe) else "anon"
    return "unmapped"


def record(python):
    """Run CHILD under ``python``, keep a few distinct real lines per role."""
    child, roles = start_child(python)
    pid = child.pid
    exe = os.readlink(f"/proc/{pid}/exe")
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read()
    gil, spans = parse_maps(maps, exe)
    lines = maps.splitlines()
    fds = {tid: os.open(f"/proc/{pid}/task/{tid}/syscall", os.O_RDONLY) for tid in roles}
    go(child)
    found = {}
    while child.poll() is None:
        for tid, fd in fds.items():
            try:
                line = os.pread(fd, 4096, 0).decode().strip()
            except OSError:
                continue
            parts = line.split()
            region = None
            if parts[0] == "202" and int(parts[2], 16) & 0x7F in (0, 9):
                region = where(int(parts[1], 16), lines, spans, exe)
            key = (roles[tid], parts[0], parts[2] if parts[0] == "202" else "", region)
            found.setdefault(key, {"role": roles[tid], "line": line, "region": region})
        time.sleep(0.001)
    keep = [i for i, line in enumerate(lines) if ours(line, exe) or line.endswith(("[heap]", "[stack]"))]
    keep = sorted({j for i in keep for j in (i, i + 1) if j < len(lines)})
    version = subprocess.check_output([python, "-c", "import platform; print(platform.python_version())"], text=True)
    samples = [dict(s, state=classify(s["line"], gil)) for s in found.values()]
    return version.strip(), {
        "python": version.strip(),
        "machine": MACHINE,
        "exe": exe,
        "gil_ranges": hexranges(gil),
        "maps": "\n".join(lines[i] for i in keep),
        "samples": sorted(samples, key=lambda s: s["role"]),
    }


if __name__ == "__main__" and sys.argv[1:2] == ["--record"]:
    os.makedirs(FIXTURES, exist_ok=True)
    for python in sys.argv[2:]:
        version, data = record(python)
        with open(os.path.join(FIXTURES, f"{version}.json"), "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        print(version, len(data["samples"]), "lines")
