"""The scale benchmark's own parts: its quota enforcer really throttles, its simulated lines mean what they say."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_lambda_deferrable.log_lines import parse_event
from airflow_lambda_deferrable.outcome import InvocationLog, decide
from benchmarks.lines import LOG_GROUP
from benchmarks.plan import EXPECTED_STATUS, QUICK, make_plan
from benchmarks.quota_proxy import ThreadedQuotaProxy

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
    assert stats == {"filter_calls": 10, "throttled": throttled, "other_calls": 10}


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


def test_benchmark_uses_the_operators_defaults():
    from airflow_lambda_deferrable import triggers
    from benchmarks import modes, triggerer

    assert modes.DEFAULT_POLL_INTERVAL == triggers.DEFAULT_POLL_INTERVAL
    assert (
        modes.MODES["shared"].poll_interval
        == modes.MODES["per_trigger"].poll_interval
        == triggers.DEFAULT_POLL_INTERVAL
    )
    assert triggerer.SETTLE_SECONDS == triggers.DEFAULT_SETTLE_SECONDS
