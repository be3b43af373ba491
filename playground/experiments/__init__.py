"""The catalog: an explicit, ordered list of experiments.

Each experiment is one small module declaring its lesson, its parameters, its
metrics, and the code that runs. Slugs are URLs people share: never rename one.
Standard library only: the worker imports this package.
"""

from . import cpu_bound, hello_threads, io_bound, race_condition
from .declaration import Experiment, Limits, Outcome
from .params import FieldError, Metric, Param, ParamError, validate, validate_or_raise

CATALOG: tuple[Experiment, ...] = (
    hello_threads.EXPERIMENT,
    io_bound.EXPERIMENT,
    cpu_bound.EXPERIMENT,
    race_condition.EXPERIMENT,
)

_BY_SLUG = {experiment.slug: experiment for experiment in CATALOG}


def get(slug: str) -> Experiment | None:
    return _BY_SLUG.get(slug)


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
