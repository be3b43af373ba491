"""Starting a run from a request: one path for the form and the JSON API.

Validation happens here, once, before anything is created: a bad request
starts nothing and stores nothing.
"""

from __future__ import annotations

from .. import experiments
from ..interpreters import requirement_errors, run_params
from ..runs import Run, RunState
from ..sandbox.pool import QueueFull


class UnknownExperiment(LookupError):
    pass


def check(services, experiment, raw: dict) -> tuple[tuple, dict, list]:
    """The one validation of a run's parameters: (declared params, values, errors)."""
    params = run_params(experiment, services.interpreters)
    values, errors = experiments.validate(params, raw)
    if not errors:
        errors = requirement_errors(experiment, services.interpreters.get(values["python"]))
    return params, values, errors


def launch(
    services, slug: str, raw_params: dict, *, await_viewer: bool = False, client: str = ""
) -> tuple[Run | None, list]:
    """Validate and, when valid, create and queue a run. Returns (run, errors).

    Raises UnknownExperiment, or QueueFull when the pool cannot take more.
    """
    experiment = experiments.get(slug, hidden=services.faults)
    if experiment is None:
        raise UnknownExperiment(slug)
    _, values, errors = check(services, experiment, raw_params)
    if errors:
        return None, errors
    services.pool.check_room(client)  # refuse before storing anything
    run = services.runs.create(experiment.slug, values, await_viewer=await_viewer, client=client)
    try:
        services.pool.submit(run)
    except QueueFull as exc:  # filled up between the check and now: keep the record honest
        run.finish(RunState.FAILED, reason=str(exc), persist=services.runs.persist)
        raise
    return run, []
