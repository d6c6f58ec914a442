"""What the triggers downloaded, by kind of read: events, bytes, and how much of it they had already.

The quota proxy notes every ``FilterLogEvents`` and ``GetLogEvents`` answer here. Issue 9 asks that each
event be read about once: an event whose stream, timestamp and message came in an earlier answer is
*re-read*, and its share of the answer's bytes (its message plus the page's overhead per event) is
counted as such. Per stream, the events each kind brought tell which streams were read which way.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

FILTER_TARGET = "Logs_20140328.FilterLogEvents"
GET_EVENTS_TARGET = "Logs_20140328.GetLogEvents"


def read_kind(target: str, request: dict[str, Any]) -> str:
    """Name the read a request makes: ``stream`` (GetLogEvents), ``filtered`` (a filter pattern),
    ``stretch`` (FilterLogEvents on named streams) or ``window`` (the whole group)."""
    if target == GET_EVENTS_TARGET:
        return "stream"
    if request.get("filterPattern"):
        return "filtered"
    return "stretch" if request.get("logStreamNames") else "window"


class DownloadLedger:
    """Counts per kind of read: events, bytes, re-read events and re-read bytes."""

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.reread_events: Counter[str] = Counter()
        self.reread_bytes: Counter[str] = Counter()
        self.stream_events: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._seen: set[int] = set()

    def note(self, target: str, request_body: bytes, payload: bytes) -> None:
        """Account for one successful answer of `target` to `request_body`."""
        try:
            request, answer = json.loads(request_body or b"{}"), json.loads(payload)
        except ValueError:
            return
        kind = read_kind(target, request)
        events = answer.get("events") or []
        self.bytes[kind] += len(payload)
        if not events:
            return
        overhead = max(0.0, (len(payload) - sum(len(event.get("message", "")) for event in events)) / len(events))
        for event in events:
            stream = event.get("logStreamName") or request.get("logStreamName", "")
            message = event.get("message", "")
            key = hash((stream, event.get("timestamp"), message))
            self.events[kind] += 1
            self.stream_events[stream][kind] += 1
            if key in self._seen:
                self.reread_events[kind] += 1
                self.reread_bytes[kind] += round(len(message) + overhead)
            else:
                self._seen.add(key)

    def stats(self) -> dict[str, Any]:
        return {
            "by_kind": {
                kind: {
                    "bytes": self.bytes[kind],
                    "events": self.events[kind],
                    "reread_events": self.reread_events[kind],
                    "reread_bytes": self.reread_bytes[kind],
                }
                for kind in sorted(self.bytes)
            },
            "reread_bytes": sum(self.reread_bytes.values()),
            "stream_events": {stream: dict(kinds) for stream, kinds in sorted(self.stream_events.items())},
        }
