"""Every experiment in the catalog is complete, bounded and shows the code that runs."""

import inspect

import pytest

from playground import experiments
from playground.experiments import CATALOG, validate

SLUGS = ["hello-threads", "io-bound", "cpu-bound", "race-condition"]


def test_the_first_four_slugs_are_stable_and_ordered():
    assert [e.slug for e in CATALOG][:4] == SLUGS
    assert len({e.slug for e in CATALOG}) == len(CATALOG)


@pytest.mark.parametrize("experiment", CATALOG, ids=lambda e: e.slug)
def test_declaration_is_complete(experiment):
    assert experiment.title and experiment.summary and experiment.lesson and experiment.claim
    assert experiment.metrics, "an experiment must declare what it measures"
    names = [p.name for p in experiment.params]
    assert "threads" in names, "the thread count is called threads everywhere"
    for param in experiment.params:
        assert param.help
        if param.kind in (int, float):
            assert param.min is not None and param.max is not None, f"{param.name} must be bounded"
            assert param.min <= param.default <= param.max
    threads = next(p for p in experiment.params if p.name == "threads")
    assert threads.max <= experiment.limits.max_threads
    values, errors = validate(experiment.params, {})
    assert errors == [] and set(values) == set(names)


@pytest.mark.parametrize("experiment", CATALOG, ids=lambda e: e.slug)
def test_the_code_shown_is_the_code_that_runs(experiment):
    source = experiment.source()
    assert experiment.run in experiment.code
    assert inspect.getsource(experiment.run) in source
    assert "threading.Thread(" in source or "ThreadPoolExecutor(" in source


def test_race_condition_declares_its_variants_and_metrics():
    race = experiments.get("race-condition")
    variant = next(p for p in race.params if p.name == "variant")
    assert variant.choices == ("plain", "widened", "locked")
    assert {"expected", "actual", "lost_updates"} <= {m.name for m in race.metrics}


def test_unknown_slug_is_none():
    assert experiments.get("no-such-thing") is None
