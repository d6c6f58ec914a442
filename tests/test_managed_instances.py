"""Lambda Managed Instances: JSON logs only, several requests at once in one stream, and (reported by one
source, DataDog/datadog-lambda-extension PR #1299) no END: per request ``platform.start`` and
``platform.report``, no ``platform.runtimeDone``.

Each outcome is followed on the local stack in both shapes: the reported one (the stack's default) and with
``platform.runtimeDone`` as well (``managed_instances_runtime_done=True``, with ``SystemLogLevel`` DEBUG so
that a success writes it too). The trigger runs as the operator sets it up for these functions
(``claim_lines_without_ids=False``).
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator
from airflow_lambda_deferrable.verdict.log_lines import parse_event
from airflow_lambda_deferrable.verdict.outcome import InvocationLog, decide
from local_aws import LocalAwsStack, json_logging
from local_aws.deploy import zip_directory
from tests.conftest import aws_connection, follow_event_invoke, local_client
from tests.test_operators import TaskInstanceStandIn, context_for

HANDLERS = Path(__file__).parent / "local_aws_functions"
CAPACITY = {
    "LambdaManagedInstancesCapacityProviderConfig": {
        "CapacityProviderArn": "arn:aws:lambda:us-east-1:123456789012:capacity-provider:local",
        "PerExecutionEnvironmentMaxConcurrency": 3,
    }
}
REPORT_ONLY = "report-only"
WITH_RUNTIME_DONE = "with-runtime-done"
MODES = [REPORT_ONLY, WITH_RUNTIME_DONE]
# The platform lines of one request, as the trigger shows them (first word of START / RUNTIME DONE / REPORT).
PLATFORM_LINES = {REPORT_ONLY: ["START", "REPORT"], WITH_RUNTIME_DONE: ["START", "RUNTIME", "REPORT"]}

# Three requests that meet: each logs its start, then waits until all three have started, so that their
# lines interleave in the one stream whatever the machine's load (a sleep alone would not promise it).
MEETING_HANDLER = """
import logging
import pathlib
import time

logger = logging.getLogger("work")


def handler(event, context):
    item = event["item"]
    logger.info("work %s begins", item)
    print(f"printed during work {item}")
    room = pathlib.Path(event["room"])
    (room / context.aws_request_id).touch()
    give_up = time.monotonic() + 30
    while len(list(room.iterdir())) < event["expected"] and time.monotonic() < give_up:
        time.sleep(0.05)
    time.sleep(event.get("then_sleep", 0))
    if event.get("fail"):
        raise ValueError(f"work {item} failed")
    logger.info("work %s ends", item)
    return {"item": item}
"""


@pytest.fixture(scope="module")
def stacks() -> Iterator[dict[str, LocalAwsStack]]:
    with (
        LocalAwsStack(port=0, ingestion_delay=0.2) as default,
        LocalAwsStack(port=0, ingestion_delay=0.2, managed_instances_runtime_done=True) as with_done,
    ):
        yield {REPORT_ONLY: default, WITH_RUNTIME_DONE: with_done}


def make_function(stack: LocalAwsStack, mode: str, handler: str, code: bytes | None = None, **settings: Any) -> str:
    """Create a Managed Instances function (the stack makes its logs JSON whatever is asked)."""
    name = f"mi-{uuid.uuid4().hex[:8]}"
    role = local_client(stack.endpoint_url, "iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    system_level = "DEBUG" if mode == WITH_RUNTIME_DONE else "INFO"
    local_client(stack.endpoint_url, "lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler=handler,
        Code={"ZipFile": code or zip_directory(HANDLERS)},
        LoggingConfig={"SystemLogLevel": system_level},
        **{"Timeout": 10, "CapacityProviderConfig": CAPACITY, **settings},
    )
    return name


async def follow(stack: LocalAwsStack, monkeypatch: pytest.MonkeyPatch, name: str, payload: dict[str, Any]) -> dict:
    """Invoke asynchronously, then run the trigger as the operator sets it up here; return its event."""
    return await follow_event_invoke(
        stack.endpoint_url,
        monkeypatch,
        name,
        json.dumps(payload).encode(),
        follow_seconds=60,
        claim_lines_without_ids=False,
        end_marker=None,
    )


def platform_lines(event: dict) -> list[str]:
    return [
        line["message"].split(" ")[0]
        for line in event["lines"]
        if line["message"].startswith(("START RequestId", "RUNTIME DONE RequestId", "REPORT RequestId"))
    ]


def assert_only_its_own_lines(event: dict, mode: str) -> None:
    """The task log gets the request's own lines: its platform lines in this mode's shape, and no line of
    another request or without ids (a ``print`` in its stretch is counted, never shown)."""
    assert {line["request_id"] for line in event["lines"]} == {event["request_id"]}
    assert platform_lines(event) == PLATFORM_LINES[mode]
    assert not any(line["message"].startswith("printed") for line in event["lines"])
    assert event["unattributed_lines"] >= 1


# -- the stack's lines -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_the_stack_writes_runtime_done_for_managed_instances_only_when_asked(stacks, mode):
    stack = stacks[mode]
    name = make_function(stack, mode, "handlers.work")
    client = local_client(stack.endpoint_url, "lambda")
    ids = [
        client.invoke(FunctionName=name, Payload=json.dumps(payload))["ResponseMetadata"]["RequestId"]
        for payload in ({"item": 0}, {"item": 1, "fail": True})
    ]
    assert stack.flush_logs()
    events = local_client(stack.endpoint_url, "logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    records = [json.loads(e["message"]) for e in events if e["message"].startswith('{"time"')]
    for request_id in ids:
        kinds = [r["type"] for r in records if r["record"].get("requestId") == request_id]
        expected = ["platform.start", "platform.report"]
        if mode == WITH_RUNTIME_DONE:
            expected.insert(1, "platform.runtimeDone")
        assert kinds == expected, request_id
    report = next(r["record"] for r in records if r["type"] == "platform.report" and r["record"]["requestId"] == ids[1])
    assert (report["status"], report["errorType"]) == ("error", "Runtime.Unknown")


def test_an_ordinary_json_function_still_writes_runtime_done_of_a_failure(stacks):
    stack = stacks[REPORT_ONLY]
    name = f"plain-{uuid.uuid4().hex[:8]}"
    role = local_client(stack.endpoint_url, "iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    client = local_client(stack.endpoint_url, "lambda")
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="handlers.work",
        Code={"ZipFile": zip_directory(HANDLERS)},
        LoggingConfig={"LogFormat": "JSON"},
        Timeout=10,
    )
    client.invoke(FunctionName=name, Payload=json.dumps({"item": 0, "fail": True}))
    assert stack.flush_logs()
    events = local_client(stack.endpoint_url, "logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    kinds = [json.loads(e["message"])["type"] for e in events if e["message"].startswith('{"time"')]
    assert kinds == ["platform.start", "platform.runtimeDone", "platform.report"]


def test_one_request_per_environment_on_managed_instances_still_logs_json(stacks):
    stack = stacks[REPORT_ONLY]
    config = {**CAPACITY["LambdaManagedInstancesCapacityProviderConfig"], "PerExecutionEnvironmentMaxConcurrency": 1}
    one_at_a_time = {"LambdaManagedInstancesCapacityProviderConfig": config}
    name = make_function(stack, REPORT_ONLY, "handlers.work", CapacityProviderConfig=one_at_a_time)
    configuration = local_client(stack.endpoint_url, "lambda").get_function_configuration(FunctionName=name)
    assert configuration["LoggingConfig"]["LogFormat"] == "JSON"


# -- the verdict on each outcome, in both shapes -----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_success_is_decided_from_report(stacks, monkeypatch, mode):
    stack = stacks[mode]
    event = await follow(stack, monkeypatch, make_function(stack, mode, "handlers.work"), {"item": 0})
    assert event["status"] == "success", event["message"]
    assert "Lambda reported the end of the request" in event["message"]
    assert [line["message"] for line in event["lines"] if line["message"].startswith("work")] == [
        "work 0 begins",
        "work 0 ends",
    ]
    assert_only_its_own_lines(event, mode)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_an_unhandled_exception_takes_its_cause_from_the_runtimes_line(stacks, monkeypatch, mode):
    stack = stacks[mode]
    event = await follow(stack, monkeypatch, make_function(stack, mode, "handlers.work"), {"item": 1, "fail": True})
    assert (event["status"], event["error"]["type"], event["error"]["message"]) == (
        "failed",
        "ValueError",
        "work 1 failed",
    )
    # The runtime's own line names the cause; the report only says Runtime.Unknown.
    assert event["message"] == "ValueError: work 1 failed"
    assert "raise ValueError" in (event["error"]["detail"] or "")
    assert_only_its_own_lines(event, mode)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_a_dead_runtime_is_named_by_the_report_alone(stacks, monkeypatch, mode):
    stack = stacks[mode]
    event = await follow(stack, monkeypatch, make_function(stack, mode, "handlers.crash"), {"how": "exit"})
    assert (event["status"], event["error"]["type"]) == ("failed", "Runtime.ExitError")
    assert platform_lines(event) == PLATFORM_LINES[mode]


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_a_timeout_is_decided_from_the_reports_status(stacks, monkeypatch, mode):
    stack = stacks[mode]
    name = make_function(stack, mode, "handlers.sleep", Timeout=1)
    event = await follow(stack, monkeypatch, name, {"seconds": 5})
    assert (event["status"], event["message"], event["error"]["type"]) == (
        "failed",
        "Task timed out after 1.00 seconds",
        "Sandbox.Timedout",
    )
    assert_only_its_own_lines(event, mode)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_three_interleaved_requests_in_one_stream_each_get_their_own_verdict_and_lines(
    stacks, monkeypatch, tmp_path, mode
):
    """A success, an unhandled exception and a timeout, running at once in one environment's stream."""
    stack = stacks[mode]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("meet.py", MEETING_HANDLER)
    name = make_function(stack, mode, "meet.handler", archive.getvalue(), Timeout=8)
    meeting = {"room": str(tmp_path), "expected": 3}
    payloads = [
        {**meeting, "item": 0},
        {**meeting, "item": 1, "fail": True},
        {**meeting, "item": 2, "then_sleep": 60},
    ]
    events = await asyncio.gather(*(follow(stack, monkeypatch, name, payload) for payload in payloads))

    assert [event["status"] for event in events] == ["success", "failed", "failed"]
    assert (events[1]["error"]["type"], events[1]["error"]["message"]) == ("ValueError", "work 1 failed")
    assert (events[2]["error"]["type"], events[2]["message"]) == (
        "Sandbox.Timedout",
        "Task timed out after 8.00 seconds",
    )
    for item, event in enumerate(events):
        mine = [line["message"] for line in event["lines"] if line["message"].startswith("work ")]
        assert mine and all(message.startswith(f"work {item} ") for message in mine), (item, mine)
        assert_only_its_own_lines(event, mode)
    assert len({line["stream"] for event in events for line in event["lines"]}) == 1
    starts = [line["timestamp"] for e in events for line in e["lines"] if line["message"].startswith("START")]
    reports = [line["timestamp"] for e in events for line in e["lines"] if line["message"].startswith("REPORT")]
    assert max(starts) <= min(reports), "the three requests ran at once"


# -- the decision over plain lines (the stack's own event builders) ----------------------------------------------

RID = "3f2b1c4d-1111-2222-3333-444455556666"


def _decided(ends: list[str], function_lines: list[str]) -> Any:
    start = json_logging.start_event(RID, version="$LATEST", function_arn="arn:aws:lambda:::function:f", at=1.0)
    messages = [start, *function_lines, *ends]
    lines = [
        parse_event({"eventId": str(n), "timestamp": 100 + n, "logStreamName": "s", "message": message})
        for n, message in enumerate(messages)
    ]
    log = InvocationLog(correlation_id="corr-1", request_ids={RID}, claim_lines_without_ids=False)
    log.add(lines, seen_at=10.0)
    return decide(log, now=20.0, checked_at=20.0, deadline=1000.0, settle_seconds=5.0)


def _ends(runtime_done: bool, status: str, error_type: str | None, duration_ms: float = 12.0) -> list[str]:
    return json_logging.end_events(
        RID,
        status=status,
        error_type=error_type,
        duration_ms=duration_ms,
        memory_size_mb=128,
        max_memory_used_mb=40,
        init_duration_ms=None,
        at=2.0,
        system_level="DEBUG",
        runtime_done=runtime_done,
    )


@pytest.mark.parametrize("runtime_done", [False, True])
def test_report_alone_or_with_runtime_done_decides_the_same(runtime_done):
    raised = json.dumps(
        {"level": "ERROR", "errorMessage": "bad row", "errorType": "KeyError", "requestId": RID, "stackTrace": []}
    )
    success = _decided(_ends(runtime_done, "success", None), [])
    failed = _decided(_ends(runtime_done, "error", "Runtime.Unknown"), [raised])
    dead = _decided(_ends(runtime_done, "error", "Runtime.ExitError"), [])
    timed_out = _decided(_ends(runtime_done, "timeout", "Sandbox.Timedout", 5_400_000.0), [])
    assert success.status == "success"
    assert (failed.status, failed.error_type, failed.error_message) == ("failed", "KeyError", "bad row")
    assert (dead.status, dead.error_type) == ("failed", "Runtime.ExitError")
    assert (timed_out.status, timed_out.reason) == ("failed", "Task timed out after 5400.00 seconds")


# -- the deadline of a 90-minute asynchronous request -------------------------------------------------------------


def test_an_event_on_a_5400_second_function_is_followed_for_all_of_it(stacks, monkeypatch):
    """Managed Instances let an asynchronous request run 5,400 s: the operator's deadline follows Timeout."""
    stack = stacks[REPORT_ONLY]
    monkeypatch.setenv("AIRFLOW_CONN_LOCAL_MI", aws_connection(stack.endpoint_url))
    name = make_function(stack, REPORT_ONLY, "handlers.work", Timeout=5400)
    for max_wait_seconds, allowed in ((None, 300 + 5400 + 120), (6000.0, 6000)):
        operator = LambdaInvokeDeferrableOperator(
            task_id="invoke",
            function_name=name,
            payload={"item": 0},
            aws_conn_id="local_mi",
            max_wait_seconds=max_wait_seconds,
        )
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context_for(TaskInstanceStandIn()))
        settings = deferred.value.trigger.settings
        assert settings.deadline == pytest.approx(settings.invoked_at + allowed)
        assert (settings.function_timeout, settings.claim_lines_without_ids) == (5400, False)
        assert deferred.value.timeout.total_seconds() >= allowed
