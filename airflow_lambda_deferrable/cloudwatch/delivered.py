"""What one subscriber has been given (`Delivered`), so that it gets no event twice, in memory that stops
growing once a stretch of stream has been read whole. Pure: no I/O.

Reads overlap, so they bring events again: a window read reaches back over the last, a request's stretch
brings its lines with ids again, a catch-up for a new id brings lines that carried an older one. A subscriber
keeps a key (`log_source.id_key`) for each event it was given, by stream and second of timestamp.

A read that has brought a subscriber every event of a stream from one timestamp to another that CloudWatch
had ingested before the read's horizon says so (`read_whole`: the reads that follow the stream, or the read
of its stretch); a read by ids says so of the events that carry one (`read_all_carrying`). Each second that
claim covers remembers the horizon (`claimed_seconds`, 16 B), and once it holds for every key the second
keeps (each event's `ingestionTime` is earlier, and the claim is of every event, or of the id the event
carried), the keys are let go. An event of that second that comes again is then known by its ingestion time
(and the id it carries).
An event ingested after the horizon (a batch that came late, whatever its stream's order) is not taken as
given: it is known by its key. Events the subscriber gave back (`give_back`) are given once more even there.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from airflow_lambda_deferrable.cloudwatch.claimed_seconds import LATEST, NEVER, ClaimedSeconds
from airflow_lambda_deferrable.cloudwatch.log_source import ReturnedKeys, id_key
from airflow_lambda_deferrable.cloudwatch.routing import carries
from airflow_lambda_deferrable.tuning import KEY_SLICE_MS

# What a claim is of: every event (`NO_ID`), or the events that carry one of the subscriber's ids (the id).
NO_ID = ""
UNKNOWN = 2**63  # the ingestion time of an event that gave none: no claim covers it


class SliceKeys:
    """The keys kept of one second of one stream, what their events carried (`NO_ID`, or the first of the
    subscriber's ids each carried), and the newest ingestion time among them: what a claim must cover to let
    them go."""

    __slots__ = ("keys", "kinds", "ingested")

    def __init__(self) -> None:
        self.keys = ReturnedKeys()
        self.kinds: set[str] = set()
        self.ingested = NEVER

    def __len__(self) -> int:
        return len(self.keys)

    def keep(self, key: int | str, kind: str, ingested: int | None) -> None:
        self.keys.add(key)
        self.kinds.add(kind)
        self.ingested = max(self.ingested, UNKNOWN if ingested is None else ingested)


class StreamDelivered:
    """What one stream has given one subscriber: the keys kept, by second, and the claims, by kind."""

    __slots__ = ("keys", "claims")

    def __init__(self) -> None:
        self.keys: dict[int, SliceKeys] = {}
        self.claims: dict[str, ClaimedSeconds] = {}

    def horizon(self, kind: str, second: int) -> int:
        claims = self.claims.get(kind)
        return NEVER if claims is None else claims.horizon(second)

    def horizons(self, second: int) -> SecondHorizons | None:
        """The claims on `second`, or None when there is none."""
        return SecondHorizons(self, second) if self.claims else None

    def claim(self, kind: str, first: int, last: int, horizon_ms: int) -> None:
        """Every event of `kind` of the seconds `first` to `last` ingested before `horizon_ms` has been given:
        the seconds it keeps something of remember it, and those whose keys it now covers let them go."""
        claims = self.claims.get(kind)
        if claims is not None:
            claims.claim_held(first, last, horizon_ms)
        if last - first >= len(self.keys):
            held = sorted(second for second in self.keys if first <= second <= last)
        else:
            held = [second for second in range(first, last + 1) if second in self.keys]
        if not held:
            return
        if claims is None:
            claims = self.claims[kind] = ClaimedSeconds()
        for second in held:
            claims.claim(second, horizon_ms)
            kept = self.keys[second]
            every = self.horizon(NO_ID, second)
            if all(kept.ingested < max(every, self.horizon(k, second)) for k in kept.kinds):
                del self.keys[second]


class SecondHorizons:
    """The horizons claimed for one second of one stream, looked up once each (`only_new` asks for them per
    event, and most events share their second with the one before)."""

    __slots__ = ("_record", "_second", "_every", "_by_id")

    def __init__(self, record: StreamDelivered, second: int) -> None:
        self._record, self._second = record, second
        self._every = record.horizon(NO_ID, second)
        self._by_id: dict[str, int] = {}

    def covers(self, ingested: int, carried: list[str]) -> bool:
        """Whether a claim says an event of this second ingested at `ingested` that carries `carried` was
        given."""
        if ingested < self._every:
            return True
        for id_ in carried:
            horizon = self._by_id.get(id_)
            if horizon is None:
                horizon = self._by_id[id_] = self._record.horizon(id_, self._second)
            if ingested < horizon:
                return True
        return False


class Delivered:
    """The events given to one subscriber: each is given once, whatever the reads bring again."""

    def __init__(self) -> None:
        self._streams: dict[str, StreamDelivered] = {}
        self._again = ReturnedKeys()

    def __len__(self) -> int:
        """How many keys are kept (those of given-back events included)."""
        return sum(len(kept) for record in self._streams.values() for kept in record.keys.values()) + len(self._again)

    def seconds(self) -> int:
        """How many seconds of streams it keeps something of (keys, or the horizons of claims)."""
        return sum(len(set(record.keys).union(*record.claims.values())) for record in self._streams.values())

    def claimed(self, stream: str) -> int:
        """How many seconds of `stream` a read has said it gave every event of, or those that carry an id."""
        record = self._streams.get(stream)
        return 0 if record is None else len(set().union(*record.claims.values()))

    def only_new(self, events: Iterable[dict[str, Any]], ids: Collection[str] = ()) -> list[dict[str, Any]]:
        """Return the events not given yet, in their order, and count them as given.

        :param ids: the subscriber's ids: an event that carries one is known by the claims of reads by it
            (`read_all_carrying`) as well as by its key. They may only grow from one call to the next (as
            `Subscription.terms` do): a second let go by the claims of an id forgets its keys, so an event
            known by that id's claim alone would be new to a call without it."""
        new = []
        place: tuple[str, int] | None = None  # the stream and second of the event before: most share them
        for event in events:
            stream, timestamp = str(event.get("logStreamName", "")), int(event.get("timestamp", 0))
            key = id_key(str(event.get("eventId")))
            again = len(self._again) > 0 and key in self._again
            if again:
                self._again.discard(key)
            ingested = event.get("ingestionTime")
            ingested = None if ingested is None else int(ingested)
            carried = carried_ids(str(event.get("message", "")), ids) if ids else []
            second = timestamp // KEY_SLICE_MS
            if place != (stream, second):
                place = (stream, second)
                record = self._streams.get(stream)
                if record is None:
                    record = self._streams[stream] = StreamDelivered()
                horizons = record.horizons(second)
            if ingested is not None and horizons is not None and horizons.covers(ingested, carried):
                if again:
                    new.append(event)
                continue
            kept = record.keys.get(second)
            if kept is None:
                kept = record.keys[second] = SliceKeys()
            elif key in kept.keys:
                continue
            # What it carries now: an id the subscriber gets later can only keep its keys longer.
            kept.keep(key, carried[0] if carried else NO_ID, ingested)
            new.append(event)
        return new

    def give_back(self, events: Iterable[tuple[str, int, str]]) -> None:
        """Let these events (stream, timestamp, event id) be given again when a read brings them."""
        for stream, timestamp, event_id in events:
            key = id_key(event_id)
            record = self._streams.get(stream)
            kept = None if record is None else record.keys.get(timestamp // KEY_SLICE_MS)
            if kept is not None:
                kept.keys.discard(key)
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
        record = self._streams.get(stream)
        if record is not None:
            first_ms, last_ms, horizon_ms = int(first_ms), int(last_ms), min(int(horizon_ms), LATEST)
            record.claim(kind, -(-first_ms // KEY_SLICE_MS), (last_ms + 1) // KEY_SLICE_MS - 1, horizon_ms)


def carried_ids(message: str, ids: Collection[str]) -> list[str]:
    """The `ids` that `message` carries as the poller routes them (`routing.carries`, a word of `tokens`): a
    read by an id brought every line that carries it this way (a filter pattern's quoted term matches any
    text that holds it)."""
    return [id_ for id_ in ids if carries(message, id_)]
