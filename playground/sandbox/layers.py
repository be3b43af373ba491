"""Sandbox layers beyond rlimits: which ones this machine allows, found by trying.

| layer | what it stops | how | needs |
| --- | --- | --- | --- |
| process group | orphans outliving a kill | ``start_new_session``, ``killpg`` | always |
| rlimits | memory, CPU, open-file and file-size bombs | set by the worker (worker.py) | always |
| network namespace | any connection off the machine | ``unshare --net``; the worker brings ``lo`` up, so the in-sandbox latency server still works | root (or user namespaces) |
| unprivileged uid | reading or writing the host's files; ``RLIMIT_NPROC`` only binds non-root | the worker drops to ``PLAYGROUND_WORKER_UID`` (nobody) after setting up ``lo`` | root |
| cgroup | fork and thread bombs (pids.max), real memory (not only address space) | a cgroup per worker, v1 or v2, removed after the run; also the reliable "kill everything" | a writable cgroup hierarchy |

Each layer is probed once (``detect``) by really starting a worker in check
mode; a layer that fails its probe is off, with the reason, and ``/healthz``
says so. Called from the pool's threads; detection runs under a lock.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time

NOBODY = 65534
CGROUP_ROOT = "/sys/fs/cgroup"


class Layer:
    def __init__(self, name: str):
        self.name, self.active, self.why = name, False, "not checked yet"

    def set(self, active: bool, why: str) -> None:
        self.active, self.why = active, why

    def as_dict(self) -> dict:
        return {"active": self.active, "why": self.why}


class Cgroup:
    """One worker's cgroup(s): pids.max and a memory limit; kill_all; release."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup, even ones that left the process group."""
        for _ in range(50):
            pids = set()
            for path in self.paths:
                try:
                    with open(os.path.join(path, "cgroup.procs")) as f:
                        pids.update(int(p) for p in f.read().split())
                except OSError:
                    pass
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def release(self) -> None:
        self.kill_all()
        for path in self.paths:
            for _ in range(100):  # killed processes leave the cgroup once reaped
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def _cgroup_dirs() -> dict[str, str]:
    """controller -> the directory of this process's cgroup for it (v1), or "v2" -> dir."""
    found = {}
    try:
        lines = open("/proc/self/cgroup").read().splitlines()
    except OSError:
        return found
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            unified = (
                os.path.join(CGROUP_ROOT, "unified")
                if os.path.isdir(os.path.join(CGROUP_ROOT, "unified"))
                else CGROUP_ROOT
            )
            found["v2"] = unified + path
        for controller in controllers.split(","):
            if controller in ("pids", "memory"):
                found[controller] = os.path.join(CGROUP_ROOT, controller) + path
    return found


# What each hierarchy calls its limits: (pids, memory bytes) -> [(file, value)].
_LIMIT_FILES = {
    "pids": lambda pids, memory: [("pids.max", pids)],
    "memory": lambda pids, memory: [("memory.limit_in_bytes", memory), ("memory.memsw.limit_in_bytes", memory)],
    "v2": lambda pids, memory: [("pids.max", pids), ("memory.max", memory), ("memory.swap.max", 0)],
}


class Layers:
    def __init__(self, *, enabled: bool = True, uid: int = NOBODY):
        self.enabled = enabled
        self.uid = uid
        self.netns = Layer("network namespace")
        self.unprivileged = Layer("unprivileged uid")
        self.cgroup = Layer("cgroup")
        self._cgroup_parents: dict[str, str] = {}
        self._lock = threading.Lock()
        self._detected = False

    # -- detection (once, first use) ---------------------------------------------

    def detect(self, python: str) -> None:
        with self._lock:
            if self._detected:
                return
            self._detected = True
            if not self.enabled:
                for layer in (self.netns, self.unprivileged, self.cgroup):
                    layer.set(False, "sandbox layers switched off (PLAYGROUND_SANDBOX=rlimits)")
                return
            self._detect_worker_layers(python)
            self._detect_cgroup()

    def _detect_worker_layers(self, python: str) -> None:
        unshare = shutil.which("unshare")
        prefix = [unshare, "--net", "--"] if unshare else []
        if not unshare:
            self.netns.set(False, "no unshare command (util-linux)")
        else:
            check = self._check(prefix, python, uid=None)
            if "interfaces" not in check:
                self.netns.set(False, f"unshare --net failed: {check.get('error')}")
            elif check["interfaces"] == ["lo"] and check.get("lo_up"):
                self.netns.set(True, "only loopback, brought up inside the namespace")
            else:
                self.netns.set(False, f"the namespace was not isolated: {check}")
        if os.geteuid() != 0:
            self.unprivileged.set(False, "the server is not root, so it cannot switch the worker's uid")
            return
        check = self._check(prefix if self.netns.active else [], python, uid=self.uid)
        if check.get("uid") == self.uid and check.get("usable"):
            self.unprivileged.set(True, f"workers run as uid {self.uid}")
        else:
            why = check.get("error") or f"uid after the switch: {check.get('uid')}"
            self.unprivileged.set(False, f"the interpreter does not work as uid {self.uid} ({why})")

    def _check(self, prefix: list[str], python: str, uid: int | None) -> dict:
        """Start the worker in check mode under ``prefix``; its JSON answer, or {"error"}."""
        env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))}
        env.pop("PLAYGROUND_WORKER_UID", None)
        if uid is not None:
            env["PLAYGROUND_WORKER_UID"] = str(uid)
        try:
            done = subprocess.run(
                [*prefix, python, "-s", "-m", "playground.sandbox.worker", "--check"],
                capture_output=True,
                text=True,
                timeout=30,
                env=env,
            )
            if done.returncode != 0:
                return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
            return json.loads(done.stdout.strip().splitlines()[-1])
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired) as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}

    def _detect_cgroup(self) -> None:
        dirs = _cgroup_dirs()
        wanted = ["pids", "memory"] if "pids" in dirs and "memory" in dirs else ["v2"] if "v2" in dirs else []
        if not wanted:
            self.cgroup.set(False, "no pids and memory controllers in /proc/self/cgroup")
            return
        for key in wanted:
            probe = os.path.join(dirs[key], f"playground-probe-{os.getpid()}")
            try:
                os.mkdir(probe)
                limit_file = _LIMIT_FILES[key](0, 0)[0][0]
                if not os.path.exists(os.path.join(probe, limit_file)):
                    raise OSError(f"the {key} hierarchy does not delegate {limit_file}")
                os.rmdir(probe)
            except OSError as exc:
                try:
                    os.rmdir(probe)
                except OSError:
                    pass
                self.cgroup.set(False, f"cannot create a cgroup in {dirs[key]}: {exc}")
                return
            self._cgroup_parents[key] = dirs[key]
        self.cgroup.set(True, f"a cgroup per worker in {', '.join(self._cgroup_parents.values())} (pids.max, memory)")

    # -- use (pool and supervisor threads) ----------------------------------------

    def command(self, python: str) -> tuple[list[str], dict]:
        """The worker's command line and extra environment, with the layers that are on."""
        prefix = [shutil.which("unshare"), "--net", "--"] if self.netns.active else []
        # A replacement worker starts while a run is going: at nice 19 its start-up takes little
        # from the run on a small machine (worker.py raises it to RUN_NICE when its job comes).
        if shutil.which("nice"):
            prefix = [shutil.which("nice"), "-n", "19", *prefix]
        env = {"PLAYGROUND_WORKER_UID": str(self.uid)} if self.unprivileged.active else {}
        return [*prefix, python, "-s", "-m", "playground.sandbox.worker"], env

    def confine(self, pid: int, *, max_pids: int, memory_mb: int) -> Cgroup | None:
        """Put a worker (before its job starts) into cgroups of its own."""
        if not self.cgroup.active:
            return None
        paths = []
        try:
            for key, parent in self._cgroup_parents.items():
                path = os.path.join(parent, f"playground-{pid}")
                os.mkdir(path)
                paths.append(path)
                for name, value in _LIMIT_FILES[key](max_pids, memory_mb << 20):
                    if os.path.exists(os.path.join(path, name)):
                        with open(os.path.join(path, name), "w") as f:
                            f.write(str(value))
                with open(os.path.join(path, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
        except OSError:
            Cgroup(paths).release()
            return None
        return Cgroup(paths)

    def describe(self) -> dict:
        return {
            "process_group": {"active": True, "why": "each worker leads its own session; a kill takes the whole group"},
            "rlimits": {"active": True, "why": "address space, CPU seconds, open files, file size, core dumps"},
            "network_namespace": self.netns.as_dict(),
            "unprivileged_uid": self.unprivileged.as_dict(),
            "cgroup": self.cgroup.as_dict(),
        }
