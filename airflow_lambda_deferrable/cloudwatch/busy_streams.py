"""Which streams of a log group are busy: their stretches are read on their own with GetLogEvents.

GetLogEvents has its own quota (10 requests per second against FilterLogEvents' 5) and its answers carry
no stream name and no event id: a short ``print`` line costs half the bytes it costs in a FilterLogEvents
page. A read of many streams at once costs fewer calls, so only streams that print many lines are read
alone. Pure: the poller tells what its reads brought, these rules say which streams are busy.

A stream is known busy from either of:

* a read of stretches that needs another page, when the rest of a stream's stretch still holds
  `BUSY_STREAM_EVENTS` at the rate the read brought it so far (`rest_looks_busy`): a request too short for
  a sample, that printed thousands of lines;
* a sample of the streams whose requests run, one short slice of time (`busy_in_sample`): when the group
  is read by request lines, their lines are read only when their requests end, and a stretch read with
  FilterLogEvents first would bring a chatty request's lines at twice the bytes.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping

from airflow_lambda_deferrable.tuning import (
    BUSY_LINES_PER_SECOND,
    BUSY_SAMPLE_EVENTS,
    BUSY_STREAM_EVENTS,
    MAX_STREAMS_KEPT,
    SAMPLE_AFTER_RUN_MS,
    SAMPLE_DELAY_MS,
    SAMPLE_SLICE_MS,
    SAMPLE_STREAMS_PER_READ,
    SAMPLE_TRIES,
)


def read_alone(
    *,
    start_ms: int,
    end_ms: int,
    marked_busy: bool,
    get_refused: bool,
    more_pages: bool = False,
    count: int = 0,
    newest_ms: int | None = None,
) -> bool:
    """Whether a stream's stretch (`start_ms` to `end_ms`) is read on its own with ``GetLogEvents`` rather than
    with the other stretches in one ``FilterLogEvents`` read: the one place that decides.

    Never when ``GetLogEvents`` was refused. Before the read, when the stream is marked busy (`StreamMarks`,
    by any of the three signs above). While the read brings pages (`more_pages`: another follows), when the rest of the
    stretch looks busy at the rate the read brought its `count` events up to `newest_ms` (`rest_looks_busy`).
    """
    if get_refused:
        return False
    if marked_busy:
        return True
    return more_pages and rest_looks_busy(count, newest_ms, start_ms, end_ms)


def rest_looks_busy(count: int, newest_ms: int | None, start_ms: int, end_ms: int) -> bool:
    """Whether the part of a stream's stretch (`start_ms` to `end_ms`) after `newest_ms` holds
    `BUSY_STREAM_EVENTS` or more, judging by the rate of the `count` events a read has brought of it so far
    (once `BUSY_SAMPLE_EVENTS` tell a rate). A stream whose stretch the read has almost brought whole is not
    (at volume, 293 of 412 such reads brought the 3 lines that end a request)."""
    if count < BUSY_SAMPLE_EVENTS or newest_ms is None:
        return False
    return count * (end_ms - newest_ms) >= BUSY_STREAM_EVENTS * max(newest_ms - start_ms, 1)


def busy_in_sample(counts: Mapping[str, int], slice_ms: int = SAMPLE_SLICE_MS) -> list[str]:
    """The streams that printed `BUSY_LINES_PER_SECOND` lines in a sample's slice of `slice_ms`."""
    least = BUSY_LINES_PER_SECOND * slice_ms / 1000
    return [stream for stream, count in counts.items() if count >= least]


def sample_slice(now_ms: int) -> tuple[int, int]:
    """The slice of time (first and last millisecond) a sample taken at `now_ms` reads."""
    end = now_ms - SAMPLE_DELAY_MS
    return end - SAMPLE_SLICE_MS + 1, end


def to_sample(running: Mapping[str, int], slice_start_ms: int, sampled: Container[tuple[str, int]]) -> list[str]:
    """The streams (by name) of running requests (stream: the request's start) that a sample with this
    slice should read: each request until it is sampled for good (`sampled`, `sampled_enough`), once it has
    run `SAMPLE_AFTER_RUN_MS` before the slice, the oldest first, `SAMPLE_STREAMS_PER_READ` at most."""
    due = sorted(
        (start, stream)
        for stream, start in running.items()
        if start <= slice_start_ms - SAMPLE_AFTER_RUN_MS and (stream, start) not in sampled
    )
    return [stream for _, stream in due[:SAMPLE_STREAMS_PER_READ]]


def sampled_enough(count: int, tries: int) -> bool:
    """Whether a request whose stream showed `count` lines in its `tries`-th sample is sampled for good."""
    return count > 0 or tries >= SAMPLE_TRIES


class StreamMarks:
    """A set of marks (a stream name, or a stream and a request's start) that forgets everything once it holds
    `MAX_STREAMS_KEPT`: a poller of a busy group for days tells them anew."""

    def __init__(self) -> None:
        self._marks: set[object] = set()

    def add_all(self, marks: Iterable[object]) -> None:
        marks = list(marks)
        if len(self._marks) + len(marks) > MAX_STREAMS_KEPT:
            self._marks.clear()
        self._marks.update(marks)

    def __contains__(self, mark: object) -> bool:
        return mark in self._marks

    def __iter__(self) -> Iterator[object]:
        return iter(self._marks)

    def __len__(self) -> int:
        return len(self._marks)
