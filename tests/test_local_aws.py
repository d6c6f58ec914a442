"""End-to-end tests of local_aws: real HTTP, real boto3 clients, real runtime processes, moto's CloudWatch Logs."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_aws import LocalAwsStack
from local_aws.deploy import deploy_template, zip_directory
from tests.conftest import local_client

REPO = Path(__file__).resolve().parents[1]
HANDLERS = Path(__file__).parent / "local_aws_functions"
REGION = "us-east-1"
STREAM_NAME = re.compile(r"^\d{4}/\d{2}/\d{2}/\[(?P<version>[^\]]+)\][0-9a-f]{32}$")

Events = list[dict[str, Any]]


# -- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalAwsStack]:
    """One stack for the module; every test uses functions of its own."""
    with LocalAwsStack(port=0, ingestion_delay=0.2, async_retry_delays=(0.5,)) as running:
        yield running


def _client(stack: LocalAwsStack, service: str) -> Any:
    return local_client(stack.endpoint_url, service)


@pytest.fixture(scope="module")
def lambda_client(stack: LocalAwsStack) -> Any:
    return _client(stack, "lambda")


@pytest.fixture(scope="module")
def logs_client(stack: LocalAwsStack) -> Any:
    return _client(stack, "logs")


@pytest.fixture(scope="module")
def role_arn(stack: LocalAwsStack) -> str:
    iam = _client(stack, "iam")
    return iam.create_role(RoleName="test-local-aws", AssumeRolePolicyDocument="{}")["Role"]["Arn"]


@pytest.fixture(scope="module")
def handlers_zip() -> bytes:
    return zip_directory(HANDLERS)


@pytest.fixture
def make_function(lambda_client: Any, role_arn: str, handlers_zip: bytes) -> Callable[..., str]:
    """Create a function running one of the test handlers; return its (unique) name."""
    return function_maker(lambda_client, role_arn, handlers_zip)


@pytest.fixture(scope="module")
def legacy_stack() -> Iterator[LocalAwsStack]:
    """A stack writing Lambda's text lines of before 2026 ("Task timed out", "Runtime exited" lines)."""
    with LocalAwsStack(port=0, ingestion_delay=0.2, text_generation="legacy") as running:
        yield running


@pytest.fixture(params=["2026", "legacy"])
def generation(request: pytest.FixtureRequest, stack: LocalAwsStack, handlers_zip: bytes) -> Generation:
    """The stack of one text-format generation, with its clients and a function maker."""
    running = stack if request.param == "2026" else request.getfixturevalue("legacy_stack")
    lambda_client, logs_client = _client(running, "lambda"), _client(running, "logs")
    role = _client(running, "iam").create_role(RoleName=f"test-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    return Generation(
        request.param, running, lambda_client, logs_client, function_maker(lambda_client, role, handlers_zip)
    )


@dataclass(frozen=True)
class Generation:
    name: str
    stack: LocalAwsStack
    lambda_client: Any
    logs_client: Any
    make_function: Callable[..., str]


def function_maker(lambda_client: Any, role_arn: str, handlers_zip: bytes) -> Callable[..., str]:
    """Return a function that creates a function running one of the test handlers and returns its name."""

    def make(handler: str, **settings: Any) -> str:
        name = f"t-{handler}-{uuid.uuid4().hex[:8]}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role_arn,
            Handler=settings.pop("Handler", f"handlers.{handler}"),
            Code={"ZipFile": settings.pop("zip_file", handlers_zip)},
            **{"Timeout": 10, **settings},
        )
        return name

    return make


# -- helpers -----------------------------------------------------------------------------------------------------


def invoke(client: Any, name: str, payload: Any = None, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    """Invoke and return the response and its decoded JSON payload."""
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload or {}), **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def request_id(response: dict[str, Any]) -> str:
    return response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def all_events(logs: Any, group: str) -> Events:
    """Every event of a log group, in time order (empty if the group does not exist yet)."""
    events: Events = []
    kwargs: dict[str, Any] = {"logGroupName": group, "interleaved": True}
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return []
    return sorted(events, key=lambda e: (e["timestamp"], int(e["eventId"])))


def wait_for_events(logs: Any, group: str, done: Callable[[Events], bool], timeout: float = 20.0) -> Events:
    """Poll the log group until ``done(events)``; fail with what was there if it never happens."""
    deadline = time.monotonic() + timeout
    events: Events = []
    while time.monotonic() < deadline:
        events = all_events(logs, group)
        if done(events):
            return events
        time.sleep(0.2)
    messages = "\n".join(repr(e["message"]) for e in events)
    pytest.fail(f"Log group {group} never reached the expected state; it has:\n{messages}")


def has_report(rid: str, count: int = 1) -> Callable[[Events], bool]:
    return lambda events: sum(e["message"].startswith(f"REPORT RequestId: {rid}") for e in events) >= count


def invocation_lines(events: Events, rid: str) -> list[str]:
    """The messages of one request's stream from its START to the end of the stream, newline stripped."""
    start = next(e for e in events if e["message"].startswith(f"START RequestId: {rid} "))
    stream = [e for e in events if e["logStreamName"] == start["logStreamName"]]
    index = stream.index(start)
    return [e["message"].rstrip("\n") for e in stream[index:]]


def position(lines: list[str], prefix: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(prefix))


# -- synchronous invocations -------------------------------------------------------------------------------------


def test_request_response_returns_the_result_and_the_handlers_request_id(
    lambda_client: Any, make_function: Callable[..., str]
) -> None:
    name = make_function("succeed", Environment={"Variables": {"MARK": "one"}}, MemorySize=256)

    response, result = invoke(lambda_client, name, {"hello": "world"})

    rid = request_id(response)
    assert uuid.UUID(rid).version == 4
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert result["request_id"] == rid
    assert result["event"] == {"hello": "world"}
    assert result["function_name"] == name
    assert result["function_version"] == "$LATEST"
    assert result["invoked_arn"] == f"arn:aws:lambda:{REGION}:123456789012:function:{name}"
    assert STREAM_NAME.match(result["log_stream"]).group("version") == "$LATEST"
    assert 0 < result["remaining_ms"] <= 10_000
    assert result["mark"] == "one"
    assert result["region"] == REGION
    assert Path(result["task_root"], "handlers.py").is_file()


def test_warm_environment_is_reused_and_reports_init_duration_only_once(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    name = make_function("succeed", MemorySize=256)

    first, first_result = invoke(lambda_client, name)
    second, second_result = invoke(lambda_client, name)

    assert first_result["pid"] == second_result["pid"]
    assert first_result["log_stream"] == second_result["log_stream"]
    rid1, rid2 = request_id(first), request_id(second)
    events = wait_for_events(logs_client, f"/aws/lambda/{name}", has_report(rid2))
    reports = {
        rid: next(e["message"] for e in events if e["message"].startswith(f"REPORT RequestId: {rid}"))
        for rid in (rid1, rid2)
    }
    fields = reports[rid1].rstrip("\n").split("\t")
    assert fields[0] == f"REPORT RequestId: {rid1}"
    assert re.fullmatch(r"Duration: \d+\.\d\d ms", fields[1])
    assert re.fullmatch(r"Billed Duration: \d+ ms", fields[2])
    assert fields[3] == "Memory Size: 256 MB"
    assert re.fullmatch(r"Max Memory Used: \d+ MB", fields[4])
    assert re.fullmatch(r"Init Duration: \d+\.\d\d ms", fields[5])
    assert "Init Duration" not in reports[rid2]
    assert {e["logStreamName"] for e in events} == {first_result["log_stream"]}


def test_unhandled_exception_is_reported_like_lambda(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    name = make_function("fail")

    response, error = invoke(lambda_client, name)

    rid = request_id(response)
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "Unable to finish loop"
    assert error["requestId"] == rid
    assert any("raise RuntimeError" in frame for frame in error["stackTrace"])

    lines = invocation_lines(wait_for_events(logs_client, f"/aws/lambda/{name}", has_report(rid)), rid)
    errors = [line for line in lines if line.startswith("[ERROR]")]
    assert len(errors) == 1
    assert errors[0].startswith("[ERROR] RuntimeError: Unable to finish loop\rTraceback (most recent call last):\r")
    assert position(lines, "START") < position(lines, "[ERROR]") < position(lines, "END") < position(lines, "REPORT")
    assert f"about to fail in {rid}" in lines


def test_timeout_kills_the_environment_and_writes_the_timeout_as_lambda_of_each_generation_does(
    generation: Generation,
) -> None:
    lambda_client, logs_client, stack = generation.lambda_client, generation.logs_client, generation.stack
    name = generation.make_function("sleep", Timeout=1)

    response, error = invoke(lambda_client, name, {"seconds": 5}, LogType="Tail")

    rid = request_id(response)
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(rf"RequestId: {rid} Error: Task timed out after 1\.00 seconds", error["errorMessage"])
    tail = base64.b64decode(response["LogResult"]).decode()
    pid = int(re.search(r"pid=(\d+)", tail).group(1))
    assert not Path(f"/proc/{pid}").exists(), "the timed-out runtime process is still there"
    assert all(env.pid != pid for env in stack.environments())

    if generation.name == "legacy":
        timed_out_logged = lambda events: any("Task timed out" in e["message"] for e in events)  # noqa: E731
        lines = invocation_lines(wait_for_events(logs_client, f"/aws/lambda/{name}", timed_out_logged), rid)
        timed_out = lines[position(lines, "REPORT") + 1]
        assert re.fullmatch(
            rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {rid} Task timed out after 1\.00 seconds", timed_out
        )
        assert "Status:" not in lines[position(lines, "REPORT")]
    else:
        lines = invocation_lines(wait_for_events(logs_client, f"/aws/lambda/{name}", has_report(rid)), rid)
        report = lines[position(lines, "REPORT")]
        # Today's form: the configured timeout as the duration, the status last, and no "Task timed out" line.
        assert re.fullmatch(
            rf"REPORT RequestId: {rid}\tDuration: 1000\.00 ms\tBilled Duration: 1000 ms\tMemory Size: \d+ MB\t"
            r"Max Memory Used: \d+ MB(\tInit Duration: [\d.]+ ms)?\tStatus: timeout",
            report,
        )
        assert not any("Task timed out" in line for line in lines)
    assert "woke up" not in lines
    assert position(lines, "START") < position(lines, "pid=") < position(lines, "END") < position(lines, "REPORT")

    # The next invocation gets a fresh environment and works.
    again, again_result = invoke(lambda_client, name, {"seconds": 0})
    assert "FunctionError" not in again
    assert again_result == {"slept": 0}


@pytest.mark.parametrize(("how", "description"), [("exit", "exit status 3"), ("kill", "signal: killed")])
def test_runtime_exit_is_reported_as_runtime_exit_error(generation: Generation, how: str, description: str) -> None:
    name = generation.make_function("crash")

    response, error = invoke(generation.lambda_client, name, {"how": how})

    rid = request_id(response)
    assert response["FunctionError"] == "Unhandled"
    assert error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: {description}",
    }
    events = wait_for_events(generation.logs_client, f"/aws/lambda/{name}", has_report(rid))
    lines = invocation_lines(events, rid)
    if generation.name == "legacy":
        assert lines[:5] == [
            f"START RequestId: {rid} Version: $LATEST",
            f"crashing by {how}",
            f"RequestId: {rid} Error: Runtime exited with error: {description}",
            "Runtime.ExitError",
            f"END RequestId: {rid}",
        ]
        assert lines[5].startswith(f"REPORT RequestId: {rid}\t") and "Status:" not in lines[5]
    else:
        assert lines[:3] == [f"START RequestId: {rid} Version: $LATEST", f"crashing by {how}", f"END RequestId: {rid}"]
        assert lines[3].startswith(f"REPORT RequestId: {rid}\t")
        assert lines[3].endswith("\tStatus: error\tError Type: Runtime.ExitError")


def test_an_unhandled_exception_reports_status_error_runtime_unknown(generation: Generation) -> None:
    name = generation.make_function("fail")

    response, _ = invoke(generation.lambda_client, name)

    rid = request_id(response)
    lines = invocation_lines(wait_for_events(generation.logs_client, f"/aws/lambda/{name}", has_report(rid)), rid)
    report = lines[position(lines, "REPORT")]
    if generation.name == "legacy":
        assert "Status:" not in report
    else:
        # The Python runtime sends no error-type header, so Lambda can only say Runtime.Unknown.
        assert report.endswith("\tStatus: error\tError Type: Runtime.Unknown")


def test_a_successful_report_carries_no_failure_status(generation: Generation) -> None:
    name = generation.make_function("succeed")

    response, _ = invoke(generation.lambda_client, name)

    rid = request_id(response)
    lines = invocation_lines(wait_for_events(generation.logs_client, f"/aws/lambda/{name}", has_report(rid)), rid)
    assert "Status:" not in lines[position(lines, "REPORT")]


# -- the JSON log format and LoggingConfig's levels ---------------------------------------------------------------


def json_records(events: Events) -> list[dict[str, Any] | str]:
    """Each event as its JSON object, or its text when it is not JSON (print lines)."""
    out: list[dict[str, Any] | str] = []
    for event in events:
        text = event["message"].rstrip("\n")
        try:
            out.append(json.loads(text))
        except ValueError:
            out.append(text)
    return out


def platform_types(records: list[dict[str, Any] | str]) -> list[str]:
    return [r["type"] for r in records if isinstance(r, dict) and str(r.get("type", "")).startswith("platform.")]


def app_messages(records: list[dict[str, Any] | str]) -> list[str]:
    return [r["message"] for r in records if isinstance(r, dict) and "message" in r]


def wait_for_lines(logs_client: Any, name: str, count: int) -> list[dict[str, Any] | str]:
    return json_records(wait_for_events(logs_client, f"/aws/lambda/{name}", lambda events: len(events) >= count))


def test_json_format_writes_platform_events_and_the_runtimes_json_lines(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    name = make_function("levels", LoggingConfig={"LogFormat": "JSON"})
    assert lambda_client.get_function_configuration(FunctionName=name)["LoggingConfig"] == {
        "LogFormat": "JSON",
        "LogGroup": f"/aws/lambda/{name}",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
    }

    response, result = invoke(lambda_client, name)

    rid = request_id(response)
    assert result == "ok"
    records = wait_for_lines(logs_client, name, 5)
    # runtimeDone of a success is a DEBUG event: not sent at the default system level INFO.
    assert platform_types(records) == ["platform.start", "platform.report"]
    start, report = (r for r in records if isinstance(r, dict) and "type" in r)
    assert start["record"]["requestId"] == rid and report["record"]["requestId"] == rid
    assert report["record"]["status"] == "success" and report["record"]["metrics"]["durationMs"] > 0
    assert f"printed by {rid}" in records  # print stays plain text
    assert app_messages(records) == ["info line", "warning line"]  # the runtime's root level is INFO
    info = next(r for r in records if isinstance(r, dict) and r.get("message") == "info line")
    assert (info["level"], info["logger"], info["requestId"]) == ("INFO", "app", rid)


def test_json_format_failure_and_timeout_carry_the_status(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    failing = make_function("levels", LoggingConfig={"LogFormat": "JSON"})
    response, error = invoke(lambda_client, failing, {"fail": "x"})
    rid = request_id(response)
    assert response["FunctionError"] == "Unhandled" and error["errorType"] == "RuntimeError"
    records = wait_for_lines(logs_client, failing, 7)
    assert platform_types(records) == ["platform.start", "platform.runtimeDone", "platform.report"]
    done = next(r for r in records if isinstance(r, dict) and r.get("type") == "platform.runtimeDone")
    assert done["record"] | {"metrics": None} == {
        "requestId": rid,
        "status": "error",
        "errorType": "Runtime.Unknown",
        "metrics": None,
    }
    unhandled = next(r for r in records if isinstance(r, dict) and r.get("errorType") == "RuntimeError")
    assert "message" not in unhandled and unhandled["errorMessage"] == "boom: x" and unhandled["requestId"] == rid

    slow = make_function("sleep", Timeout=1, LoggingConfig={"LogFormat": "JSON"})
    response, _ = invoke(lambda_client, slow, {"seconds": 5})
    rid = request_id(response)
    records = wait_for_lines(logs_client, slow, 4)
    statuses = {r["type"]: r["record"] for r in records if isinstance(r, dict) and "type" in r}
    assert statuses["platform.report"]["status"] == "timeout"
    assert statuses["platform.report"]["metrics"]["durationMs"] == 1000.0
    assert statuses["platform.runtimeDone"]["errorType"] == "Sandbox.Timedout"


def test_log_levels_filter_application_lines_and_platform_events(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    quiet = make_function(
        "levels", LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "WARN"}
    )
    ok, _ = invoke(lambda_client, quiet)
    failed, _ = invoke(lambda_client, quiet, {"fail": "y"})

    records = wait_for_lines(logs_client, quiet, 4)
    ok_rid, failed_rid = request_id(ok), request_id(failed)
    # A success leaves no platform event at all; print and INFO lines are not sent at WARN.
    assert not any(isinstance(r, str) and r.startswith("printed") for r in records)
    assert app_messages(records) == ["warning line", "warning line"]
    assert platform_types(records) == ["platform.runtimeDone"]
    done = next(r for r in records if isinstance(r, dict) and r.get("type") == "platform.runtimeDone")
    assert (done["record"]["requestId"], done["record"]["status"]) == (failed_rid, "error")
    assert not any(isinstance(r, dict) and ok_rid in json.dumps(r) and r.get("type") for r in records)


def test_tenant_isolation_passes_the_tenant_to_the_handler_and_into_json_lines(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    name = make_function(
        "work", LoggingConfig={"LogFormat": "JSON"}, TenancyConfig={"TenantIsolationMode": "PER_TENANT"}
    )
    configuration = lambda_client.get_function_configuration(FunctionName=name)
    assert configuration["TenancyConfig"] == {"TenantIsolationMode": "PER_TENANT"}
    with pytest.raises(ClientError, match="needs a TenantId"):
        lambda_client.invoke(FunctionName=name, Payload=b"{}")

    response, result = invoke(lambda_client, name, {"item": 1}, TenantId="tenant-a")

    rid = request_id(response)
    assert result == {"item": 1, "tenant_id": "tenant-a"}
    records = wait_for_lines(logs_client, name, 5)
    start = next(r for r in records if isinstance(r, dict) and r.get("type") == "platform.start")
    assert start["record"]["tenantId"] == "tenant-a"
    begins = next(r for r in records if isinstance(r, dict) and r.get("message") == "work 1 begins")
    assert (begins["tenantId"], begins["requestId"]) == ("tenant-a", rid)


def test_managed_instances_run_requests_at_once_in_one_stream(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    capacity = {
        "LambdaManagedInstancesCapacityProviderConfig": {
            "CapacityProviderArn": "arn:aws:lambda:us-east-1:123456789012:capacity-provider:local",
            "PerExecutionEnvironmentMaxConcurrency": 3,
        }
    }
    name = make_function("work", CapacityProviderConfig=capacity)
    configuration = lambda_client.get_function_configuration(FunctionName=name)
    assert configuration["LoggingConfig"]["LogFormat"] == "JSON"
    assert configuration["CapacityProviderConfig"] == capacity

    rids = [
        request_id(lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload)))
        for payload in ({"item": 0, "seconds": 1}, {"item": 1, "seconds": 1}, {"item": 2, "seconds": 1})
    ]

    def all_ended(events: Events) -> bool:
        return sum('"type":"platform.report"' in e["message"] for e in events) == 3

    events = wait_for_events(logs_client, f"/aws/lambda/{name}", all_ended)
    assert len({e["logStreamName"] for e in events}) == 1, "three requests at once share one environment's stream"
    records = json_records(events)
    starts = [i for i, r in enumerate(records) if isinstance(r, dict) and r.get("type") == "platform.start"]
    reports = [i for i, r in enumerate(records) if isinstance(r, dict) and r.get("type") == "platform.report"]
    assert max(starts) < min(reports), "the requests overlapped in time"
    for item, rid in enumerate(rids):
        begins = next(r for r in records if isinstance(r, dict) and r.get("message") == f"work {item} begins")
        assert begins["requestId"] == rid


def test_handler_that_cannot_be_imported_fails_with_the_runtimes_init_error(
    lambda_client: Any, make_function: Callable[..., str]
) -> None:
    name = make_function("succeed", Handler="missing_module.handler")

    response, error = invoke(lambda_client, name)

    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "missing_module" in error["errorMessage"]


def test_each_printed_line_is_one_event(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    name = make_function("multiline")

    response, _ = invoke(lambda_client, name)

    rid = request_id(response)
    events = wait_for_events(logs_client, f"/aws/lambda/{name}", has_report(rid))
    lines = invocation_lines(events, rid)
    assert lines[1:3] == ["first line", "second line"]
    assert all(e["message"].endswith("\n") for e in events)


# -- names, versions, aliases ------------------------------------------------------------------------------------


def test_unknown_function_or_qualifier_is_resource_not_found(
    lambda_client: Any, make_function: Callable[..., str]
) -> None:
    with pytest.raises(ClientError) as raised:
        lambda_client.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "Function not found: arn:aws:lambda:us-east-1:123456789012:function:no-such-function" in str(raised.value)

    name = make_function("succeed")
    with pytest.raises(ClientError) as raised:
        lambda_client.invoke(FunctionName=name, Qualifier="nope", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_control_plane_is_answered_by_moto_with_the_logging_config_it_drops(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    name = make_function("succeed", Timeout=7, MemorySize=512, LoggingConfig={"LogGroup": "/custom/group"})

    configuration = lambda_client.get_function_configuration(FunctionName=name)
    assert configuration["Timeout"] == 7
    assert configuration["MemorySize"] == 512
    assert configuration["LoggingConfig"]["LogGroup"] == "/custom/group"
    assert (
        lambda_client.get_function(FunctionName=name)["Configuration"]["LoggingConfig"]["LogGroup"] == "/custom/group"
    )
    assert name in [f["FunctionName"] for f in lambda_client.list_functions()["Functions"]]

    response, _ = invoke(lambda_client, name)
    wait_for_events(logs_client, "/custom/group", has_report(request_id(response)))


def test_invoke_by_arn_alias_and_version(lambda_client: Any, make_function: Callable[..., str]) -> None:
    name = make_function("succeed", Environment={"Variables": {"MARK": "one"}})
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    alias_arn = lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)["AliasArn"]
    lambda_client.update_function_configuration(FunctionName=name, Environment={"Variables": {"MARK": "two"}})
    arn = f"arn:aws:lambda:{REGION}:123456789012:function:{name}"

    for reference, qualifier, mark, executed in [
        (name, None, "two", "$LATEST"),
        (arn, None, "two", "$LATEST"),
        (f"123456789012:function:{name}", None, "two", "$LATEST"),
        (f"{name}:live", None, "one", version),
        (alias_arn, None, "one", version),
        (name, "live", "one", version),
        (name, version, "one", version),
        (f"{arn}:$LATEST", None, "two", "$LATEST"),
    ]:
        extra = {"Qualifier": qualifier} if qualifier else {}
        response, result = invoke(lambda_client, reference, **extra)
        assert (result["mark"], response["ExecutedVersion"]) == (mark, executed), reference
        assert STREAM_NAME.match(result["log_stream"]).group("version") == executed
        assert result["function_version"] == executed

    _, result = invoke(lambda_client, name, Qualifier="live")
    assert result["invoked_arn"] == f"{arn}:live"


def test_update_function_code_runs_the_new_code(
    lambda_client: Any, make_function: Callable[..., str], handlers_zip: bytes
) -> None:
    name = make_function("succeed")
    invoke(lambda_client, name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handlers.py", "def succeed(event, context):\n    return {'new': True}\n")

    lambda_client.update_function_code(FunctionName=name, ZipFile=buffer.getvalue())

    assert invoke(lambda_client, name)[1] == {"new": True}


# -- asynchronous invocations ------------------------------------------------------------------------------------


def test_event_invocation_returns_202_at_once_and_logs_later(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    name = make_function("sleep")

    response = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"seconds": 1.5}))
    answered_ms = time.time() * 1000

    rid = request_id(response)
    assert response["StatusCode"] == 202
    assert uuid.UUID(rid).version == 4
    assert response["Payload"].read() == b""
    events = wait_for_events(logs_client, f"/aws/lambda/{name}", has_report(rid))
    lines = invocation_lines(events, rid)
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert lines[1].startswith("pid=")
    assert lines[2:4] == ["woke up", f"END RequestId: {rid}"]
    assert lines[4].startswith(f"REPORT RequestId: {rid}\tDuration: ")
    assert STREAM_NAME.match(events[0]["logStreamName"])
    end = next(e for e in events if e["message"].startswith("END RequestId"))
    assert answered_ms < end["timestamp"], "Invoke answered only after the function had finished"


def test_concurrent_event_invocations_run_in_parallel(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    name = make_function("sleep")

    rids = [
        request_id(lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"seconds": 2}'))
        for _ in range(3)
    ]

    events = wait_for_events(logs_client, f"/aws/lambda/{name}", lambda ev: all(has_report(r)(ev) for r in rids))
    starts = [next(e for e in events if e["message"].startswith(f"START RequestId: {rid}")) for rid in rids]
    ends = [next(e for e in events if e["message"].startswith(f"END RequestId: {rid}")) for rid in rids]
    assert max(s["timestamp"] for s in starts) < min(e["timestamp"] for e in ends), "they ran one after the other"
    assert len({s["logStreamName"] for s in starts}) == 3


def test_failed_event_invocation_is_retried_as_configured(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    once = make_function("fail")
    twice = make_function("fail")
    lambda_client.put_function_event_invoke_config(FunctionName=once, MaximumRetryAttempts=0)
    lambda_client.put_function_event_invoke_config(FunctionName=twice, MaximumRetryAttempts=1)

    rid_once = request_id(lambda_client.invoke(FunctionName=once, InvocationType="Event", Payload=b"{}"))
    rid_twice = request_id(lambda_client.invoke(FunctionName=twice, InvocationType="Event", Payload=b"{}"))

    wait_for_events(logs_client, f"/aws/lambda/{twice}", has_report(rid_twice, count=2))
    time.sleep(1.0)  # longer than the stack's retry delay: a retry of `once` would have started by now
    starts = [e for e in all_events(logs_client, f"/aws/lambda/{once}") if e["message"].startswith("START")]
    assert [s["message"] for s in starts] == [f"START RequestId: {rid_once} Version: $LATEST\n"]


# -- everything else goes to moto unchanged ----------------------------------------------------------------------


def test_other_services_are_forwarded_to_moto(stack: LocalAwsStack) -> None:
    s3 = _client(stack, "s3")
    s3.create_bucket(Bucket="local-aws-test")
    body = os.urandom(200_000)
    s3.put_object(Bucket="local-aws-test", Key="a/b c.bin", Body=body)

    assert s3.head_object(Bucket="local-aws-test", Key="a/b c.bin")["ContentLength"] == len(body)
    assert s3.get_object(Bucket="local-aws-test", Key="a/b c.bin")["Body"].read() == body
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket="local-aws-test", Key="missing")
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"


# -- deploy ------------------------------------------------------------------------------------------------------


TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Greeting:
    Type: String
    Default: hi
Globals:
  Function:
    Runtime: python3.11
    MemorySize: 128
    Environment:
      Variables:
        POWERTOOLS_SERVICE_NAME: airflow
Resources:
  ExampleFunction:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "${AWS::StackName}-deployed"
      CodeUri: src/
      Handler: handlers.succeed
      Timeout: 30
      AutoPublishAlias: live
      Environment:
        Variables:
          MARK: !Ref Greeting
      LoggingConfig:
        LogGroup: !Ref ExampleLogGroup
      EventInvokeConfig:
        MaximumRetryAttempts: 0
  ExampleLogGroup:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/aws/lambda/${AWS::StackName}-deployed"
      RetentionInDays: 1
Outputs:
  Arn:
    Value: !GetAtt ExampleFunction.Arn
"""


def test_deploy_creates_function_alias_log_group_and_event_config(
    stack: LocalAwsStack, lambda_client: Any, logs_client: Any, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "handlers.py").write_text((HANDLERS / "handlers.py").read_text())
    (tmp_path / "template.yml").write_text(TEMPLATE)

    first = deploy_template(stack.endpoint_url, tmp_path / "template.yml", stack_name="dep", timeout=5)
    second = deploy_template(stack.endpoint_url, tmp_path / "template.yml", stack_name="dep", timeout=5)

    assert [(f.function_name, f.alias, f.log_group) for f in first] == [
        ("dep-deployed", "live", "/aws/lambda/dep-deployed")
    ]
    assert second[0].alias == "live"
    configuration = lambda_client.get_function_configuration(FunctionName="dep-deployed", Qualifier="live")
    assert configuration["Timeout"] == 5
    assert configuration["Environment"]["Variables"] == {"POWERTOOLS_SERVICE_NAME": "airflow", "MARK": "hi"}
    event_config = lambda_client.get_function_event_invoke_config(FunctionName="dep-deployed", Qualifier="live")
    assert event_config["MaximumRetryAttempts"] == 0
    groups = logs_client.describe_log_groups(logGroupNamePrefix="/aws/lambda/dep-deployed")["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [("/aws/lambda/dep-deployed", 1)]

    response, result = invoke(lambda_client, "dep-deployed:live")
    assert result["mark"] == "hi"
    assert response["ExecutedVersion"] == second[0].version


def test_cli_deploy_of_the_repository_template(stack: LocalAwsStack, lambda_client: Any) -> None:
    if not (REPO / "template.yml").is_file():
        pytest.skip("template.yml is not in the repository yet")
    completed = subprocess.run(
        [sys.executable, "-m", "local_aws", "deploy", "--endpoint", stack.endpoint_url, "--timeout", "20"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    deployed = json.loads(completed.stdout)
    assert deployed[0]["function_name"] == "example-lambda-function"
    assert lambda_client.get_function_configuration(FunctionName="example-lambda-function")["Timeout"] == 20
    response, result = invoke(
        lambda_client, "example-lambda-function:live", {"correlation_id": "cli", "n": 1, "sleep_seconds": 0}
    )
    assert "FunctionError" not in response, result
    assert result["correlation_id"] == "cli"
    assert response["ExecutedVersion"] == deployed[0]["version"]


# -- the project's example function ------------------------------------------------------------------------------


def test_example_function_logs_correlated_powertools_lines(
    lambda_client: Any, logs_client: Any, make_function: Callable[..., str]
) -> None:
    source = REPO / "lambda" / "src"
    if not (source / "lambda_function.py").is_file():
        pytest.skip("lambda/src/lambda_function.py is not in the repository yet")
    name = make_function("x", Handler="lambda_function.lambda_handler", zip_file=zip_directory(source))

    ok, ok_result = invoke(lambda_client, name, {"correlation_id": "corr-ok", "n": 2, "sleep_seconds": 0.05})
    failed, error = invoke(
        lambda_client, name, {"correlation_id": "corr-ko", "n": 1, "sleep_seconds": 0, "to_fail": True}
    )

    assert "FunctionError" not in ok
    assert ok_result["correlation_id"] == "corr-ok"
    assert failed["FunctionError"] == "Unhandled"
    assert (error["errorType"], error["errorMessage"]) == ("RuntimeError", "Unable to finish loop")
    rid_ok, rid_ko = request_id(ok), request_id(failed)
    events = wait_for_events(logs_client, f"/aws/lambda/{name}", has_report(rid_ko))

    ok_records = [json.loads(line) for line in invocation_lines(events, rid_ok) if line.startswith("{")]
    ok_records = [r for r in ok_records if r.get("function_request_id") == rid_ok]
    assert [r["message"] for r in ok_records][0] == "Function started"
    assert [r["message"] for r in ok_records][-1] == "Function ended"
    assert {r["correlation_id"] for r in ok_records} == {"corr-ok"}

    ko_lines = invocation_lines(events, rid_ko)
    assert any(line.startswith("[ERROR] RuntimeError: Unable to finish loop\r") for line in ko_lines)
    ko_records = [json.loads(line) for line in ko_lines if line.startswith("{")]
    assert any(r["level"] == "ERROR" and r["correlation_id"] == "corr-ko" for r in ko_records)


# -- the command line --------------------------------------------------------------------------------------------


def test_cli_serve_prints_its_url_and_stops_cleanly_on_sigterm(handlers_zip: bytes) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local_aws", "serve", "--port", "0", "--ingestion-delay", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
        match = re.fullmatch(r"local_aws listening on (http://127\.0\.0\.1:\d+)\n", first_line)
        assert match, first_line
        endpoint = match.group(1)
        kwargs = {
            "region_name": REGION,
            "endpoint_url": endpoint,
            "aws_access_key_id": "t",
            "aws_secret_access_key": "t",
        }
        role = boto3.client("iam", **kwargs).create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        client = boto3.client("lambda", **kwargs)
        client.create_function(
            FunctionName="cli",
            Runtime="python3.11",
            Role=role,
            Handler="handlers.succeed",
            Code={"ZipFile": handlers_zip},
        )
        pid = json.loads(client.invoke(FunctionName="cli")["Payload"].read())["pid"]
        assert Path(f"/proc/{pid}").exists()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert not Path(f"/proc/{pid}").exists(), "the execution environment outlived the stack"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_moto_reset_through_the_endpoint_forgets_functions_and_environments(handlers_zip: bytes) -> None:
    with LocalAwsStack(port=0, ingestion_delay=0) as own:
        client = _client(own, "lambda")
        role = _client(own, "iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        create = {
            "Runtime": "python3.11",
            "Role": role,
            "Handler": "handlers.succeed",
            "Code": {"ZipFile": handlers_zip},
        }
        client.create_function(FunctionName="before-reset", **create)
        pid = invoke(client, "before-reset")[1]["pid"]

        with urllib.request.urlopen(urllib.request.Request(f"{own.endpoint_url}/moto-api/reset", method="POST")) as r:
            assert r.status == 200

        assert not Path(f"/proc/{pid}").exists()
        with pytest.raises(ClientError) as raised:
            client.invoke(FunctionName="before-reset")
        assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
        role = _client(own, "iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        client.create_function(FunctionName="after-reset", **{**create, "Role": role})
        assert invoke(client, "after-reset")[1]["function_name"] == "after-reset"
