"""What one subscriber has been given (`Delivered`), so that it gets no event twice, in memory that stops
growing once a stretch of stream has been read whole. Pure: no I/O.

Reads overlap, so they bring events again: a window read reaches back over the last, a request's stretch
brings its lines with ids again, a catch-up for a new id brings lines that carried an older one. A subscriber
keeps a key (`log_source.id_key`) for each event it was given, by stream and second of timestamp. Once a read
has brought it every event of a stream from one timestamp to another (`read_whole`: the reads follow the
stream for it, or read its stretch), any event of that range that comes again was given already, so the
keys of the seconds the range covers are let go. Events the subscriber gave back (`give_back`) are given
once more even there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow_lambda_deferrable.cloudwatch.log_source import ReturnedKeys, id_key
from airflow_lambda_deferrable.tuning import KEY_SLICE_MS

Range = tuple[int, int]  # the first and last timestamp, both included


class Delivered:
    """The events given to one subscriber: each is given once, whatever the reads bring again."""

    def __init__(self) -> None:
        self._keys: dict[str, dict[int, ReturnedKeys]] = {}
        self._whole: dict[str, list[Range]] = {}
        self._again = ReturnedKeys()

    def __len__(self) -> int:
        """How many keys are kept (those of given-back events included)."""
        return sum(len(keys) for slices in self._keys.values() for keys in slices.values()) + len(self._again)

    def whole(self, stream: str) -> list[Range]:
        """The ranges of `stream` every event of which has been given (`read_whole`), in order."""
        return list(self._whole.get(stream, ()))

    def only_new(self, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Return the events not given yet, in their order, and count them as given."""
        new = []
        for event in events:
            stream, timestamp = str(event.get("logStreamName", "")), int(event.get("timestamp", 0))
            key = id_key(str(event.get("eventId")))
            again = len(self._again) > 0 and key in self._again
            if again:
                self._again.discard(key)
            if self._covered(stream, timestamp):
                if again:
                    new.append(event)
                continue
            slices = self._keys.setdefault(stream, {})
            keys = slices.get(timestamp // KEY_SLICE_MS)
            if keys is None:
                keys = slices[timestamp // KEY_SLICE_MS] = ReturnedKeys()
            elif key in keys:
                continue
            keys.add(key)
            new.append(event)
        return new

    def give_back(self, events: Iterable[tuple[str, int, str]]) -> None:
        """Let these events (stream, timestamp, event id) be given again when a read brings them."""
        for stream, timestamp, event_id in events:
            key = id_key(event_id)
            keys = self._keys.get(stream, {}).get(timestamp // KEY_SLICE_MS)
            if keys is not None:
                keys.discard(key)
            self._again.add(key)

    def read_whole(self, stream: str, first_ms: int, last_ms: int) -> None:
        """Every event of `stream` from `first_ms` to `last_ms` has been given: let go of the keys of the slices
        the stream's whole ranges now cover."""
        if last_ms < first_ms:
            return
        ranges = self._whole.setdefault(stream, [])
        merged: list[Range] = []
        for low, high in sorted([*ranges, (first_ms, last_ms)]):
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        ranges[:] = merged
        slices = self._keys.get(stream)
        if not slices:
            return
        for slice_ in [slice_ for slice_ in slices if self._covers(ranges, slice_)]:
            del slices[slice_]
        if not slices:
            del self._keys[stream]

    def _covered(self, stream: str, timestamp: int) -> bool:
        ranges = self._whole.get(stream)
        return ranges is not None and any(low <= timestamp <= high for low, high in ranges)

    @staticmethod
    def _covers(ranges: list[Range], slice_: int) -> bool:
        first, last = slice_ * KEY_SLICE_MS, slice_ * KEY_SLICE_MS + KEY_SLICE_MS - 1
        return any(low <= first and last <= high for low, high in ranges)
