"""Pools, semaphores, events and queues, run in the real worker process: each claim holds and the numbers add up.

Ratios only, with wide margins: the claims themselves compare figures measured in the same run.
"""

import math

import pytest
from conftest import events_of, outcome_of, run_worker


def counters(messages, name):
    """A primitive's own counter (docs/events.md: the worker records it after each operation)."""
    return [e[3]["value"] for e in events_of(messages) if e[2] == "C" and e[3]["name"] == name]


@pytest.mark.parametrize("params", [{}, {"threads": 2, "iterations": 2_000_000}, {"threads": 1}])
def test_threads_vs_processes(params):
    messages = run_worker("threads-vs-processes", params)
    outcome = outcome_of(messages)
    assert outcome["held"], outcome
    m, workers = outcome["metrics"], params.get("threads", 4)
    assert 1 <= m["processes_used"] <= workers and m["cores"] >= 1
    assert m["threads_speedup"] == pytest.approx(m["job_cpu_ms"] / m["threads_ms"], rel=0.01)
    assert m["processes_speedup"] == pytest.approx(m["job_cpu_ms"] / m["processes_ms"], rel=0.01)
    assert m["processes_speedup_with_start"] < m["processes_speedup"]  # the start cost is counted apart
    assert 0 < m["free_cores"] <= min(workers, m["cores"])
    if workers >= 2 and m["free_cores"] >= 1.5 and messages[0]["interpreter"]["gil_enabled"]:
        assert m["processes_speedup"] > 1.3 * m["threads_speedup"]  # the cores were free: processes used them


@pytest.mark.parametrize(
    "params", [{}, {"order": "map"}, {"order": "map", "threads": 2, "tasks": 5, "task_ms": 100}, {"threads": 8}]
)
def test_thread_pool(params):
    messages = run_worker("thread-pool", params)
    outcome = outcome_of(messages)
    assert outcome["held"], outcome
    m = outcome["metrics"]
    threads, tasks = params.get("threads", 3), params.get("tasks", 8)
    assert m["results"] == tasks and m["order_kept"] is True
    assert m["waves"] == math.ceil(tasks / threads)
    assert 0.95 <= m["pool_ms"] / m["expected_ms"] <= 1.5
    assert m["max_queue_wait_ms"] >= m["mean_queue_wait_ms"] >= 0
    if tasks > threads:  # somebody had to wait for a free worker
        assert m["max_queue_wait_ms"] > 0.3 * m["expected_ms"] / m["waves"]
    spans = {e[3] for e in events_of(messages) if e[2] == "B" and str(e[3]).startswith("task ")}
    assert spans == {f"task {i}" for i in range(tasks)}


@pytest.mark.parametrize(
    "params", [{}, {"threads": 5, "slots": 2, "hold_ms": 100}, {"threads": 3, "slots": 5, "hold_ms": 300}]
)
def test_semaphore(params):
    messages = run_worker("semaphore", params)
    outcome = outcome_of(messages)
    assert outcome["held"], outcome
    m = outcome["metrics"]
    threads, slots = params.get("threads", 8), params.get("slots", 3)
    assert m["peak_in_use"] == min(threads, slots) and m["left_in_use"] == 0
    assert 0.95 <= m["ratio"] <= 1.5
    free = counters(messages, "free slots")
    assert len(free) == 2 * threads  # one sample after each acquire and after each release
    assert 0 <= min(free) and max(free) <= slots


@pytest.mark.parametrize("params", [{}, {"threads": 16, "delay_ms": 300, "work_ms": 0}])
def test_event(params):
    outcome = outcome_of(run_worker("event", params))
    assert outcome["held"], outcome
    m = outcome["metrics"]
    assert m["resumed_early"] == 0 and m["arrived_late"] == 0
    assert 0 <= m["first_resume_us"] <= m["last_resume_us"]
    assert m["spread_us"] == pytest.approx(m["last_resume_us"] - m["first_resume_us"], abs=0.2)
    assert m["last_resume_ratio"] <= 0.2


@pytest.mark.parametrize(
    "params", [{}, {"variant": "fast-consumers"}, {"threads": 5, "maxsize": 2, "items": 20, "work_ms": 20}]
)
def test_producer_consumer(params):
    messages = run_worker("producer-consumer", params)
    outcome = outcome_of(messages)
    assert outcome["held"], outcome
    m = outcome["metrics"]
    threads, maxsize = params.get("threads", 4), params.get("maxsize", 4)
    assert m["produced"] == (threads // 2) * params.get("items", 15)
    assert m["consumed"] == m["distinct"] == m["produced"] == sum(m["per_consumer"])
    assert len(m["per_consumer"]) == threads - threads // 2
    lengths = counters(messages, "length")  # after every put() and get(), stop signals included
    assert len(lengths) == 2 * (m["produced"] + len(m["per_consumer"]))
    assert max(lengths) <= maxsize and m["longest_queue"] <= maxsize
    blocked_puts = [e for e in events_of(messages) if e[2] == "B" and e[3] == "blocked in put()"]
    if params.get("variant", "fast-producers") == "fast-producers":
        assert m["blocked_share"] >= 0.5 and blocked_puts and m["longest_queue"] == maxsize
    else:
        assert m["blocked_share"] < 0.1
