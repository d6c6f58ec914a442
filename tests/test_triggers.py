"""The trigger against moto in server mode: real HTTP, real aiobotocore, lines written as Lambda writes them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import threading
import time

import pytest

from airflow_lambda_deferrable.provider import trigger as triggers
from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger
from airflow_lambda_deferrable.sources.log_lines import read_wanted_at
from airflow_lambda_deferrable.verdict.evidence import Evidence
from airflow_lambda_deferrable.verdict.outcome import InvocationLog, KnownResult
from tests import lambda_lines as lines
from tests.conftest import MOTO_CONN_ID, aws_connection
from tests.fault_proxy import FaultProxy

GROUP = "/aws/lambda/example-lambda-function"


CID = "corr-trigger-0001"
RID = "7c1b5c56-5f0e-4b55-9d3a-0a6e4c3f2d10"
OTHER_RID = "0a0a0a0a-5f0e-4b55-9d3a-0a6e4c3f2d10"


def make_trigger(**overrides) -> LambdaInvocationTrigger:
    kwargs = {
        "function_name": "example-lambda-function",
        "log_group": GROUP,
        "correlation_id": CID,
        "request_id": RID,
        "invoked_at": time.time() - 1,
        "deadline": time.time() + 20,
        "aws_conn_id": MOTO_CONN_ID,
        "poll_interval": 0.2,
        "settle_seconds": 0.6,
    }
    return LambdaInvocationTrigger(**(kwargs | overrides))


async def first_event(trigger: LambdaInvocationTrigger, timeout: float = 40) -> dict:
    async def run() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return await asyncio.wait_for(run(), timeout)


def messages(payload: dict) -> list[str]:
    return [line["message"] for line in payload["lines"]]


def write_later(delay: float, action) -> threading.Thread:
    """Run `action` after `delay` seconds in a thread (as Lambda would write while the trigger polls)."""
    thread = threading.Thread(target=lambda: (time.sleep(delay), action()), daemon=True)
    thread.start()
    return thread


def successful_invocation(correlation_id: str = CID, request_id: str = RID, marker: bool = True) -> list[str]:
    body = [
        lines.start(request_id),
        lines.powertools(correlation_id, request_id, "Function started"),
        lines.powertools(correlation_id, request_id, "iteration 1 of 1"),
    ]
    if marker:
        body.append(lines.powertools(correlation_id, request_id, "Function ended"))
    return [*body, lines.end(request_id), lines.report(request_id)]


@pytest.mark.asyncio
async def test_success_with_end_marker(logs_client):
    lines.put(logs_client, GROUP, successful_invocation())
    payload = await first_event(make_trigger())
    assert payload["status"] == "success"
    assert payload["message"] == "the function logged its end marker"
    assert messages(payload)[1:4] == ["Function started", "iteration 1 of 1", "Function ended"]
    assert (payload["request_id"], payload["correlation_id"], payload["log_group"]) == (RID, CID, GROUP)
    json.dumps(payload)


@pytest.mark.asyncio
async def test_success_without_marker_uses_platform_lines_after_settling(logs_client):
    lines.put(logs_client, GROUP, [lines.start(RID), "plain print output", lines.end(RID), lines.report(RID)])
    started = time.monotonic()
    payload = await first_event(make_trigger(end_marker=None, settle_seconds=1.0))
    assert payload["status"] == "success"
    assert "no failure followed within 1s" in payload["message"]
    assert time.monotonic() - started >= 1.0
    assert messages(payload) == [lines.start(RID), "plain print output", lines.end(RID), lines.report(RID)]


@pytest.mark.asyncio
async def test_handled_error_logged_with_logger_exception(logs_client):
    lines.put(
        logs_client,
        GROUP,
        [
            lines.start(RID),
            lines.powertools(CID, RID, "Function started"),
            lines.logged_exception(CID, RID),
            lines.unhandled(),
            lines.end(RID),
            lines.report(RID),
        ],
    )
    payload = await first_event(make_trigger())
    assert payload["status"] == "failed"
    assert payload["message"] == 'RuntimeError: Unable to finish loop; the function logged "Function invocation failed"'
    assert payload["error"]["type"] == "RuntimeError"
    assert "Traceback (most recent call last):" in payload["error"]["detail"]
    error_lines = [line for line in payload["lines"] if line["level"] == "ERROR"]
    assert error_lines[0]["detail"].endswith("ValueError: bad row 7")


@pytest.mark.asyncio
async def test_unhandled_exception_found_by_the_request_span(logs_client):
    # The runtime's line carries no id at all: only its place between our START and END ties it to us.
    lines.put(
        logs_client, GROUP, [lines.start(RID), lines.unhandled("KeyError", "'rows'"), lines.end(RID), lines.report(RID)]
    )
    payload = await first_event(make_trigger())
    assert payload["status"] == "failed"
    assert payload["message"] == "KeyError: 'rows'"
    assert messages(payload)[1] == "KeyError: 'rows'"


@pytest.mark.asyncio
async def test_task_timed_out_arriving_after_report(logs_client):
    lines.put(
        logs_client,
        GROUP,
        [lines.start(RID), lines.powertools(CID, RID, "iteration 1 of 40"), lines.end(RID), lines.report(RID)],
    )
    late = write_later(0.3, lambda: lines.put(logs_client, GROUP, [lines.timed_out(RID, 3.0)]))
    payload = await first_event(make_trigger(settle_seconds=2.0))
    late.join()
    assert payload["status"] == "failed"
    assert payload["message"] == "Task timed out after 3.00 seconds"
    assert messages(payload)[-1] == lines.timed_out(RID, 3.0)


@pytest.mark.asyncio
async def test_runtime_exit_out_of_memory_is_reported_before_the_deadline(logs_client):
    lines.put(
        logs_client,
        GROUP,
        [lines.start(RID), lines.runtime_exit(RID), "Runtime.ExitError", lines.end(RID), lines.report(RID)],
    )
    started = time.monotonic()
    payload = await first_event(make_trigger(deadline=time.time() + 60))
    assert time.monotonic() - started < 10
    assert payload["status"] == "failed" and payload["error"]["type"] == "Runtime.ExitError"
    assert "Runtime exited with error: signal: killed" in payload["message"]


@pytest.mark.asyncio
async def test_no_lines_until_the_deadline_is_a_timeout(logs_client):
    lines.put(logs_client, GROUP, [])
    payload = await first_event(make_trigger(deadline=time.time() + 1.5))
    assert payload["status"] == "timeout"
    assert payload["message"].startswith("no line carrying the invocation's request id or correlation id appeared")
    assert payload["polls"] >= 3


@pytest.mark.asyncio
async def test_log_group_created_late(logs_client):
    # No group at all at first: ResourceNotFoundException means "nothing yet", not an error.
    writer = write_later(1.0, lambda: lines.put(logs_client, GROUP, successful_invocation()))
    payload = await first_event(make_trigger())
    writer.join()
    assert payload["status"] == "success" and payload["polls"] >= 3


@pytest.mark.asyncio
async def test_many_streams_and_more_than_one_page(logs_client):
    # 12,000 lines across 4 streams: moto pages at 10,000 events, so nextToken must be followed.
    start = lines.now_ms() - 5000
    streams = [f"2026/11/23/[$LATEST]{n:032x}" for n in range(4)]
    for index, stream in enumerate(streams):
        batch = [(start + i, lines.powertools(CID, RID, f"s{index} line {i}")) for i in range(3000)]
        for chunk in range(0, len(batch), 1000):
            lines.put_at(logs_client, GROUP, batch[chunk : chunk + 1000], stream=stream)
    lines.put(logs_client, GROUP, successful_invocation()[3:], stream=streams[0])
    payload = await first_event(make_trigger(max_lines=20_000, max_bytes=50_000_000))
    assert payload["status"] == "success"
    got = messages(payload)
    assert len(got) == 12_003 and len(set(got)) == 12_003
    assert got[-3:] == ["Function ended", lines.end(RID), lines.report(RID)]


@pytest.mark.asyncio
async def test_two_invocations_interleaved_in_one_stream(logs_client):
    theirs = "corr-someone-else"
    lines.put(
        logs_client,
        GROUP,
        [
            lines.start(OTHER_RID),
            lines.powertools(theirs, OTHER_RID, "Function started"),
            lines.start(RID),
            lines.powertools(CID, RID, "Function started"),
            lines.unhandled("ValueError", "not ours"),
            lines.end(OTHER_RID),
            lines.report(OTHER_RID),
            lines.powertools(CID, RID, "Function ended"),
            lines.end(RID),
            lines.report(RID),
        ],
    )
    # Managed Instances (requests at once in one stream); in an ordinary environment the line is ours.
    payload = await first_event(make_trigger(claim_lines_without_ids=False))
    assert payload["status"] == "success"
    assert OTHER_RID not in json.dumps(payload["lines"]) and theirs not in json.dumps(payload["lines"])


@pytest.mark.asyncio
async def test_same_millisecond_events_are_all_kept_in_order(logs_client):
    stamp = lines.now_ms()
    batch = [(stamp, lines.start(RID))] + [(stamp + 1, lines.powertools(CID, RID, f"burst {n}")) for n in range(50)]
    batch += [
        (stamp + 2, lines.powertools(CID, RID, "Function ended")),
        (stamp + 2, lines.end(RID)),
        (stamp + 2, lines.report(RID)),
    ]
    lines.put_at(logs_client, GROUP, batch)
    payload = await first_event(make_trigger())
    assert messages(payload)[1:51] == [f"burst {n}" for n in range(50)]


@pytest.mark.asyncio
async def test_late_arriving_earlier_events_are_not_lost(logs_client):
    stamp = lines.now_ms()
    lines.put_at(
        logs_client,
        GROUP,
        [
            (stamp, lines.start(RID)),
            (stamp + 10, lines.powertools(CID, RID, "step 1")),
            (stamp + 30, lines.powertools(CID, RID, "step 3")),
        ],
        stream="stream-a",
    )
    # "step 2" and the end were logged earlier than "step 3" but are ingested only later, in another stream.
    late = write_later(
        0.6,
        lambda: lines.put_at(
            logs_client,
            GROUP,
            [
                (stamp + 20, lines.powertools(CID, RID, "step 2")),
                (stamp + 40, lines.powertools(CID, RID, "Function ended")),
            ],
            stream="stream-b",
        ),
    )
    payload = await first_event(make_trigger())
    late.join()
    assert messages(payload) == [lines.start(RID), "step 1", "step 2", "step 3", "Function ended"]


@pytest.mark.asyncio
async def test_request_id_differs_from_invoke_response(logs_client):
    # Correlation by id alone still finds the request the function saw, then its platform lines.
    lines.put(logs_client, GROUP, successful_invocation(request_id=OTHER_RID, marker=False))
    payload = await first_event(make_trigger(request_id="not-the-functions-id-00000000"))
    assert payload["status"] == "success"
    assert messages(payload)[0] == lines.start(OTHER_RID)


@pytest.mark.asyncio
async def test_json_log_format(logs_client):
    lines.put(
        logs_client,
        GROUP,
        [
            lines.platform_json("platform.start", RID, version="$LATEST"),
            lines.powertools(CID, RID, "Function started"),
            json.dumps(
                {
                    "timestamp": "t",
                    "log_level": "ERROR",
                    "errorType": "ZeroDivisionError",
                    "errorMessage": "division by zero",
                    "requestId": RID,
                    "stackTrace": ["  File x\n"],
                }
            ),
            lines.platform_json("platform.runtimeDone", RID, status="error", errorType="ZeroDivisionError"),
            lines.platform_json("platform.report", RID, status="error", errorType="ZeroDivisionError"),
        ],
    )
    payload = await first_event(make_trigger())
    assert payload["status"] == "failed"
    assert payload["message"] == "ZeroDivisionError: division by zero"


@pytest.mark.asyncio
async def test_throttling_for_several_polls_never_fails_the_task(moto, logs_client, monkeypatch):
    lines.put(logs_client, GROUP, successful_invocation())
    with FaultProxy(moto) as proxy:
        monkeypatch.setenv(
            "AIRFLOW_CONN_AWS_THROTTLED",
            aws_connection(proxy.url),
        )
        proxy.fail_next("FilterLogEvents", 6)
        trigger = make_trigger(aws_conn_id="aws_throttled", botocore_config={"retries": {"total_max_attempts": 1}})
        payload = await first_event(trigger)
    assert payload["status"] == "success"
    assert proxy.failed["FilterLogEvents"] == 6
    assert proxy.calls["FilterLogEvents"] > 6


@pytest.mark.asyncio
async def test_access_denied_ends_in_a_clear_error_event(moto, logs_client, monkeypatch):
    with FaultProxy(moto) as proxy:
        monkeypatch.setenv(
            "AIRFLOW_CONN_AWS_DENIED",
            aws_connection(proxy.url),
        )
        proxy.fail_next(
            "FilterLogEvents", 1, code="AccessDeniedException", message="not authorized to perform logs:FilterLogEvents"
        )
        payload = await first_event(make_trigger(aws_conn_id="aws_denied"))
    assert payload["status"] == "error"
    assert payload["message"] == (
        f"reading CloudWatch Logs group {GROUP} failed with AccessDeniedException: "
        "not authorized to perform logs:FilterLogEvents"
    )


def test_serialize_round_trips_exactly():
    trigger = make_trigger(
        known_result={"failed": True, "error_type": "E", "error_message": "m", "stack_trace": None},
        result={"value": {"n": 1, "correlation_id": CID}},
        botocore_config={"retries": {"total_max_attempts": 1}},
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_lambda_deferrable.triggers.LambdaInvocationTrigger"
    assert LambdaInvocationTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert json.loads(json.dumps(kwargs)) == kwargs


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("poll_interval", math.nan),
        ("poll_interval", 0.001),
        ("deadline", math.inf),
        ("invoked_at", 1.7e12),  # milliseconds, not seconds
        ("max_lines", math.nan),
        ("max_bytes", 2.5),
        ("ingestion_allowance_seconds", -1),
        ("clock_skew_seconds", True),
        ("settle_seconds", "3"),
        ("result", ["not", "carried"]),
    ],
)
def test_recreating_from_bad_kwargs_is_refused_by_name(name, value):
    _, kwargs = make_trigger().serialize()
    with pytest.raises(ValueError, match=rf"FollowSettings for 'example-lambda-function': {name} must be"):
        LambdaInvocationTrigger(**(kwargs | {name: value}))


@pytest.mark.asyncio
async def test_the_event_carries_the_result_back(logs_client):
    lines.put(logs_client, GROUP, successful_invocation())
    carried = {"value": {"n": 1, "correlation_id": CID}}
    payload = await first_event(make_trigger(result=carried))
    assert payload["status"] == "success"
    assert payload["result"] == carried


@pytest.mark.asyncio
async def test_recreated_trigger_reaches_the_same_outcome_with_the_same_lines(logs_client):
    first_half = successful_invocation()[:3]
    second_half = successful_invocation()[3:]
    lines.put(logs_client, GROUP, first_half)
    original = make_trigger()
    with pytest.raises(asyncio.TimeoutError):
        await first_event(original, timeout=0.8)  # a triggerer dies mid-way
    lines.put(logs_client, GROUP, second_half)
    _, kwargs = original.serialize()
    payload = await first_event(LambdaInvocationTrigger(**kwargs))
    assert payload["status"] == "success"
    assert messages(payload) == [
        lines.start(RID),
        "Function started",
        "iteration 1 of 1",
        "Function ended",
        lines.end(RID),
        lines.report(RID),
    ]
    assert original.serialize()[1] == kwargs  # running never changed what a restart reads


def test_trigger_module_has_no_blocking_calls():
    source = open(
        os.path.join(os.path.dirname(__file__), "..", "airflow_lambda_deferrable", "provider", "trigger.py")
    ).read()
    assert "time.sleep" not in source and "boto3" not in source


@pytest.mark.asyncio
async def test_a_fast_outcome_waits_for_fire_after(logs_client):
    lines.put(logs_client, GROUP, successful_invocation())
    started = time.time()
    payload = await first_event(make_trigger(fire_after=started + 1.5))
    assert payload["status"] == "success"
    assert time.time() >= started + 1.5


@pytest.mark.asyncio
async def test_a_line_without_ids_ingested_after_the_end_is_still_ours(logs_client):
    # The runtime's error line was logged before END but CloudWatch makes it visible only later.
    stamp = lines.now_ms()
    lines.put_at(
        logs_client, GROUP, [(stamp, lines.start(RID)), (stamp + 20, lines.end(RID)), (stamp + 21, lines.report(RID))]
    )
    late = write_later(
        0.8, lambda: lines.put_at(logs_client, GROUP, [(stamp + 10, lines.unhandled("OSError", "disk full"))])
    )
    payload = await first_event(make_trigger(settle_seconds=2.0))
    late.join()
    assert payload["status"] == "failed" and payload["message"] == "OSError: disk full"
    assert messages(payload) == [lines.start(RID), "OSError: disk full", lines.end(RID), lines.report(RID)]


@pytest.mark.asyncio
async def test_a_throttled_rereading_of_the_stretch_is_retried(moto, logs_client, monkeypatch):
    stamp = lines.now_ms()
    lines.put_at(
        logs_client, GROUP, [(stamp, lines.start(RID)), (stamp + 20, lines.end(RID)), (stamp + 21, lines.report(RID))]
    )
    with FaultProxy(moto) as proxy:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_FLAKY", aws_connection(proxy.url))
        trigger = make_trigger(
            aws_conn_id="aws_flaky", settle_seconds=1.0, botocore_config={"retries": {"total_max_attempts": 1}}
        )
        task = asyncio.create_task(first_event(trigger))
        await asyncio.sleep(0.6)  # the end is seen and the stretch read once
        lines.put_at(logs_client, GROUP, [(stamp + 10, lines.unhandled("OSError", "disk full"))])
        proxy.fail_next("FilterLogEvents", 1, body_contains='"logStreamNames"')  # the second stretch read
        payload = await task
    assert payload["status"] == "failed" and payload["message"] == "OSError: disk full"


def test_a_read_is_wanted_when_a_settle_window_or_the_deadline_ends():
    now = 1_800_000_000.0
    settings = make_trigger(poll_interval=2.0, settle_seconds=1.0, deadline=now + 600).settings

    def wanted(log: InvocationLog, checked_at: float, deadline: float = now + 600) -> float | None:
        return read_wanted_at(
            log, now=now, checked_at=checked_at, settings=dataclasses.replace(settings, deadline=deadline)
        )

    log = InvocationLog(correlation_id=CID, ended_seen_at=now - 100)
    assert wanted(log, checked_at=now - 98.5) is None  # a read began after it settled: the regular pace
    assert wanted(log, checked_at=now - 101) == now + 0.05  # none did: read at once
    log.ended_seen_at = now
    assert wanted(log, checked_at=now) == now + 1.0  # read when it settles
    # The request's stretch brought its end marker and an ERROR line later: its end's settle window alone counts.
    log.end_marker_seen_at = log.failure_seen_at = now + 0.5
    assert wanted(log, checked_at=now + 1.1) is None
    assert wanted(InvocationLog(correlation_id=CID, failure_seen_at=now), checked_at=now) == now + 1.0
    assert wanted(InvocationLog(correlation_id=CID), checked_at=now, deadline=now + 0.5) == now + 0.5
    assert wanted(InvocationLog(correlation_id=CID), checked_at=now) is None  # nothing ends soon


@pytest.mark.asyncio
async def test_request_ids_of_the_wrong_shape_are_not_learned(moto, logs_client, monkeypatch):
    # Lines with our correlation id that name a 1,100-character request id, and one with a quote.
    odd = [lines.powertools(CID, "x" * 1100, "odd one"), lines.powertools(CID, 'a"b', "odd two")]
    lines.put(logs_client, GROUP, [*successful_invocation()[:2], *odd, *successful_invocation()[2:]])
    with FaultProxy(moto) as proxy:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_WATCHED", aws_connection(proxy.url))
        payload = await first_event(make_trigger(aws_conn_id="aws_watched"))
    assert payload["status"] == "success"
    # They claim another request: foreign, whatever correlation id they carry.
    assert not {"odd one", "odd two"} & set(messages(payload))
    patterns = [body.get("filterPattern", "") for _, body in proxy.requests_of("FilterLogEvents")]
    assert max(len(pattern) for pattern in patterns) <= 1024


@pytest.mark.asyncio
async def test_the_logs_client_makes_one_attempt_and_keeps_the_users_botocore_settings(moto, monkeypatch):
    tuned = json.loads(aws_connection(moto))
    tuned["extra"]["config_kwargs"] = {"connect_timeout": 7, "retries": {"mode": "legacy", "max_attempts": 5}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_TUNED", json.dumps(tuned))
    async with await make_trigger(aws_conn_id="aws_tuned").logs_client() as client:
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
        assert client.meta.config.connect_timeout == 7  # from the connection
    trigger = make_trigger(botocore_config={"read_timeout": 9, "retries": {"max_attempts": 10}})
    async with await trigger.logs_client() as client:
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
        assert client.meta.config.read_timeout == 9  # from the trigger


@pytest.mark.asyncio
async def test_missing_credentials_are_waited_out_with_a_fresh_client(moto, logs_client, monkeypatch, caplog, capfd):
    lines.put(logs_client, GROUP, successful_invocation())
    # A connection without keys, and none in the environment: botocore raises NoCredentialsError.
    keyless = json.loads(aws_connection(moto))
    del keyless["login"], keyless["password"]
    monkeypatch.setenv("AIRFLOW_CONN_AWS_NO_KEYS", json.dumps(keyless))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    task = asyncio.create_task(first_event(make_trigger(aws_conn_id="aws_no_keys")))

    async def failed_once() -> None:  # the poller logs through `logging`, the trigger through structlog
        printed = ""
        while "Unable to locate credentials" not in caplog.text + printed:
            await asyncio.sleep(0.05)
            printed += capfd.readouterr().out

    with caplog.at_level("WARNING"):
        await asyncio.wait_for(failed_once(), 30)
    assert not task.done()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # the credentials come back (a refresh, a new role)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    payload = await task
    assert payload["status"] == "success"


# The structural scenarios again, in each log shape Lambda writes (text before 2026, text of 2026, JSON).
@pytest.mark.asyncio
@pytest.mark.parametrize("shape", lines.SHAPES)
async def test_success_without_marker_in_each_shape(logs_client, shape):
    written = [lines.request_start(shape, RID), "plain print output", *lines.request_end(shape, RID)]
    lines.put(logs_client, GROUP, written)
    payload = await first_event(make_trigger(end_marker=None, settle_seconds=1.0))
    assert payload["status"] == "success" and "no failure followed within 1s" in payload["message"]
    assert messages(payload) == [lines.shown(line) for line in written]


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", lines.SHAPES)
async def test_unhandled_exception_in_each_shape(logs_client, shape):
    lines.put(
        logs_client,
        GROUP,
        [
            lines.request_start(shape, RID),
            lines.runtime_unhandled(shape, RID, "KeyError", "'rows'"),
            *lines.request_end(shape, RID, status="error", error_type="Runtime.Unknown"),
        ],
    )
    payload = await first_event(make_trigger())
    assert (payload["status"], payload["message"], payload["error"]["type"]) == (
        "failed",
        "KeyError: 'rows'",
        "KeyError",
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", lines.SHAPES)
async def test_two_invocations_interleaved_in_one_stream_in_each_shape(logs_client, shape):
    """Managed Instances: requests run at once in one environment and stream (the operator reads that from
    the function's CapacityProviderConfig). An ordinary environment runs one at a time: see
    `test_platform_lines_printed_inside_our_stretch_do_not_hide_our_unhandled_error`."""
    theirs = "corr-someone-else"
    lines.put(
        logs_client,
        GROUP,
        [
            lines.request_start(shape, OTHER_RID),
            lines.powertools(theirs, OTHER_RID, "Function started"),
            lines.request_start(shape, RID),
            lines.powertools(CID, RID, "Function started"),
            lines.runtime_unhandled(shape, OTHER_RID, "ValueError", "not ours"),
            *lines.request_end(shape, OTHER_RID, status="error", error_type="Runtime.Unknown"),
            lines.powertools(CID, RID, "Function ended"),
            *lines.request_end(shape, RID),
        ],
    )
    payload = await first_event(make_trigger(claim_lines_without_ids=False))
    assert payload["status"] == "success"
    assert OTHER_RID not in json.dumps(payload["lines"]) and theirs not in json.dumps(payload["lines"])
    assert "not ours" not in json.dumps(payload["lines"])


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", lines.SHAPES)
async def test_a_timeout_in_each_shape_names_its_duration(logs_client, shape):
    written = [lines.request_start(shape, RID), lines.powertools(CID, RID, "iteration 1 of 40")]
    if shape == "text-old":
        written += [*lines.request_end(shape, RID, duration_ms=3000.0), lines.timed_out(RID, 3.0)]
    else:
        written += lines.request_end(shape, RID, status="timeout", duration_ms=3000.0)
    lines.put(logs_client, GROUP, written)
    payload = await first_event(make_trigger())
    assert (payload["status"], payload["message"]) == ("failed", "Task timed out after 3.00 seconds")


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", lines.SHAPES)
async def test_recreated_trigger_in_each_shape_reaches_the_same_outcome(logs_client, shape):
    first_half = [lines.request_start(shape, RID), lines.powertools(CID, RID, "Function started")]
    second_half = [lines.powertools(CID, RID, "Function ended"), *lines.request_end(shape, RID)]
    lines.put(logs_client, GROUP, first_half)
    original = make_trigger()
    with pytest.raises(asyncio.TimeoutError):
        await first_event(original, timeout=0.8)
    lines.put(logs_client, GROUP, second_half)
    payload = await first_event(LambdaInvocationTrigger(**original.serialize()[1]))
    assert payload["status"] == "success"
    assert messages(payload) == [lines.shown(line) for line in first_half + second_half]


@pytest.mark.asyncio
async def test_a_trigger_deferred_by_the_previous_version_resumes(logs_client):
    # The kwargs as version 0.1.0 (commit ca81cf3) serialized them: flat, with `late_arrival_seconds`.
    now = time.time()
    kwargs_of_previous_version = {
        "function_name": "example-lambda-function",
        "log_group": GROUP,
        "correlation_id": CID,
        "request_id": RID,
        "invoked_at": now,
        "deadline": now + 30,
        "qualifier": None,
        "invocation_type": "Event",
        "known_result": None,
        "result": None,
        "tenant_id": None,
        "claim_lines_without_ids": True,
        "allow_hidden_success": False,
        "end_marker": "Function ended",
        "correlation_id_key": "correlation_id",
        "poll_interval": 0.2,
        "settle_seconds": 0.6,
        "late_arrival_seconds": 45.0,
        "clock_skew_seconds": 60.0,
        "fire_after": 0.0,
        "max_lines": 500,
        "max_bytes": 262144,
        "aws_conn_id": MOTO_CONN_ID,
        "region_name": None,
        "verify": None,
        "botocore_config": None,
    }
    trigger = LambdaInvocationTrigger(**kwargs_of_previous_version)
    assert trigger.settings.ingestion_allowance_seconds == 45.0
    assert trigger.serialize()[1]["ingestion_allowance_seconds"] == 45.0
    lines.put(logs_client, GROUP, successful_invocation())
    payload = await first_event(trigger)
    assert payload["status"] == "success" and payload["message"] == "the function logged its end marker"


class ExecutionStatus:
    """A completion source other than logs (as a durable execution's status will be): after a while it
    learns the invocation's result."""

    def __init__(
        self, known: KnownResult | None, *, after: float, unfollowable: str | None = None, linger: float = 0.0
    ) -> None:
        self.known, self.after, self.unfollowable, self.linger = known, after, unfollowable, linger

    async def gather(self, evidence: Evidence, news: asyncio.Event) -> None:
        await asyncio.sleep(self.after)
        evidence.known, evidence.unfollowable = self.known, self.unfollowable
        news.set()
        await asyncio.sleep(self.linger)  # closing a client, say: the source ends after its news, quietly


@pytest.mark.asyncio
async def test_a_registered_source_adds_evidence_the_verdict_uses(logs_client, monkeypatch):
    lines.put(logs_client, GROUP, [lines.start(RID), lines.end(RID), lines.report(RID)])  # no end marker
    failed = KnownResult(failed=True, error_type="States.Timeout", error_message="the execution timed out")
    monkeypatch.setattr(triggers, "SOURCES", (*triggers.SOURCES, lambda trigger: ExecutionStatus(failed, after=0.1)))
    payload = await first_event(make_trigger(end_marker=None, settle_seconds=1.0))
    assert payload["status"] == "failed"
    assert payload["message"] == "States.Timeout: the execution timed out"


@pytest.mark.asyncio
async def test_a_source_that_ends_quietly_after_its_news_leaves_the_others_running(logs_client, monkeypatch):
    """Its news does not settle the verdict yet; its end alone is no news, and the log goes on deciding."""
    lines.put(logs_client, GROUP, [lines.start(RID), lines.end(RID), lines.report(RID)])
    failed = KnownResult(failed=True, error_type="States.Timeout", error_message="the execution timed out")
    status = ExecutionStatus(failed, after=0.1, linger=0.3)
    monkeypatch.setattr(triggers, "SOURCES", (*triggers.SOURCES, lambda trigger: status))
    payload = await first_event(make_trigger(end_marker=None, settle_seconds=1.0))
    assert payload["message"] == "States.Timeout: the execution timed out"


@pytest.mark.asyncio
async def test_a_source_that_cannot_follow_ends_in_an_error_event(logs_client, monkeypatch):
    lines.put(logs_client, GROUP, [lines.start(RID)])
    gone = ExecutionStatus(None, after=0.1, unfollowable="the execution was deleted")
    monkeypatch.setattr(triggers, "SOURCES", (*triggers.SOURCES, lambda trigger: gone))
    payload = await first_event(make_trigger())
    assert (payload["status"], payload["message"]) == ("error", "the execution was deleted")


@pytest.mark.asyncio
async def test_a_sources_own_failure_propagates(logs_client, monkeypatch):
    class Broken:
        async def gather(self, evidence: Evidence, news: asyncio.Event) -> None:
            raise RuntimeError("a bug in a source")

    lines.put(logs_client, GROUP, [lines.start(RID)])
    monkeypatch.setattr(triggers, "SOURCES", (*triggers.SOURCES, lambda trigger: Broken()))
    with pytest.raises(RuntimeError, match="a bug in a source"):
        await first_event(make_trigger())


def live_lines(printed: str) -> list[tuple[str, str]]:
    """(level, text after the label) of each ``[lambda live]`` record the trigger printed (Airflow's structlog
    writes ``<time> [<level>] <message> [<logger>] loc=...``)."""
    found = []
    for line in printed.splitlines():
        if "] [lambda live] " in line:
            level = line.split("[", 1)[1].split("]", 1)[0].strip()
            text = line.split("[lambda live] ", 1)[1].split(" [airflow_lambda_deferrable.", 1)[0]
            found.append((level, text))
    return found


@pytest.mark.asyncio
async def test_new_lines_are_logged_live_once_each_within_the_line_budget(logs_client, capfd):
    body = [lines.powertools(CID, RID, f"step {n}") for n in range(8)]
    lines.put(logs_client, GROUP, [lines.start(RID), *body, lines.powertools(CID, RID, "Function ended")])
    task = asyncio.create_task(first_event(make_trigger(max_lines=5)))
    await asyncio.sleep(1.0)  # read a few times before the request ends: nothing is repeated
    lines.put(logs_client, GROUP, [lines.end(RID), lines.report(RID)])
    payload = await task
    assert payload["status"] == "success"
    live = live_lines(capfd.readouterr().out)
    assert [text.split(" ", 2)[2] for _, text in live[:-1]] == [
        lines.start(RID),
        "step 0",
        "step 1",
        "step 2",
        "step 3",
    ]
    assert live[-1] == (
        "info",
        "further lines are not shown live (max_lines = 5); the task logs the invocation's lines when it resumes",
    )
    assert {level for level, _ in live} == {"info"}


@pytest.mark.asyncio
async def test_a_live_line_keeps_its_level_and_traceback(logs_client, capfd):
    lines.put(logs_client, GROUP, [lines.start(RID), lines.logged_exception(CID, RID), lines.end(RID)])
    await first_event(make_trigger())
    printed = capfd.readouterr().out
    assert [text.split(" ", 2)[1:] for level, text in live_lines(printed) if level == "error"] == [
        ["ERROR", "Function invocation failed"]
    ]
    assert "Function invocation failed\n  | Traceback (most recent call last):" in printed


# --- a timeout says which log group it read, whether it exists, and what was read there ---

NEVER_WRITTEN = "/aws/lambda/never-written"


@pytest.mark.asyncio
async def test_a_timeout_names_its_log_group_and_says_it_does_not_exist(moto):
    payload = await first_event(make_trigger(log_group=NEVER_WRITTEN, deadline=time.time() + 1.5))
    assert payload["status"] == "timeout"
    assert payload["message"].endswith(
        f"; log group {NEVER_WRITTEN} does not exist (DescribeLogGroups), and no line of this invocation was read there"
    )


@pytest.mark.asyncio
async def test_a_timeout_in_a_group_that_exists_says_how_many_of_its_lines_were_read(logs_client):
    lines.put(logs_client, GROUP, [lines.start(OTHER_RID), lines.start(RID)])  # ours started, never ended
    logs_client.create_log_group(logGroupName=f"{GROUP}-two")  # named like it: not it
    payload = await first_event(make_trigger(deadline=time.time() + 1.5))
    assert payload["status"] == "timeout"
    assert payload["message"].endswith(
        f"; log group {GROUP} exists (DescribeLogGroups), and 1 line(s) of this invocation were read there"
    )


@pytest.mark.asyncio
async def test_a_timeout_whose_log_group_cannot_be_checked_says_so(moto, logs_client, monkeypatch):
    lines.put(logs_client, GROUP, [])
    with FaultProxy(moto) as proxy:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_NO_DESCRIBE", aws_connection(proxy.url))
        proxy.fail_next("DescribeLogGroups", 1, code="AccessDeniedException", message="not authorized")
        payload = await first_event(make_trigger(aws_conn_id="aws_no_describe", deadline=time.time() + 1.5))
    assert payload["status"] == "timeout"
    assert payload["message"].endswith(
        f"; log group {GROUP} could not be checked (DescribeLogGroups failed with AccessDeniedException: "
        "not authorized), and no line of this invocation was read there"
    )
    assert proxy.count("DescribeLogGroups") == 1


@pytest.mark.asyncio
async def test_only_a_timeout_asks_about_its_log_group(moto, logs_client, monkeypatch):
    lines.put(logs_client, GROUP, successful_invocation())
    with FaultProxy(moto) as proxy:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_COUNTED", aws_connection(proxy.url))
        payload = await first_event(make_trigger(aws_conn_id="aws_counted"))
    assert payload["status"] == "success" and "log group" not in payload["message"]
    assert proxy.count("DescribeLogGroups") == 0


@pytest.mark.asyncio
async def test_fire_after_holds_when_the_wall_clock_steps_forward_after_the_trigger_starts(logs_client, monkeypatch):
    # `fire_after` is an epoch time, turned into a monotonic one as the trigger starts: a step of the wall
    # clock an hour forward just after does not let a fast outcome fire sooner (tests/test_clock_steps.py).
    from airflow_lambda_deferrable.runtime import clock

    lines.put(logs_client, GROUP, successful_invocation())
    offset = [0.0]
    monkeypatch.setattr(clock, "wall", lambda: time.time() + offset[0])
    held = 4.0
    started = time.monotonic()
    one = make_trigger(fire_after=time.time() + held)
    running = asyncio.create_task(first_event(one))
    while one._timeline is None:  # `run` reads the wall clock first
        await asyncio.sleep(0.01)
    offset[0] = 3600.0
    payload = await running
    assert payload["status"] == "success"
    assert time.monotonic() - started >= held - 0.001  # the two clocks are read one after the other
