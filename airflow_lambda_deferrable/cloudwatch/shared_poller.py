"""One CloudWatch Logs poller per log group for all the triggers of a triggerer process.

``FilterLogEvents`` allows 5 requests per second per account and Region, shared by every task of every DAG.
Every trigger following an invocation in the same (connection, Region, log group) subscribes to one
`LogGroupPoller`, whose single stream of calls serves them all. This module is the loop; each decision is a
pure function elsewhere, and each kind of read a module of its own:

| question | decided by | read by |
|---|---|---|
| when the next full read starts, and how far back it reaches | `ReadPlanner` | this loop |
| whose ids are searched from their start (catch-ups, sweeps) | `search_plan` | window_reads |
| the window unfiltered, by request lines or by ids | `ReadPlanner.read_unfiltered`, `filter_patterns` | window_reads |
| which stretches share a call, where a read resumes | `stretch_plan` | stretch_reads |
| which stretch is read alone with ``GetLogEvents`` | `busy_streams.read_alone` | stretch_reads |
| which streams are busy | `busy_streams` (a read's rest, a sample) | stretch_reads, samples |
| what an error answer means | `log_source.classify` | pages.PageReader |
| where each event goes | `routing` | router |

Every number behind these choices is in `tuning`, with its reason and what it was measured to buy; every
fact of the API in `limits`. Every call waits for its API's `RequestBudget` (`runtime.rate_limit`).

A trigger reads through its `Subscription` (`watch`, `want_read_at`, `fetch_new`, `fetch_span`); with
``shared=False`` it gets a poller of its own, with the same rules. Pollers, budgets and clients belong to one
event loop (``airflow dags test`` gives each trigger a fresh one); an idle poller closes its client and goes
away.

Clocks (`runtime.clock`): the cadence, backoff, pauses and budgets run on the monotonic clock, so a step of
the wall clock neither stalls nor hurries the reads; the windows of CloudWatch time (epoch ms) come from the
wall clock through the loop's `ForwardWall`, which never goes back. A subscriber speaks its trigger's time
(`Timeline`): `Subscription` converts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from airflow_lambda_deferrable.cloudwatch.group_state import GroupState
from airflow_lambda_deferrable.cloudwatch.log_source import (
    needs_fresh_client,
    parse_pages_as_plain_json,
)
from airflow_lambda_deferrable.cloudwatch.pages import (
    CallFailed,
    PageReader,
)
from airflow_lambda_deferrable.cloudwatch.read_planner import (
    MIN_CYCLE_SECONDS,
    Step,
)
from airflow_lambda_deferrable.cloudwatch.router import Router
from airflow_lambda_deferrable.cloudwatch.samples import Samples
from airflow_lambda_deferrable.cloudwatch.stretch_reads import StretchReads
from airflow_lambda_deferrable.cloudwatch.subscription import Broadcast, Subscription
from airflow_lambda_deferrable.cloudwatch.window_reads import WindowReads
from airflow_lambda_deferrable.limits import (
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
    """Read one log group for all its subscribers, one cycle at a time: the loop, the subscribers' door, and
    the client's life. The reads themselves are `WindowReads`, `StretchReads` and `Samples`, over one
    `GroupState`; where their events go is the `Router`'s."""

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

        :param stream_budget: for GetLogEvents (a quota of its own); by default its share of `budget`'s rate.
        :param window_clock: the wall clock as windows read it (the loop's: a step back is not followed even
            by the next poller); by default one of its own."""
        self.log_group = log_group
        self._client_factory = client_factory
        stream_budget = stream_budget or RequestBudget(budget.max_rate * STREAM_READS_PER_FILTER_CALL)
        turns = LoopTurns()  # the poller's own: its routing and keying do not queue behind the triggers' work
        pages = PageReader(log_group, budget, stream_budget, turns)
        self.group = GroupState(log_group, pages, window_clock or ForwardWall(), turns=turns)
        self.router = Router(self.group)
        self.window = WindowReads(self.group, self.router)
        self.stretches = StretchReads(self.group, self.router)
        self.samples = Samples(self.group)
        self._intervals: Counter[float] = Counter()  # the subscribers' poll intervals: the shortest paces reads
        self.cycle_done = Broadcast()  # notified when a cycle ends, read or failed, and when the poller crashes
        self._wake = asyncio.Event()
        self.closing = False
        self.crashed: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        self.clients = 0  # clients opened (a failed one is replaced)

    def wait_limit(self) -> float:
        """How long a subscriber waits for a cycle before it counts as a failed read."""
        return max(MIN_SERVE_WAIT_SECONDS, SERVE_WAIT_INTERVALS * self._interval())

    def wake(self) -> None:
        self._wake.set()

    def add(self, subscription: Subscription) -> None:
        self.group.subscriptions.append(subscription)
        self._intervals[subscription.poll_interval] += 1
        subscription.catch_up.update(subscription.terms)
        for term in subscription.terms:
            self.group.by_term.setdefault(term, set()).add(subscription)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name=f"log-poller:{self.log_group}")
        self.wake()

    def want_read_at(self, when: float) -> None:
        """Start a full read at `when` (the monotonic clock) if that comes before the next one (within the
        spacing limit)."""
        if self.group.planner.want_read_at(when):
            self.wake()

    def add_term(self, subscription: Subscription, term: str) -> None:
        """Route `term` to `subscription` too; its catch-up comes with the next full read."""
        self.group.by_term.setdefault(term, set()).add(subscription)

    def repace(self, previous: float, poll_interval: float) -> None:
        """Count a subscriber at its new `poll_interval`; wake up if that makes reads due sooner."""
        if poll_interval == previous:
            return
        self._forget_interval(previous)
        self._intervals[poll_interval] += 1
        self.wake()

    def follows_since(self, subscription: Subscription, stream: str) -> int | None:
        """Since when (epoch ms) the reads follow `stream` for `subscription` (``None``: they do not)."""
        return self.group.following.since(subscription, stream)

    def leave_to_following(self, stream: str) -> None:
        """A subscriber leaves its stretch of `stream` to the reads that follow it: read it up to now before
        following ends (`WindowReads.stop_following`), since nobody reads that stretch again."""
        self.group.left_to_following.add(stream)

    def make_room_for(self, subscription: Subscription) -> None:
        """`subscription` has `MAX_EVENTS_WAITING` waiting: routing waits for it to take them (`Router.make_room`)."""
        self.group.full.add(subscription)

    def _forget_interval(self, poll_interval: float) -> None:
        self._intervals[poll_interval] -= 1
        if not self._intervals[poll_interval]:
            del self._intervals[poll_interval]

    def remove(self, subscription: Subscription) -> None:
        group = self.group
        group.subscriptions.remove(subscription)
        subscription.stop_taking_in()  # routing waiting for it goes on
        group.full.discard(subscription)
        group.following.forget(subscription)
        self._forget_interval(subscription.poll_interval)
        for term in subscription.terms:
            holders = group.by_term.get(term, set())
            holders.discard(subscription)
            if not holders:
                group.by_term.pop(term, None)
        if not group.subscriptions:
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
        planner = self.group.planner
        while not self.closing:
            self._wake.clear()
            began = clock.monotonic()
            step = planner.next_step(began, interval=self._interval(), stretches_asked=self._has_requests())
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
                planner.cycle_succeeded(step, began=began)
            except CallFailed as failed:
                # Only these reach here (`PageReader` gave the other errors to the subscribers concerned), and
                # the budget of the API that answered has seen its throttling.
                await self._after_failure(open_client, failed)
                client = None if needs_fresh_client(failed.cause) else client
                # Jittered exponential backoff, on top of the budget's own slowing down.
                planner.cycle_failed(clock.monotonic(), interval=self._interval())
                await self.cycle_done.notify_all()

    async def _after_failure(self, open_client: AsyncExitStack, failed: CallFailed) -> None:
        """Say which call failed; close the client when its credentials or connection failed."""
        if not needs_fresh_client(failed.cause):
            log.warning("%s: %s; backing off", self.log_group, failed)
            return
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
        return any(subscription.spans for subscription in self.group.subscriptions)

    async def _cycle(self, client: Any, step: Step, *, began: float) -> None:
        """Read requested spans; on a full cycle first make the full read, and let the subscribers see its
        events (and ask for the stretches they close) before the spans are read."""
        served = list(self.group.subscriptions)
        if not served:
            return
        calls_before = self.group.pages.calls
        if step.full:
            await self._full_read(client, served, began)
            # The subscribers take in what the read brought, and ask for the stretches it closed: read them in
            # this cycle, not the next (at volume a cycle takes seconds).
            await self.cycle_done.notify_all()
            await asyncio.sleep(LIGHT_CYCLE_BATCH_SECONDS)
            served = list(self.group.subscriptions)
        await self.stretches.read_spans(client, served)
        if step.full and self.group.sample_due:
            await self.samples.sample_quietly(client)
        log.debug(
            "%s: %s cycle for %d subscribers: %d calls in %.2fs (longest ingestion delay seen: %s ms)",
            self.log_group,
            "full" if step.full else "light",
            len(served),
            self.group.pages.calls - calls_before,
            clock.monotonic() - began,
            self.group.planner.longest_delay_ms,
        )
        await self.cycle_done.notify_all()

    async def _full_read(self, client: Any, served: list[Subscription], began: float) -> None:
        """Catch up new ids, sweep when due, read the window, and move the window on (`ReadPlanner`)."""
        planner = self.group.planner
        reaches = [subscription.reach() for subscription in served]
        plan = planner.plan_full_read(
            began, reaches, interval=self._interval(), following=self.group.following.streams > 0
        )
        # New ids are searched for where the window does not reach at all. Beyond the usual lookback it brings
        # request lines only, but a subscriber's START there starts following its stream, which is then read
        # whole; searching every newcomer's ids from there cost 73 calls at volume.
        caught_up = await self.window.catch_up(client, served, plan.start_ms)
        if plan.by_search:
            caught_up = max(caught_up, await self.window.sweep_by_search(client, served, plan.whole_from_ms))
        read, read_through_ms = await self.window.read_window(client, plan)
        # Only a whole read moves the window on: after a failed one, the next starts as far back.
        planner.full_read_done(
            plan, began=began, ended=clock.monotonic(), newest_ms=max(caught_up, read), read_through_ms=read_through_ms
        )
        for subscription in served:
            if subscription.start_ms >= plan.start_ms:
                subscription.caught_up()
            subscription.full_read_served(began)
