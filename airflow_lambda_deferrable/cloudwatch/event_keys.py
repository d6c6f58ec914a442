"""One key per log event, whichever CloudWatch Logs API brought it.

``FilterLogEvents`` gives each event an ``eventId``; ``GetLogEvents`` gives none (nor the stream's name).
The poller reads a busy stream's stretch with ``GetLogEvents`` and everything else with
``FilterLogEvents``, and a line must reach its trigger once whichever way it came, so every event is
keyed the same way: by its stream, timestamp and message, and its rank among the identical events of that
stream and millisecond in the read (two identical ``print`` lines in one millisecond are two lines).

A read always holds every event of each millisecond it covers (times are inclusive, in milliseconds), and
a pattern keeps or drops identical events together, so the rank is the same in every read. Each stream's
events come in time order in a read, so only the latest millisecond of each stream is remembered. The key is a
62-bit number written in decimal (`log_source.id_key` keeps it as an int); two events of one triggerer
process share a key with a probability of about n^2 / 2^63 (1e-7 for a million events).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

KEY_BITS = (1 << 62) - 1


class EventKeys:
    """Key the events of one read (its pages, in order): sets each event's ``eventId`` to its key."""

    def __init__(self, stream: str | None = None) -> None:
        """:param stream: the stream of a ``GetLogEvents`` read (its events name none): set on each event."""
        self._stream = stream
        # Per stream: its latest millisecond in this read, and how many times each message came in it.
        self._latest: dict[str, tuple[int, Counter[str]]] = {}

    def assign(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            if self._stream is not None:
                event["logStreamName"] = self._stream
            stream, timestamp = str(event.get("logStreamName", "")), int(event.get("timestamp", 0))
            message = str(event.get("message", ""))
            latest = self._latest.get(stream)
            if latest is None or latest[0] != timestamp:
                latest = self._latest[stream] = (timestamp, Counter())
            rank = latest[1][message]
            latest[1][message] = rank + 1
            event["eventId"] = str(hash((stream, timestamp, message, rank)) & KEY_BITS)
