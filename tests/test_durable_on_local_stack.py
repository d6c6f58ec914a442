"""Durable executions end to end against the local stack and AWS's own local durable server.

The example durable function (`lambda/src/durable_function.py`) runs in the real Python runtime; its
replays are real Lambda invocations with their own request ids and log lines. The operator runs with
``deferrable=False`` (its whole path, the trigger included, in this process); the trigger tests drive the
trigger as the triggerer would.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator
from airflow_lambda_deferrable.exceptions import (
    LambdaDurableExecutionFailed,
    LambdaInvokeError,
    LambdaInvokeInputError,
    LambdaLogsUnavailable,
)
from airflow_lambda_deferrable.provider.links import LambdaDurableExecutionLink
from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger
from airflow_lambda_deferrable.settings import FollowSettings
from airflow_lambda_deferrable.sources import log_lines
from local_aws import LocalAwsStack
from local_aws.deploy import zip_directory
from tests.conftest import aws_connection, local_client
from tests.fault_proxy import FaultProxy
from tests.test_operators import TaskInstanceStandIn, context_for

EXAMPLE = Path(__file__).resolve().parents[1] / "lambda" / "src"
HANDLERS = Path(__file__).parent / "local_aws_functions"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalAwsStack]:
    with LocalAwsStack(port=0, ingestion_delay=0.2) as running:
        yield running


@pytest.fixture
def counted(stack: LocalAwsStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A counting proxy in front of the stack, as Airflow connection ``local_counted``."""
    with FaultProxy(stack.endpoint_url) as proxy:
        monkeypatch.setenv("AIRFLOW_CONN_LOCAL_COUNTED", aws_connection(proxy.url))
        yield proxy


def create_function(stack: LocalAwsStack, prefix: str, **settings: Any) -> str:
    """Create a function (with a role of its own) from `settings`; return its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    role = local_client(stack.endpoint_url, "iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    local_client(stack.endpoint_url, "lambda").create_function(FunctionName=name, Role=role["Role"]["Arn"], **settings)
    return name


def make_durable_function(stack: LocalAwsStack, execution_timeout: int = 120) -> str:
    """Create the example durable function and publish version 1; return its name."""
    name = create_function(
        stack,
        "durable",
        Runtime="python3.13",
        Handler="durable_function.lambda_handler",
        Code={"ZipFile": zip_directory(EXAMPLE)},
        Timeout=30,
        DurableConfig={"ExecutionTimeout": execution_timeout, "RetentionPeriodInDays": 1},
    )
    local_client(stack.endpoint_url, "lambda").publish_version(FunctionName=name)
    return name


def make_plain_function(stack: LocalAwsStack) -> str:
    return create_function(
        stack,
        "plain",
        Runtime="python3.11",
        Handler="handlers.work",
        Code={"ZipFile": zip_directory(HANDLERS)},
        Timeout=10,
    )


def operator(name: str, **kwargs: Any) -> LambdaInvokeDeferrableOperator:
    return LambdaInvokeDeferrableOperator(
        task_id="durable",
        function_name=name,
        aws_conn_id="local_counted",
        deferrable=False,
        poll_interval=1,
        settle_seconds=1,
        **kwargs,
    )


def executions(stack: LocalAwsStack, name: str) -> list[dict[str, Any]]:
    client = local_client(stack.endpoint_url, "lambda")
    return client.list_durable_executions_by_function(FunctionName=name)["DurableExecutions"]


def test_a_durable_execution_succeeds_with_its_result_in_xcom_and_every_replays_lines(stack, counted, capsys):
    name = make_durable_function(stack)
    ti = TaskInstanceStandIn()
    result = operator(name, qualifier="1", payload={"wait_seconds": 2}).execute(context_for(ti))
    assert result["waited_seconds"] == 2
    assert re.fullmatch(r"[0-9a-f-]{36}", result["correlation_id"])
    output = capsys.readouterr().out
    # The wait ends one invocation; Lambda invokes the function again (a replay), with its own request id.
    replays = re.findall(r"\[lambda\] .*Replay started", output)
    assert len(replays) >= 2, output
    # Grouped by invocation: a header names each replay's request id before its lines.
    headers = re.findall(r"\[lambda\] --- invocation ([0-9a-f-]{36}) ---", output)
    assert len(headers) == len(set(headers)) >= 2, output
    assert len(re.findall(r"\[lambda\] .*Preparing: waiting 2 s next", output)) == 1
    assert "durable execution invoke-" in output  # named for the task try (task id "invoke")
    assert "SUCCEEDED" in output
    # The extra link opens the function version the execution ran.
    link = LambdaDurableExecutionLink().format_link(**ti.xcoms[LambdaDurableExecutionLink.key])
    assert link == f"https://console.aws.amazon.com/lambda/home?region=us-east-1#/functions/{name}/versions/1"


def test_a_plain_invocation_stores_no_durable_link(stack, counted):
    ti = TaskInstanceStandIn()
    operator(make_plain_function(stack)).execute(context_for(ti))
    assert LambdaDurableExecutionLink.key not in ti.xcoms


def test_a_failed_durable_execution_raises_its_error_type_and_message(stack, counted, capsys):
    name = make_durable_function(stack)
    with pytest.raises(LambdaDurableExecutionFailed) as raised:
        operator(name, qualifier="1", payload={"wait_seconds": 1, "to_fail": True}).execute(
            context_for(TaskInstanceStandIn())
        )
    message = str(raised.value)
    assert "ended FAILED" in message
    assert "RequestedFailure" in message and "to_fail was set: failing after a wait of 1 s" in message
    assert "Failing on request (to_fail) after the wait" in capsys.readouterr().out


def test_execute_run_again_in_the_same_try_gets_the_same_execution_back(stack, counted):
    name = make_durable_function(stack)
    ti = TaskInstanceStandIn()
    first = operator(name, qualifier="1", payload={"wait_seconds": 1}).execute(context_for(ti))
    # The worker died after invoking, say: the same try runs execute again.
    again = operator(name, qualifier="1", payload={"wait_seconds": 1}).execute(context_for(ti))
    assert again == first
    assert len(executions(stack, name)) == 1
    # A new try is a new execution.
    operator(name, qualifier="1", payload={"wait_seconds": 1}).execute(context_for(TaskInstanceStandIn(try_number=2)))
    assert len(executions(stack, name)) == 2


def test_another_payload_under_the_same_name_is_a_clear_error(stack, counted):
    name = make_durable_function(stack)
    operator(name, qualifier="1", payload={"wait_seconds": 1}, durable_execution_name="nightly-1").execute(
        context_for(TaskInstanceStandIn())
    )
    with pytest.raises(LambdaInvokeError, match="durable execution nightly-1 already exists with another payload"):
        operator(name, qualifier="1", payload={"wait_seconds": 2}, durable_execution_name="nightly-1").execute(
            context_for(TaskInstanceStandIn())
        )


def test_refused_before_invoking_unqualified_bad_name_or_a_name_for_a_plain_function(stack, counted):
    durable = make_durable_function(stack)
    with pytest.raises(LambdaInvokeInputError, match="is a durable function: .* give qualifier"):
        operator(durable).execute(context_for(TaskInstanceStandIn()))
    with pytest.raises(LambdaInvokeInputError, match="durable_execution_name must be 1 to 64"):
        operator(durable, qualifier="1", durable_execution_name="no spaces please").execute(
            context_for(TaskInstanceStandIn())
        )
    plain = make_plain_function(stack)
    with pytest.raises(LambdaInvokeInputError, match="is not a durable function"):
        operator(plain, durable_execution_name="x").execute(context_for(TaskInstanceStandIn()))
    assert counted.count("/invocations") == 0


def start(stack: LocalAwsStack, name: str, wait_seconds: int) -> tuple[FollowSettings, str]:
    """Start an execution as the operator does; return the settings of the trigger it would defer to."""
    client = local_client(stack.endpoint_url, "lambda")
    correlation_id = str(uuid.uuid4())
    execution_name = f"t-{uuid.uuid4().hex}"
    invoked_at = time.time()
    response = client.invoke(
        FunctionName=name,
        Qualifier="1",
        InvocationType="Event",
        DurableExecutionName=execution_name,
        Payload=f'{{"wait_seconds": {wait_seconds}, "correlation_id": "{correlation_id}"}}'.encode(),
    )
    settings = FollowSettings(
        function_name=name,
        log_group=f"/aws/lambda/{name}",
        correlation_id=correlation_id,
        request_id=response["ResponseMetadata"]["RequestId"],
        invoked_at=invoked_at,
        deadline=invoked_at + 120,
        qualifier="1",
        durable_execution_arn=response["DurableExecutionArn"],
        durable_execution_name=execution_name,
        aws_conn_id="local_counted",
        poll_interval=0.5,
        settle_seconds=1.0,
    )
    return settings, response["DurableExecutionArn"]


async def first_event(trigger: LambdaInvocationTrigger, timeout: float = 90) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return await asyncio.wait_for(first(), timeout)


def status_of(stack: LocalAwsStack, arn: str) -> str:
    return local_client(stack.endpoint_url, "lambda").get_durable_execution(DurableExecutionArn=arn)["Status"]


@pytest.mark.asyncio
async def test_a_trigger_recreated_mid_execution_resumes_and_ends_right(stack, counted):
    name = make_durable_function(stack)
    settings, arn = start(stack, name, wait_seconds=4)
    first = LambdaInvocationTrigger(settings)
    with pytest.raises(TimeoutError):
        await first_event(first, timeout=2)  # the triggerer stops while the execution waits
    assert status_of(stack, arn) == "RUNNING"
    classpath, kwargs = first.serialize()
    event = await first_event(LambdaInvocationTrigger(**kwargs))
    assert event["status"] == "success", event["message"]
    assert event["result"] == {"value": {"waited_seconds": 4, "correlation_id": settings.correlation_id}}
    assert event["durable_execution_arn"] == arn


@pytest.mark.asyncio
async def test_on_kill_stops_the_execution_and_the_trigger_reports_it_stopped(stack, counted):
    name = make_durable_function(stack)
    settings, arn = start(stack, name, wait_seconds=60)
    trigger = LambdaInvocationTrigger(settings)
    trigger.task_id = "durable"
    await trigger.on_kill()
    assert status_of(stack, arn) == "STOPPED"
    event = await first_event(LambdaInvocationTrigger(settings))
    assert event["status"] == "failed"
    # Lambda keeps the error StopDurableExecution was given: the task is named.
    assert "ended STOPPED: AirflowTaskKilled: the Airflow task durable was killed by a user" in event["message"]


@pytest.mark.asyncio
async def test_on_kill_leaves_the_execution_running_when_asked_to(stack, counted):
    name = make_durable_function(stack)
    settings, arn = start(stack, name, wait_seconds=60)
    kept = FollowSettings(**{**settings.as_kwargs(), "stop_execution_on_kill": False})
    await LambdaInvocationTrigger(kept).on_kill()
    assert status_of(stack, arn) == "RUNNING"
    await LambdaInvocationTrigger(settings).on_kill()  # clean up


@pytest.mark.asyncio
async def test_throttled_status_reads_are_retried_and_an_unknown_execution_is_an_error(stack, counted):
    name = make_durable_function(stack)
    settings, arn = start(stack, name, wait_seconds=1)
    status_reads = "GET /2025-12-01/durable-executions/"
    counted.fail_next(status_reads, 2, "TooManyRequestsException", status=429)
    event = await first_event(LambdaInvocationTrigger(settings))
    assert event["status"] == "success", event["message"]
    assert counted.failed[status_reads] == 2
    assert counted.count(status_reads) >= 3

    missing = arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    # No queue allowance: "not found" is final at once, not "not visible yet".
    unknown = FollowSettings(
        **{**settings.as_kwargs(), "durable_execution_arn": missing, "queue_allowance_seconds": 0.0}
    )
    event = await first_event(LambdaInvocationTrigger(unknown))
    assert event["status"] == "error"
    assert "GetDurableExecution of" in event["message"] and "ResourceNotFoundException" in event["message"]


@pytest.mark.asyncio
async def test_the_log_is_read_slowly_while_an_execution_waits_and_promptly_once_it_ends(stack, counted, monkeypatch):
    """An execution that runs for days is not followed by reading its log every poll interval. Here the
    log's slow pace is two minutes (a day-old execution's is five), set for a six-second wait."""
    name = make_durable_function(stack)

    async def follow(paced: bool) -> tuple[dict[str, Any], int]:
        if paced:
            monkeypatch.setattr(log_lines, "status_read_delay", lambda age, poll_interval: 120.0)
        settings, _ = start(stack, name, wait_seconds=6)
        before = counted.count("FilterLogEvents")
        # Without the hurry at the execution's end, the verdict would wait for the next slow read.
        event = await first_event(LambdaInvocationTrigger(settings), timeout=60)
        return event, counted.count("FilterLogEvents") - before

    steady_event, steady_calls = await follow(paced=False)
    paced_event, paced_calls = await follow(paced=True)
    assert steady_event["status"] == paced_event["status"] == "success", paced_event["message"]
    # Every replay's lines still reach the event.
    assert sum("Replay started" in line["message"] for line in paced_event["lines"]) >= 2
    assert paced_calls * 2 <= steady_calls, (paced_calls, steady_calls)


# -- an Event start that GetDurableExecution does not find yet ----------------------------------------------------

NOT_VISIBLE_YET = "is not visible yet (GetDurableExecution answered ResourceNotFoundException)"


@pytest.fixture(scope="module")
def shown_late() -> Iterator[LocalAwsStack]:
    """A stack whose GetDurableExecution finds an Event start only 3 s after it (the first read comes sooner)."""
    with LocalAwsStack(port=0, ingestion_delay=0.2, durable_visibility_delay=3.0) as running:
        yield running


@pytest.fixture(scope="module")
def shown_too_late() -> Iterator[LocalAwsStack]:
    """A stack whose GetDurableExecution finds an Event start only 30 s after it, far past the queue allowance."""
    with LocalAwsStack(port=0, ingestion_delay=0.2, durable_visibility_delay=30.0) as running:
        yield running


def hidden_operator(
    stack: LocalAwsStack, monkeypatch: pytest.MonkeyPatch, name: str, **kwargs: Any
) -> LambdaInvokeDeferrableOperator:
    monkeypatch.setenv("AIRFLOW_CONN_LOCAL_HIDING", aws_connection(stack.endpoint_url))
    return LambdaInvokeDeferrableOperator(
        task_id="durable",
        function_name=name,
        aws_conn_id="local_hiding",
        deferrable=False,
        poll_interval=1,
        settle_seconds=1,
        **kwargs,
    )


@pytest.mark.parametrize("qualifier", ["1", "$LATEST"])
@pytest.mark.parametrize("to_fail", [False, True], ids=["succeeds", "fails"])
def test_an_execution_found_within_the_queue_allowance_is_waited_for_and_decides(
    shown_late, monkeypatch, capsys, qualifier, to_fail
):
    name = make_durable_function(shown_late)
    task = hidden_operator(
        shown_late,
        monkeypatch,
        name,
        qualifier=qualifier,
        payload={"wait_seconds": 1, "to_fail": to_fail},
        queue_allowance_seconds=15,
    )
    if to_fail:
        with pytest.raises(LambdaDurableExecutionFailed, match="ended FAILED: .*RequestedFailure"):
            task.execute(context_for(TaskInstanceStandIn()))
    else:
        result = task.execute(context_for(TaskInstanceStandIn()))
        assert result["waited_seconds"] == 1 and "correlation_id" in result
    output = capsys.readouterr().out
    # Said once, with why it is waited for and for how long.
    assert output.count(NOT_VISIBLE_YET) == 1, output
    assert "it starts when Lambda takes the Event from its queue" in output
    assert "Reading it again until 15 s after the invoke" in output


@pytest.mark.parametrize("qualifier", ["1", "$LATEST"])
@pytest.mark.parametrize("to_fail", [False, True], ids=["would_succeed", "would_fail"])
def test_an_execution_not_found_past_the_queue_allowance_fails_the_task_saying_what_was_asked(
    shown_too_late, monkeypatch, capsys, qualifier, to_fail
):
    name = make_durable_function(shown_too_late)
    task = hidden_operator(
        shown_too_late,
        monkeypatch,
        name,
        qualifier=qualifier,
        payload={"wait_seconds": 1, "to_fail": to_fail},
        queue_allowance_seconds=3,
    )
    with pytest.raises(LambdaLogsUnavailable) as raised:
        task.execute(context_for(TaskInstanceStandIn()))
    arn = rf"arn:aws:lambda:us-east-1:\d{{12}}:function:{name}:{re.escape(qualifier)}/durable-execution/[\w-]+/[\w-]+"
    found = re.search(
        rf"could not be followed: GetDurableExecution of (?P<arn>{arn}) answered ResourceNotFoundException "
        rf"\(Durable execution (?P=arn) does not exist\) (?P<waited>[\d.]+) s after the invoke, past the task's "
        r"queue_allowance_seconds \(3 s\) for an Event invoke",
        str(raised.value),
    )
    assert found, str(raised.value)
    assert float(found["waited"]) >= 3
    assert capsys.readouterr().out.count(NOT_VISIBLE_YET) == 1
