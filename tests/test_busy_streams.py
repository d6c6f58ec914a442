"""The rules that tell busy streams (read on their own with GetLogEvents) apart: pure, no I/O."""

from __future__ import annotations

import pytest

from airflow_lambda_deferrable.cloudwatch import busy_streams
from airflow_lambda_deferrable.cloudwatch.busy_streams import (
    SAMPLE_AFTER_RUN_MS,
    SAMPLE_DELAY_MS,
    SAMPLE_SLICE_MS,
    SAMPLE_STREAMS_PER_READ,
    SAMPLE_TRIES,
    StreamMarks,
    busy_in_sample,
    read_alone,
    sample_slice,
    sampled_enough,
    to_sample,
)


def test_a_stream_printing_ten_lines_a_second_in_a_sample_is_busy():
    assert busy_in_sample({"chatty": 10, "quiet": 9, "idle": 0}, slice_ms=1_000) == ["chatty"]
    assert busy_in_sample({"chatty": 19}, slice_ms=2_000) == []


def test_a_sample_reads_one_slice_of_time_ingested_by_now():
    first, last = sample_slice(100_000)
    assert (first, last) == (100_000 - SAMPLE_DELAY_MS - SAMPLE_SLICE_MS + 1, 100_000 - SAMPLE_DELAY_MS)
    assert last - first + 1 == SAMPLE_SLICE_MS


def test_each_running_request_is_sampled_once_after_it_has_run_a_while_before_the_slice():
    slice_start = 50_000
    running = {"old": slice_start - SAMPLE_AFTER_RUN_MS, "young": slice_start - SAMPLE_AFTER_RUN_MS + 1, "done": 0}
    assert to_sample(running, slice_start, sampled=[("done", 0)]) == ["old"]
    # A later request in the same stream (the environment ran it after ours) is sampled anew.
    assert to_sample({"done": 10_000}, slice_start, sampled=[("done", 0)]) == ["done"]


def test_a_sample_takes_the_oldest_requests_first_one_call_at_most():
    running = {f"s{index:04d}": 1_000 + index for index in range(SAMPLE_STREAMS_PER_READ + 5)}
    chosen = to_sample(dict(reversed(list(running.items()))), 100_000, sampled=set())
    assert chosen == sorted(running)[:SAMPLE_STREAMS_PER_READ]


def test_a_stream_with_no_line_in_its_sample_is_sampled_again_a_few_times():
    # A late batch holds a stream back (it is ingested in order): its slice may show nothing yet.
    assert sampled_enough(1, tries=1)
    assert not sampled_enough(0, tries=SAMPLE_TRIES - 1)
    assert sampled_enough(0, tries=SAMPLE_TRIES)


def test_marks_forget_everything_once_they_hold_too_many(monkeypatch):
    monkeypatch.setattr(busy_streams, "MAX_STREAMS_KEPT", 3)
    marks = StreamMarks()
    marks.add_all(["a", "b", "c"])
    assert "a" in marks and len(marks) == 3
    marks.add_all(["d"])
    assert "a" not in marks and set(marks) == {"d"}


# (stretch start, end, marked busy, GetLogEvents refused, another page follows, events read, newest read) ->
# read alone with GetLogEvents?
READ_ALONE = [
    # Before the read: a stream marked busy, however short its stretch.
    (0, 10_000, True, False, False, 0, None, True),
    (0, 1, True, False, False, 0, None, True),
    (0, 60_000, False, False, False, 0, None, False),  # not marked: read with the others
    (0, 60_000, True, True, False, 0, None, False),  # GetLogEvents refused: never alone
    # While the read brings pages: the rest of the stretch at the rate so far.
    (0, 60_000, False, False, True, 100, 5_000, True),  # 100 in 5 s: 1,100 in the 55 s left
    (0, 60_000, False, False, True, 100, 6_000, False),  # 100 in 6 s: 900 left
    (0, 60_000, False, False, True, 99, 1_000, False),  # too few events to tell a rate
    (0, 60_000, False, False, False, 100, 1_000, False),  # the read has no more pages: nothing left to save
    (0, 60_000, False, True, True, 5_000, 1_000, False),  # refused, however busy
    (0, 60_000, False, False, True, 100, None, False),  # no newest event: no rate
]


@pytest.mark.parametrize(("start", "end", "marked", "refused", "more", "count", "newest", "alone"), READ_ALONE)
def test_a_stream_is_read_alone_with_get_log_events_only_by_this_table(
    start, end, marked, refused, more, count, newest, alone
):
    assert alone == read_alone(
        start_ms=start,
        end_ms=end,
        marked_busy=marked,
        get_refused=refused,
        more_pages=more,
        count=count,
        newest_ms=newest,
    )
