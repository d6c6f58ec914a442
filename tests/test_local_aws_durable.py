"""Durable functions on the local stack: real boto3 clients over HTTP, the example durable function really running.

Executions are followed the way a caller follows them on Lambda: ``GetDurableExecution`` polled until a status,
with a generous overall deadline (never a tuned sleep), and CloudWatch Logs read once the stack has flushed them.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws import LocalAwsStack
from local_aws.deploy import zip_directory
from tests.conftest import local_client

# The durable SDKs are the "durable" extra (they need a newer boto3 than the package's lowest botocore allows).

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "lambda" / "src"
HANDLER = "durable_function.lambda_handler"
# botocore's pattern for DurableExecutionArn.
EXECUTION_ARN = re.compile(
    r"^arn:aws:lambda:us-east-1:\d{12}:function:(?P<function>[a-zA-Z0-9_-]+):(?P<qualifier>\$LATEST|[0-9]+)"
    r"/durable-execution/(?P<name>[a-zA-Z0-9_-]+)/(?P<id>[a-zA-Z0-9_-]+)$"
)
DEADLINE_SECONDS = 120.0
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalAwsStack]:
    with LocalAwsStack(port=0, ingestion_delay=0.2) as running:
        yield running


@pytest.fixture(scope="module")
def lambda_client(stack: LocalAwsStack) -> Any:
    return local_client(stack.endpoint_url, "lambda")


@pytest.fixture(scope="module")
def logs_client(stack: LocalAwsStack) -> Any:
    return local_client(stack.endpoint_url, "logs")


@pytest.fixture(scope="module")
def role_arn(stack: LocalAwsStack) -> str:
    iam = local_client(stack.endpoint_url, "iam")
    return iam.create_role(RoleName="test-durable", AssumeRolePolicyDocument="{}")["Role"]["Arn"]


@pytest.fixture(scope="module")
def code() -> bytes:
    return zip_directory(SOURCE)


@pytest.fixture
def make_durable(lambda_client: Any, role_arn: str, code: bytes) -> Callable[..., str]:
    """Create a durable function running the example; return its (unique) name."""

    def make(durable_config: dict[str, int] | None = None, **settings: Any) -> str:
        name = f"durable-{uuid.uuid4().hex[:10]}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role_arn,
            Handler=HANDLER,
            Code={"ZipFile": code},
            Timeout=30,
            Environment={"Variables": {"POWERTOOLS_SERVICE_NAME": "airflow"}},
            DurableConfig=durable_config or {"ExecutionTimeout": 300, "RetentionPeriodInDays": 1},
            **settings,
        )
        return name

    return make


def start(client: Any, function: str, payload: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """Start an execution asynchronously (``Event``) and return Invoke's answer."""
    extra = {"DurableExecutionName": name} if name else {}
    return client.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(payload), **extra)


def wait_for(client: Any, arn: str, statuses: set[str], seen: list[str] | None = None) -> dict[str, Any]:
    """Poll ``GetDurableExecution`` until its status is one of ``statuses``; fail past the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        execution = client.get_durable_execution(DurableExecutionArn=arn)
        if seen is not None and (not seen or seen[-1] != execution["Status"]):
            seen.append(execution["Status"])
        if execution["Status"] in statuses:
            return execution
        assert execution["Status"] not in TERMINAL, execution
        assert time.monotonic() < deadline, f"{arn} still {execution['Status']} after {DEADLINE_SECONDS:g} s"
        time.sleep(0.1)


def invocations(logs_client: Any, group: str) -> dict[str, list[str]]:
    """Return each invocation's lines (START to REPORT) by request id, read from every stream of ``group``."""
    by_request: dict[str, list[str]] = {}
    for stream in logs_client.describe_log_streams(logGroupName=group)["logStreams"]:
        events = logs_client.get_log_events(
            logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
        )["events"]
        current: list[str] | None = None
        for event in events:
            message = event["message"]
            start = re.match(r"START RequestId: (\S+) Version: ", message)
            if start:
                current = by_request.setdefault(start[1], [])
            if current is not None:
                current.append(message)
            if message.startswith("REPORT RequestId: "):
                current = None
    return by_request


# -- configuration -----------------------------------------------------------------------------------------------


def test_durable_config_is_recorded_and_returned(lambda_client: Any, make_durable: Callable[..., str]) -> None:
    name = make_durable({"ExecutionTimeout": 120})
    # Lambda's default retention is 14 days.
    expected = {"ExecutionTimeout": 120, "RetentionPeriodInDays": 14}
    assert lambda_client.get_function_configuration(FunctionName=name)["DurableConfig"] == expected
    assert lambda_client.get_function(FunctionName=name)["Configuration"]["DurableConfig"] == expected
    lambda_client.update_function_configuration(
        FunctionName=name, DurableConfig={"ExecutionTimeout": 60, "RetentionPeriodInDays": 3}
    )
    assert lambda_client.get_function_configuration(FunctionName=name)["DurableConfig"] == {
        "ExecutionTimeout": 60,
        "RetentionPeriodInDays": 3,
    }


def test_no_durable_server_without_durable_functions(code: bytes) -> None:
    """A stack whose functions are not durable never starts the durable server, even when they run."""
    with LocalAwsStack(port=0, ingestion_delay=0.2) as quiet:
        # Names of their own: moto's state is shared by every stack of this process.
        plain, durable = f"plain-{uuid.uuid4().hex[:8]}", f"durable-{uuid.uuid4().hex[:8]}"
        client = local_client(quiet.endpoint_url, "lambda")
        role = local_client(quiet.endpoint_url, "iam").create_role(
            RoleName=f"role-{plain}", AssumeRolePolicyDocument="{}"
        )
        client.create_function(
            FunctionName=plain,
            Runtime="python3.12",
            Role=role["Role"]["Arn"],
            Handler="lambda_function.lambda_handler",
            Code={"ZipFile": code},
            Timeout=30,
        )
        answer = client.invoke(FunctionName=plain, Payload=json.dumps({"n": 0}))
        assert "FunctionError" not in answer, answer["Payload"].read()
        assert client.list_durable_executions_by_function(FunctionName=plain)["DurableExecutions"] == []
        assert not quiet.durable_server_running
        # Creating a durable function does not start it either: its first Invoke does.
        client.create_function(
            FunctionName=durable,
            Runtime="python3.12",
            Role=role["Role"]["Arn"],
            Handler=HANDLER,
            Code={"ZipFile": code},
            DurableConfig={"ExecutionTimeout": 60},
        )
        assert not quiet.durable_server_running
        start(client, f"{durable}:$LATEST", {"wait_seconds": 1})
        assert quiet.durable_server_running


def test_visibility_delay_hides_an_event_start_from_get_durable_execution(code: bytes) -> None:
    """With ``durable_visibility_delay`` an execution an Event invoke started is not found for that long, as
    Lambda may answer while the event waits in its queue; a synchronous start is found at once."""
    delay = 2.0
    with LocalAwsStack(port=0, ingestion_delay=0.2, durable_visibility_delay=delay) as hiding:
        name = f"durable-{uuid.uuid4().hex[:8]}"
        client = local_client(hiding.endpoint_url, "lambda")
        role = local_client(hiding.endpoint_url, "iam").create_role(
            RoleName=f"role-{name}", AssumeRolePolicyDocument="{}"
        )
        client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role["Role"]["Arn"],
            Handler=HANDLER,
            Code={"ZipFile": code},
            DurableConfig={"ExecutionTimeout": 60},
        )
        before = time.monotonic()
        arn = start(client, f"{name}:$LATEST", {"wait_seconds": 1}, "hidden")["DurableExecutionArn"]
        not_found = 0
        while True:
            try:
                client.get_durable_execution(DurableExecutionArn=arn)
                break
            except ClientError as err:
                error = err.response["Error"]
                assert (error["Code"], error["Message"]) == (
                    "ResourceNotFoundException",
                    f"Durable execution {arn} does not exist",
                )
                assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 404
                not_found += 1
                assert time.monotonic() < before + DEADLINE_SECONDS
                time.sleep(0.1)
        assert not_found >= 1
        assert time.monotonic() - before >= delay  # never found before the delay (a lower bound)
        assert json.loads(wait_for(client, arn, {"SUCCEEDED"})["Result"])["waited_seconds"] == 1

        answer = client.invoke(
            FunctionName=f"{name}:$LATEST", Payload=json.dumps({"wait_seconds": 1}), DurableExecutionName="sync"
        )
        assert client.get_durable_execution(DurableExecutionArn=answer["DurableExecutionArn"])["Status"] == "SUCCEEDED"


# -- executions --------------------------------------------------------------------------------------------------


def test_execution_succeeds_after_its_wait_with_a_result(lambda_client: Any, make_durable: Callable[..., str]) -> None:
    function = make_durable()
    answer = start(lambda_client, f"{function}:$LATEST", {"correlation_id": "ok-1", "wait_seconds": 2}, "ok-1")
    assert answer["StatusCode"] == 202
    arn = answer["DurableExecutionArn"]
    match = EXECUTION_ARN.match(arn)
    assert match, arn
    assert (match["function"], match["qualifier"], match["name"]) == (function, "$LATEST", "ok-1")
    assert answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]

    execution = wait_for(lambda_client, arn, {"SUCCEEDED"})
    assert json.loads(execution["Result"]) == {"waited_seconds": 2, "correlation_id": "ok-1"}
    assert execution["DurableExecutionArn"] == arn
    assert execution["DurableExecutionName"] == "ok-1"
    assert execution["FunctionArn"].endswith(f":function:{function}:$LATEST")
    assert json.loads(execution["InputPayload"]) == {"correlation_id": "ok-1", "wait_seconds": 2}
    # The durable wait really separates start and end (a lower bound, whatever the machine's load).
    assert (execution["EndTimestamp"] - execution["StartTimestamp"]).total_seconds() >= 2
    history = lambda_client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    kinds = [event["EventType"] for event in history]
    assert kinds.index("WaitStarted") < kinds.index("WaitSucceeded") < kinds.index("ExecutionSucceeded")
    listed = lambda_client.list_durable_executions_by_function(FunctionName=function)["DurableExecutions"]
    assert [(item["DurableExecutionArn"], item["Status"]) for item in listed] == [(arn, "SUCCEEDED")]


def test_each_replay_is_an_invocation_with_its_own_lines(
    stack: LocalAwsStack, lambda_client: Any, logs_client: Any, make_durable: Callable[..., str]
) -> None:
    function = make_durable()
    answer = start(lambda_client, f"{function}:$LATEST", {"correlation_id": "logs-1", "wait_seconds": 1}, "logs-1")
    wait_for(lambda_client, answer["DurableExecutionArn"], {"SUCCEEDED"})
    assert stack.flush_logs()

    by_request = invocations(logs_client, f"/aws/lambda/{function}")
    # One invocation before the wait, one after it (the replay that finishes).
    assert len(by_request) >= 2, by_request
    for request_id, lines in by_request.items():
        assert lines[0].startswith(f"START RequestId: {request_id} Version: $LATEST")
        assert lines[-2] == f"END RequestId: {request_id}\n"
        assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
        assert "Status:" not in lines[-1]  # each replay returned normally
        records = [json.loads(line) for line in lines if line.startswith("{")]
        replay = [record for record in records if record["message"] == "Replay started"]
        assert len(replay) == 1, lines
        assert replay[0]["correlation_id"] == "logs-1"
        assert replay[0]["function_request_id"] == request_id
    messages = [json.loads(line)["message"] for lines in by_request.values() for line in lines if line[0] == "{"]
    # Checkpointed steps ran once, whatever the replays.
    assert messages.count("Preparing: waiting 1 s next") == 1
    assert messages.count("Finishing after a wait of 1 s") == 1


def test_failing_execution_reports_its_error(lambda_client: Any, make_durable: Callable[..., str]) -> None:
    function = make_durable()
    answer = start(lambda_client, f"{function}:$LATEST", {"wait_seconds": 1, "to_fail": True}, "fails")
    execution = wait_for(lambda_client, answer["DurableExecutionArn"], {"FAILED"})
    assert execution["Error"]["ErrorType"].endswith("RequestedFailure")
    assert execution["Error"]["ErrorMessage"] == "to_fail was set: failing after a wait of 1 s"
    assert "Result" not in execution


def test_request_response_waits_for_the_result(lambda_client: Any, make_durable: Callable[..., str]) -> None:
    function = make_durable()
    version = lambda_client.publish_version(FunctionName=function)["Version"]
    lambda_client.create_alias(FunctionName=function, Name="live", FunctionVersion=version)
    answer = lambda_client.invoke(
        FunctionName=f"{function}:live",
        Payload=json.dumps({"correlation_id": "sync", "wait_seconds": 1}),
        DurableExecutionName="sync-1",
    )
    assert answer["StatusCode"] == 200
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"waited_seconds": 1, "correlation_id": "sync"}
    assert answer["ExecutedVersion"] == version
    # An alias resolves to its version, and the ARN names the version.
    match = EXECUTION_ARN.match(answer["DurableExecutionArn"])
    assert match and match["qualifier"] == version, answer["DurableExecutionArn"]

    failed = lambda_client.invoke(
        FunctionName=f"{function}:live", Payload=json.dumps({"wait_seconds": 1, "to_fail": True})
    )
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert error["errorType"].endswith("RequestedFailure")
    assert error["errorMessage"] == "to_fail was set: failing after a wait of 1 s"


def test_stop_ends_a_running_execution(lambda_client: Any, make_durable: Callable[..., str]) -> None:
    function = make_durable()
    answer = start(lambda_client, f"{function}:$LATEST", {"wait_seconds": 600}, "to-stop")
    arn = answer["DurableExecutionArn"]
    # The wait lasts ten minutes: the execution is RUNNING when the stop arrives.
    assert wait_for(lambda_client, arn, {"RUNNING"})["Status"] == "RUNNING"
    stopped = lambda_client.stop_durable_execution(DurableExecutionArn=arn)
    assert stopped["StopTimestamp"]
    execution = wait_for(lambda_client, arn, {"STOPPED"})
    assert execution["EndTimestamp"]


def test_stop_keeps_the_error_it_was_given(lambda_client: Any, make_durable: Callable[..., str]) -> None:
    """botocore sends the Error structure as the whole body; the execution records it."""
    function = make_durable()
    arn = start(lambda_client, f"{function}:$LATEST", {"wait_seconds": 600}, "to-stop-why")["DurableExecutionArn"]
    wait_for(lambda_client, arn, {"RUNNING"})
    lambda_client.stop_durable_execution(
        DurableExecutionArn=arn, Error={"ErrorType": "Cancelled", "ErrorMessage": "no longer needed"}
    )
    error = wait_for(lambda_client, arn, {"STOPPED"})["Error"]
    assert (error["ErrorType"], error["ErrorMessage"]) == ("Cancelled", "no longer needed")


# -- names and qualifiers ----------------------------------------------------------------------------------------


def test_same_name_same_payload_is_the_same_execution(lambda_client: Any, make_durable: Callable[..., str]) -> None:
    function = make_durable()
    payload = {"correlation_id": "idem", "wait_seconds": 1}
    first = start(lambda_client, f"{function}:$LATEST", payload, "idem")
    second = start(lambda_client, f"{function}:$LATEST", payload, "idem")
    assert second["DurableExecutionArn"] == first["DurableExecutionArn"]
    wait_for(lambda_client, first["DurableExecutionArn"], {"SUCCEEDED"})
    listed = lambda_client.list_durable_executions_by_function(FunctionName=function)["DurableExecutions"]
    assert [item["DurableExecutionName"] for item in listed] == ["idem"]

    with pytest.raises(ClientError) as raised:
        start(lambda_client, f"{function}:$LATEST", {**payload, "wait_seconds": 2}, "idem")
    assert raised.value.response["Error"]["Code"] == "DurableExecutionAlreadyStartedException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert isinstance(raised.value, lambda_client.exceptions.DurableExecutionAlreadyStartedException)


def test_unqualified_durable_function_is_refused(lambda_client: Any, make_durable: Callable[..., str]) -> None:
    function = make_durable()
    for reference in (function, f"arn:aws:lambda:us-east-1:123456789012:function:{function}"):
        with pytest.raises(ClientError) as raised:
            start(lambda_client, reference, {"wait_seconds": 1})
        error = raised.value.response["Error"]
        assert (error["Code"], error["Message"]) == (
            "InvalidParameterValueException",
            "You cannot invoke a durable function using an unqualified ARN.",
        )
    assert lambda_client.list_durable_executions_by_function(FunctionName=function)["DurableExecutions"] == []


@pytest.mark.parametrize("name", ["has space", "dots.are.out", "x" * 65, "ünïcode"])
def test_invalid_execution_names_are_refused(lambda_client: Any, make_durable: Callable[..., str], name: str) -> None:
    function = make_durable()
    with pytest.raises(ClientError) as raised:
        start(lambda_client, f"{function}:$LATEST", {"wait_seconds": 1}, name)
    assert raised.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_generated_name_and_unknown_execution(lambda_client: Any, make_durable: Callable[..., str]) -> None:
    function = make_durable()
    answer = start(lambda_client, f"{function}:$LATEST", {"wait_seconds": 1})
    match = EXECUTION_ARN.match(answer["DurableExecutionArn"])
    assert match, answer["DurableExecutionArn"]
    execution = wait_for(lambda_client, answer["DurableExecutionArn"], {"SUCCEEDED"})
    assert execution["DurableExecutionName"] == match["name"]

    unknown = answer["DurableExecutionArn"].rsplit("/", 1)[0] + f"/{uuid.uuid4()}"
    with pytest.raises(ClientError) as raised:
        lambda_client.get_durable_execution(DurableExecutionArn=unknown)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
