"""The full read of a log group's window: catch-ups and sweeps by id, the window unfiltered or filtered
(by request lines, by ids), the request lines beyond the usual lookback, and followed streams read behind."""

from __future__ import annotations

import logging
from collections.abc import Collection
from contextlib import aclosing
from typing import Any

from airflow_lambda_deferrable.cloudwatch.filter_patterns import (
    REQUEST_LINES_PATTERN,
    FilteredRead,
    or_pattern,
    plan_filtered_read,
)
from airflow_lambda_deferrable.cloudwatch.group_state import GroupState
from airflow_lambda_deferrable.cloudwatch.pages import PatternRefused, fills_a_page
from airflow_lambda_deferrable.cloudwatch.read_planner import FullRead
from airflow_lambda_deferrable.cloudwatch.router import Router
from airflow_lambda_deferrable.cloudwatch.routing import IdsRead
from airflow_lambda_deferrable.cloudwatch.search_plan import Search, catch_ups, search_calls, sweeps
from airflow_lambda_deferrable.cloudwatch.subscription import Subscription
from airflow_lambda_deferrable.limits import MAX_STREAMS_PER_CALL
from airflow_lambda_deferrable.runtime import clock
from airflow_lambda_deferrable.tuning import MAX_WINDOW_PAGES

log = logging.getLogger(__name__)


class WindowReads:
    """Makes the full reads of one log group's window."""

    def __init__(self, group: GroupState, router: Router) -> None:
        self.group = group
        self.router = router

    async def catch_up(self, client: Any, served: list[Subscription], window_start: int) -> int:
        """Make the catch-ups due (`search_plan.catch_ups`); return the newest timestamp routed (0 if none)."""
        searches = catch_ups(served, window_start)
        newest = await self._search(client, searches, "catch-up")
        for search in searches:
            search.who.caught_up(search.terms)
        return newest

    async def sweep_by_search(self, client: Any, served: list[Subscription], window_start: int) -> int:
        """Make the sweeps due (`search_plan.sweeps`); return the newest timestamp routed (0 if none)."""
        searches = sweeps(
            served,
            window_start,
            follows_any=self.group.following.follows_any,
            sweep_start_ms=lambda who: self.group.planner.sweep_start_ms(who.reach()),
        )
        return await self._search(client, searches, "sweep")

    async def _search(self, client: Any, searches: list[Search[Subscription]], kind: str) -> int:
        """Read the group with OR-patterns of the searched ids (`search_plan.search_calls`); return the newest
        timestamp routed (0 if none)."""
        from_ms, calls = search_calls(searches)
        newest = 0
        for terms, concerned in calls:
            newest = max(newest, await self._read_by_ids(client, terms, concerned, kind, from_ms))
        return newest

    async def _read_by_ids(
        self, client: Any, terms: list[str], concerned: Collection[Subscription], kind: str, start_ms: int
    ) -> int:
        """Read the group from `start_ms` with the OR-pattern of `terms`; return the newest timestamp routed (0
        if none). After each page, each holder of an id learns up to where it has been given every line that
        carries it (`IdsRead`): its keys of those lines are let go (`Subscription.read_all_carrying`)."""
        newest = 0
        holders = {term: set(self.group.by_term.get(term, ())) for term in terms}
        read: IdsRead[Subscription] = IdsRead(holders, start_ms=start_ms, horizon_ms=clock.ingestion_horizon_ms())
        async for page in self.group.pages.read(
            client, concerned, kind, startTime=start_ms, filterPattern=or_pattern(terms)
        ):
            read.lower_horizon(page.horizon_ms)
            newest = max(newest, await self.router.route(page))
            for subscription, term, stream, first, last, horizon in read.carried(page):
                subscription.read_all_carrying(term, stream, first, last, horizon)
        return newest

    async def read_window(self, client: Any, plan: FullRead) -> tuple[int, int]:
        """Read the group from the plan's start, unfiltered or filtered (`_filtered_read`), whichever the
        planner expects to cost fewer calls; return the newest timestamp routed (0 if none) and when the reads
        of the window began (epoch ms: everything ingested before then is in them, as far as each reads).

        An unfiltered read reads only the usual lookback (`FullRead.unfiltered_from_ms`): before that, the
        lines that open or close a request (`_read_request_lines`); then the followed streams it would leave a
        gap in (`_read_behind`: the choice between the two ways is made here), and its events go to the
        followers of their streams too. A filtered read breaks all following, and lines without ids (and,
        read by request lines, those with ids) come with the requests' stretches of stream (`StretchReads.read_spans`).
        Pages are routed as they come and nothing else is kept, so memory follows one page, not the window."""
        filtered = self._filtered_read()
        window_began = self.group.window_clock.now_ms()  # what was ingested before then, each part below brings
        if self.group.planner.read_unfiltered(
            start_ms=plan.whole_from_ms, now_ms=window_began, pattern_groups=filtered.calls
        ):
            newest, whole_from = await self._read_request_lines_before(client, plan, find_streams=True)
            routed = await self._read_unfiltered(client, whole_from, max_pages=MAX_WINDOW_PAGES)
            if routed is not None:
                self.group.sample_due = False
                return max(newest, routed), window_began
            request_lines_from = whole_from  # before it, the request lines are read already
            filtered = self._filtered_read()  # CloudWatch may have refused the pattern meanwhile
        else:
            newest, request_lines_from = 0, plan.start_ms
        newest = max(newest, await self._read_filtered(client, plan, filtered, request_lines_from))
        return newest, window_began

    async def _read_filtered(self, client: Any, plan: FullRead, filtered: FilteredRead, request_lines_from: int) -> int:
        """Read the window filtered: by request lines from `request_lines_from`, and by ids from the plan's
        start; return the newest timestamp routed. Lines without ids in the window are not read: stretches
        need their own reads."""
        newest = await self.stop_following(client)
        if filtered.by_request_lines:
            try:
                newest = max(newest, await self._read_request_lines(client, request_lines_from, None, False))
            except PatternRefused as refused:
                self._note_request_lines_refused(refused)
                filtered = self._filtered_read()
        for group in filtered.id_groups:
            concerned = set().union(*(self.group.by_term.get(term, set()) for term in group))
            newest = max(newest, await self._read_by_ids(client, group, concerned, "pattern", plan.start_ms))
        self.group.sample_due = filtered.by_request_lines
        return newest

    async def stop_following(self, client: Any) -> int:
        """Break all following, once the followed streams whose stretches subscribers left to following are
        read up to now (their subscribers do not read them again); return the newest timestamp routed by ids.
        Asked for while that read went on, more are read too: nothing runs between the last and the break."""
        newest = 0
        while self.group.left_to_following:
            streams, self.group.left_to_following = self.group.left_to_following, set()
            try:
                newest = max(newest, await self._read_behind(client, self.group.window_clock.now_ms(), only=streams))
            except BaseException:
                self.group.left_to_following |= streams  # the cycle fails; the next one reads them again
                raise
        self.group.following.clear()
        return newest

    def _filtered_read(self) -> FilteredRead:
        """How a filtered read of the group is made now (`plan_filtered_read`)."""
        live_terms = {
            term
            for subscription in self.group.subscriptions
            if subscription.ids_read_live
            for term in subscription.terms
        }
        return plan_filtered_read(
            self.group.by_term, live_terms, request_lines_refused=self.group.request_lines_refused
        )

    async def _read_request_lines_before(self, client: Any, plan: FullRead, *, find_streams: bool) -> tuple[int, int]:
        """Read the request lines from the plan's start to where the read brings every line, if it does not
        from its start; return the newest timestamp routed by ids (0 if none) and where the read of every
        line starts (the plan's start if CloudWatch refused the pattern, now or before)."""
        newest, whole_from = 0, plan.whole_from_ms
        if whole_from > plan.start_ms and not self.group.request_lines_refused:
            try:
                newest = await self._read_request_lines(client, plan.start_ms, whole_from - 1, find_streams)
            except PatternRefused as refused:
                self._note_request_lines_refused(refused)
        return newest, plan.start_ms if self.group.request_lines_refused else whole_from

    def _note_request_lines_refused(self, refused: PatternRefused) -> None:
        log.warning(
            "%s: FilterLogEvents refused the pattern of request lines %r (%s); reading the whole lookback "
            "without a pattern, or by the subscribers' ids, from now on",
            self.group.log_group,
            REQUEST_LINES_PATTERN,
            refused,
        )
        self.group.request_lines_refused = True

    async def _read_unfiltered(self, client: Any, whole_from: int, *, max_pages: int) -> int | None:
        """Read the followed streams left behind, then every line of the group from `whole_from`; follow
        streams. Return the newest timestamp routed by ids (0 if none), or ``None`` when the window holds
        more than `max_pages` full pages (`read_planner.MAX_WINDOW_PAGES`, `fills_a_page`): the read stops
        there, the planner learns that the window is busy, and the caller reads it filtered."""
        newest = await self._read_behind(client, whole_from)
        now_ms = self.group.window_clock.now_ms()
        self.group.following.begin_read(start_ms=whole_from, horizon_ms=clock.ingestion_horizon_ms())
        read = pages_read = 0
        pages = self.group.pages.read(client, self.group.subscriptions, "window", startTime=whole_from, endTime=now_ms)
        async with aclosing(pages):
            async for page in pages:
                self.group.following.lower_horizon(page.horizon_ms)
                read += len(page)
                pages_read += fills_a_page(page)
                newest = max(newest, await self.router.route(page, follow=True))
                if page.more and pages_read >= max_pages:
                    self.group.planner.note_window_needs_more_pages(pages_read, start_ms=whole_from, end_ms=now_ms)
                    return None
        self.group.following.end_read()
        self.router.note_whole()
        self.group.left_to_following = {
            stream for stream in self.group.left_to_following if self.group.following.followers(stream)
        }
        self.group.planner.note_window_rate(read, start_ms=whole_from, end_ms=now_ms)
        return newest

    async def _read_request_lines(self, client: Any, start_ms: int, end_ms: int | None, find_streams: bool) -> int:
        """Read the lines that open or close a request (`REQUEST_LINES_PATTERN`) from `start_ms` to `end_ms`
        (``None``: to the newest): a filtered read of the group, or late batches beyond the usual delays.
        With `find_streams` (an unfiltered read follows streams), a subscriber that finds its request in a
        stream it does not follow follows it from there (`StreamFollowing.start_behind`), and `_read_behind`
        reads the rest of that stream; return the newest timestamp routed by ids (0 if none). Raises
        `PatternRefused` when CloudWatch refuses the pattern (regex patterns are documented for
        FilterLogEvents, not tried here)."""
        newest = 0
        async for page in self.group.pages.read(
            client,
            self.group.subscriptions,
            "request-lines",
            startTime=start_ms,
            **({} if end_ms is None else {"endTime": end_ms}),
            filterPattern=REQUEST_LINES_PATTERN,
            refusable=True,
        ):
            newest = max(newest, await self.router.route(page, find_streams=find_streams))
        return newest

    async def _read_behind(self, client: Any, window_start_ms: int, only: Collection[str] | None = None) -> int:
        """Read the followed streams (`only` these, if given) that a window from `window_start_ms` would leave
        a gap in (a late batch holds them back, or they were quiet), each from where it is complete, up to
        100 streams a call; return the newest timestamp routed by ids (0 if none)."""
        behind = sorted(
            (
                (stream, complete)
                for stream, complete in self.group.following.behind(window_start_ms).items()
                if only is None or stream in only
            ),
            key=lambda item: item[1],
        )
        newest = 0
        for first in range(0, len(behind), MAX_STREAMS_PER_CALL):
            batch = behind[first : first + MAX_STREAMS_PER_CALL]
            streams = [stream for stream, _ in batch]
            start, now_ms = batch[0][1] + 1, self.group.window_clock.now_ms()
            concerned = {follower for stream in streams for follower in self.group.following.followers(stream)}
            self.group.following.begin_read(start_ms=start, horizon_ms=clock.ingestion_horizon_ms())
            async for page in self.group.pages.read(
                client, concerned, "behind", logStreamNames=sorted(streams), startTime=start, endTime=now_ms
            ):
                self.group.following.lower_horizon(page.horizon_ms)
                newest = max(newest, await self.router.route(page, follow=True))
            self.group.following.end_read(streams)
            self.router.note_whole(streams)
        return newest
