"""The scale benchmark's own parts: its quota enforcer really throttles, its simulated lines mean what they say,
its moto answers FilterLogEvents as CloudWatch does, and what it measures in the triggerer is measured."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
import json
import random
import re
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, replace

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.logs.models import LogGroup

from airflow_lambda_deferrable.cloudwatch.delivered import Delivered
from airflow_lambda_deferrable.cloudwatch.event_keys import EventKeys
from airflow_lambda_deferrable.cloudwatch.filter_patterns import REQUEST_LINES_PATTERN
from airflow_lambda_deferrable.verdict.log_lines import parse_event
from airflow_lambda_deferrable.verdict.outcome import InvocationLog, decide
from benchmarks import moto_patch
from benchmarks.lines import LOG_GROUP
from benchmarks.metrics import check_lines, summarize
from benchmarks.plan import EXPECTED_STATUS, FULL, QUICK, VOLUME, _ingest, make_plan
from benchmarks.quota_proxy import QuotaProxy, ThreadedQuotaProxy
from benchmarks.quotas import DESCRIBE_STREAMS, FILTER, GET_EVENTS, PROFILES, Quota

REGION = "us-east-1"


def test_quota_enforcer_throttles_filter_log_events_above_five_per_second(moto: str) -> None:
    boto3.client("logs", region_name=REGION, endpoint_url=moto).create_log_group(logGroupName=LOG_GROUP)
    with ThreadedQuotaProxy(moto) as enforcer:
        client = boto3.client(
            "logs",
            region_name=REGION,
            endpoint_url=enforcer.url,
            config=Config(retries={"total_max_attempts": 1}),
        )
        throttled = 0
        for _ in range(10):
            try:
                client.filter_log_events(logGroupName=LOG_GROUP)
            except ClientError as err:
                assert err.response["Error"]["Code"] == "ThrottlingException"
                throttled += 1
        for _ in range(10):  # other operations are never throttled
            client.describe_log_groups()
        stats = enforcer.proxy.stats()

    assert throttled >= 5
    assert stats.pop("downloads")["by_kind"]["window"]["events"] == 0
    assert stats.pop("profile") == "conditions" and stats.pop("get_events_tenant_calls") == 0
    by_api = stats.pop("by_api")["FilterLogEvents"]
    assert 0 <= by_api.pop("seconds_full") <= by_api.pop("seconds_used")
    assert by_api == {
        "rate": 5,
        "calls": 10,
        "throttled": throttled,
        "tenant_calls": 0,
        "tenant_throttled": 0,
    }
    (listener,) = stats.pop("by_listener")  # one port: every call is its own
    assert listener["calls"] == {"FilterLogEvents": 10, "DescribeLogGroups": 10}
    assert stats.pop("emulator_seconds")["FilterLogEvents"]["answers"] == 10 - throttled
    assert stats | {"filter_bytes": 0} == {
        "filter_calls": 10,
        "throttled": throttled,
        "other_calls": 10,
        "filter_bytes": 0,
        "get_events_calls": 0,
        "get_events_throttled": 0,
        "get_events_bytes": 0,
        "tenant_calls": 0,
        "tenant_throttled": 0,
    }
    # The answers of the calls let through are counted (an empty page is still a JSON body).
    assert stats["filter_bytes"] >= (10 - throttled) * len('{"events": []}')


def test_enforcer_counts_what_each_kind_of_read_downloads_again(moto: str) -> None:
    logs = boto3.client("logs", region_name=REGION, endpoint_url=moto)
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="a")
    now_ms = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName="a",
        logEvents=[{"timestamp": now_ms + k, "message": f"line {k}"} for k in range(5)],
    )
    with ThreadedQuotaProxy(moto) as enforcer:
        client = boto3.client("logs", region_name=REGION, endpoint_url=enforcer.url)
        client.filter_log_events(logGroupName=LOG_GROUP, startTime=now_ms + 3)  # lines 3 and 4
        client.get_log_events(logGroupName=LOG_GROUP, logStreamName="a", startTime=now_ms, startFromHead=True)
        client.filter_log_events(logGroupName=LOG_GROUP, logStreamNames=["a"], filterPattern="line")
        downloads = enforcer.proxy.stats()["downloads"]

    by_kind = downloads["by_kind"]
    assert {kind: (counts["events"], counts["reread_events"]) for kind, counts in by_kind.items()} == {
        "window": (2, 0),
        "stream": (5, 2),
        "filtered": (5, 5),
    }
    assert 0 < by_kind["stream"]["reread_bytes"] < by_kind["stream"]["bytes"]
    # An answer that brought nothing new was re-read whole (each event's share rounded to a byte).
    assert abs(by_kind["filtered"]["reread_bytes"] - by_kind["filtered"]["bytes"]) <= 5
    assert downloads["reread_bytes"] == sum(counts["reread_bytes"] for counts in by_kind.values())
    assert downloads["stream_events"] == {"a": {"window": 2, "stream": 5, "filtered": 5}}


def test_other_tenants_take_their_share_of_the_quota() -> None:
    """Calls of other tenants (1.5/s, Poisson) take their places in the 5/s: a caller asking 10/s gets the rest."""
    quota = Quota(5, tenants_rate=1.5, seed=3)
    seconds = 200.0
    tenant_at = quota.next_tenant_gap()
    ours = 0
    for tick in range(int(seconds * 10)):  # our caller: every 0.1 s
        now = tick / 10
        while tenant_at <= now:
            quota.tenant_call(tenant_at)
            tenant_at += quota.next_tenant_gap()
        ours += quota.admit(now)

    assert 1.2 * seconds <= quota.tenant_calls <= 1.8 * seconds
    assert quota.tenant_throttled > 0  # arriving in a window our caller had filled, they waited
    assert quota.tenants_waiting <= 5  # and got through
    assert ours + quota.tenant_calls - quota.tenants_waiting <= 5 * seconds + 5
    assert ours >= (5 - 1.8) * seconds - 5  # nothing else is taken from ours
    assert quota.calls == seconds * 10 and quota.throttled == quota.calls - ours


def test_a_quota_counts_the_seconds_it_ran_full() -> None:
    quota = Quota(2)
    answers = [quota.admit(now) for now in (10.0, 10.2, 10.4, 11.5, 13.1, 13.5)]
    assert answers == [True, True, False, True, True, True]
    assert quota.fullness() == {"seconds_used": 3, "seconds_full": 2}  # 10 s and 13 s held 2 calls each


def test_each_api_has_its_quota_and_a_regions_profile_sets_them_all() -> None:
    proxy = QuotaProxy("http://unused", other_tenants_rate=0.0)
    assert [proxy.admit(FILTER, 0.0) for _ in range(5)] == [True] * 5 and not proxy.admit(FILTER, 0.1)
    assert [proxy.admit(GET_EVENTS, 0.1 + k / 100) for k in range(11)] == [True] * 10 + [False]
    assert proxy.admit(GET_EVENTS, 1.11)  # the first call of the window has left it
    assert all(proxy.admit(DESCRIBE_STREAMS, 0.2) for _ in range(100))  # no quota before profiles
    strictest = QuotaProxy("http://unused", profile=PROFILES["strictest"])
    assert [strictest.admit(DESCRIBE_STREAMS, 0.0) for _ in range(26)] == [True] * 25 + [False]
    assert {api: counts["rate"] for api, counts in strictest.stats()["by_api"].items()} == {
        "FilterLogEvents": 5,
        "GetLogEvents": 10,
        "DescribeLogStreams": 25,
    }
    assert {name: profile.rates[FILTER] for name, profile in PROFILES.items()} == {
        "strictest": 5,
        "most": 10,
        "us-east-1": 25,
    }


@pytest.mark.parametrize("outcome", sorted(EXPECTED_STATUS))
def test_simulated_lines_decide_the_intended_outcome(outcome: str) -> None:
    plan = make_plan(20, QUICK, seed=3)
    invocation = next(item for item in plan.invocations if item.outcome == outcome)
    t0_ms = 1_800_000_000_000
    events = [
        {"eventId": str(number), "timestamp": t0_ms + line.at_ms, "logStreamName": line.stream, "message": line.message}
        for number, line in enumerate(plan.lines)
        if line.stream == invocation.stream  # the earlier request of a warm environment included
    ]
    log = InvocationLog(correlation_id=invocation.correlation_id, request_ids={invocation.request_id})
    # As the trigger reads: first the events that name our ids, then our request's stretch of the stream,
    # where lines without ids (plain prints, the runtime's error line) are found.
    terms = (invocation.correlation_id, invocation.request_id)
    named = [event for event in events if any(term in event["message"] for term in terms)]
    log.add([parse_event(event, end_marker="Function ended") for event in named], seen_at=0.0)
    for stream, start, end in log.closed_spans():
        span = [
            event
            for event in events
            if event not in named and event["logStreamName"] == stream and start <= event["timestamp"] <= end
        ]
        log.add([parse_event(event, end_marker="Function ended") for event in span], seen_at=0.0)

    verdict = decide(log, now=10.0, checked_at=10.0, deadline=1e12, settle_seconds=5.0)

    assert verdict is not None
    assert verdict.status == invocation.expected_status
    ours = [line for line in plan.lines if line.invocation == invocation.index]
    assert sorted((line.stream, line.timestamp) for line in log.lines) == [
        (line.stream, t0_ms + line.at_ms) for line in ours
    ]
    assert sum(line.decisive for line in ours) == 1


@pytest.mark.asyncio
async def test_the_benchmark_reads_the_shared_pollers_budgets():
    """The triggerer's report reads the budgets by name: a renamed module must fail here, not after a run."""
    from benchmarks import modes, triggerer

    counts = triggerer.budget_counts(modes.MODES["shared"])
    assert counts["budget_calls"] == 0 and counts["budget_throttled"] == 0
    assert counts["stream_budget_calls"] == 0 and counts["budget_calls_by_kind"] == {}


def test_benchmark_uses_the_operators_defaults():
    from airflow_lambda_deferrable.provider import trigger as triggers
    from benchmarks import modes, triggerer

    assert modes.DEFAULT_POLL_INTERVAL == triggers.DEFAULT_POLL_INTERVAL
    assert (
        modes.MODES["shared"].poll_interval
        == modes.MODES["per_trigger"].poll_interval
        == triggers.DEFAULT_POLL_INTERVAL
    )
    assert triggerer.SETTLE_SECONDS == triggers.DEFAULT_SETTLE_SECONDS


# A correlation id in a plan: "bench-00001-89abcdef" before issue 9's UUID-shaped ones (the operator's default
# shape), drawn from the same numbers.
_CORRELATION_ID = re.compile(r"(?:bench|warm)-\d{5}-[0-9a-f]{8}|[0-9a-f]{8}-0000-5000-[89]000-[0-9a-f]{12}")


def _digest(n: int, shape) -> str:
    """Digest a plan's lines and invocations, with correlation ids left out (their shape changed)."""
    plan = make_plan(n, shape, seed=7)
    rows = [asdict(line) | {"message": _CORRELATION_ID.sub("CID", line.message)} for line in plan.lines]
    rows += [asdict(item) | {"correlation_id": "CID"} for item in plan.invocations]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def test_todays_conditions_plan_the_same_invocations_as_before_the_volume_option() -> None:
    """Rows measured before ``--conditions volume`` existed stay comparable: same seed, same lines (but for
    the correlation ids' shape: the digests are of plans made before and after that change)."""
    assert _digest(100, FULL) == "069a5ed9334b6dd719ce774d2e948d0e0066ad7e735c70de156c9adb572d0d19"
    assert _digest(20, QUICK) == "6b780905c93708dc0ced474f3673e3ae45fdbc4d42064054701627009e1605e5"
    ids = [item.correlation_id for item in make_plan(20, QUICK, seed=7).invocations]
    assert all(str(uuid.UUID(correlation_id)) == correlation_id for correlation_id in ids)  # the operator's shape


def test_volume_plan_has_chatty_functions_and_streams_ingested_in_order() -> None:
    plan = make_plan(200, VOLUME, seed=5)
    by_stream = defaultdict(list)
    for line in plan.lines:
        by_stream[line.stream].append(line)

    chatty = 0
    for invocation in plan.invocations:
        ours = [line for line in by_stream[invocation.stream] if line.invocation == invocation.index]
        if len(ours) > 20 * invocation.duration:  # about 50 a second, against one every 1..2 s
            chatty += 1
            assert len(ours) >= 50 * (invocation.duration - 0.1)
            assert all(line.invocation == invocation.index for line in ours)  # its lines without ids are its own
        stream = by_stream[invocation.stream]
        assert [line.at_ms for line in stream] == sorted({line.at_ms for line in stream})  # unique, in order
        assert [line.visible_ms for line in stream] == sorted(line.visible_ms for line in stream)  # in order
        assert 5 <= invocation.duration <= 240 and 0 <= invocation.invoked_at <= 20
    assert chatty == 20  # 10% of 200


def test_ingestion_in_batches_with_one_in_a_hundred_about_twenty_seconds_late() -> None:
    rng = random.Random(11)
    # Lines 30 s apart: each its own batch, and no batch waits behind a late one.
    sparse = [(30.0 * k, f"line {k}", 0, False) for k in range(20_000)]
    delays = [(line.visible_ms - line.at_ms) / 1000 for line in _ingest("s", sparse, VOLUME, rng)]
    late = [delay for delay in delays if delay > VOLUME.max_delay]
    assert 0.007 <= len(late) / len(delays) <= 0.013
    assert all(18.0 <= delay <= 22.0 for delay in late)
    assert all(VOLUME.min_delay <= delay <= VOLUME.max_delay for delay in delays if delay <= VOLUME.max_delay)

    # 50 lines a second: the lines printed within a second become visible together, after the last of them
    # (or later, behind an earlier batch that was slower: each stream is ingested in order).
    chatty = [(k / 50, f"line {k}", 0, False) for k in range(5_000)]
    lines = _ingest("s", chatty, replace(VOLUME, late_batch_share=0.0), rng)
    delays = [(line.visible_ms - line.at_ms) / 1000 for line in lines]
    assert min(delays) >= VOLUME.min_delay
    assert max(delays) <= VOLUME.max_delay + VOLUME.batch_seconds
    assert 20 <= len({line.visible_ms for line in lines}) <= 100


def _group(events_by_stream: dict[str, list[tuple[int, str]]]) -> LogGroup:
    """Return a moto log group (not registered with any backend) holding the given events."""
    group = LogGroup(DEFAULT_ACCOUNT_ID, "us-east-1", "/aws/lambda/patch-test")
    for stream, events in events_by_stream.items():
        group.create_log_stream(stream)
        group.streams[stream].put_log_events([{"timestamp": ts, "message": message} for ts, message in events])
    return group


def _all_pages(group: LogGroup, **request) -> list[list[dict]]:
    pages, token = [], None
    while True:
        request = {"log_stream_names": [], "start_time": None, "end_time": None, "limit": None} | request
        page, token, searched = moto_patch.filter_log_events(
            group,
            group.name,
            next_token=token,
            filter_pattern=request.pop("filter_pattern", ""),
            interleaved=False,
            **request,
        )
        assert searched == []  # as CloudWatch since 2020
        pages.append(page)
        if token is None:
            return pages


def test_patched_moto_filters_or_patterns_and_sorts_across_streams() -> None:
    group = _group(
        {
            "a": [(1000, "alpha one"), (1003, "gamma"), (1006, "beta two")],
            "b": [(1001, "beta three"), (1004, "alpha four"), (1007, "delta")],
            "c": [(1002, "gamma"), (1005, "alpha five"), (1008, "alpha six")],
        }
    )

    [page] = _all_pages(group, filter_pattern='?"alpha" ?"beta"')
    assert [event["message"] for event in page] == [
        "alpha one",
        "beta three",
        "alpha four",
        "alpha five",
        "beta two",
        "alpha six",
    ]
    [window] = _all_pages(group, start_time=1003, end_time=1006)  # both ends inclusive
    assert [event["timestamp"] for event in window] == [1003, 1004, 1005, 1006]
    assert [event["logStreamName"] for event in window] == ["a", "b", "c", "a"]
    assert all(len(event["eventId"]) == moto_patch.EVENT_ID_DIGITS for event in window)
    [one_stream] = _all_pages(group, log_stream_names=["c"])
    assert [event["timestamp"] for event in one_stream] == [1002, 1005, 1008]


def test_patched_moto_finds_events_put_after_a_pattern_was_first_used_and_after_it_was_forgotten() -> None:
    group = _group({"a": [(1000, "alpha one"), (1001, "beta")], "b": [(1002, "alpha two")]})
    assert [e["message"] for e in _all_pages(group, filter_pattern='?"alpha"')[0]] == ["alpha one", "alpha two"]
    group.streams["a"].put_log_events([{"timestamp": 1003, "message": "alpha three"}])
    assert [e["message"] for e in _all_pages(group, filter_pattern='?"alpha"')[0]] == [
        "alpha one",
        "alpha two",
        "alpha three",
    ]
    # More patterns than are kept: "alpha" is forgotten, then asked for again, and still answered right.
    for index in range(moto_patch.MAX_PATTERNS_KEPT + 1):
        _all_pages(group, filter_pattern=f'?"other{index}"')
    assert '?"alpha"' not in group.streams["a"].matched_events.by_pattern
    group.streams["b"].put_log_events([{"timestamp": 1004, "message": "alpha four"}])
    [page] = _all_pages(group, filter_pattern='?"alpha"', start_time=1001)
    assert [e["message"] for e in page] == ["alpha two", "alpha three", "alpha four"]


_START = "START RequestId: f90b9fc0-7e83-47cf-8535-f414db03f092 Version: $LATEST"


def test_patched_moto_answers_each_event_once_when_two_calls_scan_a_stream_at_once(monkeypatch) -> None:
    """The moto server answers each call in a thread of its own: two triggerers' reads by request lines scanned a
    chatty stream's new events at once, and both appended the START they found to the stream's `MatchedEvents`.
    Every later answer held it twice, which the poller keys as two events (ranks 0 and 1 in its millisecond):
    the scale run of N = 3000, K = 3 kept one START twice. Here the first call pauses in its scan until the
    second has answered (or for a second, when the second waits for it, as it must)."""
    group = _group({"s": [(1000, _START)] + [(1001 + i, f"processed record {i:07d}") for i in range(5)]})
    real_matcher = moto_patch.matcher
    first_paused, second_done = threading.Event(), threading.Event()

    def pausing_matcher(pattern: str):
        test = real_matcher(pattern)

        def matches(message: str) -> bool:
            if threading.current_thread().name == "first" and not first_paused.is_set():
                first_paused.set()
                second_done.wait(timeout=1.0)
            return test(message)

        return matches

    monkeypatch.setattr(moto_patch, "matcher", pausing_matcher)
    answers: list[list[list[dict]]] = []
    first = threading.Thread(
        target=lambda: answers.append(_all_pages(group, filter_pattern=REQUEST_LINES_PATTERN)), name="first"
    )
    first.start()
    assert first_paused.wait(timeout=10)
    answers.append(_all_pages(group, filter_pattern=REQUEST_LINES_PATTERN))  # while the first call scans
    second_done.set()
    first.join(timeout=10)
    answers.append(_all_pages(group, filter_pattern=REQUEST_LINES_PATTERN))  # a call after both
    assert len(answers) == 3
    for pages in answers:
        assert [event["message"] for page in pages for event in page] == [_START]
    # What the trigger got from the last answer: the poller's keys, less those it returned before.
    page = answers[-1][0]
    EventKeys().assign(page)
    assert len(Delivered().only_new(page)) == 1


def test_patched_moto_scans_events_put_while_a_pattern_ran_over_the_stream(monkeypatch) -> None:
    """The writer puts events while a call scans the stream (another thread): they are scanned by the next call,
    not counted as scanned."""
    group = _group({"s": [(1000, _START)]})
    stream = group.streams["s"]
    real_matcher = moto_patch.matcher
    put = []

    def putting_matcher(pattern: str):
        test = real_matcher(pattern)

        def matches(message: str) -> bool:
            if not put:
                put.append(message)
                stream.put_log_events([{"timestamp": 1001, "message": "END RequestId: f90b9fc0-7e83-47cf"}])
            return test(message)

        return matches

    monkeypatch.setattr(moto_patch, "matcher", putting_matcher)
    assert [e["message"] for e in _all_pages(group, filter_pattern=REQUEST_LINES_PATTERN)[0]] == [_START]
    [page] = _all_pages(group, filter_pattern=REQUEST_LINES_PATTERN)
    assert [e["message"] for e in page] == [_START, "END RequestId: f90b9fc0-7e83-47cf"]


def test_patched_moto_filters_regex_patterns_as_cloudwatch() -> None:
    group = _group(
        {
            "a": [(1000, "START RequestId: 0a1b2c3d-0000-4000-8000-000000000001 Version: $LATEST")],
            "b": [(1001, "processed record 7 of shard 2"), (1002, "REPORT RequestId: 0a1b2c3d-0000")],
        }
    )
    [page] = _all_pages(group, filter_pattern="%[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}%")
    assert [event["timestamp"] for event in page] == [1000]
    with pytest.raises(ValueError, match="refuses"):
        moto_patch.matcher("%(ab)+%")


def test_patched_moto_pages_end_at_one_megabyte_or_ten_thousand_events() -> None:
    big = "x" * 10_000
    group = _group({"big-a": [(k * 2, big) for k in range(150)], "big-b": [(k * 2 + 1, big) for k in range(150)]})
    pages = _all_pages(group)
    per_page = moto_patch.MAX_PAGE_BYTES // (10_000 + moto_patch.EVENT_OVERHEAD_BYTES)
    assert [len(page) for page in pages] == [per_page, per_page, 300 - 2 * per_page]
    stamps = [event["timestamp"] for page in pages for event in page]
    assert stamps == list(range(300))  # each once, in order, across page ends

    small = _group({"s": [(k, "tiny") for k in range(10_050)]})
    assert [len(page) for page in _all_pages(small)] == [10_000, 50]
    assert [len(page) for page in _all_pages(small, limit=4000)] == [4000, 4000, 2050]


def test_patched_moto_reads_a_stream_forwards_as_cloudwatch_pages_to_end_time_left_out() -> None:
    big = "x" * 10_000
    stream = _group({"s": [(k, big) for k in range(250)]}).streams["s"]
    pages, token = [], None
    while True:
        page, _, forward = moto_patch.get_log_events(stream, 5, 245, None, token, True)
        pages.append(page)
        if forward == token:  # CloudWatch answers the token it was given at the end
            break
        token = forward
    per_page = moto_patch.MAX_PAGE_BYTES // (10_000 + moto_patch.EVENT_OVERHEAD_BYTES)
    assert [len(page) for page in pages] == [per_page, per_page, 240 - 2 * per_page, 0]
    assert [event["timestamp"] for page in pages for event in page] == list(range(5, 245))  # 245 left out
    assert all("logStreamName" not in event and "eventId" not in event for page in pages for event in page)


def test_lines_left_out_of_a_clipped_event_are_not_lost_lines() -> None:
    expected = {("s", stamp): f"line {stamp}" for stamp in range(10)}
    head_and_tail = [["s", stamp, f"line {stamp}"] for stamp in (0, 1, 8, 9)]

    assert check_lines(head_and_tail, expected, omitted=6, omitted_at=2)["lost"] == 0
    assert check_lines(head_and_tail, expected, omitted=4, omitted_at=2)["lost"] == 2  # 2 never read
    assert check_lines(head_and_tail, expected)["lost"] == 6
    without_second = [line for line in head_and_tail if line[1] != 1]
    assert check_lines(without_second, expected, omitted=6, omitted_at=1)["lost"] == 1  # outside the gap


def test_volume_triggers_get_every_kwarg_the_operator_passes_with_its_defaults() -> None:
    from airflow_lambda_deferrable.provider.operator import LambdaInvokeDeferrableOperator
    from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger
    from airflow_lambda_deferrable.settings import FollowSettings
    from benchmarks import triggerer
    from benchmarks.modes import MODES

    spec = {"index": 0, "correlation_id": "bench-1", "request_id": "r-1", "invoked_at": 2.0, "deadline": 99.0}
    kwargs = triggerer.operator_trigger_kwargs(spec, 1000.0, MODES["shared"])

    assert set(kwargs) == {field.name for field in dataclasses.fields(FollowSettings)}
    assert kwargs["botocore_config"] is None
    defaults = inspect.signature(LambdaInvokeDeferrableOperator.__init__).parameters
    for name in ("max_lines", "max_bytes", "settle_seconds", "poll_interval", "end_marker"):
        assert kwargs[name] == defaults[name].default, name
    assert kwargs["ingestion_allowance_seconds"] == defaults["ingestion_allowance_seconds"].default
    assert kwargs["fire_after"] == 1002.0 + defaults["min_defer_seconds"].default
    trigger = LambdaInvocationTrigger(**kwargs)
    assert trigger.serialize()[1] == kwargs


def test_todays_triggers_are_accepted_by_the_trigger() -> None:
    """The harness's own kwargs (one attempt per call, nothing cut) stay within what the trigger accepts."""
    from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger
    from benchmarks import triggerer
    from benchmarks.modes import MODES

    spec = {"index": 0, "correlation_id": "bench-1", "request_id": "r-1", "invoked_at": 2.0, "deadline": 99.0}
    for mode in MODES.values():
        kwargs = triggerer.trigger_kwargs(spec, 1000.0, mode)
        assert LambdaInvocationTrigger(**kwargs).serialize()[1].items() >= kwargs.items()


def test_loop_watcher_sees_a_blocked_loop() -> None:
    from benchmarks import triggerer

    async def block_once() -> list:
        lags: list = []
        watcher = asyncio.create_task(triggerer.watch_loop(lags, every=0.05))
        await asyncio.sleep(0.12)
        time.sleep(0.3)  # what CPU work on the loop does to every other task
        await asyncio.sleep(0.12)
        watcher.cancel()
        return lags

    lags = asyncio.run(block_once())
    summary = triggerer.lag_summary(lags, t0=0.0)
    # However loaded the machine, the wake-up after the block came at least 0.3 - 0.05 s late.
    assert summary["loop_lag_max"] >= 0.25
    assert summary["loop_lags_over_1s"] == 0 or summary["loop_lag_max"] > 1.0


def test_a_trigger_stopped_at_the_cap_counts_in_latency_from_its_decisive_line_to_the_cap() -> None:
    plan = make_plan(10, QUICK, seed=7)
    t0_ms = 1_800_000_000_000
    decisive = {invocation.index: t0_ms / 1000 + invocation.run_end + 1 for invocation in plan.invocations}
    results = [
        {
            "index": invocation.index,
            "status": invocation.expected_status,
            "fired_at": decisive[invocation.index] + 5,
            "lines": [],
        }
        for invocation in plan.invocations[1:]
    ]
    events = {
        "mode": "shared",
        "results": results,
        "unfinished": [0],
        "crashed": {},
        "cpu_seconds": 1.0,
        "wall_seconds": 500.0,
        "rss_peak_kb": 0,
        "rss_baseline_kb": 0,
    }
    simulator = {"decisive_visible": decisive, "writer": "direct", "lag_p95": 0, "lag_max": 0, "lines": 0}
    proxy = {"filter_calls": 10, "throttled": 0}

    row = summarize(plan, t0_ms, events, simulator, proxy)

    assert row["wrong_outcomes"] == row["failed_reads"] == 1
    assert row["latencies_at_cap"] == 1
    assert row["latency_max"] == pytest.approx(500.0 - plan.invocations[0].run_end - 1)


def test_worker_seconds_sums_each_task_instances_workloads_from_the_schedulers_log():
    from benchmarks.worker_seconds import workload_seconds

    log = "\n".join(
        [
            "2026-12-06T23:49:52Z [info     ] Workload finished              [supervisor] duration=5.5 exit_code=0 "
            "final_state=deferred loc=supervisor.py:2658 workload_id=01a2-aa workload_type=ExecuteTask",
            "2026-12-06T23:49:53Z [info     ] Task started [supervisor] workload_id=01a2-aa",
            "2026-12-06T23:50:09Z [info     ] Workload finished              [supervisor] duration=2.25 exit_code=0 "
            "final_state=success loc=supervisor.py:2658 workload_id=01a2-aa workload_type=ExecuteTask",
            "2026-12-06T23:50:10Z [info     ] Workload finished              [supervisor] duration=9.0 exit_code=0 "
            "final_state=success loc=supervisor.py:2658 workload_id=01a2-other workload_type=ExecuteTask",
        ]
    )
    assert workload_seconds(log, {"01a2-aa", "01a2-bb"}) == {"01a2-aa": [5.5, 2.25], "01a2-bb": []}


def test_worker_seconds_waits_until_every_task_instance_has_its_records(tmp_path):
    from benchmarks.worker_seconds import settled_records
    from demo.airflow_stack import AirflowStack

    record = (
        "Workload finished [supervisor] duration={seconds} exit_code=0 final_state=success "
        "loc=supervisor.py:2658 workload_id={ti} workload_type=ExecuteTask\n"
    )
    log = tmp_path / "scheduler.log"
    log.write_text(record.format(seconds=1.5, ti="01a2-aa"))
    readings: list[int] = []

    class Stack:
        home = tmp_path

        @staticmethod
        def wait(condition, timeout, what):
            def reading():
                readings.append(len(readings))
                if len(readings) == 2:  # the executor reports the second instance's workload late
                    with log.open("a") as out:
                        out.write(record.format(seconds=2.5, ti="01a2-bb"))
                return condition()

            return AirflowStack.wait(reading, timeout, what, interval=0.01)

    assert settled_records(Stack, {"01a2-aa", "01a2-bb"}) == {"01a2-aa": [1.5], "01a2-bb": [2.5]}
    assert len(readings) >= 3  # one reading after the last record came found it unchanged


def test_several_triggerers_events_merge_into_one_run_with_each_ones_figures() -> None:
    from benchmarks.metrics import merge_events

    def part(indexes: list[int], calls: int, lag: float) -> dict:
        return {
            "results": [{"index": index} for index in indexes],
            "unfinished": [],
            "crashed": {},
            "cpu_seconds": 2.0,
            "rss_peak_kb": 3072,
            "rss_baseline_kb": 1024,
            "budget_calls": calls,
            "budget_throttled": 1,
            "budget_calls_by_kind": {"window": calls},
            "stream_budget_calls": 0,
            "stream_budget_throttled": 0,
            "loop_lag_max": lag,
            "loop_lag_max_at": 9.0,
            "loop_lag_p99": lag / 2,
            "loop_lags_over_1s": 0,
            "wall_seconds": 10.0 + lag,
            "mode": "shared",
        }

    merged = merge_events([part([0, 2], 5, 0.2), part([1], 7, 0.5)])
    assert sorted(result["index"] for result in merged["results"]) == [0, 1, 2]
    assert (merged["budget_calls"], merged["budget_throttled"], merged["budget_calls_by_kind"]) == (
        12,
        2,
        {"window": 12},
    )
    assert (merged["loop_lag_max"], merged["wall_seconds"], merged["cpu_seconds"]) == (0.5, 10.5, 4.0)
    assert [own["triggers"] for own in merged["triggerers"]] == [2, 1]
    assert [own["rss_growth_mb"] for own in merged["triggerers"]] == [2.0, 2.0]


def test_a_triggerers_budget_rates_are_summed_up_as_their_mean_and_lowest() -> None:
    from benchmarks.metrics import budget_rates

    assert budget_rates([[0.0, 2.0, 4.0], [1.0, 1.0, None], [2.0, 0.5, 2.0]]) == {
        "filter_rate_mean": 3.5 / 3,
        "filter_rate_min": 0.5,
        "get_rate_mean": 3.0,
        "get_rate_min": 2.0,
    }
    assert budget_rates([])["filter_rate_mean"] is None


def test_invocations_are_spread_over_the_triggerers_by_index() -> None:
    from benchmarks.scale import triggers_job

    plan = make_plan(10, QUICK, seed=7)
    jobs = [triggers_job(plan, index, 3) for index in range(3)]
    assert sorted(spec["index"] for job in jobs for spec in job["specs"]) == list(range(10))
    assert [len(job["specs"]) for job in jobs] == [4, 3, 3]
    assert {job["cap"] for job in jobs} == {triggers_job(plan)["cap"]}


def test_the_proxy_counts_each_triggerers_calls_and_bytes_on_its_own_port_under_one_shared_quota(moto: str) -> None:
    boto3.client("logs", region_name=REGION, endpoint_url=moto).create_log_group(logGroupName=LOG_GROUP)
    enforcer = QuotaProxy(moto)  # FilterLogEvents 5 a second, no other tenant

    async def calls() -> list[str]:
        first, second = await enforcer.start(listeners=2)
        try:
            return await asyncio.gather(
                asyncio.to_thread(_filter_calls, first, 4), asyncio.to_thread(_filter_calls, second, 4)
            )
        finally:
            await enforcer.close()

    outcomes = asyncio.run(calls())
    first, second = enforcer.stats()["by_listener"]
    assert first["calls"] == {"FilterLogEvents": 4} and second["calls"] == {"FilterLogEvents": 4}
    # Each port's throttling answers are the ones its own client got, from one quota for both.
    assert [first["throttled"]["FilterLogEvents"], second["throttled"]["FilterLogEvents"]] == [
        outcome.count("throttled") for outcome in outcomes
    ]
    assert enforcer.stats()["throttled"] == sum(outcome.count("throttled") for outcome in outcomes)
    assert first["bytes"] > 0 and second["bytes"] > 0
    emulator = enforcer.stats()["emulator_seconds"]["FilterLogEvents"]
    answered = sum(outcome.count("answered") for outcome in outcomes)
    assert emulator["answers"] == answered and 0 <= emulator["p50"] <= emulator["max"]


def _filter_calls(url: str, count: int) -> list[str]:
    client = boto3.client(
        "logs", region_name=REGION, endpoint_url=url, config=Config(retries={"total_max_attempts": 1})
    )
    outcomes = []
    for _ in range(count):
        try:
            client.filter_log_events(logGroupName=LOG_GROUP)
            outcomes.append("answered")
        except ClientError as err:
            assert err.response["Error"]["Code"] == "ThrottlingException"
            outcomes.append("throttled")
    return outcomes


def test_each_triggerers_latency_and_bytes_are_those_of_its_own_invocations() -> None:
    from benchmarks.metrics import per_triggerer

    plan = make_plan(6, QUICK, seed=7)
    own = [{"triggers": 3}, {"triggers": 3}]
    proxy = {"by_listener": [{"calls": {"FilterLogEvents": 2}, "bytes": 10}, {"calls": {}, "bytes": 20}]}
    latency_of = {0: 1.0, 1: 9.0, 2: 2.0, 3: 8.0, 4: 3.0, 5: 7.0}
    first, second = per_triggerer(plan, latency_of, own, proxy)
    assert (first["latency_p95"], second["latency_p95"]) == (3.0, 9.0)
    assert (first["calls"], first["bytes_read"], second["bytes_read"]) == ({"FilterLogEvents": 2}, 10, 20)
    assert first["bytes_logged"] + second["bytes_logged"] == plan.bytes_logged()
    assert first["bytes_logged"] > 0 and second["bytes_logged"] > 0
