"""One trigger's view of a shared poller (`Subscription`): its ids, its window, the events routed to it, and
the waits for reads. The poller and its subscribers speak through methods; neither writes the other's fields."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_lambda_deferrable.cloudwatch.delivered import Delivered
from airflow_lambda_deferrable.cloudwatch.log_source import check_term
from airflow_lambda_deferrable.cloudwatch.read_planner import Reach
from airflow_lambda_deferrable.cloudwatch.routing import Span
from airflow_lambda_deferrable.runtime.clock import Timeline
from airflow_lambda_deferrable.tuning import MAX_EVENTS_WAITING


class PollNotServed(Exception):
    """The shared poller did not complete a read in time (throttled or slow); try again later."""


class Broadcast:
    """An asyncio.Condition that can be waited on with a predicate and notified without holding it."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with self._condition:
            await self._condition.wait_for(predicate)

    async def notify_all(self) -> None:
        async with self._condition:
            self._condition.notify_all()


class Poller(Protocol):
    """What a subscriber asks of its poller (`shared_poller.LogGroupPoller`)."""

    log_group: str
    cycle_done: Broadcast
    crashed: BaseException | None

    def add_term(self, subscription: Subscription, term: str) -> None: ...

    def want_read_at(self, when: float) -> None: ...

    def repace(self, previous: float, poll_interval: float) -> None: ...

    def wake(self) -> None: ...

    def wait_limit(self) -> float: ...

    def follows_since(self, subscription: Subscription, stream: str) -> int | None: ...

    def leave_to_following(self, stream: str) -> None: ...

    def make_room_for(self, subscription: Subscription) -> None: ...


@dataclass(eq=False)
class Subscription:
    """One trigger's view of a shared poller: its ids, its window, and the events routed to it."""

    poller: Poller
    terms: list[str]
    start_ms: int
    ingestion_allowance_ms: int
    poll_interval: float
    catch_up: set[str] = field(default_factory=set)
    spans: set[Span] = field(default_factory=set)
    # The stretches read since asked for: their events were routed here (`inbox`) as their pages came.
    spans_done: set[Span] = field(default_factory=set)
    inbox: list[dict[str, Any]] = field(default_factory=list)
    delivered: Delivered = field(default_factory=Delivered)
    # Its trigger takes its events in as they come (`next_batch`): the poller holds at most
    # `MAX_EVENTS_WAITING` of them for it (`room`), not a whole read.
    takes_in: bool = False
    _filled: asyncio.Event = field(default_factory=asyncio.Event)
    _taken: asyncio.Event = field(default_factory=asyncio.Event)
    # Its lines may come in streams it does not follow yet (a durable execution's replays): a sweep
    # searches for its ids even when the poller follows streams.
    roaming: bool = False
    # Its lines with ids are read as they come even when the group is read by request lines (which bring
    # them only with its request's stretch of stream, when the request ends): it decides on them early
    # (fail-fast), or request lines may not find its request (`plan_filtered_read`).
    ids_read_live: bool = True
    # The streams its request runs in (not ended yet), each with the request's start: a sample of their lines
    # tells the busy ones (`busy_streams`).
    running: dict[str, int] = field(default_factory=dict)
    cycles: int = 0
    # When the last full read that served this subscriber began (the poller's monotonic clock), and when the
    # last one whose events `fetch_new` returned did (its trigger's time, `timeline`): what that read could
    # not see yet, the trigger has not seen.
    cycle_started_at: float = 0.0
    read_started_at: float = 0.0
    error: Exception | None = None
    # Its trigger's time: the times a subscriber gives and gets are in it; the poller's are monotonic.
    timeline: Timeline = field(default_factory=Timeline.start)

    def reach(self) -> Reach:
        return Reach(start_ms=self.start_ms, ingestion_allowance_ms=self.ingestion_allowance_ms, new=self.cycles == 0)

    def watch(self, term: str) -> None:
        """Route events that carry `term` too, and search for it from the start of the invocation."""
        if term in self.terms:
            return
        check_term(term, "Subscription.watch")
        self.terms.append(term)
        self.catch_up.add(term)
        self.poller.add_term(self, term)

    def want_read_at(self, when: float) -> None:
        """Ask for a full read to start at `when` (the trigger's time, `timeline`): a settle window or the
        deadline ends then."""
        self.poller.want_read_at(self.timeline.to_monotonic(when))

    def note_running(self, running: dict[str, int]) -> None:
        """Say in which streams the request runs now, each from its start (ms)."""
        self.running = running

    def pace(self, poll_interval: float) -> None:
        """Ask for full reads every `poll_interval` seconds from now on (the group is read at the pace of its
        most eager subscriber)."""
        previous, self.poll_interval = self.poll_interval, poll_interval
        self.poller.repace(previous, poll_interval)

    async def fetch_new(self) -> list[dict[str, Any]]:
        """Wait for the poller's next full read of the group; return the events routed here that are new (less
        those `next_batch` took meanwhile)."""
        seen = self.cycles
        await self._wait_until(lambda: self.cycles > seen)
        self.read_started_at = self.timeline.from_monotonic(self.cycle_started_at)
        return self.take_new()

    def take_new(self) -> list[dict[str, Any]]:
        """Return the events the reads since the last take routed here, without waiting for one."""
        events, self.inbox = self.inbox, []
        self._taken.set()
        return events

    async def next_batch(self) -> list[dict[str, Any]]:
        """Wait until `MAX_EVENTS_WAITING` events are routed here and return them; from the first call on, the
        poller waits for the caller to take them before it routes more (`room`). The rest of a read comes with
        `fetch_new`, `fetch_span` or `take_new`. A task that calls this in a loop keeps what a read of a chatty
        request holds at a batch, whatever the request logs; it calls `stop_taking_in` when it stops."""
        self.takes_in = True
        while len(self.inbox) < MAX_EVENTS_WAITING:
            self._filled.clear()
            await self._filled.wait()
        return self.take_new()

    def stop_taking_in(self) -> None:
        """Nobody calls `next_batch` any more: the poller no longer waits for this subscriber."""
        self.takes_in = False
        self._taken.set()

    async def room(self) -> None:
        """Wait until fewer than `MAX_EVENTS_WAITING` events wait here, if the subscriber takes them in as they
        come (`next_batch`); the poller's routing waits for it."""
        while self.takes_in and len(self.inbox) >= MAX_EVENTS_WAITING:
            self._taken.clear()
            await self._taken.wait()

    def follows_from(self, stream: str, start_ms: int) -> bool:
        """Whether the reads have followed `stream` for this subscriber since `start_ms`: its events there
        came, and come, with `fetch_new`."""
        since = self.poller.follows_since(self, stream)
        return since is not None and since <= start_ms

    async def fetch_span(self, stream: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Read a stretch of one stream; return the new events routed here since the last take, the stretch's
        among them (none when it `follows_from` its start: nothing to read). The stretch's events are routed
        page by page, as a full read's are (`next_batch` may take some of them meanwhile)."""
        if self.follows_from(stream, start_ms):
            self.poller.leave_to_following(stream)
            return []
        span = (stream, start_ms, end_ms)
        self.spans.add(span)
        self.poller.wake()
        await self._wait_until(lambda: span in self.spans_done)
        self.spans_done.discard(span)
        return self.take_new()

    async def _wait_until(self, served: Callable[[], bool]) -> None:
        poller = self.poller
        try:
            # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` can swallow a cancellation that
            # arrives as the wait ends, and a trigger that had decided then never finished.
            async with asyncio.timeout(poller.wait_limit()):
                await poller.cycle_done.wait_for(
                    lambda: served() or self.error is not None or poller.crashed is not None
                )
        except TimeoutError as err:
            raise PollNotServed(f"no CloudWatch Logs read of {poller.log_group} completed in time") from err
        if poller.crashed is not None:
            raise RuntimeError(f"the shared poller of {poller.log_group} stopped") from poller.crashed
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def deliver(self, events: Sequence[dict[str, Any]]) -> None:
        self.inbox.extend(self._only_new(events))
        if len(self.inbox) >= MAX_EVENTS_WAITING:
            self._filled.set()
            if self.takes_in:
                self.poller.make_room_for(self)

    def give_back(self, events: Iterable[tuple[str, int, str]]) -> None:
        """Let these events (stream, timestamp, event id) be delivered again: the trigger could not place them
        yet (lines without ids from a stream whose START it has not seen: a later read, or its stretch's,
        brings them again)."""
        self.delivered.give_back(events)

    def _only_new(self, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.delivered.only_new(events, self.terms)

    # What the poller tells its subscribers; nothing else writes their fields.

    def fail(self, err: Exception) -> None:
        """An error of a call that served this subscriber, retrying will not cure: its next wait raises it."""
        self.error = err

    def full_read_served(self, began: float) -> None:
        """A full read that began at `began` (the poller's monotonic clock) has routed its events here."""
        self.cycles += 1
        self.cycle_started_at = began

    def caught_up(self, terms: Iterable[str] | None = None) -> None:
        """These ids (default: all) were searched for from the start of the invocation."""
        if terms is None:
            self.catch_up.clear()
        else:
            self.catch_up.difference_update(terms)

    def read_whole(self, stream: str, first_ms: int, last_ms: int, horizon_ms: int) -> None:
        """Every event of `stream` from `first_ms` to `last_ms` ingested before `horizon_ms` has been delivered
        here: one that a read brings again needs no key to be known (`Delivered`)."""
        self.delivered.read_whole(stream, first_ms, last_ms, horizon_ms)

    def read_all_carrying(self, term: str, stream: str, first_ms: int, last_ms: int, horizon_ms: int) -> None:
        """Every event of `stream` from `first_ms` to `last_ms` that carries `term` and was ingested before
        `horizon_ms` has been delivered here (a read by ids brought them): as `read_whole`."""
        self.delivered.read_all_carrying(term, stream, first_ms, last_ms, horizon_ms)

    def span_read(self, span: Span) -> None:
        """The stretch `span` was read: its events were routed here as its pages came."""
        self.spans_done.add(span)
        self.spans.discard(span)
