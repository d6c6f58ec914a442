"""Where each event a read brings goes: to the subscribers whose ids it carries, to the followers of its
stream, and the ingestion delays it shows to the planner. In chunks, a pass of the loop between two."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from airflow_lambda_deferrable.cloudwatch.group_state import GroupState
from airflow_lambda_deferrable.cloudwatch.routing import tokens
from airflow_lambda_deferrable.cloudwatch.subscription import Subscription

log = logging.getLogger(__name__)


class Router:
    """Routes the events of one log group's reads."""

    def __init__(self, group: GroupState) -> None:
        self.group = group

    async def in_turns(
        self, events: list[dict[str, Any]], work: Callable[[Sequence[dict[str, Any]]], Any]
    ) -> list[Any]:
        """Do `work` on `events` in chunks, a pass of the loop between two (`loop_turns`); return its results. Before
        each next chunk, wait for the subscribers that take their events in as they come to take what waits for
        them (`make_room`): one page of a chatty request is all a read holds of it."""
        results = []
        for first in range(0, len(events), self.group.turns.chunk):
            results += await self.group.turns.map(events[first : first + self.group.turns.chunk], work)
            await self.make_room()
        return results

    async def make_room(self) -> None:
        """Wait until each subscriber that takes its events in as they come has fewer than `MAX_EVENTS_WAITING`
        waiting (`Subscription.room`)."""
        while self.group.full:
            await self.group.full.pop().room()

    async def route(self, events: list[dict[str, Any]], *, follow: bool = False, find_streams: bool = False) -> int:
        """Give each event to the subscribers whose ids it carries and, when `follow` (an unfiltered read of
        the group), to the followers of its stream; with `find_streams` (a read of request lines), a
        subscriber also starts following the stream it finds its request in. Return the newest timestamp
        routed by ids. Works in chunks, a pass of the loop between two (`in_turns`)."""
        return max(await self.in_turns(events, lambda chunk: self._route_chunk(chunk, follow, find_streams)), default=0)

    def note_whole(self, streams: Iterable[str] | None = None) -> None:
        """Tell each follower of the followed `streams` (default: all), after a read of them brought all its
        pages, the range of each it has been given every event of (`StreamFollowing.whole`): events the reads
        bring there again need no key to be known (`Subscription.read_whole`)."""
        for subscription, stream, first, last, horizon in self.group.following.whole(streams):
            subscription.read_whole(stream, first, last, horizon)

    def _route_chunk(self, events: Sequence[dict[str, Any]], follow: bool, find_streams: bool = False) -> int:
        newest = longest_delay = 0
        by_term = self.group.by_term
        following = self.group.following
        for event in events:
            receivers: set[Subscription] = set()
            for token in tokens(event.get("message", "")):
                holders = by_term.get(token)
                if holders:
                    receivers |= holders
            if follow:
                stream = str(event.get("logStreamName", ""))
                timestamp = int(event.get("timestamp", 0))
                followers = following.followers(stream)
                if not followers:  # a followed stream's late lines are read from where it is complete
                    longest_delay = max(longest_delay, self._delay_if_news(event))
                for subscription in followers:
                    if subscription not in receivers:
                        subscription.deliver([event])
                for subscription in receivers:
                    if subscription not in followers:
                        subscription.deliver(following.start(subscription, stream, timestamp))
                following.note(stream, timestamp, event)
            elif find_streams:  # a followed stream's late lines are read from where it is complete
                stream, timestamp = str(event.get("logStreamName", "")), int(event.get("timestamp", 0))
                if not following.followers(stream):
                    longest_delay = max(longest_delay, self._delay_if_news(event))
                for subscription in receivers:
                    following.start_behind(subscription, stream, timestamp)
            else:
                longest_delay = max(longest_delay, self._delay_if_news(event))
            if receivers:
                newest = max(newest, int(event.get("timestamp", 0)))
                for subscription in receivers:
                    subscription.deliver([event])
        if events:
            self.group.planner.note_delays([longest_delay])
        return newest

    def _delay_if_news(self, event: dict[str, Any]) -> int:
        """``ingestionTime - timestamp`` of `event` if the last whole read could not have brought it (else,
        or when either is missing, 0): `ReadPlanner.is_news`."""
        if "ingestionTime" not in event or "timestamp" not in event:
            return 0
        timestamp, ingested = int(event["timestamp"]), int(event["ingestionTime"])
        return ingested - timestamp if self.group.planner.is_news(timestamp, ingested) else 0
