"""What an experiment module declares, and what its run returns.

Standard library only: the worker imports this module.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from .params import Metric, Param

# Figures the worker measures around every run, whatever the experiment.
RUN_METRICS = (
    Metric("wall_ms", "ms", "Wall time of the whole experiment, all phases."),
    Metric("cpu_ms", "ms", "Process CPU time of the whole experiment (all threads)."),
)


@dataclass(frozen=True)
class Limits:
    """Per-experiment sandbox limits; the worker applies them before running.

    wall_s: the supervisor kills the whole process group after this long.
    cpu_s: RLIMIT_CPU, so a spinning run dies even if the wall clock is stopped.
    memory_mb: RLIMIT_AS. Thread stacks are virtual memory, so the worker also
        lowers the thread stack size and MALLOC_ARENA_MAX (FACTS.md: without
        that, only ~15 threads start under a 1 GiB address-space limit).
    max_threads: the ceiling shown to the user and enforced by parameter bounds.
    """

    wall_s: float = 30.0
    cpu_s: int = 60
    memory_mb: int = 1024
    max_threads: int = 64
    open_files: int = 256


@dataclass(frozen=True)
class Outcome:
    """A run's verdict: the claim as checked, whether it held, and the numbers."""

    claim: str
    held: bool
    why: str
    metrics: dict
    # More of the result than numbers (e.g. race-condition's "collisions"): top-level
    # keys of the result beside claim/held/why/metrics, which they never replace.
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {**self.extra, "claim": self.claim, "held": self.held, "why": self.why, "metrics": self.metrics}


@dataclass(frozen=True)
class Experiment:
    slug: str
    title: str
    summary: str  # one line for the catalog
    lesson: str  # two or three sentences for the experiment page
    claim: str  # what the run checks, before it runs
    params: tuple[Param, ...]
    metrics: tuple[Metric, ...]
    code: tuple[Callable, ...]  # the functions the page shows: the code that runs
    run: Callable  # run(params: dict, probe) -> Outcome
    limits: Limits = field(default_factory=Limits)
    notes: str = ""  # a longer "why" the page shows beside the result
    requires: tuple[str, ...] = ()  # modules beyond the standard library (e.g. "requests")
    cases: tuple[dict, ...] = ()  # parameter sets besides the defaults whose claims the truth matrix checks
    # The verdict when the supervisor finds the run deadlocked (it never returns
    # then): on_deadlock(params, stuck_thread_names) -> Outcome. None: no verdict.
    on_deadlock: Callable | None = None

    def source(self) -> str:
        """The exact source of the functions that run, in the order declared."""
        return "\n\n".join(inspect.getsource(fn).rstrip() for fn in self.code) + "\n"

    def schema(self) -> dict:
        return {
            "slug": self.slug,
            "title": self.title,
            "summary": self.summary,
            "lesson": self.lesson,
            "claim": self.claim,
            "params": [p.schema() for p in self.params],
            "metrics": [m.schema() for m in self.metrics + RUN_METRICS],
            "requires": list(self.requires),
            "limits": {
                "wall_s": self.limits.wall_s,
                "cpu_s": self.limits.cpu_s,
                "memory_mb": self.limits.memory_mb,
                "max_threads": self.limits.max_threads,
            },
        }
