"""Where reads of stretches start and resume (`cloudwatch.stretch_plan`): pure, with made-up times."""

from __future__ import annotations

import pytest

from airflow_lambda_deferrable.cloudwatch.stretch_plan import alone_from, batches, extents, resume_at
from airflow_lambda_deferrable.limits import MAX_STREAMS_PER_CALL


def test_stretches_share_calls_by_start_at_most_a_call_s_worth_each():
    spans = [(f"s{n}", 10_000 - n, 20_000) for n in range(MAX_STREAMS_PER_CALL + 5)]
    calls = batches(spans + spans[:3])  # asked twice: read once
    assert [len(call) for call in calls] == [MAX_STREAMS_PER_CALL, 5]
    starts = [start for call in calls for _, start, _ in call]
    assert starts == sorted(starts)
    assert calls[0][0] == (f"s{MAX_STREAMS_PER_CALL + 4}", 10_000 - MAX_STREAMS_PER_CALL - 4, 20_000)
    assert batches([]) == []


def test_a_stream_asked_for_twice_in_a_call_is_read_over_both_stretches():
    assert extents([("a", 5_000, 6_000), ("b", 1, 2), ("a", 4_000, 5_500)]) == {"a": (4_000, 6_000), "b": (1, 2)}


# (extent, newest event read, read alone now?) -> where it is read on from (None: done or alone)
RESUME = [
    ((1_000, 9_000), None, False, 1_000),  # nothing came yet: from its start
    ((1_000, 9_000), 4_000, False, 4_000),  # from its newest event, that millisecond again
    # Its newest event is its end: that millisecond again, as more of it may be on the pages not read.
    ((1_000, 9_000), 9_000, False, 9_000),
    ((1_000, 9_000), 9_001, False, None),  # an event past its end came: done
    ((1_000, 9_000), 4_000, True, None),  # read alone from now on
]


@pytest.mark.parametrize(("extent", "newest", "alone", "expected"), RESUME)
def test_a_stream_read_together_is_read_on_from_its_newest_event(extent, newest, alone, expected):
    resume = resume_at(["s"], {"s": extent}, {"s": newest}.get, left_out=["s"] if alone else [])
    assert resume.get("s") == expected


def test_only_the_streams_read_together_are_read_on():
    extent_of = {"a": (0, 10), "b": (0, 10), "c": (0, 10)}
    newest = {"a": 5, "b": None, "c": 10}
    assert resume_at(["a", "b"], extent_of, newest.get, left_out=[]) == {"a": 5, "b": 0}


@pytest.mark.parametrize(
    ("extent", "newest", "expected"),
    [
        ((1_000, 9_000), None, (1_000, 9_000)),
        ((1_000, 9_000), 3_000, (3_000, 9_000)),
        ((1_000, 9_000), 500, (1_000, 9_000)),
    ],
)
def test_a_stream_read_alone_starts_from_what_the_read_of_the_others_brought(extent, newest, expected):
    assert alone_from(extent, newest) == expected
