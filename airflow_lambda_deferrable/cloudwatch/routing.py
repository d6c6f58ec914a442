"""Which ids an event carries, which streams subscribers follow, and the stretches a stream read holds.
Pure: no I/O.

The poller tokenises each event it reads once and gives it to the subscribers of those tokens. A line
without ids belongs to the request whose stretch of stream holds it, so a subscriber that gets an event
of a stream from an unfiltered read of the group follows that stream from then on (`StreamFollowing`):
every later event of it goes to the subscriber as the reads bring it, and its stretch needs no read of
its own. A stretch the reads did not follow is read with a call for its streams (`StretchesRead`).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Hashable, Iterable
from functools import lru_cache
from typing import Any, Generic, TypeVar

# Candidate ids in a line: runs of the characters a correlation id may use (see invocation_request), and
# the parts of such a run between ``= : / @ +`` (the value of ``key=value``, of ``a:b``, ...).
_TOKEN = re.compile(r"[A-Za-z0-9._:@+=/-]+")
_TOKEN_PART = re.compile(r"[A-Za-z0-9._-]+")
_PART_CHARS = frozenset(string.ascii_letters + string.digits + "._-")
_TOKEN_CHARS = _PART_CHARS | frozenset(":@+=/")

Span = tuple[str, int, int]  # (stream, first timestamp, last timestamp), both ends included
Follower = TypeVar("Follower", bound=Hashable)


def tokens(message: str) -> set[str]:
    """Return the words of `message` an id could be, whole and split at ``= : / @ +``.

    The parts are the runs of the narrower alphabet: two scans of the text in C, no loop over the words."""
    found = set(_TOKEN.findall(message))
    found.update(_TOKEN_PART.findall(message))
    return found


def carries(message: str, term: str) -> bool:
    """Whether `term` is one of `tokens(message)`, without finding them all: where the text holds it, it is a
    whole run of the characters of its alphabet (the narrower one if it is made of those alone)."""
    alphabet = _alphabet(term)
    if alphabet is None:
        return False
    at, size = message.find(term), len(term)
    while at >= 0:
        end = at + size
        if (at == 0 or message[at - 1] not in alphabet) and (end == len(message) or message[end] not in alphabet):
            return True
        at = message.find(term, at + 1)
    return False


@lru_cache(maxsize=4_096)
def _alphabet(term: str) -> frozenset[str] | None:
    """The characters of the runs `term` can be one of (`tokens`), or ``None`` if it can be none."""
    if term and all(char in _PART_CHARS for char in term):
        return _PART_CHARS
    if term and all(char in _TOKEN_CHARS for char in term):
        return _TOKEN_CHARS
    return None


class IngestedBefore:
    """Per stream, the newest event a read brought that was ingested before the read's horizon (every event
    ingested before then is in the read). A read brings each stream's events in time order (FilterLogEvents
    sorts its answer by timestamp; GetLogEvents reads one stream forward), so once it has brought that event,
    it has brought every event of its stream it matches up to the millisecond before (another of that
    millisecond may come on the next page) that was ingested before the horizon. What was ingested after it
    (a batch that came late) is not claimed: the dedupe knows such an event by its key (`Delivered`). Where
    the reads go on from (`StreamFollowing.complete`) also takes a stream to be ingested in the order of its
    timestamps (assumed: CloudWatch does not say); a late batch older than that is read by the sweeps and by
    its request's stretch."""

    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms
        self._newest: dict[str, int] = {}

    def lower_horizon(self, horizon_ms: int | None) -> None:
        """Count on events ingested before `horizon_ms` only, if it is earlier (a page's, by CloudWatch's
        clock: `pages.answer_horizon_ms`); before the page's events are noted."""
        if horizon_ms is not None and horizon_ms < self.horizon_ms:
            self.horizon_ms = horizon_ms

    def note(self, stream: str, timestamp: int, event: dict[str, Any]) -> bool:
        """Count `event` as brought; return whether it moved its stream's newest event ingested before the
        horizon."""
        ingested = event.get("ingestionTime")
        if ingested is None or int(ingested) >= self.horizon_ms:
            return False
        newest = self._newest.get(stream)
        if newest is not None and newest >= timestamp:
            return False
        self._newest[stream] = timestamp
        return True

    def newest(self, stream: str) -> int | None:
        """The newest timestamp of `stream` brought and ingested before the horizon (``None``: none)."""
        return self._newest.get(stream)

    def whole_through(self, stream: str) -> int | None:
        """Up to which timestamp the read has brought every event of `stream` it matches, from where it
        started (``None``: none known): a millisecond before `newest`, since another event of that
        millisecond may be ingested in a later batch."""
        newest = self._newest.get(stream)
        return None if newest is None else newest - 1


class StreamFollowing(Generic[Follower]):
    """Which followers follow which streams, and since when (ms), as unfiltered reads of the group go.

    A follower follows a stream from the first event of it routed to the follower by the follower's ids;
    from then on it gets every event of the stream the reads bring, so every line of its stretch reaches
    it once the reads have covered it. A read that does not bring every event (an OR-pattern read) breaks
    all following (`clear`): lines without ids in its window were not read.

    Events of one millisecond may come in any order: the events of a stream at its latest millisecond in
    the current read are kept, and a follower that starts there gets them too (`start`).

    **Complete up to** (`complete`): every event of a followed stream up to that timestamp has been
    routed. A read from `start_ms` that began at `horizon_ms` brought every event ingested before then;
    a stream is ingested in order, so an event of it ingested before the horizon has every earlier event
    of its stream before it: the stream is complete up to the newest such event, if the read started no
    later than where the stream was complete before (else a stretch in between may be missing, and the
    stream is `behind` the next read's start: the poller reads it on its own).
    """

    def __init__(self) -> None:
        self._since: dict[str, dict[Follower, int]] = {}
        self._streams_of: dict[Follower, set[str]] = {}
        self._latest: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._complete: dict[str, int] = {}
        # The read in progress: where it starts, what it brings whole, and per stream the newest event
        # ingested before its horizon.
        self._read_start_ms = 0
        self._ingested = IngestedBefore(0)

    def begin_read(self, *, start_ms: int, horizon_ms: int) -> None:
        """A read of the group (or of some streams) from `start_ms` begins; events ingested before
        `horizon_ms` (the moment it began, less the clocks' possible difference) are all in it."""
        self._latest.clear()
        self._read_start_ms = start_ms
        self._ingested = IngestedBefore(horizon_ms)

    def lower_horizon(self, horizon_ms: int | None) -> None:
        """The read under way counts on events ingested before `horizon_ms` only, if earlier
        (`IngestedBefore.lower_horizon`)."""
        self._ingested.lower_horizon(horizon_ms)

    def end_read(self, streams: Iterable[str] | None = None) -> None:
        """The read begun last brought all its pages: move the followed `streams` (default: all) on."""
        for stream in self._complete if streams is None else streams:
            complete = self._complete.get(stream)
            safe = self._ingested.newest(stream)
            if complete is not None and safe is not None and complete >= self._read_start_ms - 1:
                self._complete[stream] = max(complete, safe)

    def whole(self, streams: Iterable[str] | None = None) -> list[tuple[Follower, str, int, int, int]]:
        """After `end_read` of the read begun last: for each follower of the `streams` (default: all), the range
        of each stream it was given every event of that was ingested before the read's horizon, by that read
        and those before it, (follower, stream, first, last, horizon), both ends included.

        It starts where the follower started, or where that read started if later: a follower that joined
        during a read that never ended (a failure, a window too busy to read whole) missed what the stream's
        other followers got up to where it is complete. It ends a millisecond before where the stream is
        complete, and before the newest event of it that read brought (another event of that millisecond may
        be ingested in a later batch): a read that CloudWatch ended early (a stream or group deleted) says
        nothing of what it did not bring, whatever earlier reads brought."""
        ranges = []
        for stream in self._since if streams is None else streams:
            complete, brought = self._complete.get(stream), self._ingested.newest(stream)
            if complete is None or brought is None:
                continue
            for follower, since in self._since.get(stream, {}).items():
                first, last = max(since, self._read_start_ms), min(complete, brought) - 1
                if first <= last:
                    ranges.append((follower, stream, first, last, self._ingested.horizon_ms))
        return ranges

    def complete(self, stream: str) -> int | None:
        """Return up to which timestamp every event of `stream` has been routed, if it is followed."""
        return self._complete.get(stream)

    def behind(self, start_ms: int) -> dict[str, int]:
        """Return the followed streams a read from `start_ms` would leave a gap in, with where each is
        complete up to."""
        return {stream: complete for stream, complete in self._complete.items() if complete < start_ms - 1}

    def followers(self, stream: str) -> dict[Follower, int]:
        """Return who follows `stream`, each with the timestamp it follows from (empty if nobody)."""
        return self._since.get(stream, {})

    def start(self, follower: Follower, stream: str, timestamp: int) -> list[dict[str, Any]]:
        """Follow `stream` from `timestamp`; return the events of that millisecond the read already brought."""
        self._since.setdefault(stream, {})[follower] = timestamp
        self._streams_of.setdefault(follower, set()).add(stream)
        self._complete.setdefault(stream, timestamp - 1)
        latest = self._latest.get(stream)
        return list(latest[1]) if latest is not None and latest[0] == timestamp else []

    def start_behind(self, follower: Follower, stream: str, timestamp: int) -> bool:
        """Follow `stream` from `timestamp`, found by a read that did not bring every event (one that opens a
        request, read further back than the unfiltered window): the stream is then behind, and read on its
        own from where it is complete. Return whether `follower` follows it; not when the stream is complete
        past `timestamp` (its events since went to its other followers only: the follower's stretch must
        be read on its own)."""
        if self.since(follower, stream) is not None:
            return True
        complete = self._complete.get(stream)
        if complete is not None and complete >= timestamp:
            return False
        self._since.setdefault(stream, {})[follower] = timestamp
        self._streams_of.setdefault(follower, set()).add(stream)
        self._complete[stream] = timestamp - 1 if complete is None else complete
        return True

    def note(self, stream: str, timestamp: int, event: dict[str, Any]) -> None:
        """Remember `event` as one of its stream's latest millisecond in this read, and how far the stream
        is whole if it was ingested before the read's horizon."""
        self._ingested.note(stream, timestamp, event)
        latest = self._latest.get(stream)
        if latest is not None and latest[0] == timestamp:
            latest[1].append(event)
        else:
            self._latest[stream] = (timestamp, [event])

    def follows_any(self, follower: Follower) -> bool:
        """Whether `follower` follows some stream."""
        return bool(self._streams_of.get(follower))

    def since(self, follower: Follower, stream: str) -> int | None:
        """Return the timestamp from which `follower` has followed `stream` without a break, or ``None``."""
        return self._since.get(stream, {}).get(follower)

    def forget(self, follower: Follower) -> None:
        """Stop following anything for `follower` (it left)."""
        for stream in self._streams_of.pop(follower, set()):
            followers = self._since.get(stream)
            if followers is not None:
                followers.pop(follower, None)
                if not followers:
                    del self._since[stream]
                    self._complete.pop(stream, None)

    def clear(self) -> None:
        """Break all following: a read left lines without ids unread."""
        self._since.clear()
        self._streams_of.clear()
        self._latest.clear()
        self._complete.clear()

    @property
    def streams(self) -> int:
        return len(self._since)


class StretchesRead(Generic[Follower]):
    """One read of the stretches of streams that followers asked for, page by page: whom each event goes to
    (`hand_out`), and per stream how many events the read brought and the newest. It holds no event: a chatty
    request's stretch is hundreds of thousands of them."""

    def __init__(self, askers: dict[Span, list[Follower]], *, horizon_ms: int) -> None:
        """:param askers: who asked for each stretch (not empty).
        :param horizon_ms: every event ingested before then is in the read (`StreamFollowing.begin_read`)."""
        self.start_ms = min(start for _, start, _ in askers)
        self.end_ms = max(end for _, _, end in askers)
        self._spans_of: dict[str, list[tuple[int, int, list[Follower]]]] = {}
        for (stream, first, last), followers in askers.items():
            self._spans_of.setdefault(stream, []).append((first, last, followers))
        self._counts: Counter[str] = Counter()
        self._newest: dict[str, int] = {}
        self._ingested = IngestedBefore(horizon_ms)

    def hand_out(self, events: Iterable[dict[str, Any]]) -> dict[Follower, list[dict[str, Any]]]:
        """Count `events` as brought by the read; return them by the followers whose stretches hold them (in
        their order: a stream's events come in time order). Then `whole` says what they have been given."""
        handed: dict[Follower, list[dict[str, Any]]] = {}
        for event in events:
            stream = str(event.get("logStreamName", ""))
            timestamp = int(event.get("timestamp", 0))
            self._counts[stream] += 1
            self._newest[stream] = max(timestamp, self._newest.get(stream, timestamp))
            self._ingested.note(stream, timestamp, event)
            for first, last, followers in self._spans_of.get(stream, ()):
                if first <= timestamp <= last:
                    for follower in followers:
                        handed.setdefault(follower, []).append(event)
        return handed

    def lower_horizon(self, horizon_ms: int | None) -> None:
        """Count on events ingested before `horizon_ms` only, if earlier (`IngestedBefore.lower_horizon`)."""
        self._ingested.lower_horizon(horizon_ms)

    def count_of(self, stream: str) -> int:
        """How many events of `stream` the read brought."""
        return self._counts[stream]

    def newest_of(self, stream: str) -> int | None:
        """The newest timestamp of `stream` the read brought (``None``: none)."""
        return self._newest.get(stream)

    def whole(self, streams: Iterable[str]) -> list[tuple[Follower, str, int, int, int]]:
        """For each follower that asked for a stretch of `streams`, the part of it the read has brought every
        event of so far that was ingested before its horizon, (follower, stream, first, last, horizon), both
        ends included (`IngestedBefore.whole_through`: the read brings each stream's events in time order, so
        this holds after any page)."""
        ranges = []
        for stream in streams:
            through = self._ingested.whole_through(stream)
            if through is None:
                continue
            for first, last, followers in self._spans_of.get(stream, ()):
                if first <= min(last, through):
                    horizon = self._ingested.horizon_ms
                    ranges += [(follower, stream, first, min(last, through), horizon) for follower in followers]
        return ranges


class IdsRead(Generic[Follower]):
    """One read of the group by ids from `start_ms`, page by page: per stream, up to where it has brought every
    event that carries one of its ids, and so has given it to each follower that held the id as it began and
    holds it still (the poller routes an event to the holders of the ids it carries). A filter pattern's
    quoted term matches text that holds it (CloudWatch's documentation; `or_pattern` quotes each id), so the
    read brings at least the lines in which `tokens` finds the id."""

    def __init__(self, holders: dict[str, set[Follower]], *, start_ms: int, horizon_ms: int) -> None:
        """:param holders: who held each id of the read's pattern as it began (one who takes an id meanwhile
            missed its first pages).
        :param horizon_ms: every event ingested before then is in the read (`StreamFollowing.begin_read`)."""
        self.holders = holders
        self.start_ms = start_ms
        self._ingested = IngestedBefore(horizon_ms)

    def lower_horizon(self, horizon_ms: int | None) -> None:
        """Count on events ingested before `horizon_ms` only, if earlier (`IngestedBefore.lower_horizon`)."""
        self._ingested.lower_horizon(horizon_ms)

    def carried(self, events: Iterable[dict[str, Any]]) -> list[tuple[Follower, str, str, int, int, int]]:
        """Count `events` (a page) as brought; return what each holder has now been given every event of that
        carries its id and was ingested before the read's horizon, (follower, id, stream, first, last,
        horizon), for the streams whose range the page moved."""
        moved = set()
        for event in events:
            stream = str(event.get("logStreamName", ""))
            if self._ingested.note(stream, int(event.get("timestamp", 0)), event):
                moved.add(stream)
        ranges = []
        for stream in sorted(moved):
            through = self._ingested.whole_through(stream)
            if through is None or through < self.start_ms:
                continue
            for term, followers in self.holders.items():
                horizon = self._ingested.horizon_ms
                ranges += [(follower, term, stream, self.start_ms, through, horizon) for follower in followers]
        return ranges
