"""What one subscriber has been given (`Delivered`), so that it gets no event twice, in memory that stops
growing once a stretch of stream has been read whole. Pure: no I/O.

Reads overlap, so they bring events again: a window read reaches back over the last, a request's stretch
brings its lines with ids again, a catch-up for a new id brings lines that carried an older one. A subscriber
keeps a key (`log_source.id_key`) for each event it was given, by stream and second of timestamp. Once a read
has brought it every event of a stream from one timestamp to another (`read_whole`: the reads follow the
stream for it, or read its stretch), any event of that range that comes again was given already, so the
keys of the seconds the range covers are let go. A read by ids does the same for the events that carry one
(`read_all_carrying`): a second whose events all carried one of the subscriber's ids when given is let go once
the ranges of those ids cover it (one given before its subscriber had the id it carries counts as carrying
none). Events the subscriber gave back (`give_back`) are given once more even there.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from airflow_lambda_deferrable.cloudwatch.log_source import ReturnedKeys, id_key
from airflow_lambda_deferrable.cloudwatch.routing import carries
from airflow_lambda_deferrable.tuning import KEY_SLICE_MS

Range = tuple[int, int]  # the first and last timestamp, both included
# The keys of the events that carry none of the subscriber's ids; the others are kept by each id they carry.
NO_ID = ""


class Ranges:
    """Ranges of timestamps, merged when they touch or overlap, kept in order: a timestamp is looked up by
    bisection, whatever how many there are."""

    __slots__ = ("_firsts", "_lasts")

    def __init__(self) -> None:
        self._firsts: list[int] = []
        self._lasts: list[int] = []

    def __iter__(self) -> Iterator[Range]:
        return iter(zip(self._firsts, self._lasts, strict=True))

    def add(self, first: int, last: int) -> None:
        """Add the range from `first` to `last` (nothing if it is empty)."""
        if last < first:
            return
        low = bisect_left(self._lasts, first - 1)  # the first range that ends where this one starts, or later
        high = bisect_right(self._firsts, last + 1)  # past the last range that starts where this one ends
        if low < high:
            first, last = min(first, self._firsts[low]), max(last, self._lasts[high - 1])
        self._firsts[low:high] = [first]
        self._lasts[low:high] = [last]

    def covers(self, first: int, last: int | None = None) -> bool:
        """Whether one range holds every timestamp from `first` to `last` (default: `first` alone)."""
        at = bisect_right(self._firsts, first) - 1
        return at >= 0 and (first if last is None else last) <= self._lasts[at]


class SliceKeys:
    """The keys of the events of one stream given within one slice of timestamp, and what they carry: `NO_ID`,
    or for each the first of the subscriber's ids it carries. The slice is let go once the ranges of each
    cover it."""

    __slots__ = ("keys", "kinds")

    def __init__(self) -> None:
        self.keys = ReturnedKeys()
        self.kinds: set[str] = set()


class Delivered:
    """The events given to one subscriber: each is given once, whatever the reads bring again."""

    def __init__(self) -> None:
        self._keys: dict[str, dict[int, SliceKeys]] = {}  # by stream, then slice of timestamp
        self._whole: dict[str, Ranges] = {}
        self._carrying: dict[tuple[str, str], Ranges] = {}  # (id, stream): what `read_all_carrying` covered
        self._again = ReturnedKeys()

    def __len__(self) -> int:
        """How many keys are kept (those of given-back events included)."""
        return sum(len(held.keys) for slices in self._keys.values() for held in slices.values()) + len(self._again)

    def ranges(self) -> int:
        """How many ranges are kept (`read_whole`, `read_all_carrying`)."""
        return sum(len(list(ranges)) for ranges in (*self._whole.values(), *self._carrying.values()))

    def whole(self, stream: str) -> list[Range]:
        """The ranges of `stream` every event of which has been given (`read_whole`), in order."""
        return list(self._whole.get(stream, ()))

    def only_new(self, events: Iterable[dict[str, Any]], ids: Collection[str] = ()) -> list[dict[str, Any]]:
        """Return the events not given yet, in their order, and count them as given.

        :param ids: the subscriber's ids: an event that carries one is known by that id's ranges
            (`read_all_carrying`) as well as by its key."""
        new = []
        kept = self._keys
        for event in events:
            stream, timestamp = str(event.get("logStreamName", "")), int(event.get("timestamp", 0))
            key = id_key(str(event.get("eventId")))
            again = len(self._again) > 0 and key in self._again
            if again:
                self._again.discard(key)
            carried = carried_ids(str(event.get("message", "")), ids) if ids else []
            if self._covered(stream, timestamp, carried):
                if again:
                    new.append(event)
                continue
            slices = kept.get(stream)
            if slices is None:
                slices = kept[stream] = {}
            held = slices.get(timestamp // KEY_SLICE_MS)
            if held is None:
                held = slices[timestamp // KEY_SLICE_MS] = SliceKeys()
            elif key in held.keys:
                continue
            held.keys.add(key)
            # What it carries now: an id the subscriber gets later can only keep its slice longer.
            held.kinds.add(carried[0] if carried else NO_ID)
            new.append(event)
        return new

    def give_back(self, events: Iterable[tuple[str, int, str]]) -> None:
        """Let these events (stream, timestamp, event id) be given again when a read brings them."""
        for stream, timestamp, event_id in events:
            key = id_key(event_id)
            held = self._keys.get(stream, {}).get(timestamp // KEY_SLICE_MS)
            if held is not None:
                held.keys.discard(key)
            self._again.add(key)

    def read_whole(self, stream: str, first_ms: int, last_ms: int) -> None:
        """Every event of `stream` from `first_ms` to `last_ms` has been given: let go of the keys of the slices
        the stream's ranges now cover."""
        if last_ms >= first_ms:
            self._whole.setdefault(stream, Ranges()).add(first_ms, last_ms)
            self._let_go(stream)

    def read_all_carrying(self, id_: str, stream: str, first_ms: int, last_ms: int) -> None:
        """Every event of `stream` from `first_ms` to `last_ms` that carries `id_` has been given (a read by
        ids brought them): let go of the keys of the slices the stream's ranges now cover.

        Nothing is noted of a stream with no keys kept: each event of it given in that range was let go
        under a range that still covers it (a read by ids notes every stream it brought, the others' too)."""
        if last_ms >= first_ms and stream in self._keys:
            self._carrying.setdefault((id_, stream), Ranges()).add(first_ms, last_ms)
            self._let_go(stream)

    def _let_go(self, stream: str) -> None:
        """Let go of the slices of `stream` that the ranges of each kind of event they hold cover."""
        slices = self._keys.get(stream)
        if slices is None:
            return
        whole = self._whole.get(stream)
        for slice_ in [slice_ for slice_, held in slices.items() if self._covers(stream, slice_, held.kinds, whole)]:
            del slices[slice_]
        if not slices:
            del self._keys[stream]

    def _covers(self, stream: str, slice_: int, kinds: set[str], whole: Ranges | None) -> bool:
        first, last = slice_range(slice_)
        if whole is not None and whole.covers(first, last):
            return True
        for kind in kinds:
            ranges = None if kind == NO_ID else self._carrying.get((kind, stream))
            if ranges is None or not ranges.covers(first, last):
                return False
        return True

    def _covered(self, stream: str, timestamp: int, carried: list[str]) -> bool:
        whole = self._whole.get(stream)
        if whole is not None and whole.covers(timestamp):
            return True
        for id_ in carried:
            ranges = self._carrying.get((id_, stream))
            if ranges is not None and ranges.covers(timestamp):
                return True
        return False


def slice_range(slice_: int) -> Range:
    """The first and last timestamp of a slice of keys."""
    return slice_ * KEY_SLICE_MS, slice_ * KEY_SLICE_MS + KEY_SLICE_MS - 1


def carried_ids(message: str, ids: Collection[str]) -> list[str]:
    """The `ids` that `message` carries as the poller routes them (`routing.carries`, a word of `tokens`): a
    read by an id brought every line that carries it this way (a filter pattern's quoted term matches any
    text that holds it)."""
    return [id_ for id_ in ids if carries(message, id_)]
