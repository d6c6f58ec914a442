"""One CloudWatch Logs poller per log group for all the triggers of a triggerer process.

``FilterLogEvents`` allows 5 requests per second per account and region, shared by every task of every
DAG. Polling once per invocation throttles at a handful of tasks; here every trigger following an
invocation in the same (connection, region, log group) subscribes to one `LogGroupPoller`, whose single
stream of calls serves them all:

* a full read starts every poll interval, or sooner when a subscriber's settle window (or deadline) ends
  and it asks for one (`Subscription.want_read_at`), but never sooner than half an interval after the
  last; it covers the group once, filtered (below) or with no pattern over the time window, whichever
  costs fewer calls, and routes each event to the subscribers whose ids it carries;
* its window reaches back from the newest event as far as the ingestion delays seen so far require
  (``ingestionTime - timestamp``), and once every six intervals the whole late-arrival allowance:
  re-reading two minutes of a busy group every five seconds would cost most of the budget;
* the read also covers subscribers new to the poller from the start of their invocations; one that
  joins later than the allowance (a restarted trigger) or learns a new id gets a one-off catch-up
  search by id with the next full read;
* lines without ids (``print`` output, the runtime's error line) belong to the request whose stretch of
  stream holds them: a subscriber that gets an event of a stream from an unfiltered read follows that
  stream (`routing.StreamFollowing`) and gets its later events as the reads bring them, so its stretch
  is never read again; a stretch the reads did not follow (read with patterns, or joined late) is read
  on request (`fetch_span`), up to 100 streams a call, between full reads half an interval after the last
  read began (`ReadPlanner.next_step`), so that requests ending one after another share calls;
* a filtered read (`filter_patterns.plan_filtered_read`) uses OR-patterns of the ids when they fit in
  one; with more, it reads the lines that open or close a request (one regex pattern) and finds each
  request's stretch of stream, which brings all its lines when the request ends, plus OR-patterns of the
  ids of the subscribers that cannot wait for that (`Subscription.ids_read_live`); a busy stream
  (`busy_streams`: told by the rest of its stretch at the rate a read of stretches brings it, by a window
  read, or by a one-second sample of each running request's stream) has its stretch read on its own with
  ``GetLogEvents`` (its own quota and budget), and every event is keyed the same whichever API brought it
  (`event_keys`);
* the window is read without a pattern only while it fits in one page (`read_planner.MAX_WINDOW_PAGES`):
  a read that needs more stops there, and the window is read filtered;
* every call waits for the process-wide `RequestBudget`: a token bucket, first come first served, that
  halves its rate on throttling (once per burst of throttling answers) and creeps back in time afterwards
  (the client makes one attempt per call, so every throttling answer reaches it);
* an error belongs to the call that got it: throttling and the service's transient errors are retried
  with backoff; missing or expired credentials and lost connections too, with a fresh client; any other
  error (access denied, a pattern refused) goes to the subscribers that call served, and ends only them.

A trigger reads through its `Subscription` (`watch`, `want_read_at`, `fetch_new`, `fetch_span`); with
``shared=False`` it gets a poller of its own, with the same rules. Pollers, budgets and clients belong to one event
loop (``airflow dags test`` gives each trigger a fresh one); an idle poller closes its client and goes
away.

Clocks (`clock`): the cadence, backoff, pauses and budgets run on the monotonic clock, so a step of the wall
clock neither stalls nor hurries the reads; the windows of CloudWatch time (epoch ms) come from the wall
clock through the loop's `clock.ForwardWall`, which never goes back (it slows down after a step back). A
subscriber speaks its trigger's time (`clock.Timeline`): `Subscription` converts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from contextlib import AsyncExitStack, aclosing
from typing import Any

from botocore.exceptions import BotoCoreError

from airflow_lambda_deferrable.cloudwatch.busy_streams import (
    MAX_STREAMS_KEPT,
    StreamMarks,
    busy_in_sample,
    busy_in_window,
    read_alone,
    sample_slice,
    sampled_enough,
    to_sample,
)
from airflow_lambda_deferrable.cloudwatch.filter_patterns import (
    REQUEST_LINES_PATTERN,
    FilteredRead,
    or_pattern,
    plan_filtered_read,
    term_groups,
)
from airflow_lambda_deferrable.cloudwatch.log_source import (
    needs_fresh_client,
    parse_pages_as_plain_json,
)
from airflow_lambda_deferrable.cloudwatch.pages import (
    CallFailed,
    Page,
    PageReader,
    PatternRefused,
    StreamReadRefused,
    fills_a_page,
)
from airflow_lambda_deferrable.cloudwatch.read_planner import (
    INGESTION_HORIZON_MARGIN_MS,
    MAX_WINDOW_PAGES,
    MIN_CYCLE_SECONDS,
    FullRead,
    ReadPlanner,
    Step,
)
from airflow_lambda_deferrable.cloudwatch.routing import Span, StreamFollowing, StretchesRead, tokens
from airflow_lambda_deferrable.cloudwatch.subscription import Broadcast, Subscription
from airflow_lambda_deferrable.limits import (
    MAX_STREAMS_PER_CALL,
    STREAM_READS_PER_FILTER_CALL,
)
from airflow_lambda_deferrable.runtime import clock
from airflow_lambda_deferrable.runtime.clock import ForwardWall
from airflow_lambda_deferrable.runtime.loop_turns import LoopTurns
from airflow_lambda_deferrable.runtime.rate_limit import RequestBudget
from airflow_lambda_deferrable.tuning import (
    LIGHT_CYCLE_BATCH_SECONDS,
    MIN_SERVE_WAIT_SECONDS,
    SERVE_WAIT_INTERVALS,
)

log = logging.getLogger(__name__)


class LogGroupPoller:
    """Read one log group for all its subscribers, one cycle at a time."""

    def __init__(
        self,
        *,
        log_group: str,
        client_factory: Callable[[], Any],
        budget: RequestBudget,
        stream_budget: RequestBudget | None = None,
        window_clock: ForwardWall | None = None,
    ) -> None:
        """Pace the reads by `clock.monotonic`; take the windows of CloudWatch time from `window_clock`.

        :param stream_budget: for GetLogEvents (a quota of its own); by default one of twice `budget`'s rate.
        :param window_clock: the wall clock as windows read it (the loop's: a step back is not followed even
            by the next poller); by default one of its own."""
        self.log_group = log_group
        self._client_factory = client_factory
        self.pages = PageReader(
            log_group, budget, stream_budget or RequestBudget(budget.max_rate * STREAM_READS_PER_FILTER_CALL)
        )
        self._window_clock = window_clock or ForwardWall()
        self.planner = ReadPlanner()
        self.turns = LoopTurns()  # its own: routing does not queue behind the triggers' work
        self.subscriptions: list[Subscription] = []
        self._intervals: Counter[float] = Counter()  # the subscribers' poll intervals: the shortest paces reads
        self._by_term: dict[str, set[Subscription]] = {}
        self.cycle_done = Broadcast()
        self._wake = asyncio.Event()
        self.following: StreamFollowing[Subscription] = StreamFollowing()
        self.closing = False
        self.request_lines_refused = False  # CloudWatch refused `REQUEST_LINES_PATTERN`: read lookbacks whole
        self.stream_reads_refused = False  # GetLogEvents was denied: busy streams are read with FilterLogEvents
        self.busy_streams = StreamMarks()  # streams read on their own (`busy_streams`, `_read_together`)
        # Followed streams whose stretches a subscriber left to the reads that follow them (`fetch_span`): read
        # up to now before following ends (`_stop_following`), since nobody reads those stretches again.
        self.left_to_following: set[str] = set()
        self.sample_due = False  # the last full read was by request lines: sample running requests after it
        self.sampled = StreamMarks()  # (stream, request start) of the running requests sampled for good
        self.sample_tries: Counter[tuple[str, int]] = Counter()
        # Subscribers that take their events in as they come and have `MAX_EVENTS_WAITING` waiting: routing
        # waits for them to take those (`_make_room`).
        self.full: set[Subscription] = set()
        self.crashed: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        self.clients = 0  # clients opened (a failed one is replaced)

    def wait_limit(self) -> float:
        """How long a subscriber waits for a cycle before it counts as a failed read."""
        return max(MIN_SERVE_WAIT_SECONDS, SERVE_WAIT_INTERVALS * self._interval())

    def wake(self) -> None:
        self._wake.set()

    def add(self, subscription: Subscription) -> None:
        self.subscriptions.append(subscription)
        self._intervals[subscription.poll_interval] += 1
        subscription.catch_up.update(subscription.terms)
        for term in subscription.terms:
            self._by_term.setdefault(term, set()).add(subscription)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name=f"log-poller:{self.log_group}")
        self.wake()

    def want_read_at(self, when: float) -> None:
        """Start a full read at `when` (the monotonic clock) if that comes before the next one (within the
        spacing limit)."""
        if self.planner.want_read_at(when):
            self.wake()

    def add_term(self, subscription: Subscription, term: str) -> None:
        """Route `term` to `subscription` too; its catch-up comes with the next full read."""
        self._by_term.setdefault(term, set()).add(subscription)

    def repace(self, previous: float, poll_interval: float) -> None:
        """Count a subscriber at its new `poll_interval`; wake up if that makes reads due sooner."""
        if poll_interval == previous:
            return
        self._forget_interval(previous)
        self._intervals[poll_interval] += 1
        self.wake()

    def follows_since(self, subscription: Subscription, stream: str) -> int | None:
        """Since when (epoch ms) the reads follow `stream` for `subscription` (``None``: they do not)."""
        return self.following.since(subscription, stream)

    def leave_to_following(self, stream: str) -> None:
        """A subscriber leaves its stretch of `stream` to the reads that follow it: read it up to now before
        following ends (`_stop_following`), since nobody reads that stretch again."""
        self.left_to_following.add(stream)

    def make_room_for(self, subscription: Subscription) -> None:
        """`subscription` has `MAX_EVENTS_WAITING` waiting: routing waits for it to take them (`_make_room`)."""
        self.full.add(subscription)

    def _forget_interval(self, poll_interval: float) -> None:
        self._intervals[poll_interval] -= 1
        if not self._intervals[poll_interval]:
            del self._intervals[poll_interval]

    def remove(self, subscription: Subscription) -> None:
        self.subscriptions.remove(subscription)
        subscription.stop_taking_in()  # routing waiting for it goes on
        self.full.discard(subscription)
        self.following.forget(subscription)
        self._forget_interval(subscription.poll_interval)
        for term in subscription.terms:
            holders = self._by_term.get(term, set())
            holders.discard(subscription)
            if not holders:
                self._by_term.pop(term, None)
        if not self.subscriptions:
            self.closing = True
            self.wake()

    def _interval(self) -> float:
        return max(MIN_CYCLE_SECONDS, min(self._intervals, default=MIN_CYCLE_SECONDS))

    async def _run(self) -> None:
        try:
            await self._poll()
        except Exception as err:  # a bug or a broken client: tell the subscribers instead of hanging them
            self.crashed = err
            self.closing = True
            await self.cycle_done.notify_all()
            raise

    async def _poll(self) -> None:
        """Start a full read every interval (counted from the start of the last one) or when a subscriber
        asks for one; between full reads, serve stream stretches on request; after failures, back off.

        Throttling and the service's transient errors are retried; missing or expired credentials and lost
        connections too, with a fresh client. An error of one call goes to the subscribers it served.
        """
        async with AsyncExitStack() as open_client:
            await self._poll_with(open_client)

    async def _poll_with(self, open_client: AsyncExitStack) -> None:
        client = None
        while not self.closing:
            self._wake.clear()
            began = clock.monotonic()
            step = self.planner.next_step(began, interval=self._interval(), stretches_asked=self._has_requests())
            if step.sleep_until is not None:
                await self._sleep_until_woken(step.sleep_until - began)
                continue
            if not step.full:
                await asyncio.sleep(LIGHT_CYCLE_BATCH_SECONDS)  # let requests arriving together share calls
            try:
                if client is None:
                    self.clients += 1
                    client = await open_client.enter_async_context(await self._client_factory())
                    parse_pages_as_plain_json(client)
                await self._cycle(client, step, began=began)
                self.planner.cycle_succeeded(step, began=began)
            except CallFailed as failed:
                # Only these reach here: `_pages` gave the other errors to the subscribers concerned, and the
                # budget of the API that answered has seen its throttling.
                if needs_fresh_client(failed.cause):
                    await self._drop_client(open_client, failed)
                    client = None
                else:
                    log.warning("%s: %s; backing off", self.log_group, failed)
                # Jittered exponential backoff, on top of the budget's own slowing down.
                self.planner.cycle_failed(clock.monotonic(), interval=self._interval())

    async def _drop_client(self, open_client: AsyncExitStack, failed: CallFailed) -> None:
        """Close the client after `failed` (credentials or connection): the next call gets a fresh one."""
        log.warning("%s: %s; backing off, then trying with a fresh client", self.log_group, failed)
        await open_client.aclose()

    async def _sleep_until_woken(self, seconds: float) -> None:
        """Sleep up to `seconds`; a wish, a stretch request, a new subscriber or closing ends it sooner."""
        try:
            async with asyncio.timeout(max(seconds, MIN_CYCLE_SECONDS)):  # not wait_for: see `_wait_until`
                await self._wake.wait()
        except TimeoutError:
            pass

    def _has_requests(self) -> bool:
        return any(subscription.spans for subscription in self.subscriptions)

    async def _cycle(self, client: Any, step: Step, *, began: float) -> None:
        """Read requested spans; on a full cycle first catch up new ids and read the window, and let the
        subscribers see its events (and ask for the stretches they close) before the spans are read."""
        served = list(self.subscriptions)
        if not served:
            return
        calls_before = self.pages.calls
        if step.full:
            reaches = [subscription.reach() for subscription in served]
            plan = self.planner.plan_full_read(
                began, reaches, interval=self._interval(), following=self.following.streams > 0
            )
            # New ids are searched for where the window does not reach at all. Beyond the usual lookback it
            # brings request lines only, but a subscriber's START there starts following its stream, which
            # is then read whole; searching every newcomer's ids from there cost 73 calls at volume.
            caught_up = await self._catch_up(client, served, plan.start_ms)
            if plan.by_search:
                caught_up = max(caught_up, await self._sweep_by_search(client, served, plan.whole_from_ms))
            read, read_through_ms = await self._read_window(client, plan)
            # Only a whole read moves the window on: after a failed one, the next starts as far back.
            self.planner.full_read_done(
                plan,
                began=began,
                ended=clock.monotonic(),
                newest_ms=max(caught_up, read),
                read_through_ms=read_through_ms,
            )
            for subscription in served:
                if subscription.start_ms >= plan.start_ms:
                    subscription.caught_up()
                subscription.full_read_served(began)
            # The subscribers take in what the read brought, and ask for the stretches it closed: read them in
            # this cycle, not the next (at volume a cycle takes seconds).
            await self.cycle_done.notify_all()
            await asyncio.sleep(LIGHT_CYCLE_BATCH_SECONDS)
            served = list(self.subscriptions)
        await self._read_spans(client, served)
        if step.full and self.sample_due:
            await self._sample_quietly(client)
        log.debug(
            "%s: %s cycle for %d subscribers: %d calls in %.2fs (longest ingestion delay seen: %s ms)",
            self.log_group,
            "full" if step.full else "light",
            len(served),
            self.pages.calls - calls_before,
            clock.monotonic() - began,
            self.planner.longest_delay_ms,
        )
        await self.cycle_done.notify_all()

    async def _catch_up(self, client: Any, served: list[Subscription], window_start: int) -> int:
        """Search new ids from the start of their invocations, where the window read will not reach;
        return the newest timestamp routed (0 if none). Ids the window reaches are left to it."""
        pending = [
            (subscription, sorted(subscription.catch_up))
            for subscription in served
            if subscription.catch_up and subscription.start_ms < window_start
        ]
        if not pending:
            return 0
        newest = await self._search(
            client, [(subscription, terms, subscription.start_ms) for subscription, terms in pending], "catch-up"
        )
        for subscription, subscription_terms in pending:
            subscription.caught_up(subscription_terms)
        return newest

    async def _sweep_by_search(self, client: Any, served: list[Subscription], window_start: int) -> int:
        """Search, as far back as a sweep reaches, for the ids of the subscribers whose lines may be in
        streams nobody follows: those that follow no stream yet (a START ingested later than the lookback)
        and the roaming ones; return the newest timestamp routed (0 if none)."""
        wanted = [
            (subscription, sorted(subscription.terms), self.planner.sweep_start_ms(subscription.reach()))
            for subscription in served
            if (subscription.roaming or not self.following.follows_any(subscription))
            and subscription.start_ms < window_start
        ]
        return await self._search(client, wanted, "sweep")

    async def _search(self, client: Any, wanted: list[tuple[Subscription, list[str], int]], kind: str) -> int:
        """Read the group with OR-patterns of these subscribers' ids, from the earliest of their starts;
        return the newest timestamp routed (0 if none)."""
        if not wanted:
            return 0
        terms = sorted({term for _, subscription_terms, _ in wanted for term in subscription_terms})
        start = min(start for _, _, start in wanted)
        newest = 0
        for group in term_groups(terms):
            concerned = [subscription for subscription, some, _ in wanted if set(some) & set(group)]
            async for page in self.pages.read(
                client, concerned, kind, startTime=start, filterPattern=or_pattern(group)
            ):
                newest = max(newest, await self._route(page))
        return newest

    async def _read_window(self, client: Any, plan: FullRead) -> tuple[int, int]:
        """Read the group from the plan's start, unfiltered or filtered (`_filtered_read`), whichever the
        planner expects to cost fewer calls; return the newest timestamp routed (0 if none) and when the reads
        of the window began (epoch ms: everything ingested before then is in them, as far as each reads).

        An unfiltered read reads only the usual lookback (`FullRead.unfiltered_from_ms`): before that, the
        lines that open or close a request (`_read_request_lines`); then the followed streams it would leave a
        gap in (`_read_behind`: the choice between the two ways is made here), and its events go to the
        followers of their streams too. A filtered read breaks all following, and lines without ids (and,
        read by request lines, those with ids) come with the requests' stretches of stream (`_read_spans`).
        Pages are routed as they come and nothing else is kept, so memory follows one page, not the window."""
        filtered = self._filtered_read()
        window_began = self._window_clock.now_ms()  # what was ingested before then, each part below brings
        if self.planner.read_unfiltered(
            start_ms=plan.whole_from_ms, now_ms=window_began, pattern_groups=filtered.calls
        ):
            newest, whole_from = await self._read_request_lines_before(client, plan, find_streams=True)
            routed = await self._read_unfiltered(client, whole_from, max_pages=MAX_WINDOW_PAGES)
            if routed is not None:
                self.sample_due = False
                return max(newest, routed), window_began
            request_lines_from = whole_from  # before it, the request lines are read already
            filtered = self._filtered_read()  # CloudWatch may have refused the pattern meanwhile
        else:
            newest, request_lines_from = 0, plan.start_ms
        # Lines without ids in this window are not read: stretches need their own reads.
        newest = max(newest, await self._stop_following(client))
        if filtered.by_request_lines:
            try:
                newest = max(newest, await self._read_request_lines(client, request_lines_from, None, False))
            except PatternRefused as refused:
                self._note_request_lines_refused(refused)
                filtered = self._filtered_read()
        for group in filtered.id_groups:
            concerned = set().union(*(self._by_term.get(term, set()) for term in group))
            async for page in self.pages.read(
                client, concerned, "pattern", startTime=plan.start_ms, filterPattern=or_pattern(group)
            ):
                newest = max(newest, await self._route(page))
        self.sample_due = filtered.by_request_lines
        return newest, window_began

    async def _stop_following(self, client: Any) -> int:
        """Break all following, once the followed streams whose stretches subscribers left to following are
        read up to now (their subscribers do not read them again); return the newest timestamp routed by ids.
        Asked for while that read went on, more are read too: nothing runs between the last and the break."""
        newest = 0
        while self.left_to_following:
            streams, self.left_to_following = self.left_to_following, set()
            try:
                newest = max(newest, await self._read_behind(client, self._window_clock.now_ms(), only=streams))
            except BaseException:
                self.left_to_following |= streams  # the cycle fails; the next one reads them again
                raise
        self.following.clear()
        return newest

    async def _sample_quietly(self, client: Any) -> None:
        """`_sample_running`, whose failure (after one try) is only logged: it saves bytes, nothing waits for it."""
        try:
            await self._sample_running(client)
        except (CallFailed, BotoCoreError) as err:
            log.warning("%s: a sample of running requests' streams failed, skipped: %s", self.log_group, err)

    async def _sample_running(self, client: Any) -> None:
        """Read one second of the streams whose requests run (one call: `busy_streams.to_sample`; a stream that
        shows no line may be held back by a late batch and is sampled again, `sampled_enough`), and note the
        busy ones. Read by request lines, a request's lines without ids come with its stretch when it ends: a
        busy stream's with GetLogEvents from the start, not after pages of FilterLogEvents at twice the bytes.
        The sample's lines are only counted: the stretches bring them."""
        if self.stream_reads_refused:
            return
        first, last = sample_slice(self._window_clock.now_ms())
        running: dict[str, int] = {}
        for subscription in self.subscriptions:
            for stream, start in subscription.running.items():
                if stream not in self.busy_streams:  # the latest request (an earlier one's end may be late)
                    running[stream] = max(start, running.get(stream, start))
        streams = to_sample(running, first, self.sampled)
        if not streams:
            return
        counts: Counter[str] = Counter()
        async for page in self.pages.read(
            client, (), "sample", max_retries=0, logStreamNames=streams, startTime=first, endTime=last
        ):
            counts.update(str(event.get("logStreamName", "")) for event in page)
        self.busy_streams.add_all(busy_in_sample(counts))
        requests = [(stream, running[stream]) for stream in streams]
        self.sample_tries.update(requests)
        self.sampled.add_all(
            request for request in requests if sampled_enough(counts[request[0]], self.sample_tries[request])
        )
        if len(self.sample_tries) > MAX_STREAMS_KEPT:
            self.sample_tries.clear()

    def _filtered_read(self) -> FilteredRead:
        """How a filtered read of the group is made now (`plan_filtered_read`)."""
        live_terms = {
            term for subscription in self.subscriptions if subscription.ids_read_live for term in subscription.terms
        }
        return plan_filtered_read(self._by_term, live_terms, request_lines_refused=self.request_lines_refused)

    async def _read_request_lines_before(self, client: Any, plan: FullRead, *, find_streams: bool) -> tuple[int, int]:
        """Read the request lines from the plan's start to where the read brings every line, if it does not
        from its start; return the newest timestamp routed by ids (0 if none) and where the read of every
        line starts (the plan's start if CloudWatch refused the pattern, now or before)."""
        newest, whole_from = 0, plan.whole_from_ms
        if whole_from > plan.start_ms and not self.request_lines_refused:
            try:
                newest = await self._read_request_lines(client, plan.start_ms, whole_from - 1, find_streams)
            except PatternRefused as refused:
                self._note_request_lines_refused(refused)
        return newest, plan.start_ms if self.request_lines_refused else whole_from

    def _note_request_lines_refused(self, refused: PatternRefused) -> None:
        log.warning(
            "%s: FilterLogEvents refused the pattern of request lines %r (%s); reading the whole lookback "
            "without a pattern, or by the subscribers' ids, from now on",
            self.log_group,
            REQUEST_LINES_PATTERN,
            refused,
        )
        self.request_lines_refused = True

    async def _read_unfiltered(self, client: Any, whole_from: int, *, max_pages: int) -> int | None:
        """Read the followed streams left behind, then every line of the group from `whole_from`; follow
        streams. Return the newest timestamp routed by ids (0 if none), or ``None`` when the window holds
        more than `max_pages` full pages (`read_planner.MAX_WINDOW_PAGES`, `fills_a_page`): the read stops
        there, the planner learns that the window is busy, and the caller reads it filtered."""
        newest = await self._read_behind(client, whole_from)
        now_ms = self._window_clock.now_ms()
        self.following.begin_read(start_ms=whole_from, horizon_ms=now_ms - INGESTION_HORIZON_MARGIN_MS)
        read = pages_read = 0
        latest = whole_from
        per_stream: Counter[str] = Counter()
        pages = self.pages.read(client, self.subscriptions, "window", startTime=whole_from, endTime=now_ms)
        async with aclosing(pages):
            async for page in pages:
                read += len(page)
                pages_read += fills_a_page(page)
                per_stream.update(str(event.get("logStreamName", "")) for event in page)
                latest = max([latest, *(int(event.get("timestamp", 0)) for event in page)])
                newest = max(newest, await self._route(page, follow=True))
                if page.more and pages_read >= max_pages:
                    self.planner.note_window_needs_more_pages(pages_read, start_ms=whole_from, end_ms=now_ms)
                    # Pages may come in time order (CloudWatch's interleave) or stream after stream (moto's):
                    # either way, each stream's count spans at most up to the newest line read.
                    self.busy_streams.add_all(busy_in_window(per_stream, latest - whole_from))
                    return None
        self.following.end_read()
        self.left_to_following = {stream for stream in self.left_to_following if self.following.followers(stream)}
        self.planner.note_window_rate(read, start_ms=whole_from, end_ms=now_ms)
        # When a busy stream's stretch comes to be read, it is read on its own from the start, not after a page
        # of its lines with FilterLogEvents.
        self.busy_streams.add_all(busy_in_window(per_stream, now_ms - whole_from))
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
        async for page in self.pages.read(
            client,
            self.subscriptions,
            "request-lines",
            startTime=start_ms,
            **({} if end_ms is None else {"endTime": end_ms}),
            filterPattern=REQUEST_LINES_PATTERN,
            refusable=True,
        ):
            newest = max(newest, await self._route(page, find_streams=find_streams))
        return newest

    async def _read_behind(self, client: Any, window_start_ms: int, only: Collection[str] | None = None) -> int:
        """Read the followed streams (`only` these, if given) that a window from `window_start_ms` would leave
        a gap in (a late batch holds them back, or they were quiet), each from where it is complete, up to
        100 streams a call; return the newest timestamp routed by ids (0 if none)."""
        behind = sorted(
            (
                (stream, complete)
                for stream, complete in self.following.behind(window_start_ms).items()
                if only is None or stream in only
            ),
            key=lambda item: item[1],
        )
        newest = 0
        for first in range(0, len(behind), MAX_STREAMS_PER_CALL):
            batch = behind[first : first + MAX_STREAMS_PER_CALL]
            streams = [stream for stream, _ in batch]
            start, now_ms = batch[0][1] + 1, self._window_clock.now_ms()
            concerned = {follower for stream in streams for follower in self.following.followers(stream)}
            self.following.begin_read(start_ms=start, horizon_ms=now_ms - INGESTION_HORIZON_MARGIN_MS)
            async for page in self.pages.read(
                client, concerned, "behind", logStreamNames=sorted(streams), startTime=start, endTime=now_ms
            ):
                newest = max(newest, await self._route(page, follow=True))
            self.following.end_read(streams)
        return newest

    async def _read_spans(self, client: Any, served: list[Subscription]) -> None:
        """Serve requested stretches of streams, with one call for up to 100 streams at once. Each page's
        events go to the subscribers that asked for the stretches holding them as it comes (`_hand_over`):
        a read of stretches holds a page, not the stretches."""
        # By start: stretches read together start close together (a read reaches back to its earliest start),
        # and a stretch read again from its newest line is not read with ones read from their start.
        remaining = sorted(
            {span for subscription in served for span in subscription.spans}, key=lambda span: (span[1], span)
        )
        for first in range(0, len(remaining), MAX_STREAMS_PER_CALL):
            batch = remaining[first : first + MAX_STREAMS_PER_CALL]
            concerned = [subscription for subscription in served if subscription.spans.intersection(batch)]
            # Who asked for each stretch as its read begins: one who asks for it meanwhile missed its first
            # pages, and is served by the next read.
            askers = {
                span: [subscription for subscription in concerned if span in subscription.spans] for span in batch
            }
            read: StretchesRead[Subscription] = StretchesRead(askers)
            busy = await self._read_together(client, concerned, batch, read)
            await self._read_streams(client, concerned, batch, busy, read)
            for span, subscriptions in askers.items():
                for subscription in subscriptions:
                    subscription.span_read(span)

    async def _read_together(
        self, client: Any, concerned: list[Subscription], batch: list[Span], read: StretchesRead[Subscription]
    ) -> list[str]:
        """Read the stretches of `batch` with FilterLogEvents, all in one read, except the busy streams': those
        known busy from an earlier read (a read of stretches, an unfiltered window, or a sample: `busy_streams`),
        when their stretch here is `BUSY_SPAN_MS` long or more (a stretch read again from its newest
        line is short), and those whose rest looks busy (`rest_looks_busy`) when this
        read needs another page. The others are then read on, each from its newest event: CloudWatch's pages
        interleave streams in an order that is not documented (moto's come stream after stream), but each
        stream's events come in time order; one read reaches back to the earliest of them, and each event is
        kept once, by its key. A stream whose newest event is its stretch's end is done. Return the busy
        streams, left to `_read_stream`."""
        stretch_of: dict[str, tuple[int, int]] = {}
        for stream, start, end in batch:
            earliest, latest = stretch_of.get(stream, (start, end))
            stretch_of[stream] = (min(earliest, start), max(latest, end))
        refused = self.stream_reads_refused
        busy = [
            stream
            for stream, (start, end) in stretch_of.items()
            if read_alone(start_ms=start, end_ms=end, marked_busy=stream in self.busy_streams, get_refused=refused)
        ]
        together = sorted(stream for stream in stretch_of if stream not in busy)
        start_ms = read.start_ms
        while together:
            found: list[str] = []
            pages = self.pages.read(
                client, concerned, "stretch", logStreamNames=together, startTime=start_ms, endTime=read.end_ms
            )
            async with aclosing(pages):
                async for page in pages:
                    await self._hand_over(page, read)
                    found = [stream for stream in together if self._read_alone_now(stream, stretch_of, read, page)]
                    if found:
                        break
            if not found:
                break
            self.busy_streams.add_all(found)
            busy += found
            # Each stream's events come in time order, whatever the order of the streams in the pages: each
            # is read on from its newest event (that millisecond again), or from its start if none came yet.
            resume_at: dict[str, int] = {}
            for stream in together:
                newest = read.newest_of(stream)
                if stream not in found and (newest is None or newest < stretch_of[stream][1]):
                    resume_at[stream] = stretch_of[stream][0] if newest is None else newest
            together = sorted(resume_at)
            start_ms = min(resume_at.values(), default=start_ms)
        return busy

    def _read_alone_now(
        self, stream: str, stretch_of: dict[str, tuple[int, int]], read: StretchesRead[Subscription], page: Page
    ) -> bool:
        """`read_alone` for a stream of a read of stretches under way, after `page`."""
        start, end = stretch_of[stream]
        return read_alone(
            start_ms=start,
            end_ms=end,
            marked_busy=stream in self.busy_streams,
            get_refused=self.stream_reads_refused,
            more_pages=page.more,
            count=read.count_of(stream),
            newest_ms=read.newest_of(stream),
        )

    async def _read_streams(
        self,
        client: Any,
        concerned: list[Subscription],
        batch: list[Span],
        busy: list[str],
        read: StretchesRead[Subscription],
    ) -> None:
        """Read the busy streams of `batch` at once (the budget of stream reads spaces the calls), each from the
        newest event the read of the others brought of it, or from its stretch's start; the first error
        stops the others and is raised as it is (the poller tells retryable errors apart)."""
        reads = []
        for stream in busy:
            spans = [span for span in batch if span[0] == stream]
            reads.append(
                asyncio.ensure_future(
                    self._read_stream(
                        client,
                        [subscription for subscription in concerned if subscription.spans.intersection(spans)],
                        stream,
                        max(read.newest_of(stream) or 0, min(start for _, start, _ in spans)),
                        max(end for _, _, end in spans),
                        read,
                    )
                )
            )
        try:
            await asyncio.gather(*reads)
        except BaseException:
            for pending in reads:
                pending.cancel()
            await asyncio.gather(*reads, return_exceptions=True)
            raise

    async def _read_stream(
        self,
        client: Any,
        concerned: list[Subscription],
        stream: str,
        start_ms: int,
        end_ms: int,
        read: StretchesRead[Subscription],
    ) -> None:
        """Read one busy stream from `start_ms` to `end_ms` with GetLogEvents (with FilterLogEvents if
        GetLogEvents is denied: the permission is new in this release)."""
        if not self.stream_reads_refused:
            try:
                async for page in self.pages.read(  # GetLogEvents leaves `endTime` out, FilterLogEvents counts it in
                    client, concerned, "busy-stream", stream=stream, startTime=start_ms, endTime=end_ms + 1
                ):
                    await self._hand_over(page, read)
                return
            except StreamReadRefused as refused:
                if not self.stream_reads_refused:  # once, though busy streams are read at the same time
                    log.warning(
                        "%s: GetLogEvents was refused (%s); reading busy streams with FilterLogEvents from now "
                        "on (allow logs:GetLogEvents on the log group: it has its own quota)",
                        self.log_group,
                        refused,
                    )
                self.stream_reads_refused = True
        async for page in self.pages.read(
            client, concerned, "stretch", logStreamNames=[stream], startTime=start_ms, endTime=end_ms
        ):
            await self._hand_over(page, read)

    async def _hand_over(self, page: list[dict[str, Any]], read: StretchesRead[Subscription]) -> None:
        """Give a page of a read of stretches to the subscribers that asked for the stretches holding its events
        (`_in_turns`): the read holds a page, not the stretches."""

        def hand_out(chunk: Sequence[dict[str, Any]]) -> None:
            for subscription, events in read.hand_out(chunk).items():
                subscription.deliver(events)

        await self._in_turns(page, hand_out)

    async def _in_turns(
        self, events: list[dict[str, Any]], work: Callable[[Sequence[dict[str, Any]]], Any]
    ) -> list[Any]:
        """Do `work` on `events` in chunks, a pass of the loop between two (`loop_turns`); return its results. Before
        each next chunk, wait for the subscribers that take their events in as they come to take what waits for
        them (`_make_room`): one page of a chatty request is all a read holds of it."""
        results = []
        for first in range(0, len(events), self.turns.chunk):
            results += await self.turns.map(events[first : first + self.turns.chunk], work)
            await self._make_room()
        return results

    async def _make_room(self) -> None:
        """Wait until each subscriber that takes its events in as they come has fewer than `MAX_EVENTS_WAITING`
        waiting (`Subscription.room`)."""
        while self.full:
            await self.full.pop().room()

    async def _route(self, events: list[dict[str, Any]], *, follow: bool = False, find_streams: bool = False) -> int:
        """Give each event to the subscribers whose ids it carries and, when `follow` (an unfiltered read of
        the group), to the followers of its stream; with `find_streams` (a read of request lines), a
        subscriber also starts following the stream it finds its request in. Return the newest timestamp
        routed by ids. Works in chunks, a pass of the loop between two (`_in_turns`)."""
        return max(
            await self._in_turns(events, lambda chunk: self._route_chunk(chunk, follow, find_streams)), default=0
        )

    def _route_chunk(self, events: Sequence[dict[str, Any]], follow: bool, find_streams: bool = False) -> int:
        newest = longest_delay = 0
        by_term = self._by_term
        following = self.following
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
            self.planner.note_delays([longest_delay])
        return newest

    def _delay_if_news(self, event: dict[str, Any]) -> int:
        """``ingestionTime - timestamp`` of `event` if the last whole read could not have brought it (else,
        or when either is missing, 0): `ReadPlanner.is_news`."""
        if "ingestionTime" not in event or "timestamp" not in event:
            return 0
        timestamp, ingested = int(event["timestamp"]), int(event["ingestionTime"])
        return ingested - timestamp if self.planner.is_news(timestamp, ingested) else 0
