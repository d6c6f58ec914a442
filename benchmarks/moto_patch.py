"""Make moto's ``FilterLogEvents`` answer as CloudWatch Logs does.

moto 5.2.5 differs in four ways that matter at volume, each of which would flatter or burden the trigger:

* it ignores OR patterns (``?"a" ?"b"``) and regex patterns (``%[0-9a-f]{8}%``) and returns every event, so
  each per-trigger poll would page through the whole group; CloudWatch returns the events that contain any
  of the quoted terms, or a match of the regex (which may not hold ``( )``);
* it sorts across streams only when the (deprecated) ``interleaved`` flag is set; CloudWatch always
  returns events sorted by timestamp across the streams searched;
* its pages end at 10,000 events only; CloudWatch's end at 1 MB or 10,000 events, whichever comes first
  (sized here as ``PutLogEvents`` sizes a batch: the message's UTF-8 bytes plus 26 per event);
* it lists every stream in ``searchedLogStreams`` on every page (80 KB per page with 1000 streams);
  CloudWatch has returned an empty list there since 2020. Its event ids are a few digits, CloudWatch's
  56: ids are padded to 56 digits so that bytes downloaded are CloudWatch's.

It also rescans every event of every stream for each page; the replacement finds the time range by
bisection in each stream, which needs a stream's events in timestamp order: the benchmark's writer
ingests each stream in order. Other patterns keep moto's matcher. Matchers are cached per pattern, and so
is, per stream, which of its events a pattern matched (`MatchedEvents`): CloudWatch searches on its own
servers, while moto ran the pattern over every event of the window for each call, and with several
triggerers each reading the group, that CPU (not the triggers') set the pace of a run.

Its ``GetLogEvents``, read forwards, pages at 10,000 events only and counts `endTime` in; CloudWatch's
pages end at 1 MB too, and leave `endTime` out. The replacement does as CloudWatch, by bisection too.

OR and regex patterns are taught in every run; the rest (``cloudwatch_pages``) only under issue 9's conditions, so
that runs under today's conditions page as the rows measured before it did.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import moto.logs.models
from moto.logs.utils import EventMessageFilter

_OR_TERMS = re.compile(r'^\s*(?:\?"[^"]*"\s*)+$')
_TERM = re.compile(r'\?"([^"]*)"')
_REGEX = re.compile(r"^\s*%([^%]+)%\s*$")
MAX_PAGE_EVENTS = 10_000
MAX_PAGE_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
EVENT_ID_DIGITS = 56


@functools.lru_cache(maxsize=4096)
def matcher(pattern: str) -> Callable[[str], bool]:
    """Return the test CloudWatch applies for `pattern`."""
    if not pattern:
        return lambda message: True
    if _OR_TERMS.match(pattern):
        search = re.compile("|".join(re.escape(term) for term in _TERM.findall(pattern))).search
        return lambda message: search(message) is not None
    regex = _REGEX.match(pattern)
    if regex:
        if "(" in regex[1] or ")" in regex[1]:
            raise ValueError(f"matcher: CloudWatch refuses ( ) in the regex pattern {pattern!r}")
        search = re.compile(regex[1]).search
        return lambda message: search(message) is not None
    return EventMessageFilter(pattern).matches


class OrAwareFilter:
    """Drop-in for moto's ``EventMessageFilter``."""

    def __init__(self, pattern: str) -> None:
        self.matches = matcher(pattern or "")


class MatchedEvents:
    """Which events of one stream each pattern matched, extended as the stream grows (events are only ever
    appended), so that a call runs a pattern over the events that came since, not the whole window again.

    Kept for the `MAX_PATTERNS_KEPT` patterns used last (the readers' OR-patterns of ids change as
    triggers come and go; the request-lines pattern stays).

    The moto server answers each call in a thread of its own, and the writer puts events meanwhile: one call at
    a time extends the lists (two calls that scanned the same new events at once each appended them, and every
    later answer held them twice), up to the events there were when its scan began. Appended under the lock
    only, the lists can be read without it: a reader sees a prefix of them."""

    def __init__(self) -> None:
        self.by_pattern: dict[str, tuple[list[int], list[int]]] = {}  # pattern -> (timestamps, indexes)
        self.scanned: dict[str, int] = {}
        self._lock = threading.Lock()

    def of(self, events: list[Any], pattern: str, matches: Callable[[str], bool]) -> tuple[list[int], list[int]]:
        """Return the timestamps and indexes of the events `pattern` matches, in stream order."""
        with self._lock:
            found = self.by_pattern.pop(pattern, None) or ([], [])
            self.by_pattern[pattern] = found  # the newest use last: the oldest are dropped first
            timestamps, indexes = found
            end = len(events)  # events put during the scan are the next call's
            for index in range(self.scanned.get(pattern, 0), end):
                if matches(events[index].message):
                    timestamps.append(events[index].timestamp)
                    indexes.append(index)
            self.scanned[pattern] = end
            while len(self.by_pattern) > MAX_PATTERNS_KEPT:
                oldest = next(iter(self.by_pattern))
                del self.by_pattern[oldest], self.scanned[oldest]
            return found


_MATCHED_EVENTS_MADE = threading.Lock()  # one `MatchedEvents` per stream, whichever thread asks first


def matched_events(stream: Any) -> MatchedEvents:
    """Return the `MatchedEvents` of `stream`, made on first use (it lives and dies with its stream)."""
    with _MATCHED_EVENTS_MADE:
        if not hasattr(stream, "matched_events"):
            stream.matched_events = MatchedEvents()
        return stream.matched_events


MAX_PATTERNS_KEPT = 8


def _stream_events(
    stream: Any, start: int | None, end: int | None, after: tuple[int, int] | None, pattern: str
) -> Iterator[tuple[int, int, str, Any]]:
    """Yield the events of a stream that `pattern` matches from `start` to `end` (both inclusive, as
    CloudWatch) after the (timestamp, id) `after`, as merge keys."""
    events = stream.events
    name = stream.log_stream_name
    low = max(start or 0, after[0] if after else 0)
    if pattern:
        timestamps, indexes = matched_events(stream).of(events, pattern, matcher(pattern))
        candidates: Iterable[int] = (indexes[i] for i in range(bisect.bisect_left(timestamps, low), len(indexes)))
    else:
        candidates = range(bisect.bisect_left(events, low, key=lambda event: event.timestamp), len(events))
    for index in candidates:
        event = events[index]
        if end and event.timestamp > end:
            return
        if after is not None and (event.timestamp, event.event_id) <= after:
            continue
        yield event.timestamp, event.event_id, name, event


def filter_log_events(
    self: Any,
    log_group_name: str,
    log_stream_names: list[str],
    start_time: int,
    end_time: int,
    limit: int | None,
    next_token: str | None,
    filter_pattern: str,
    interleaved: bool,
) -> tuple[list[dict[str, Any]], str | None, list[dict[str, Any]]]:
    """Return one page of ``FilterLogEvents``: matching events sorted by time, at most 1 MB or `limit`."""
    limit = min(limit or MAX_PAGE_EVENTS, MAX_PAGE_EVENTS)
    wanted = set(log_stream_names or ())
    streams = [stream for name, stream in self.streams.items() if not wanted or name in wanted]
    after = None
    if next_token:
        group, timestamp, event_id = next_token.rsplit("@", 2)
        if group != log_group_name:
            return [], None, []
        after = (int(timestamp), int(event_id))
    pattern = filter_pattern or ""
    merged = heapq.merge(*(_stream_events(stream, start_time, end_time, after, pattern) for stream in streams))
    page: list[dict[str, Any]] = []
    size = 0
    last: tuple[int, int] | None = None
    for timestamp, event_id, stream_name, event in merged:
        event_size = len(event.message.encode()) + EVENT_OVERHEAD_BYTES
        if len(page) >= limit or (page and size + event_size > MAX_PAGE_BYTES):
            assert last is not None
            return page, f"{log_group_name}@{last[0]}@{last[1]}", []
        page.append(
            {
                "eventId": str(event_id).zfill(EVENT_ID_DIGITS),
                "ingestionTime": event.ingestion_time,
                "logStreamName": stream_name,
                "message": event.message,
                "timestamp": timestamp,
            }
        )
        size += event_size
        last = (timestamp, event_id)
    return page, None, []


_moto_get_log_events = moto.logs.models.LogStream.get_log_events


def get_log_events(
    self: Any,
    start_time: int | None,
    end_time: int | None,
    limit: int | None,
    next_token: str | None,
    start_from_head: Any,
) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """Return one page of ``GetLogEvents`` read forwards as CloudWatch does: `end_time` excluded, at most 1 MB
    or `limit` events, and at the end of the stream the forward token it was given (or its own, first)."""
    if next_token is None and not start_from_head or next_token is not None and not next_token.startswith("f/"):
        return _moto_get_log_events(self, start_time, end_time, limit, next_token, start_from_head)
    limit = min(limit or MAX_PAGE_EVENTS, MAX_PAGE_EVENTS)
    events = self.events
    if next_token:
        first = int(next_token[2:])
    else:
        first = bisect.bisect_left(events, start_time or 0, key=lambda event: event.timestamp)
    page: list[dict[str, Any]] = []
    size = 0
    index = first
    while index < len(events) and (end_time is None or events[index].timestamp < end_time):
        event_size = len(events[index].message.encode()) + EVENT_OVERHEAD_BYTES
        if len(page) >= limit or (page and size + event_size > MAX_PAGE_BYTES):
            break
        page.append(events[index].to_response_dict())
        size += event_size
        index += 1
    forward = next_token if not page and next_token else f"f/{index:056d}"
    return page, f"b/{first:056d}", forward


def install(*, cloudwatch_pages: bool = False) -> None:
    """Make moto's log groups, in this process, filter OR patterns as CloudWatch does, and with
    `cloudwatch_pages` also sort and page as CloudWatch does."""
    moto.logs.models.EventMessageFilter = OrAwareFilter  # type: ignore[misc,assignment]
    if cloudwatch_pages:
        moto.logs.models.LogGroup.filter_log_events = filter_log_events  # type: ignore[method-assign]
        moto.logs.models.LogStream.get_log_events = get_log_events  # type: ignore[method-assign]
