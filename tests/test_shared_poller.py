"""The per-log-group shared poller: routing, joining, leaving, the request budget, throttling."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable

import aiobotocore.session
import pytest
from moto.logs.models import LogGroup, LogStream

from airflow_lambda_deferrable.cloudwatch import (
    busy_streams,
    filter_patterns,
    log_source,
    pages,
    read_planner,
    registry,
    shared_poller,
)
from airflow_lambda_deferrable.cloudwatch.filter_patterns import or_patterns
from airflow_lambda_deferrable.cloudwatch.read_planner import (
    DELAY_MEMORY_READS,
    INGESTION_HORIZON_MARGIN_MS,
    MIN_LOOKBACK_MS,
)
from airflow_lambda_deferrable.cloudwatch.subscription import Subscription
from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger
from airflow_lambda_deferrable.runtime import loop_turns as loop_turns_module
from airflow_lambda_deferrable.runtime.loop_turns import LoopTurns, loop_turns
from airflow_lambda_deferrable.runtime.rate_limit import RequestBudget
from tests import lambda_lines as lines
from tests.conftest import REGION, aws_connection
from tests.fault_proxy import FaultProxy

GROUP = "/aws/lambda/example-lambda-function"


@pytest.fixture
def proxy(moto, monkeypatch):
    with FaultProxy(moto) as running:
        monkeypatch.setenv(
            "AIRFLOW_CONN_AWS_COUNTED",
            aws_connection(running.url),
        )
        yield running


def trigger(index: int, **overrides) -> LambdaInvocationTrigger:
    kwargs = {
        "function_name": "example-lambda-function",
        "log_group": GROUP,
        "correlation_id": f"corr-shared-{index:04d}",
        "request_id": f"00000000-0000-4000-8000-{index:012d}",
        "invoked_at": time.time() - 1,
        "deadline": time.time() + 30,
        "aws_conn_id": "aws_counted",
        "poll_interval": 0.3,
        "settle_seconds": 0.3,
        "botocore_config": {"retries": {"total_max_attempts": 1}},
    }
    return LambdaInvocationTrigger(**(kwargs | overrides))


def invocation(index: int, *, fail: bool = False) -> list[str]:
    correlation_id, request_id = f"corr-shared-{index:04d}", f"00000000-0000-4000-8000-{index:012d}"
    body = [lines.start(request_id), lines.powertools(correlation_id, request_id, f"work of {index}")]
    body.append(
        lines.logged_exception(correlation_id, request_id)
        if fail
        else lines.powertools(correlation_id, request_id, "Function ended")
    )
    return [*body, lines.end(request_id), lines.report(request_id)]


async def first_payload(one: LambdaInvocationTrigger) -> dict:
    async for event in one.run():
        return event.payload
    raise AssertionError("no event")


async def run_all(triggers: list[LambdaInvocationTrigger]) -> list[dict]:
    return await asyncio.wait_for(asyncio.gather(*(first_payload(one) for one in triggers)), 60)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["shared", "per_trigger"])
async def test_each_trigger_gets_exactly_its_own_lines(logs_client, proxy, monkeypatch, mode):
    monkeypatch.setenv("AIRFLOW__LAMBDA_DEFERRABLE__SHARED_POLLER", str(mode == "shared"))
    for index in range(20):
        lines.put(logs_client, GROUP, invocation(index, fail=index % 4 == 0), stream=f"stream-{index % 3}")
    payloads = await run_all([trigger(index) for index in range(20)])
    for index, payload in enumerate(payloads):
        assert payload["status"] == ("failed" if index % 4 == 0 else "success")
        messages = [line["message"] for line in payload["lines"]]
        assert f"work of {index}" in messages and len(messages) == 5
        assert all(f"-{index:012d}" in line or f"{index}" in line for line in messages if "RequestId" in line)
    assert registry._registries.get(asyncio.get_running_loop()) is None or not registry.registry().pollers


@pytest.mark.asyncio
async def test_sharing_makes_calls_independent_of_the_number_of_triggers(logs_client, proxy, monkeypatch):
    for index in range(30):
        lines.put(logs_client, GROUP, invocation(index), stream=f"stream-{index % 5}")
    calls = {}
    for mode in ("per_trigger", "shared"):
        monkeypatch.setenv("AIRFLOW__LAMBDA_DEFERRABLE__SHARED_POLLER", str(mode == "shared"))
        before = proxy.count("FilterLogEvents")
        payloads = await run_all([trigger(index) for index in range(30)])
        assert {payload["status"] for payload in payloads} == {"success"}
        calls[mode] = proxy.count("FilterLogEvents") - before
    # Per trigger: at least a read and a span read each. Shared: a few reads for everyone.
    assert calls["per_trigger"] >= 60
    print(f"FilterLogEvents calls for 30 invocations: {calls}")
    assert calls["shared"] * 5 <= calls["per_trigger"], calls


@pytest.mark.asyncio
async def test_a_late_joiner_catches_up_from_the_start_of_its_invocation(logs_client, proxy):
    lines.put(logs_client, GROUP, invocation(1)[:2], stream="stream-a")
    early = asyncio.create_task(first_payload(trigger(1, deadline=time.time() + 60)))
    await more_full_reads(GROUP, 1)  # the shared poller runs; its window starts near the newest line
    # A trigger re-created after a triggerer restart, for an invocation made ten minutes ago: its lines
    # are older than the window reaches back, so only a catch-up search can find them.
    ten_minutes_ago = lines.now_ms() - 600_000
    lines.put(logs_client, GROUP, invocation(2), stream="stream-b", at=ten_minutes_ago)
    before = proxy.count("FilterLogEvents")
    restarted = trigger(2, invoked_at=ten_minutes_ago / 1000, ingestion_allowance_seconds=5)
    late = await asyncio.wait_for(first_payload(restarted), 30)
    assert [line["message"] for line in late["lines"]] == invocation(2)[:1] + [
        "work of 2",
        "Function ended",
    ] + invocation(2)[3:]
    assert proxy.count("FilterLogEvents") > before
    lines.put(logs_client, GROUP, invocation(1)[2:], stream="stream-a")
    payload = await asyncio.wait_for(early, 30)
    assert [line["message"] for line in payload["lines"]] == invocation(1)[:1] + [
        "work of 1",
        "Function ended",
    ] + invocation(1)[3:]


def full_reads(proxy: FaultProxy) -> list[tuple[float, dict]]:
    """Every FilterLogEvents call that read the whole group (not a stretch of one stream), with its time."""
    return [(at, request) for at, request in proxy.requests_of("FilterLogEvents") if "logStreamNames" not in request]


def id_pattern_reads(proxy: FaultProxy) -> list[dict]:
    """Every read of the whole group made with OR-patterns of ids (not unfiltered, nor of request lines)."""
    return [request for _, request in full_reads(proxy) if request.get("filterPattern", "").startswith("?")]


def full_read_starts(proxy: FaultProxy) -> list[int]:
    """startTime of every full read."""
    return [request["startTime"] for _, request in full_reads(proxy)]


@pytest.mark.asyncio
async def test_full_reads_reach_back_as_far_as_ingestion_delays_require(logs_client, proxy):
    newest = lines.put(logs_client, GROUP, invocation(1)[:2]) - 1
    unfinished = trigger(1, deadline=time.time() + 4.5)  # no END: it polls until its deadline
    start_ms = unfinished.settings.start_ms
    payload = await asyncio.wait_for(first_payload(unfinished), 30)
    assert payload["status"] == "timeout"
    starts = full_read_starts(proxy)
    # The first read covers the new subscriber from its start; sweeps reach back the whole allowance (two
    # minutes, so here the trigger's start); the others only the recent lookback before the previous read,
    # since the lines seen so far arrived at once. (Which comes when: tests/test_read_planner.py.)
    assert starts[0] == start_ms
    recent = [start for start in starts if start != start_ms]
    assert recent and all(newest - MIN_LOOKBACK_MS <= start <= lines.now_ms() - MIN_LOOKBACK_MS for start in recent)


@pytest.mark.asyncio
async def test_a_line_later_than_any_before_is_found_by_a_sweep_and_widens_the_lookback(logs_client, proxy):
    lines.put(logs_client, GROUP, invocation(1)[:2])
    running = asyncio.create_task(first_payload(trigger(1, deadline=time.time() + 12)))
    poller = await poller_of(GROUP)

    # A whole read has seen the lines: the lookback is down to its minimum.
    await after_cycles(poller, lambda: poller.group.planner.read_through_ms is not None)
    assert poller.group.planner.recent_lookback_ms(120_000) == MIN_LOOKBACK_MS
    # The function's error line, logged 40 s ago, becomes visible only now: older than the recent
    # lookback, inside the two-minute late-arrival allowance.
    correlation_id, request_id = "corr-shared-0001", "00000000-0000-4000-8000-000000000001"
    lines.put(
        logs_client,
        GROUP,
        [lines.logged_exception(correlation_id, request_id)],
        stream="other",
        at=lines.now_ms() - 40_000,
    )
    payload = await asyncio.wait_for(running, 30)
    assert payload["status"] == "failed"
    assert "Function invocation failed" in [line["message"] for line in payload["lines"]]
    assert poller.group.planner.longest_delay_ms >= 40_000
    assert poller.group.planner.recent_lookback_ms(120_000) >= 40_000


@pytest.mark.asyncio
async def test_a_late_line_read_again_by_overlapping_reads_widens_the_lookback_only_for_a_few_reads(logs_client, proxy):
    # Another request's START, logged 40 s ago, was ingested before the first read began (by more than the
    # clocks' margin): that read counts its delay, so the reads after it reach back 45 s (request lines
    # only, beyond the usual 10 s) and bring it again. Counted again at each of them, it kept the lookback
    # wide as long as a read reached it; counted once, it is forgotten after `DELAY_MEMORY_READS` reads.
    # Thirty triggers: more ids than one pattern holds, so the group is read without OR-patterns.
    other_request = "00000000-0000-4000-8000-999999999999"
    lines.put(logs_client, GROUP, [lines.start(other_request)], stream="other", at=lines.now_ms() - 40_000)
    for index in range(30):
        lines.put(logs_client, GROUP, invocation(index)[:2], stream=f"stream-{index}")
    await asyncio.sleep(INGESTION_HORIZON_MARGIN_MS / 1000 + 0.5)
    invoked_at, deadline = time.time() - 60, time.time() + 30
    running = [
        asyncio.create_task(first_payload(trigger(index, invoked_at=invoked_at, deadline=deadline)))
        for index in range(30)
    ]
    poller = await poller_of(GROUP)

    def reads(count: int) -> Callable[[], bool]:
        return lambda: bool(poller.group.subscriptions) and poller.group.subscriptions[0].cycles >= count

    await after_cycles(poller, reads(1))
    assert poller.group.planner.recent_lookback_ms(120_000) >= 40_000
    await after_cycles(poller, reads(DELAY_MEMORY_READS + 1))
    assert poller.group.planner.recent_lookback_ms(120_000) == MIN_LOOKBACK_MS
    assert not id_pattern_reads(proxy) and request_lines_reads(proxy)
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


@pytest.mark.asyncio
async def test_cancelled_triggers_leave_and_the_idle_poller_closes(logs_client, proxy):
    lines.put(logs_client, GROUP, [])
    tasks = [asyncio.create_task(first_payload(trigger(index))) for index in range(3)]
    poller = await poller_of(GROUP)
    await until(lambda: len(poller.group.subscriptions) == 3)
    assert list(registry.registry().pollers.values()) == [poller]
    tasks[0].cancel()
    await until(lambda: len(poller.group.subscriptions) == 2)
    for task in tasks[1:]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.wait_for(poller.task, 5)  # the poller ends on its own once nobody listens: no call after it
    assert registry.registry().pollers == {} and poller.task.done() and poller.crashed is None


@pytest.mark.asyncio
async def test_throttling_shrinks_the_rate_and_it_recovers(logs_client, proxy, monkeypatch):
    monkeypatch.setenv("AIRFLOW__LAMBDA_DEFERRABLE__MAX_REQUESTS_PER_SECOND", "8")
    lines.put(logs_client, GROUP, invocation(1))
    proxy.fail_next("FilterLogEvents", 3)
    payload = await asyncio.wait_for(first_payload(trigger(1)), 40)
    assert payload["status"] == "success"
    budget = registry.registry().budget
    assert budget.throttled_calls == 3
    # Cut at least once (the retries may straddle a burst's end); the rate itself recovers with the clock,
    # so how far it has climbed back depends on the machine. The rule is tested with a clock above.
    assert 1 <= budget.halvings <= budget.throttled_calls


@pytest.mark.asyncio
async def test_two_log_groups_share_one_budget_and_both_progress(logs_client, proxy, monkeypatch):
    monkeypatch.setenv("AIRFLOW__LAMBDA_DEFERRABLE__MAX_REQUESTS_PER_SECOND", "4")
    lines.put(logs_client, GROUP, invocation(1))
    lines.put(logs_client, "/aws/lambda/other", invocation(2))
    payloads = await run_all([trigger(1), trigger(2, log_group="/aws/lambda/other")])
    assert [payload["status"] for payload in payloads] == ["success", "success"]
    assert registry.registry().budget.calls == proxy.count("FilterLogEvents")


def test_the_request_lines_pattern_is_a_regex_cloudwatch_accepts_that_finds_every_line_opening_or_closing_one():
    pattern = filter_patterns.REQUEST_LINES_PATTERN
    assert pattern.startswith("%") and pattern.endswith("%")
    regex = pattern[1:-1]
    # CloudWatch's regex patterns: letters, digits, : _ # = @ / ; , - and operators, no ( ).
    assert re.fullmatch(r"[A-Za-z0-9:_#=@/;,\-^$?\[\]{}|\\*+.]+", regex)
    search = re.compile(regex).search
    request_id = "0a1b2c3d-0000-4000-8000-000000000001"
    for shape in lines.SHAPES:
        boundaries = [lines.request_start(shape, request_id), *lines.request_end(shape, request_id, "timeout")]
        assert all(search(line) for line in boundaries), shape
    assert search(lines.timed_out(request_id)) and search(lines.runtime_exit(request_id))
    ordinary = [lines.powertools("corr-1", request_id, "work"), lines.unhandled(), "processed record 7 of shard 2"]
    assert not any(search(line) for line in ordinary)


def test_or_patterns_stay_within_the_length_limit():
    terms = [f"00000000-0000-4000-8000-{index:012d}" for index in range(100)]
    patterns = or_patterns(terms)
    assert all(len(pattern) <= 1024 for pattern in patterns)
    assert len(patterns) == 4  # 100 terms of 36 characters: 25 per pattern
    assert sum(pattern.count('?"') for pattern in patterns) == 100
    assert or_patterns([]) == []


@pytest.mark.asyncio
async def test_a_zero_max_rate_runs_at_the_default_rate(logs_client, proxy, monkeypatch):
    monkeypatch.setenv("AIRFLOW__LAMBDA_DEFERRABLE__MAX_REQUESTS_PER_SECOND", "0")
    lines.put(logs_client, GROUP, invocation(1))
    payload = await asyncio.wait_for(first_payload(trigger(1)), 30)
    assert payload["status"] == "success"
    assert registry.registry().budget.max_rate == registry.DEFAULT_MAX_REQUESTS_PER_SECOND


def test_a_term_too_long_for_a_pattern_is_refused_and_patterns_never_exceed_the_limit():
    longest = "a" * (1024 - len('?""'))
    with pytest.raises(ValueError, match="a term of 1100 characters .* does not fit in a filter pattern"):
        log_source.check_term("a" * 1100, "test")
    with pytest.raises(ValueError, match="does not fit"):
        or_patterns(["a" * 1100])
    patterns = or_patterns([longest, "b" + longest[1:], "short"])
    assert [len(pattern) for pattern in patterns] == [1024, 1024, len('?"short"')]


@pytest.mark.asyncio
async def test_an_error_of_a_catch_up_ends_only_the_trigger_it_searched_for(logs_client, proxy):
    lines.put(logs_client, GROUP, invocation(1)[:2], stream="stream-a")
    early = asyncio.create_task(first_payload(trigger(1, deadline=time.time() + 60)))
    await more_full_reads(GROUP, 1)  # the shared poller runs; its window starts near the newest line
    ten_minutes_ago = lines.now_ms() - 600_000
    lines.put(logs_client, GROUP, invocation(2), stream="stream-b", at=ten_minutes_ago)
    # The catch-up search for the restarted trigger's ids (the first call that names them) is refused.
    proxy.fail_next(
        "FilterLogEvents", 1, code="AccessDeniedException", message="denied", body_contains="corr-shared-0002"
    )
    restarted = trigger(2, invoked_at=ten_minutes_ago / 1000, ingestion_allowance_seconds=5)
    late = await asyncio.wait_for(first_payload(restarted), 30)
    assert late["status"] == "error"
    assert late["message"] == f"reading CloudWatch Logs group {GROUP} failed with AccessDeniedException: denied"
    assert proxy.failed["FilterLogEvents"] == 1
    lines.put(logs_client, GROUP, invocation(1)[2:], stream="stream-a")
    payload = await asyncio.wait_for(early, 30)
    assert payload["status"] == "success"


@pytest.mark.asyncio
async def test_an_error_of_a_stream_stretch_ends_only_the_triggers_it_served(logs_client, proxy):
    # Trigger 1 has ended (its stretch of stream-a gets read); trigger 2 is still running in stream-b.
    lines.put(logs_client, GROUP, invocation(1), stream="stream-a")
    lines.put(logs_client, GROUP, invocation(2)[:2], stream="stream-b")
    proxy.fail_next("FilterLogEvents", 1, code="InvalidParameterException", message="bad", body_contains="stream-a")
    ended, running = trigger(1), trigger(2, deadline=time.time() + 60)
    tasks = [asyncio.create_task(first_payload(one)) for one in (ended, running)]
    payload = await asyncio.wait_for(tasks[0], 30)
    assert payload["status"] == "error" and "InvalidParameterException: bad" in payload["message"]
    lines.put(logs_client, GROUP, invocation(2)[2:], stream="stream-b")
    assert (await asyncio.wait_for(tasks[1], 30))["status"] == "success"


async def poller_of(group: str) -> shared_poller.LogGroupPoller:
    """Wait for the shared poller of `group` to exist, and return it."""
    for _ in range(100):
        for poller in registry.registry().pollers.values():
            if poller.log_group == group:
                return poller
        await asyncio.sleep(0.05)
    raise AssertionError(f"no poller of {group}")


async def more_full_reads(group: str, count: int) -> shared_poller.LogGroupPoller:
    """Wait until the poller of `group` has served every subscriber `count` more full reads than it had when
    asked (a loaded machine's reads come later; they still come): what a test needs before it goes on."""
    poller = await poller_of(group)

    def fewest() -> int:
        return min((subscription.cycles for subscription in poller.group.subscriptions), default=0)

    target = fewest() + count
    await after_cycles(poller, lambda: fewest() >= target)
    return poller


async def after_cycles(poller: shared_poller.LogGroupPoller, ready: Callable[[], bool]) -> None:
    """Wait until `ready` holds at the end of one of the poller's cycles (read or failed), for a minute at
    most: the poller says when a cycle ends, so no test polls its state on a timer."""
    await asyncio.wait_for(poller.cycle_done.wait_for(ready), 60)


async def until(condition: Callable[[], bool]) -> None:
    """Wait until `condition` on the subscribers holds (they join and leave with their triggers, not with the
    poller's cycles), for a minute at most."""
    async with asyncio.timeout(60):
        while not condition():
            await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_expired_credentials_are_retried_with_a_fresh_client(logs_client, proxy):
    lines.put(logs_client, GROUP, invocation(1))
    proxy.fail_next("FilterLogEvents", 2, code="ExpiredTokenException", message="The security token is expired")
    task = asyncio.create_task(first_payload(trigger(1)))
    poller = await poller_of(GROUP)
    payload = await asyncio.wait_for(task, 30)
    assert payload["status"] == "success"
    assert proxy.failed["FilterLogEvents"] == 2
    assert poller.clients == 3  # the first, and a fresh one after each expired-token answer


@pytest.mark.asyncio
async def test_missing_credentials_do_not_stop_the_poller_and_a_fresh_client_finds_them(
    logs_client, proxy, monkeypatch
):
    lines.put(logs_client, GROUP, invocation(1))
    # A connection without keys, and none in the environment: botocore raises NoCredentialsError.
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_NO_KEYS",
        json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1", "endpoint_url": proxy.url}}),
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    task = asyncio.create_task(first_payload(trigger(1, aws_conn_id="aws_no_keys")))
    poller = await poller_of(GROUP)

    await after_cycles(poller, lambda: poller.clients >= 2)  # a failed call, then a fresh client
    assert proxy.count("FilterLogEvents") == 0 and poller.crashed is None and not task.done()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # the credentials come back (a refresh, a new role)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    payload = await asyncio.wait_for(task, 30)
    assert payload["status"] == "success"


@pytest.mark.asyncio
async def test_a_throttled_call_is_one_request_and_reaches_the_budget(logs_client, proxy):
    lines.put(logs_client, GROUP, invocation(1))
    proxy.fail_next("FilterLogEvents", 1)
    payload = await asyncio.wait_for(first_payload(trigger(1, botocore_config=None)), 30)
    assert payload["status"] == "success"
    budget = registry.registry().budget
    assert budget.throttled_calls == 1  # not retried inside botocore, out of the budget's sight
    assert budget.calls == proxy.count("FilterLogEvents")


@pytest.mark.asyncio
async def test_lines_without_ids_reach_the_request_whose_stretch_holds_them(logs_client, proxy, monkeypatch):
    # Thirty invocations, each printing one line without ids: more ids than fit in one pattern, so the
    # poller reads the window unfiltered. Their ends come once the reads' window has moved past their
    # STARTs (a lookback of 0.5 s here), so no read holds a whole stretch.
    monkeypatch.setattr(read_planner, "MIN_LOOKBACK_MS", 500)
    monkeypatch.setattr(read_planner, "LOOKBACK_MARGIN_MS", 0)
    ids = [(f"corr-shared-{index:04d}", f"00000000-0000-4000-8000-{index:012d}") for index in range(30)]
    started_ms = lines.now_ms()
    for index, (_, request_id) in enumerate(ids):
        lines.put(logs_client, GROUP, [lines.start(request_id), f"print from {index}"], stream=f"stream-{index}")
    running = [asyncio.create_task(first_payload(trigger(index))) for index in range(30)]
    poller = await poller_of(GROUP)
    calls_by_kind = registry.registry().budget.calls_by_kind  # what the calls were for
    await after_cycles(
        poller, lambda: any(request["startTime"] > started_ms + 1_000 for _, request in full_reads(proxy))
    )
    for index, (correlation_id, request_id) in enumerate(ids):
        ending = [lines.powertools(correlation_id, request_id, "Function ended"), lines.end(request_id)]
        lines.put(logs_client, GROUP, [*ending, lines.report(request_id)], stream=f"stream-{index}")
    payloads = await asyncio.wait_for(asyncio.gather(*running), 60)
    for index, payload in enumerate(payloads):
        prints = [line["message"] for line in payload["lines"] if line["message"].startswith("print from")]
        assert prints == [f"print from {index}"], (index, prints)
    starts = [request["startTime"] for _, request in full_reads(proxy)]
    assert not id_pattern_reads(proxy)  # reads by ids would have broken following
    assert starts[-1] > started_ms + 1_000  # the last reads did not reach back to the STARTs
    # Each trigger followed its stream from its START as the unfiltered reads went: no stretch was read again.
    assert calls_by_kind["stretch"] == 0 and calls_by_kind["window"] > 0


@pytest.mark.asyncio
async def test_a_followed_stream_read_whole_lets_its_followers_forget_its_keys_and_every_line_still_comes_once(
    logs_client, proxy, monkeypatch
):
    # Thirty invocations (too many ids for one pattern: the window is read unfiltered and each trigger follows
    # its stream from its START), each printing 250 lines without ids over 10 s. Once the reads have brought
    # a stream whole, its follower keeps the keys of the two seconds at the range's ends at most (50 lines).
    monkeypatch.setattr(read_planner, "MIN_LOOKBACK_MS", 500)
    monkeypatch.setattr(read_planner, "LOOKBACK_MARGIN_MS", 0)
    prints = 250
    begun_ms = lines.now_ms() - 20_000
    for index in range(30):
        request_id = f"00000000-0000-4000-8000-{index:012d}"
        body = [(begun_ms + 40 * (number + 1), f"print {number} of {index}") for number in range(prints)]
        lines.put_at(logs_client, GROUP, [(begun_ms, lines.start(request_id)), *body], stream=f"stream-{index}")
    running = [
        asyncio.create_task(first_payload(trigger(index, invoked_at=begun_ms / 1000 - 1, deadline=time.time() + 120)))
        for index in range(30)
    ]
    poller = await poller_of(GROUP)
    await until(lambda: len(poller.group.subscriptions) == 30)

    def stream_of(subscription: Subscription) -> str:
        correlation_id = next(term for term in subscription.terms if term.startswith("corr-shared-"))
        return f"stream-{int(correlation_id.removeprefix('corr-shared-'))}"

    await after_cycles(
        poller,
        lambda: (
            len(poller.group.subscriptions) == 30
            and all(
                len(subscription.delivered) < prints // 2 and subscription.delivered.claimed(stream_of(subscription))
                for subscription in poller.group.subscriptions
            )
        ),
    )
    for index in range(30):
        lines.put(logs_client, GROUP, invocation(index)[2:], stream=f"stream-{index}")
    payloads = await asyncio.wait_for(asyncio.gather(*running), 60)
    for index, payload in enumerate(payloads):
        assert payload["status"] == "success", payload
        printed = [line["message"] for line in payload["lines"] if line["message"].startswith("print ")]
        assert printed == [f"print {number} of {index}" for number in range(prints)], index  # each once, in order
    assert not id_pattern_reads(proxy)  # reads by ids would have broken following


@pytest.mark.asyncio
async def test_a_followed_streams_late_batch_older_than_the_lookback_is_read_from_where_the_stream_is_complete(
    logs_client, proxy, monkeypatch
):
    # A lookback of 0.5 s and an allowance of 5 s: no window or sweep reaches back 30 s. Invocation 0's
    # print line, stamped 30 s ago, lands after its START was read: only a read of its stream from where the
    # stream was complete finds it (a late batch; its END lands after it, as a stream is ingested in order).
    monkeypatch.setattr(read_planner, "MIN_LOOKBACK_MS", 500)
    monkeypatch.setattr(read_planner, "LOOKBACK_MARGIN_MS", 0)
    begun_ms = lines.now_ms() - 40_000
    for index in range(30):
        lines.put(logs_client, GROUP, invocation(index)[:2], stream=f"stream-{index}", at=begun_ms + index)
    running = [
        asyncio.create_task(
            first_payload(trigger(index, invoked_at=begun_ms / 1000 - 1, ingestion_allowance_seconds=5))
        )
        for index in range(30)
    ]
    await more_full_reads(GROUP, 2)  # every START is read, the streams followed from there
    lines.put(logs_client, GROUP, ["late print of 0"], stream="stream-0", at=begun_ms + 10_000)
    await more_full_reads(GROUP, 2)
    for index in range(30):
        lines.put(logs_client, GROUP, invocation(index)[2:], stream=f"stream-{index}")
    payloads = await asyncio.wait_for(asyncio.gather(*running), 60)
    assert all(payload["status"] == "success" for payload in payloads)
    assert "late print of 0" in [line["message"] for line in payloads[0]["lines"]]
    assert not id_pattern_reads(proxy)  # reads by ids would have broken following
    assert all(start > begun_ms + 10_000 for start in full_read_starts(proxy)[1:])


async def late_request_beyond_the_usual_lookback(logs_client, monkeypatch) -> tuple[list[dict], int]:
    """Run 31 triggers; invocation 30's START and print, stamped 5 s back, land after the first read.

    The usual lookback is 0.5 s; a line of another stream, ingested 10 s late and never forgotten, widens
    the lookback to 10 s. Return the payloads and the START's timestamp."""
    monkeypatch.setattr(read_planner, "MIN_LOOKBACK_MS", 500)
    monkeypatch.setattr(read_planner, "LOOKBACK_MARGIN_MS", 0)
    monkeypatch.setattr(read_planner, "DELAY_MEMORY_READS", 1000)
    lines.put(logs_client, GROUP, ["another request's line"], stream="other", at=lines.now_ms() - 10_000)
    for index in range(30):
        lines.put(logs_client, GROUP, invocation(index)[:2], stream=f"stream-{index}")
    invoked_at = time.time() - 12
    running = [asyncio.create_task(first_payload(trigger(index, invoked_at=invoked_at))) for index in range(31)]
    poller = await poller_of(GROUP)
    await after_cycles(poller, lambda: poller.group.planner.read_through_ms is not None)
    late_ms = lines.now_ms() - 5_000
    body = invocation(30)
    lines.put(logs_client, GROUP, [body[0], "print from 30", *body[1:2]], stream="stream-30", at=late_ms)
    for index in range(31):
        lines.put(logs_client, GROUP, invocation(index)[2:], stream=f"stream-{index}")
    payloads = await asyncio.wait_for(asyncio.gather(*running), 60)
    assert all(payload["status"] == "success" for payload in payloads)
    assert "print from 30" in [line["message"] for line in payloads[30]["lines"]]
    return payloads, late_ms


def request_lines_reads(proxy: FaultProxy) -> list[dict]:
    return [
        request
        for _, request in full_reads(proxy)
        if request.get("filterPattern") == filter_patterns.REQUEST_LINES_PATTERN
    ]


@pytest.mark.asyncio
async def test_beyond_the_usual_lookback_only_request_lines_are_read_and_a_stream_found_there_is_read_on_its_own(
    logs_client, proxy, monkeypatch
):
    _, late_ms = await late_request_beyond_the_usual_lookback(logs_client, monkeypatch)
    assert request_lines_reads(proxy)
    unfiltered = [request for _, request in full_reads(proxy) if "filterPattern" not in request]
    assert all(request["startTime"] > late_ms + 1 for request in unfiltered[1:])  # none brought the print
    assert any("stream-30" in request["logStreamNames"] for request in stream_reads(proxy))
    calls_by_kind = registry.registry().budget.calls_by_kind
    assert calls_by_kind["behind"] >= 1 and calls_by_kind["stretch"] == 0  # followed, not read again at its end


@pytest.mark.asyncio
async def test_when_cloudwatch_refuses_the_request_lines_pattern_the_lookback_is_read_whole(
    logs_client, proxy, monkeypatch, caplog
):
    proxy.fail_next(
        "FilterLogEvents", 1, code="InvalidParameterException", message="Invalid regex", body_contains="Task.timed"
    )
    _, late_ms = await late_request_beyond_the_usual_lookback(logs_client, monkeypatch)
    assert len(request_lines_reads(proxy)) == 1  # refused once, never asked again
    assert "refused the pattern of request lines" in caplog.text
    unfiltered = [request for _, request in full_reads(proxy) if "filterPattern" not in request]
    assert any(request["startTime"] <= late_ms for request in unfiltered[1:])


@pytest.mark.asyncio
async def test_a_line_without_ids_read_before_its_requests_start_is_known_still_reaches_the_request(logs_client, proxy):
    # The trigger of invocation 99 knows only its correlation id (as for a durable execution's replays):
    # its stream is followed from the first line carrying that id, after START, so "print after" comes
    # before the request id and the START that open the stretch are known; "print before" only with the
    # stretch's own read. Both must reach the task (thirty other invocations keep the reads unfiltered).
    for index in range(30):
        lines.put(logs_client, GROUP, invocation(index), stream=f"stream-{index}")
    correlation_id, request_id = "corr-shared-0099", "00000000-0000-4000-8000-000000000099"
    body = [
        lines.start(request_id),
        "print before",
        lines.powertools(correlation_id, request_id, "work of 99"),
        "print after",
        lines.powertools(correlation_id, request_id, "Function ended"),
        lines.end(request_id),
        lines.report(request_id),
    ]
    lines.put(logs_client, GROUP, body, stream="stream-99")
    unknown_request = trigger(99, request_id=None)
    payloads = await run_all([trigger(index) for index in range(30)] + [unknown_request])
    assert all(payload["status"] == "success" for payload in payloads)
    prints = [line["message"] for line in payloads[-1]["lines"] if line["message"].startswith("print")]
    assert prints == ["print before", "print after"]
    assert any("filterPattern" not in request for _, request in full_reads(proxy))


@pytest.mark.asyncio
async def test_a_start_later_than_the_lookback_is_found_by_a_sweep_searching_as_far_back_as_a_sweep(
    logs_client, proxy, monkeypatch
):
    # Thirty running invocations keep the reads unfiltered and their streams followed. Invocation 99 began
    # 100 s ago; its lines, stamped 30 s ago, land once the reads' lookback (0.5 s here) has passed them:
    # only a sweep finds them, searching for 99's ids as far back as a sweep reaches (its 60 s allowance),
    # not from its start.
    monkeypatch.setattr(read_planner, "MIN_LOOKBACK_MS", 500)
    monkeypatch.setattr(read_planner, "LOOKBACK_MARGIN_MS", 0)
    for index in range(30):
        lines.put(logs_client, GROUP, invocation(index)[:2], stream=f"stream-{index}")
    running = [asyncio.create_task(first_payload(trigger(index, deadline=time.time() + 60))) for index in range(30)]
    began_ms = lines.now_ms() - 100_000
    late = asyncio.create_task(first_payload(trigger(99, invoked_at=began_ms / 1000, ingestion_allowance_seconds=60)))
    await poller_of(GROUP)
    calls_by_kind = registry.registry().budget.calls_by_kind  # what the calls were for
    await more_full_reads(GROUP, 2)
    body = invocation(99)
    lines.put(logs_client, GROUP, [body[0], "print from 99", *body[1:]], stream="stream-99", at=lines.now_ms() - 30_000)
    payload = await asyncio.wait_for(late, 30)
    assert payload["status"] == "success" and "print from 99" in [line["message"] for line in payload["lines"]]
    assert calls_by_kind["sweep"] >= 1
    searches = [
        request
        for _, request in full_reads(proxy)
        if "00000000-0000-4000-8000-000000000099" in request.get("filterPattern", "")
    ]
    assert searches and all(request["startTime"] > began_ms + 20_000 for request in searches)  # not from its start
    for index in range(30):
        lines.put(logs_client, GROUP, invocation(index)[2:], stream=f"stream-{index}")
    assert all(one["status"] == "success" for one in await asyncio.wait_for(asyncio.gather(*running), 60))


def stream_reads(proxy: FaultProxy) -> list[dict]:
    """Every FilterLogEvents call that read stretches of named streams."""
    return [request for _, request in proxy.requests_of("FilterLogEvents") if "logStreamNames" in request]


@pytest.mark.asyncio
async def test_a_stretch_the_reads_did_not_follow_from_its_start_is_read_by_a_call_for_its_stream(logs_client, proxy):
    # Thirty running invocations keep the reads unfiltered. Invocation 99 began ten minutes ago, older than
    # the window reaches: its START is found by a search for its ids, which brings no line without ids, so
    # its print line is found by a read of its stream's stretch.
    for index in range(30):
        lines.put(logs_client, GROUP, invocation(index)[:2], stream=f"stream-{index}")
    running = [asyncio.create_task(first_payload(trigger(index, deadline=time.time() + 60))) for index in range(30)]
    await poller_of(GROUP)
    calls_by_kind = registry.registry().budget.calls_by_kind  # what the calls were for
    await more_full_reads(GROUP, 1)
    ten_minutes_ago = lines.now_ms() - 600_000
    body = invocation(99)
    lines.put(logs_client, GROUP, [body[0], "print from 99", *body[1:]], stream="stream-99", at=ten_minutes_ago)
    restarted = trigger(99, invoked_at=ten_minutes_ago / 1000, ingestion_allowance_seconds=5)
    late = await asyncio.wait_for(first_payload(restarted), 30)
    assert late["status"] == "success"
    assert "print from 99" in [line["message"] for line in late["lines"]]
    # Read once, when the settle window after the request's end was over; no other stretch was read.
    stretch_reads = [request for request in stream_reads(proxy) if request.get("logStreamNames") == ["stream-99"]]
    assert [request["startTime"] for request in stretch_reads] == [ten_minutes_ago]
    assert calls_by_kind["stretch"] == 1
    assert any("filterPattern" not in request for _, request in full_reads(proxy))
    for index in range(30):
        lines.put(logs_client, GROUP, invocation(index)[2:], stream=f"stream-{index}")
    assert all(payload["status"] == "success" for payload in await asyncio.wait_for(asyncio.gather(*running), 60))


@pytest.mark.asyncio
async def test_a_throttled_page_is_asked_again_not_the_whole_read(logs_client, proxy):
    # A chatty invocation: more lines than one page holds, so the read takes two calls.
    correlation_id, request_id = "corr-shared-0001", "00000000-0000-4000-8000-000000000001"
    chatty = [lines.powertools(correlation_id, request_id, f"step {n}") for n in range(10_500)]
    stamp = lines.now_ms() - 20_000
    lines.put(logs_client, GROUP, [lines.start(request_id), *chatty[:9_000]], at=stamp)
    lines.put(logs_client, GROUP, [*chatty[9_000:], *invocation(1)[2:]], at=stamp + 9_001)
    proxy.fail_next("FilterLogEvents", 1, body_contains='"nextToken"')
    payload = await asyncio.wait_for(first_payload(trigger(1, max_lines=20)), 60)
    assert payload["status"] == "success"
    reads = [request for _, request in full_reads(proxy)]
    continued = [index for index, request in enumerate(reads) if "nextToken" in request]
    # The throttled second page was asked again with the same token, right after; no read began again.
    assert len(continued) >= 2 and reads[continued[0]]["nextToken"] == reads[continued[0] + 1]["nextToken"]
    assert "nextToken" not in reads[0] and all("nextToken" in reads[index] for index in (1, 2))
    assert registry.registry().budget.throttled_calls == 1


@pytest.mark.asyncio
async def test_a_chatty_stretch_is_parsed_and_kept_in_turns_of_the_loop_without_losing_a_line(
    logs_client, proxy, monkeypatch
):
    # 1,200 print lines without ids in our request's stretch: the poller routes them and the trigger
    # parses and keeps them in chunks of at most 50 events, taking turns on the loop.
    monkeypatch.setattr(loop_turns_module, "WORK_CHUNK", 50)
    request_id = "00000000-0000-4000-8000-000000000001"
    prints = [f"processed record {n} status=ok" for n in range(1_200)]
    body = [lines.start(request_id), *prints, *invocation(1)[1:]]
    lines.put(logs_client, GROUP, body, at=lines.now_ms() - 5_000)
    payload = await asyncio.wait_for(first_payload(trigger(1, max_lines=2_000, max_bytes=1_000_000)), 60)
    assert payload["status"] == "success"
    assert [line["message"] for line in payload["lines"] if line["message"].startswith("processed")] == prints
    turns = loop_turns()
    assert turns.largest_chunk <= 50
    assert turns.chunks >= 2 * len(prints) // 50  # parsed, then kept: each in chunks


def routing_to_one_subscriber(
    waiting_at_each_pause: list[int],
) -> tuple[shared_poller.LogGroupPoller, Subscription, list[dict]]:
    """A poller (its chunks of 40 note how many events wait for the subscriber), a subscriber of ``corr-1``,
    and 1,000 events that carry it."""
    poller = shared_poller.LogGroupPoller(log_group=GROUP, client_factory=lambda: None, budget=RequestBudget(5.0))
    subscription = Subscription(
        poller=poller, terms=["corr-1"], start_ms=0, ingestion_allowance_ms=120_000, poll_interval=5.0
    )
    poller.add_term(subscription, "corr-1")

    async def pause() -> None:
        waiting_at_each_pause.append(len(subscription.inbox))

    poller.group.turns = LoopTurns(chunk=40, pause=pause)
    events = [
        {"logStreamName": "s", "timestamp": number, "eventId": str(number), "message": f"corr-1 row {number}"}
        for number in range(1_000)
    ]
    return poller, subscription, events


@pytest.mark.asyncio
async def test_routing_waits_for_a_subscriber_that_takes_its_events_in_as_they_come(monkeypatch):
    # The poller holds at most a batch (and a chunk) of a large read for it, and each event reaches it once,
    # in order.
    monkeypatch.setattr("airflow_lambda_deferrable.cloudwatch.subscription.MAX_EVENTS_WAITING", 100)
    waiting: list[int] = []
    poller, subscription, events = routing_to_one_subscriber(waiting)
    taken: list[dict] = []

    async def take_in() -> None:
        while True:
            taken.extend(await subscription.next_batch())

    intake = asyncio.create_task(take_in())
    await asyncio.sleep(0)  # it takes them in from now on
    await asyncio.wait_for(poller.router.route(events), 10)
    intake.cancel()
    taken += subscription.take_new()
    assert [event["eventId"] for event in taken] == [str(number) for number in range(1_000)]
    assert max(waiting) < 100 + 40


@pytest.mark.asyncio
async def test_routing_does_not_wait_for_a_subscriber_that_does_not_or_no_longer_takes_its_events_in(monkeypatch):
    monkeypatch.setattr("airflow_lambda_deferrable.cloudwatch.subscription.MAX_EVENTS_WAITING", 100)
    waiting: list[int] = []
    poller, subscription, events = routing_to_one_subscriber(waiting)
    await asyncio.wait_for(
        poller.router.route(events), 10
    )  # nobody takes them as they come: a read's events wait whole
    assert len(subscription.take_new()) == 1_000

    poller, subscription, events = routing_to_one_subscriber(waiting)
    first: list[dict] = []

    async def take_one_batch_and_stop() -> None:
        try:
            first.extend(await subscription.next_batch())
        finally:
            subscription.stop_taking_in()

    intake = asyncio.create_task(take_one_batch_and_stop())
    await asyncio.sleep(0)
    await asyncio.wait_for(poller.router.route(events), 10)
    await intake
    assert len(first) + len(subscription.take_new()) == 1_000


@pytest.mark.asyncio
async def test_a_trigger_cancelled_as_its_read_completes_is_cancelled():
    # The trigger decided and cancels its log source just as the poller's cycle completes: the source must
    # end. (`asyncio.wait_for` on Python 3.11 swallows such a cancellation, and the source read on for ever.)
    poller = shared_poller.LogGroupPoller(log_group=GROUP, client_factory=lambda: None, budget=RequestBudget(5.0))
    subscription = Subscription(
        poller=poller, terms=["corr-1"], start_ms=0, ingestion_allowance_ms=120_000, poll_interval=5.0
    )
    reading = asyncio.create_task(subscription.fetch_new())
    await asyncio.sleep(0)  # it waits for the cycle
    subscription.cycles += 1
    await poller.cycle_done.notify_all()
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading


def printing_invocation(index: int, prints: list[str], *, fail: bool = False, ended: bool = True) -> list[str]:
    correlation_id, request_id = f"corr-shared-{index:04d}", f"00000000-0000-4000-8000-{index:012d}"
    last = (
        lines.logged_exception(correlation_id, request_id)
        if fail
        else lines.powertools(correlation_id, request_id, "Function ended")
    )
    body = [lines.start(request_id), lines.powertools(correlation_id, request_id, f"work of {index}"), *prints, last]
    return [*body, lines.end(request_id), lines.report(request_id)] if ended else body


def get_events_reads(proxy: FaultProxy) -> list[dict]:
    return [request for _, request in proxy.requests_of("GetLogEvents")]


@pytest.fixture
def many_ids(monkeypatch):
    """As if the ids needed more OR-patterns than one (a busy group's do): here, one pattern per id."""
    monkeypatch.setattr(filter_patterns, "MAX_FILTER_PATTERN_LENGTH", 45)


@pytest.fixture
def by_request_lines(monkeypatch, many_ids):
    """Read the group filtered however quiet it is (a busy group is), by request lines when the subscribers
    allow it."""
    monkeypatch.setattr(read_planner.ReadPlanner, "read_unfiltered", lambda planner, **_: False)


async def busy_and_quiet_invocations(logs_client) -> tuple[dict, dict, list[str]]:
    """A request printing 25,000 lines without ids in stream "busy" (more than two pages of moto's hold) and
    one printing one line in "quiet"; return both payloads and the prints."""
    chatter = [f"row {n} ok" for n in range(25_000)]
    at = lines.now_ms() - 5_000
    lines.put(logs_client, GROUP, printing_invocation(1, chatter), stream="busy", at=at)
    lines.put(logs_client, GROUP, printing_invocation(2, ["quiet print"]), stream="quiet", at=at)
    busy, quiet = await asyncio.wait_for(
        asyncio.gather(first_payload(trigger(1, max_lines=26_000, max_bytes=4_000_000)), first_payload(trigger(2))),
        60,
    )
    return busy, quiet, chatter


@pytest.mark.asyncio
async def test_a_busy_group_is_read_by_request_lines_and_a_busy_stream_on_its_own(logs_client, proxy, by_request_lines):
    busy, quiet, chatter = await busy_and_quiet_invocations(logs_client)
    assert busy["status"] == quiet["status"] == "success"
    # Every line once: the busy stream's first lines came with the stretches' read, the rest with GetLogEvents
    # from the newest of them (that millisecond read twice), and each event has one key whichever way it came.
    assert [line["message"] for line in busy["lines"] if line["message"].startswith("row ")] == chatter
    assert len({(line["timestamp"], line["message"]) for line in busy["lines"]}) == len(busy["lines"])
    assert "quiet print" in [line["message"] for line in quiet["lines"]]
    # The group was read for request lines only: neither trigger needs its lines with ids as they come.
    assert {request.get("filterPattern") for _, request in full_reads(proxy)} == {filter_patterns.REQUEST_LINES_PATTERN}
    reads_of_streams = get_events_reads(proxy)
    assert reads_of_streams and {request["logStreamName"] for request in reads_of_streams} == {"busy"}
    assert registry.registry().stream_budget.calls_by_kind["busy-stream"] == len(reads_of_streams)


@pytest.mark.asyncio
async def test_a_busy_stream_is_read_with_filter_log_events_when_get_log_events_is_denied(
    logs_client, proxy, caplog, by_request_lines
):
    proxy.fail_next("GetLogEvents", 1, code="AccessDeniedException", message="not authorized: logs:GetLogEvents")
    busy, _, chatter = await busy_and_quiet_invocations(logs_client)
    assert busy["status"] == "success"
    assert [line["message"] for line in busy["lines"] if line["message"].startswith("row ")] == chatter
    assert len(get_events_reads(proxy)) == 1  # denied once, never asked again
    assert caplog.text.count("GetLogEvents was refused") == 1
    assert any(request["logStreamNames"] == ["busy"] for request in stream_reads(proxy))


@pytest.mark.asyncio
async def test_a_busy_stream_read_still_throttled_after_its_retries_slows_only_its_own_budget(
    logs_client, proxy, caplog, monkeypatch, by_request_lines
):
    monkeypatch.setattr("airflow_lambda_deferrable.cloudwatch.pages.page_retry_pause", lambda retries: 0.0)
    proxy.fail_next("GetLogEvents", pages.MAX_PAGE_RETRIES + 1)  # the first read of the stream fails
    busy, _, chatter = await busy_and_quiet_invocations(logs_client)
    assert busy["status"] == "success"
    assert [line["message"] for line in busy["lines"] if line["message"].startswith("row ")] == chatter
    filter_budget, stream_budget = registry.registry().budget, registry.registry().stream_budget
    assert stream_budget.throttled_calls == pages.MAX_PAGE_RETRIES + 1
    assert filter_budget.throttled_calls == 0 and filter_budget.rate == filter_budget.max_rate
    assert "GetLogEvents failed: ThrottlingException" in caplog.text and "FilterLogEvents failed" not in caplog.text


@pytest.mark.asyncio
async def test_a_fail_fast_trigger_has_its_ids_read_beside_the_request_lines(logs_client, proxy, by_request_lines):
    # Trigger 1 fails fast: its ERROR line must be read as it comes, not with its request's stretch once
    # the request ends (it has not). Trigger 2 waits for its request's end anyway.
    at = lines.now_ms() - 5_000
    lines.put(logs_client, GROUP, printing_invocation(1, [], fail=True, ended=False), stream="one", at=at)
    lines.put(logs_client, GROUP, printing_invocation(2, ["a print"]), stream="two", at=at)
    failed, succeeded = await asyncio.wait_for(
        asyncio.gather(first_payload(trigger(1, fail_fast=True)), first_payload(trigger(2))), 60
    )
    assert failed["status"] == "failed" and succeeded["status"] == "success"
    assert "a print" in [line["message"] for line in succeeded["lines"]]
    id_patterns = " ".join(request["filterPattern"] for request in id_pattern_reads(proxy))
    assert "corr-shared-0001" in id_patterns and "00000000-0000-4000-8000-000000000001" in id_patterns
    assert "corr-shared-0002" not in id_patterns and "00000000-0000-4000-8000-000000000002" not in id_patterns
    assert filter_patterns.REQUEST_LINES_PATTERN in [request.get("filterPattern") for _, request in full_reads(proxy)]


@pytest.mark.asyncio
async def test_when_cloudwatch_refuses_the_request_lines_pattern_the_group_is_read_by_the_subscribers_ids(
    logs_client, proxy, caplog, by_request_lines
):
    proxy.fail_next("FilterLogEvents", 1, code="InvalidParameterException", message="Invalid regex")
    at = lines.now_ms() - 5_000
    lines.put(logs_client, GROUP, printing_invocation(1, ["a print"]), stream="one", at=at)
    payload = await asyncio.wait_for(first_payload(trigger(1)), 60)
    assert payload["status"] == "success" and "a print" in [line["message"] for line in payload["lines"]]
    assert "refused the pattern of request lines" in caplog.text
    patterns = [request["filterPattern"] for _, request in full_reads(proxy)]
    assert patterns[0] == filter_patterns.REQUEST_LINES_PATTERN
    assert patterns[1:] and all(pattern.startswith("?") for pattern in patterns[1:])


@pytest.mark.asyncio
async def test_a_quiet_group_is_read_unfiltered_though_its_ids_need_several_patterns(logs_client, proxy, many_ids):
    lines.put(logs_client, GROUP, printing_invocation(1, ["a print"]), stream="one", at=lines.now_ms() - 5_000)
    payload = await asyncio.wait_for(first_payload(trigger(1)), 60)
    assert payload["status"] == "success" and "a print" in [line["message"] for line in payload["lines"]]
    patterns = [request.get("filterPattern") for _, request in full_reads(proxy)]
    assert (
        set(patterns) <= {None, filter_patterns.REQUEST_LINES_PATTERN} and None in patterns
    )  # (request lines further back)
    assert not stream_reads(proxy)  # its stream followed: no read of its stretch


@pytest.mark.asyncio
async def test_a_busy_stream_read_with_partly_full_pages_is_read_to_the_token_that_repeats(
    logs_client, proxy, by_request_lines, monkeypatch
):
    # GetLogEvents' reference: a page short of 1 MB and 10,000 events, or empty, need not be the last; only
    # the token given back unchanged ends a read. Here moto answers 700 events a page.
    real_get_log_events = LogStream.get_log_events

    def partly_full_pages(stream, start_time, end_time, limit, next_token, start_from_head):
        return real_get_log_events(stream, start_time, end_time, 700, next_token, start_from_head)

    monkeypatch.setattr(LogStream, "get_log_events", partly_full_pages)
    busy, quiet, chatter = await busy_and_quiet_invocations(logs_client)
    assert busy["status"] == quiet["status"] == "success"
    assert [line["message"] for line in busy["lines"] if line["message"].startswith("row ")] == chatter
    reads_of_streams = get_events_reads(proxy)
    assert len(reads_of_streams) > 15_000 // 700  # the rest of the busy stream, 700 events a call


def test_a_page_is_asked_again_within_a_second_first_then_later_and_later():
    longest = [pages.page_retry_pause(retries, draw=lambda low, high: high) for retries in range(1, 7)]
    assert longest == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert pages.page_retry_pause(1, draw=lambda low, high: low) == read_planner.MIN_CYCLE_SECONDS


def test_a_page_that_holds_half_of_what_cloudwatch_puts_in_one_is_full():
    # CloudWatch answers short or empty pages with more to come when it stops searching: not a busy window.
    assert not pages.fills_a_page([{"message": "x"}] * 10)
    assert pages.fills_a_page([{"message": "x"}] * (read_planner.EVENTS_PER_PAGE // 2))
    long_line = {"message": "x" * 100_000}
    assert pages.fills_a_page([long_line] * 6) and not pages.fills_a_page([long_line] * 4)


def test_a_stream_is_busy_when_the_rest_of_its_stretch_holds_a_thousand_events_at_its_rate_so_far():
    rest_looks_busy = busy_streams.rest_looks_busy
    assert rest_looks_busy(200, 2_000, 0, 60_000)  # 100 a second, 58 s to go
    assert rest_looks_busy(200, 0, 0, 60_000)  # 200 in one millisecond
    assert not rest_looks_busy(5_000, 59_900, 0, 60_000)  # almost all read: 8 left at that rate
    assert not rest_looks_busy(200, 50_000, 0, 60_000)  # 4 a second
    assert not rest_looks_busy(99, 100, 0, 60_000)  # too few to tell a rate from
    assert not rest_looks_busy(150, None, 0, 60_000)


async def timed_out_once_the_trigger_is(
    logs_client, one: LambdaInvocationTrigger, ready: Callable[[Subscription], bool]
) -> tuple[dict, int]:
    """Run `one` on invocation 1 (ended, one print, 5 s ago) in stream "one"; once its subscription is `ready`,
    ingest the older runtimes' "Task timed out" line just after its REPORT. Return the payload and where
    that line sits."""
    after_report = lines.put(
        logs_client, GROUP, printing_invocation(1, ["a print"]), stream="one", at=lines.now_ms() - 5_000
    )
    running = asyncio.create_task(first_payload(one))
    poller = await poller_of(GROUP)
    await after_cycles(poller, lambda: bool(poller.group.subscriptions) and ready(poller.group.subscriptions[0]))
    lines.put(
        logs_client, GROUP, [lines.timed_out("00000000-0000-4000-8000-000000000001")], stream="one", at=after_report
    )
    return await asyncio.wait_for(running, 60), after_report


@pytest.mark.asyncio
async def test_a_request_that_ended_is_settled_by_the_read_of_its_stretch_and_its_tail_not_by_a_full_read(
    logs_client, proxy, by_request_lines, monkeypatch
):
    # Full reads a minute apart, stretches read as soon as asked: the settle window after the request's end
    # is ended by the read of its stretch of stream, which reaches the settle window's length past REPORT.
    # The older runtimes' "Task timed out" line, written after REPORT and ingested after the only full
    # read, is found there and decides the verdict.
    monkeypatch.setattr(read_planner, "LIGHT_READ_GAP_SHARE", 0.0)
    one = trigger(1, poll_interval=60.0, settle_seconds=5.0, deadline=time.time() + 120)
    payload, after_report = await timed_out_once_the_trigger_is(
        logs_client, one, lambda subscription: subscription.cycles >= 1
    )
    assert (payload["status"], payload["message"]) == ("failed", "Task timed out after 3.00 seconds")
    assert "a print" in [line["message"] for line in payload["lines"]]
    assert len(full_reads(proxy)) == 1
    (stretch,) = stream_reads(proxy)
    assert stretch["logStreamNames"] == ["one"] and stretch["endTime"] >= after_report


@pytest.mark.asyncio
async def test_a_line_a_full_read_routes_while_the_stretch_is_read_is_not_lost(
    logs_client, proxy, by_request_lines, monkeypatch
):
    # Stretches are read only by full cycles here (every second), right after they route their pages. The
    # "Task timed out" line is ingested once the trigger has asked for its stretch: the next full read routes
    # it, then the stretch brings it again, no longer new. It must still decide the verdict.
    monkeypatch.setattr(read_planner, "LIGHT_READ_GAP_SHARE", 100.0)
    monkeypatch.setattr(shared_poller, "LIGHT_CYCLE_BATCH_SECONDS", 0.0)
    one = trigger(1, poll_interval=1.0, settle_seconds=1.0, deadline=time.time() + 120)
    payload, _ = await timed_out_once_the_trigger_is(logs_client, one, lambda subscription: bool(subscription.spans))
    assert (payload["status"], payload["message"]) == ("failed", "Task timed out after 3.00 seconds")
    assert "a print" in [line["message"] for line in payload["lines"]]


@pytest.mark.asyncio
async def test_a_trigger_that_follows_its_stream_still_has_its_settle_window_ended_by_a_full_read(
    logs_client, proxy, monkeypatch, many_ids
):
    # A quiet group is read unfiltered: the trigger follows its stream, so no stretch is read, and the full
    # read it asks for at the end of its settle window ends it.
    monkeypatch.setattr(read_planner, "LIGHT_READ_GAP_SHARE", 0.0)
    lines.put(logs_client, GROUP, printing_invocation(1, ["a print"]), stream="one", at=lines.now_ms() - 5_000)
    payload = await asyncio.wait_for(
        first_payload(trigger(1, poll_interval=4.0, settle_seconds=0.3, deadline=time.time() + 120)), 60
    )
    assert payload["status"] == "success" and "a print" in [line["message"] for line in payload["lines"]]
    assert not stream_reads(proxy) and len(full_reads(proxy)) >= 2


@pytest.mark.parametrize("first_sample_throttled", [False, True])
@pytest.mark.asyncio
async def test_a_running_request_a_sample_finds_busy_has_its_stretch_read_with_get_log_events_alone(
    logs_client, proxy, by_request_lines, monkeypatch, caplog, first_sample_throttled
):
    # Read by request lines, a request's lines without ids come with its stretch when it ends. A sample of
    # one second of its stream while it runs finds 20 lines: busy. Its stretch is then read with GetLogEvents
    # from the start, not first with FilterLogEvents (one page of its 400 prints would not tell it busy).
    at = lines.now_ms() - 20_000
    body = printing_invocation(1, [])
    prints = [(at + 2 + index * 50, f"chatter {index}") for index in range(400)]  # 20 a second, up to now
    # The slice sampled: one second of the prints, whenever the sample comes (a loaded machine may be late).
    monkeypatch.setattr(
        "airflow_lambda_deferrable.cloudwatch.samples.sample_slice", lambda now_ms: (at + 10_000, at + 10_999)
    )
    if first_sample_throttled:  # a sample is asked once: it is skipped, and the next full read samples again
        proxy.fail_next("FilterLogEvents", 1, body_contains=str(at + 10_000))
    lines.put_at(logs_client, GROUP, [(at, body[0]), (at + 1, body[1]), *prints], stream="chatty")
    running = asyncio.create_task(
        first_payload(trigger(1, invoked_at=at / 1000 - 1, deadline=time.time() + 60, max_lines=1_000))
    )
    poller = await poller_of(GROUP)

    await after_cycles(poller, lambda: ("chatty", at) in poller.group.sampled)
    end_at = lines.now_ms()
    lines.put_at(logs_client, GROUP, [(end_at + n, line) for n, line in enumerate(body[2:])], stream="chatty")
    payload = await asyncio.wait_for(running, 60)

    assert payload["status"] == "success"
    assert [line["message"] for line in payload["lines"] if line["message"].startswith("chatter ")] == [
        message for _, message in prints
    ]
    # FilterLogEvents named the stream once: the sample's slice of one second.
    samples = 1 + first_sample_throttled
    named = [(request["logStreamNames"], request["endTime"] - request["startTime"]) for request in stream_reads(proxy)]
    assert named == [(["chatty"], busy_streams.SAMPLE_SLICE_MS - 1)] * samples
    assert "chatty" in poller.group.busy_streams
    reads_of_streams = get_events_reads(proxy)
    assert reads_of_streams[0]["startTime"] == at
    assert {request["logStreamName"] for request in reads_of_streams} == {"chatty"}
    budget = registry.registry().budget
    assert budget.calls_by_kind["sample"] == samples
    assert budget.throttled_calls == first_sample_throttled  # the budget saw the throttling answer
    assert caplog.text.count("sample of running requests' streams failed") == first_sample_throttled


@pytest.mark.asyncio
async def test_a_window_with_more_pages_than_a_filtered_read_costs_calls_is_left_for_the_filtered_read(
    logs_client, proxy, many_ids, monkeypatch
):
    # The first full read is unfiltered (nothing measured yet, and the ids need two patterns). moto answers 300
    # events a page here, and the window holds 1,000 prints: after one page the read stops, and the window
    # is read by request lines; the prints come with the request's stretch.
    real_filter_log_events = LogGroup.filter_log_events

    def pages_of_300(group, name, streams, start, end, limit, token, pattern, interleaved):
        return real_filter_log_events(group, name, streams, start, end, 300, token, pattern, interleaved)

    monkeypatch.setattr(LogGroup, "filter_log_events", pages_of_300)
    # 300 events fill half a page: a full one
    monkeypatch.setattr("airflow_lambda_deferrable.cloudwatch.pages.EVENTS_PER_PAGE", 600)
    at = lines.now_ms() - 9_000
    body = printing_invocation(1, [])
    prints = [(at + 2 + index * 8, f"chatter {index}") for index in range(1_000)]
    tail = [(at + 8_100 + n, line) for n, line in enumerate(body[2:])]
    lines.put_at(logs_client, GROUP, [(at, body[0]), (at + 1, body[1]), *prints, *tail], stream="chatty")
    payload = await asyncio.wait_for(first_payload(trigger(1, invoked_at=at / 1000 - 1, max_lines=2_000)), 60)

    assert payload["status"] == "success"
    assert [line["message"] for line in payload["lines"] if line["message"].startswith("chatter ")] == [
        message for _, message in prints
    ]
    patterns = [request.get("filterPattern") for _, request in full_reads(proxy)]
    assert patterns[:2] == [None, filter_patterns.REQUEST_LINES_PATTERN]
    assert registry.registry().budget.calls_by_kind["window"] == 1  # one page, and never unfiltered again


@pytest.mark.asyncio
async def test_a_stream_a_stretch_was_left_to_is_read_up_to_now_before_following_ends(logs_client, proxy):
    # A subscriber that follows its stream leaves its stretch to the reads that follow it (`fetch_span` brings
    # nothing) and does not ask again. When following ends (the group is read filtered from now on), the
    # stream is read from where it is complete: lines no read had brought yet still reach the subscriber.
    at = lines.now_ms() - 5_000
    lines.put_at(logs_client, GROUP, [(at, "first print"), (at + 1_000, "second print")], stream="followed")
    poller = shared_poller.LogGroupPoller(log_group=GROUP, client_factory=lambda: None, budget=RequestBudget(5.0))
    subscription = Subscription(
        poller=poller, terms=["corr-1"], start_ms=at - 1_000, ingestion_allowance_ms=120_000, poll_interval=5.0
    )
    poller.group.following.start(subscription, "followed", at)  # complete up to just before `at`
    assert await subscription.fetch_span("followed", at, at + 2_000) == []
    assert poller.group.left_to_following == {"followed"}
    proxy.fail_next("FilterLogEvents", 1, code="ExpiredTokenException", message="expired")
    session = aiobotocore.session.get_session()
    async with session.create_client(
        "logs", region_name=REGION, endpoint_url=proxy.url, aws_access_key_id="x", aws_secret_access_key="x"
    ) as client:
        with pytest.raises(pages.CallFailed):  # the cycle fails (a fresh client is made): nothing is lost
            await poller.window.stop_following(client)
        assert poller.group.left_to_following == {"followed"} and poller.group.following.streams == 1
        await poller.window.stop_following(client)
    assert [event["message"] for event in subscription.take_new()] == ["first print", "second print"]
    assert poller.group.following.streams == 0 and not poller.group.left_to_following
