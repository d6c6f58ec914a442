"""Where reads of stretches start and resume: which stretches share a call, how far each stream's reaches, and
where a stream is read on from once a read stops. Pure: the stretches asked for and what a read brought in,
the reads to make out. `StretchReads` makes them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from airflow_lambda_deferrable.cloudwatch.routing import Span
from airflow_lambda_deferrable.limits import MAX_STREAMS_PER_CALL

Extent = tuple[int, int]  # the first and last timestamp a stream's read must cover, both included


def batches(spans: Iterable[Span]) -> list[list[Span]]:
    """The stretches asked for, in calls of at most `MAX_STREAMS_PER_CALL`, by start: stretches read together
    start close together (a read reaches back to its earliest start), and a stretch read again from its newest
    line is not read with ones read from their start."""
    ordered = sorted(set(spans), key=lambda span: (span[1], span))
    return [ordered[first : first + MAX_STREAMS_PER_CALL] for first in range(0, len(ordered), MAX_STREAMS_PER_CALL)]


def extents(batch: Iterable[Span]) -> dict[str, Extent]:
    """For each stream of `batch`, the extent covering all its stretches there."""
    covered: dict[str, Extent] = {}
    for stream, start, end in batch:
        earliest, latest = covered.get(stream, (start, end))
        covered[stream] = (min(earliest, start), max(latest, end))
    return covered


def resume_at(
    together: Iterable[str],
    extent_of: dict[str, Extent],
    newest_of: Callable[[str], int | None],
    left_out: Collection[str],
) -> dict[str, int]:
    """Where each stream still read together is read on from after a read stopped (`left_out` are read alone
    now). Each stream's events come in time order, whatever the order of the streams in the pages: from its
    newest event (that millisecond again, each event being kept once by its key), or from its start if none
    came yet. So is a stream whose newest event is its extent's end: more events of that millisecond may be on
    the pages the read did not bring. A stream that brought an event past its end is done."""
    resume: dict[str, int] = {}
    for stream in together:
        start, end = extent_of[stream]
        newest = newest_of(stream)
        if stream not in left_out and (newest is None or newest <= end):
            resume[stream] = start if newest is None else newest
    return resume


def alone_from(extent: Extent, newest: int | None) -> Extent:
    """The extent a stream read alone covers: from the newest event the read of the others brought of it (that
    millisecond again), or from its start."""
    start, end = extent
    return max(newest or 0, start), end
