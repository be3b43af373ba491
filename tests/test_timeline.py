"""Reading an event list into per-lane state spans and totals."""

from playground.timeline import state_spans, state_totals


def test_states_sampled_after_a_threads_end_do_not_count():
    events = [
        [0, 1, "S", "running"],
        [10_000_000, 1, "end", None],
        [11_000_000, 1, "S", "running"],
        [50_000_000, 0, "M", "x"],
    ]
    assert state_spans(events) == {1: [(0, 10_000_000, "running")]}
    assert state_totals(events)["running_ms"] == 10.0


def test_spans_close_at_the_next_state_and_handoffs_are_counted():
    events = [
        [0, 1, "S", "running"],
        [5, 1, "S", "gil"],
        [9, 1, "S", "running"],
        [12, 2, "S", "sleep"],
        [20, 1, "end", None],
    ]
    spans = state_spans(events)
    assert spans[1] == [(0, 5, "running"), (5, 9, "gil"), (9, 20, "running")]
    assert spans[2] == [(12, 20, "sleep")]  # open spans close at the last event
    assert state_totals(events)["gil_acquisitions_after_wait"] == 1
