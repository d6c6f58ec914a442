"""A step of the triggerer's wall clock: deadlines keep the time they had left, the poller keeps its pace.

The wall clock is replaced where the project reads it (`clock.wall`), not `time.time`: botocore signs
requests and moto stamps ingestion with the real one, as AWS's clock is not stepped with the triggerer's.
Lines are stamped with that real time too, as Lambda would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiobotocore.session
import pytest

from airflow_lambda_deferrable.cloudwatch import filter_patterns, registry
from airflow_lambda_deferrable.cloudwatch.pages import PageReader, answer_horizon_ms
from airflow_lambda_deferrable.cloudwatch.read_planner import MIN_READ_GAP_SHARE
from airflow_lambda_deferrable.cloudwatch.routing import StreamFollowing
from airflow_lambda_deferrable.cloudwatch.subscription import Subscription
from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger
from airflow_lambda_deferrable.runtime import clock
from airflow_lambda_deferrable.runtime.clock import STEP_BACK_PACE, ForwardWall, Timeline
from airflow_lambda_deferrable.runtime.rate_limit import RequestBudget
from airflow_lambda_deferrable.tuning import INGESTION_HORIZON_MARGIN_MS
from tests import lambda_lines as lines
from tests.conftest import aws_connection
from tests.fault_proxy import FaultProxy

GROUP = "/aws/lambda/example-lambda-function"
HOUR = 3600.0
INTERVAL = 0.3


class SteppedWall:
    """`clock.wall` as a triggerer's wall clock: the real one, stepped by `step`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        monkeypatch.setattr(clock, "wall", self)

    def __call__(self) -> float:
        return time.time() + self.offset

    def step(self, seconds: float) -> None:
        self.offset += seconds


class ManualClocks:
    """`clock.wall` and `clock.monotonic` as numbers a test sets."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, wall: float, monotonic: float) -> None:
        self.wall, self.monotonic = wall, monotonic
        monkeypatch.setattr(clock, "wall", lambda: self.wall)
        monkeypatch.setattr(clock, "monotonic", lambda: self.monotonic)

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.monotonic += seconds


@pytest.fixture
def proxy(moto, monkeypatch):
    with FaultProxy(moto) as running:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_COUNTED", aws_connection(running.url))
        yield running


@pytest.fixture
def many_ids(monkeypatch):
    """As if the ids needed more OR-patterns than one: the quiet group is read unfiltered, by windows."""
    monkeypatch.setattr(filter_patterns, "MAX_FILTER_PATTERN_LENGTH", 45)


def trigger(**overrides) -> LambdaInvocationTrigger:
    kwargs = {
        "function_name": "example-lambda-function",
        "log_group": GROUP,
        "correlation_id": "corr-step-0001",
        "request_id": "00000000-0000-4000-8000-000000000001",
        "invoked_at": time.time() - 1,
        "deadline": time.time() + 30,
        "aws_conn_id": "aws_counted",
        "poll_interval": INTERVAL,
        "settle_seconds": 0.3,
    }
    return LambdaInvocationTrigger(**(kwargs | overrides))


def invocation() -> list[str]:
    correlation_id, request_id = "corr-step-0001", "00000000-0000-4000-8000-000000000001"
    return [
        lines.start(request_id),
        lines.powertools(correlation_id, request_id, "working"),
        lines.powertools(correlation_id, request_id, "Function ended"),
        lines.end(request_id),
        lines.report(request_id),
    ]


async def first_payload(one: LambdaInvocationTrigger) -> dict:
    async for event in one.run():
        return event.payload
    raise AssertionError("no event")


async def until(ready: Callable[[], bool], what: Callable[[], str], timeout: float = 30.0) -> None:
    """Wait until `ready`; fail saying `what` after `timeout` seconds (a guard: success comes much sooner)."""
    try:
        async with asyncio.timeout(timeout):
            while not ready():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what()}") from None


async def after_cycles(subscription: Subscription, ready: Callable[[], bool], what: Callable[[], str]) -> None:
    """Wait until `ready` holds at the end of one of the poller's cycles; fail saying `what` after a minute
    (a guard: success comes much sooner)."""
    try:
        await asyncio.wait_for(subscription.poller.cycle_done.wait_for(ready), 60)
    except TimeoutError:
        raise AssertionError(f"not within 60 s: {what()}") from None


async def subscription_of(group: str) -> Subscription:
    """Wait for the first subscriber of the shared poller of `group`, and return it."""
    found: list[Subscription] = []

    def subscribed() -> bool:
        pollers = [poller for poller in registry.registry().pollers.values() if poller.log_group == group]
        found[:] = [subscription for poller in pollers for subscription in poller.group.subscriptions]
        return bool(found)

    await until(subscribed, lambda: f"no subscriber to the poller of {group}")
    return found[0]


def window_reads(proxy: FaultProxy) -> list[tuple[float, dict]]:
    """Every FilterLogEvents call that read a window of the whole group (unfiltered, with an end)."""
    return [
        (at, request)
        for at, request in proxy.requests_of("FilterLogEvents")
        if "logStreamNames" not in request and "filterPattern" not in request and "endTime" in request
    ]


def test_a_timeline_reads_the_wall_clock_once_and_then_only_the_monotonic_clock(monkeypatch):
    clocks = ManualClocks(monkeypatch, wall=1_800_000_000.0, monotonic=500.0)
    timeline = Timeline.start()
    clocks.advance(10.0)
    assert timeline.now() == 1_800_000_010.0
    clocks.wall -= HOUR  # stepped back: the timeline does not go back
    assert timeline.now() == 1_800_000_010.0
    clocks.wall += 2 * HOUR  # stepped forward: nor does it jump
    assert timeline.now() == 1_800_000_010.0
    deadline = 1_800_000_030.0
    assert timeline.to_monotonic(deadline) == 530.0  # 20 s left, on the monotonic clock
    assert timeline.from_monotonic(530.0) == deadline
    assert Timeline.start().now() == clocks.wall  # a restart reads the wall clock anew


def test_the_windows_wall_clock_follows_a_step_forward_and_slows_down_after_a_step_back(monkeypatch):
    clocks = ManualClocks(monkeypatch, wall=1_800_000_000.0, monotonic=500.0)
    windows = ForwardWall()
    assert windows.now_ms() == 1_800_000_000_000
    clocks.wall -= HOUR
    clocks.advance(10.0)
    ahead = 1_800_000_000.0 + 10.0 * STEP_BACK_PACE
    assert windows.now() == ahead  # not an hour back: windows would end before they start
    clocks.advance(600.0)
    assert windows.now() == ahead + 600.0 * STEP_BACK_PACE  # slower than the wall: the lead shrinks
    # A fast clock set right (the usual step back): the lead is gone within twice its length, then followed.
    clocks.advance(2 * HOUR)
    assert windows.now() == clocks.wall
    clocks.wall += HOUR
    assert windows.now() == clocks.wall  # a step forward is followed: a window that ends late brings what is there


def test_the_ingestion_horizon_follows_the_wall_clock_not_the_windows_lead_after_a_step_back(monkeypatch):
    # A read counts an event as surely in it only if it was ingested before the wall clock (less the margin)
    # says the read began: the windows' lead after a step back would count events not ingested yet as read,
    # and what a read covered whole is not delivered again.
    clocks = ManualClocks(monkeypatch, wall=1_800_000_000.0, monotonic=500.0)
    windows = ForwardWall()
    windows.now()
    clocks.wall -= HOUR
    clocks.advance(10.0)
    assert windows.now_ms() > int(clocks.wall * 1000)  # the windows keep a lead
    assert clock.ingestion_horizon_ms() == int(clocks.wall * 1000) - INGESTION_HORIZON_MARGIN_MS


@pytest.mark.asyncio
@pytest.mark.parametrize("read", ["by ids", "by windows"])
async def test_a_wall_clock_stepped_forward_an_hour_mid_follow_times_nothing_out_and_the_lines_decide(
    logs_client, proxy, monkeypatch, read
):
    if read == "by windows":
        monkeypatch.setattr(filter_patterns, "MAX_FILTER_PATTERN_LENGTH", 45)
    wall = SteppedWall(monkeypatch)
    body = invocation()
    lines.put(logs_client, GROUP, body[:2])  # the request runs
    running = asyncio.create_task(first_payload(trigger(deadline=time.time() + 30)))
    subscription = await subscription_of(GROUP)
    await after_cycles(
        subscription, lambda: subscription.cycles >= 2, lambda: f"{subscription.cycles} reads before the step"
    )
    wall.step(HOUR)  # the wall clock is now half an hour past the deadline
    stepped = subscription.cycles
    await after_cycles(
        subscription, lambda: subscription.cycles >= stepped + 3 or running.done(), lambda: "no reads after the step"
    )
    assert not running.done(), running.result()  # each read was news, and no deadline had passed
    lines.put(logs_client, GROUP, body[2:])
    payload = await asyncio.wait_for(running, 30)
    assert payload["status"] == "success", payload["message"]
    assert {"working", "Function ended"} <= {line["message"] for line in payload["lines"]}


@pytest.mark.asyncio
async def test_a_wall_clock_stepped_back_an_hour_leaves_the_poller_reading_at_its_cadence(
    logs_client, proxy, monkeypatch, many_ids
):
    wall = SteppedWall(monkeypatch)
    body = invocation()
    lines.put(logs_client, GROUP, body[:2])
    running = asyncio.create_task(first_payload(trigger(deadline=time.time() + 60)))
    subscription = await subscription_of(GROUP)
    await after_cycles(
        subscription, lambda: subscription.cycles >= 2, lambda: f"{subscription.cycles} reads before the step"
    )
    last_end = max(request["endTime"] for _, request in window_reads(proxy))
    reads_before = len(window_reads(proxy))
    wall.step(-HOUR)
    stepped_at, cycles = time.monotonic(), subscription.cycles
    await after_cycles(
        subscription,
        lambda: subscription.cycles >= cycles + 5,
        lambda: f"{subscription.cycles - cycles} full read(s) after the step, at a {INTERVAL} s interval",
    )
    elapsed = time.monotonic() - stepped_at
    # Full reads start an interval apart, never less than half of one, on the monotonic clock (one may have
    # begun before the step, and one as the time is taken).
    assert subscription.cycles - cycles <= 2 + elapsed / (MIN_READ_GAP_SHARE * INTERVAL)
    windows = [request for _, request in window_reads(proxy)[reads_before:]]
    assert windows, "no window read after the step"
    for window in windows:  # none ends before it starts, nor goes back to an hour ago
        assert window["startTime"] <= window["endTime"] and window["endTime"] >= last_end, window
    lines.put(logs_client, GROUP, body[2:])  # stamped with AWS's clock, an hour past the stepped wall clock
    payload = await asyncio.wait_for(running, 30)
    assert payload["status"] == "success", payload["message"]
    assert "Function ended" in [line["message"] for line in payload["lines"]]


@pytest.mark.asyncio
@pytest.mark.parametrize("step", [HOUR, -HOUR], ids=["forward", "back"])
async def test_a_trigger_times_out_after_the_time_it_had_left_whichever_way_the_wall_clock_steps(
    logs_client, proxy, monkeypatch, step
):
    wall = SteppedWall(monkeypatch)
    lines.put(logs_client, GROUP, invocation()[:2])  # the request never ends
    left = 3.0
    started = time.monotonic()
    running = asyncio.create_task(first_payload(trigger(deadline=time.time() + left)))
    await subscription_of(GROUP)  # the trigger has started: its deadline is a monotonic one now
    wall.step(step)
    payload = await asyncio.wait_for(running, 30)  # back: without the fix, an hour
    assert payload["status"] == "timeout", payload["message"]
    # Not before the time it had left (forward: without the fix, at the next read). The two clocks are read
    # one after the other, hence the millisecond.
    assert time.monotonic() - started >= left - 0.001


def test_a_pages_horizon_is_its_answers_date_less_the_calls_duration_and_the_margin():
    answered = {"ResponseMetadata": {"HTTPHeaders": {"date": "Mon, 07 Dec 2026 14:50:00 GMT"}}}
    assert answer_horizon_ms(answered, 0.25) == 1_796_655_000_000 - 250 - INGESTION_HORIZON_MARGIN_MS
    assert answer_horizon_ms({}, 0.25) is None  # a fake client's answer: the triggerer's clock alone
    assert answer_horizon_ms({"ResponseMetadata": {"HTTPHeaders": {"date": "soon"}}}, 0.25) is None
    # A date without a zone would be read in the triggerer's own: it says nothing sure.
    assert answer_horizon_ms({"ResponseMetadata": {"HTTPHeaders": {"date": "Mon, 07 Dec 2026 14:50:00"}}}, 0) is None


def test_a_pages_horizon_is_no_earlier_than_the_newest_event_its_answer_brought():
    # Each event of the answer was in its search: a proxy whose Date runs an hour slow does not hold the
    # reads back to an hour before.
    slow = {"ResponseMetadata": {"HTTPHeaders": {"date": "Mon, 07 Dec 2026 13:50:00 GMT"}}}
    answered = {**slow, "events": [{"ingestionTime": 1_796_655_000_000}, {"ingestionTime": 1_796_654_000_000}]}
    assert answer_horizon_ms(answered, 0.25) == 1_796_655_000_000 - INGESTION_HORIZON_MARGIN_MS


def test_a_read_counts_on_no_event_ingested_after_its_pages_horizon_whatever_the_triggerers_clock():
    # The triggerer's clock an hour fast puts its horizon an hour late: every event would count as surely in
    # the read. A page's horizon, by CloudWatch's clock, takes it back.
    following: StreamFollowing[str] = StreamFollowing()
    following.begin_read(start_ms=0, horizon_ms=10_000 + int(HOUR * 1000))
    following.start("A", "s", 10)
    following.lower_horizon(10_000)
    following.lower_horizon(None)  # an answer without a date changes nothing
    following.lower_horizon(50_000)  # nor does a later one
    for timestamp, ingested in ((10, 9_000), (20, 9_999), (30, 10_000)):
        following.note("s", timestamp, {"ingestionTime": ingested})
    following.end_read()
    assert following.whole() == [("A", "s", 10, 19, 10_000)]


@pytest.mark.asyncio
async def test_a_page_of_cloudwatch_carries_the_horizon_of_its_clock_not_of_the_triggerers(
    logs_client, moto, monkeypatch
):
    wall = SteppedWall(monkeypatch)
    wall.step(HOUR)  # what the project reads as the wall clock; moto's, like AWS's, is not stepped
    lines.put(logs_client, GROUP, [lines.start("5b0c7e0e-8a1d-4c1e-9b7a-3f7d2c9e4a11")])
    reader = PageReader(GROUP, RequestBudget(100.0), RequestBudget(100.0))
    session = aiobotocore.session.get_session()
    async with session.create_client(
        "logs", region_name="us-east-1", endpoint_url=moto, aws_access_key_id="x", aws_secret_access_key="x"
    ) as client:
        before = time.time()
        pages_read = [page async for page in reader.read(client, [], "window", startTime=0)]
        after = time.time()
    assert [len(page) for page in pages_read] == [1]
    horizon_ms = pages_read[0].horizon_ms
    assert horizon_ms is not None
    # The answer's date (whole seconds, cut down) lies within the call, by the real clock: less the call's
    # duration (at most after - before) and the margin.
    assert int(before * 1000) - 1_000 - int((after - before) * 1000) - INGESTION_HORIZON_MARGIN_MS - 1 <= horizon_ms
    assert horizon_ms <= int(after * 1000) - INGESTION_HORIZON_MARGIN_MS
    assert clock.ingestion_horizon_ms() > horizon_ms + (HOUR - 60) * 1000  # the stepped clock's, an hour late
