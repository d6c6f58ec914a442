"""Which ids an event carries, and the stretches of streams a read already holds. Pure: no I/O.

The poller tokenises each event it reads once, gives it to the subscribers of those tokens, and keeps the
events nobody took, indexed by stream and time, so that a stretch of a stream inside that read is a
lookup rather than another call or a scan of the whole read.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import Any

# Candidate ids in a line: runs of the characters a correlation id may use (see invocation_request), and
# the parts of such a run between ``= : / @ +`` (the value of ``key=value``, of ``a:b``, ...).
_TOKEN = re.compile(r"[A-Za-z0-9._:@+=/-]+")
_TOKEN_PART = re.compile(r"[A-Za-z0-9._-]+")

Span = tuple[str, int, int]  # (stream, first timestamp, last timestamp), both ends included


def tokens(message: str) -> set[str]:
    """Return the words of `message` an id could be, whole and split at ``= : / @ +``.

    The parts are the runs of the narrower alphabet: two scans of the text in C, no loop over the words."""
    found = set(_TOKEN.findall(message))
    found.update(_TOKEN_PART.findall(message))
    return found


class StreamStretches:
    """The events of one read between two timestamps, by stream and sorted by time.

    Holds only what the read's router gave to nobody: the events it gave to a subscriber already reached
    it, and a line carrying another followed invocation's id is that invocation's.
    """

    def __init__(self, start_ms: int, end_ms: int) -> None:
        self.start_ms = start_ms
        self.end_ms = end_ms
        self._times: dict[str, list[int]] = {}
        self._events: dict[str, list[dict[str, Any]]] = {}
        self.count = 0

    def add(self, event: dict[str, Any]) -> None:
        stream = str(event.get("logStreamName", ""))
        timestamp = int(event.get("timestamp", 0))
        times = self._times.setdefault(stream, [])
        events = self._events.setdefault(stream, [])
        at = bisect.bisect_right(times, timestamp)  # pages come sorted by time: this is nearly always the end
        times.insert(at, timestamp)
        events.insert(at, event)
        self.count += 1

    def add_all(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            self.add(event)

    def release(self, count: int) -> None:
        """Let go of up to `count` events (freeing hundreds of thousands at once holds the loop for a while)."""
        while count > 0 and self._events:
            stream, events = next(iter(self._events.items()))
            if len(events) <= count:
                count -= len(events)
                self.count -= len(events)
                del self._events[stream], self._times[stream]
            else:
                del events[-count:], self._times[stream][-count:]
                self.count -= count
                count = 0

    def covers(self, span: Span) -> bool:
        """Whether the read spanned the whole stretch (so what it did not hold, the stream did not have)."""
        _, first, last = span
        return self.start_ms <= first <= last <= self.end_ms

    def within(self, span: Span) -> list[dict[str, Any]]:
        """Return the events held of the stretch, in time order."""
        stream, first, last = span
        times = self._times.get(stream, [])
        return self._events.get(stream, [])[bisect.bisect_left(times, first) : bisect.bisect_right(times, last)]
