"""The catalog: an explicit, ordered list of experiments.

Each experiment is one small module declaring its lesson, its parameters, its
metrics, and the code that runs. Slugs are URLs people share: never rename one.
Standard library only: the worker imports this package.
"""

from . import (
    convoy,
    cpu_bound,
    deadlock,
    event,
    faults,
    gil_release,
    hello_threads,
    io_bound,
    producer_consumer,
    race_condition,
    rlock,
    semaphore,
    thread_pool,
    threads_vs_processes,
    too_many_threads,
    web_scraping,
)
from .declaration import Experiment, Limits, Outcome
from .params import FieldError, Metric, Param, ParamError, validate, validate_or_raise

CATALOG: tuple[Experiment, ...] = (
    hello_threads.EXPERIMENT,
    io_bound.EXPERIMENT,
    cpu_bound.EXPERIMENT,
    race_condition.EXPERIMENT,
    threads_vs_processes.EXPERIMENT,
    web_scraping.EXPERIMENT,
    thread_pool.EXPERIMENT,
    rlock.EXPERIMENT,
    semaphore.EXPERIMENT,
    event.EXPERIMENT,
    producer_consumer.EXPERIMENT,
    too_many_threads.EXPERIMENT,
    gil_release.EXPERIMENT,
    convoy.EXPERIMENT,
    deadlock.EXPERIMENT,
)

# Not in the catalog: only a server started with PLAYGROUND_FAULTS=1 accepts it.
HIDDEN: tuple[Experiment, ...] = (faults.EXPERIMENT,)

_BY_SLUG = {experiment.slug: experiment for experiment in CATALOG}
_HIDDEN = {experiment.slug: experiment for experiment in HIDDEN}


def get(slug: str, *, hidden: bool = False) -> Experiment | None:
    """The experiment called ``slug``; the hidden ones only when asked for."""
    found = _BY_SLUG.get(slug)
    if found is None and hidden:
        found = _HIDDEN.get(slug)
    return found


__all__ = [
    "CATALOG",
    "Experiment",
    "FieldError",
    "Limits",
    "Metric",
    "Outcome",
    "Param",
    "ParamError",
    "get",
    "validate",
    "validate_or_raise",
]
