"""What one subscriber has been given (`Delivered`), so that it gets no event twice, in memory that stops
growing once a stretch of stream has been read whole. Pure: no I/O.

Reads overlap, so they bring events again: a window read reaches back over the last, a request's stretch
brings its lines with ids again, a catch-up for a new id brings lines that carried an older one. A subscriber
keeps a key (`log_source.id_key`) for each event it was given, by stream and second of timestamp.

A read that has brought a subscriber every event of a stream from one timestamp to another that CloudWatch
had ingested before the read's horizon says so (`read_whole`: the reads that follow the stream, or the read
of its stretch); a read by ids says so of the events that carry one (`read_all_carrying`). Each second that
claim covers remembers the horizon, and once it holds for every key the second keeps (each event's
`ingestionTime` is earlier, and the claim is of every event, or of the id the event carried), the keys are let
go. An event of that second that comes again is then known by its ingestion time (and the id it carries).
An event ingested after the horizon (a batch that came late, whatever its stream's order) is not taken as
given: it is known by its key. Events the subscriber gave back (`give_back`) are given once more even there.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from airflow_lambda_deferrable.cloudwatch.log_source import ReturnedKeys, id_key
from airflow_lambda_deferrable.cloudwatch.routing import carries
from airflow_lambda_deferrable.tuning import KEY_SLICE_MS

# What a claim is of: every event (`NO_ID`), or the events that carry one of the subscriber's ids (the id).
NO_ID = ""
NEVER = -(2**63)  # the horizon of no claim
UNKNOWN = 2**63  # the ingestion time of an event that gave none: no claim covers it


class SliceKeys:
    """One second of one stream, as given to one subscriber: the keys kept (and what their events carried:
    `NO_ID`, or the first of the subscriber's ids each carried; the newest ingestion time among them), and per
    kind of claim the latest horizon before which every event of that kind has been given (`read`)."""

    __slots__ = ("keys", "kinds", "ingested", "read")

    def __init__(self) -> None:
        self.keys: ReturnedKeys | None = None
        self.kinds: set[str] = set()
        self.ingested = NEVER
        self.read: dict[str, int] = {}

    def __len__(self) -> int:
        return 0 if self.keys is None else len(self.keys)

    def covers(self, ingested: int | None, carried: list[str]) -> bool:
        """Whether a claim says an event ingested at `ingested` that carries `carried` was given."""
        if ingested is None or not self.read:
            return False
        return ingested < self.read.get(NO_ID, NEVER) or any(ingested < self.read.get(id_, NEVER) for id_ in carried)

    def holds(self, key: int | str) -> bool:
        return self.keys is not None and key in self.keys

    def keep(self, key: int | str, kind: str, ingested: int | None) -> None:
        if self.keys is None:
            self.keys = ReturnedKeys()
        self.keys.add(key)
        self.kinds.add(kind)
        self.ingested = max(self.ingested, UNKNOWN if ingested is None else ingested)

    def discard(self, key: int | str) -> None:
        if self.keys is not None:
            self.keys.discard(key)

    def claim(self, kind: str, horizon_ms: int) -> None:
        """Every event of this second of `kind` ingested before `horizon_ms` has been given: let go of the keys
        once the claims cover each kind of event they hold."""
        self.read[kind] = max(self.read.get(kind, NEVER), horizon_ms)
        every = self.read.get(NO_ID, NEVER)
        if self.keys is not None and all(self.ingested < max(every, self.read.get(k, NEVER)) for k in self.kinds):
            self.keys, self.kinds, self.ingested = None, set(), NEVER


class Delivered:
    """The events given to one subscriber: each is given once, whatever the reads bring again."""

    def __init__(self) -> None:
        self._slices: dict[str, dict[int, SliceKeys]] = {}  # by stream, then slice of timestamp
        self._again = ReturnedKeys()

    def __len__(self) -> int:
        """How many keys are kept (those of given-back events included)."""
        return sum(len(held) for slices in self._slices.values() for held in slices.values()) + len(self._again)

    def seconds(self) -> int:
        """How many seconds of streams it keeps something of (keys, or the horizons of claims)."""
        return sum(len(slices) for slices in self._slices.values())

    def claimed(self, stream: str) -> int:
        """How many seconds of `stream` a read has said it gave every event of, or those that carry an id."""
        return sum(1 for held in self._slices.get(stream, {}).values() if held.read)

    def only_new(self, events: Iterable[dict[str, Any]], ids: Collection[str] = ()) -> list[dict[str, Any]]:
        """Return the events not given yet, in their order, and count them as given.

        :param ids: the subscriber's ids: an event that carries one is known by the claims of reads by it
            (`read_all_carrying`) as well as by its key."""
        new = []
        for event in events:
            stream, timestamp = str(event.get("logStreamName", "")), int(event.get("timestamp", 0))
            key = id_key(str(event.get("eventId")))
            again = len(self._again) > 0 and key in self._again
            if again:
                self._again.discard(key)
            ingested = event.get("ingestionTime")
            ingested = None if ingested is None else int(ingested)
            carried = carried_ids(str(event.get("message", "")), ids) if ids else []
            slices = self._slices.get(stream)
            if slices is None:
                slices = self._slices[stream] = {}
            held = slices.get(timestamp // KEY_SLICE_MS)
            if held is None:
                held = slices[timestamp // KEY_SLICE_MS] = SliceKeys()
            if held.covers(ingested, carried):
                if again:
                    new.append(event)
                continue
            if held.holds(key):
                continue
            # What it carries now: an id the subscriber gets later can only keep its keys longer.
            held.keep(key, carried[0] if carried else NO_ID, ingested)
            new.append(event)
        return new

    def give_back(self, events: Iterable[tuple[str, int, str]]) -> None:
        """Let these events (stream, timestamp, event id) be given again when a read brings them."""
        for stream, timestamp, event_id in events:
            key = id_key(event_id)
            held = self._slices.get(stream, {}).get(timestamp // KEY_SLICE_MS)
            if held is not None:
                held.discard(key)
            self._again.add(key)

    def read_whole(self, stream: str, first_ms: int, last_ms: int, horizon_ms: int) -> None:
        """Every event of `stream` from `first_ms` to `last_ms` that was ingested before `horizon_ms` has been
        given: the seconds the range covers whole remember it, and let go of their keys when they can."""
        self._claim(NO_ID, stream, first_ms, last_ms, horizon_ms)

    def read_all_carrying(self, id_: str, stream: str, first_ms: int, last_ms: int, horizon_ms: int) -> None:
        """Every event of `stream` from `first_ms` to `last_ms` that carries `id_` and was ingested before
        `horizon_ms` has been given (a read by ids brought them): as `read_whole`, for those events."""
        self._claim(id_, stream, first_ms, last_ms, horizon_ms)

    def _claim(self, kind: str, stream: str, first_ms: int, last_ms: int, horizon_ms: int) -> None:
        # Only the seconds it keeps something of: of any other, no event was given, so none can come again.
        slices = self._slices.get(stream)
        if not slices:
            return
        first, last = -(-first_ms // KEY_SLICE_MS), (last_ms + 1) // KEY_SLICE_MS - 1
        if last - first >= len(slices):
            covered = [held for slice_, held in slices.items() if first <= slice_ <= last]
        else:
            covered = [held for held in map(slices.get, range(first, last + 1)) if held is not None]
        for held in covered:
            held.claim(kind, horizon_ms)


def carried_ids(message: str, ids: Collection[str]) -> list[str]:
    """The `ids` that `message` carries as the poller routes them (`routing.carries`, a word of `tokens`): a
    read by an id brought every line that carries it this way (a filter pattern's quoted term matches any
    text that holds it)."""
    return [id_ for id_ in ids if carries(message, id_)]
