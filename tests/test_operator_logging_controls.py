"""The operator against the local AWS stack (real runtime, LoggingConfig kept): logging controls and tenants.

Runs with ``deferrable=False``, so the whole path (checks, invoke, the trigger, execute_complete) runs here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator
from airflow_lambda_deferrable.exceptions import (
    LambdaInvocationFailed,
    LambdaInvocationTimedOut,
    LambdaInvokeInputError,
)
from local_aws import LocalAwsStack
from local_aws.deploy import zip_directory
from tests.conftest import aws_connection, local_client
from tests.fault_proxy import FaultProxy
from tests.test_operators import TaskInstanceStandIn, context_for

HANDLERS = Path(__file__).parent / "local_aws_functions"
INVOCATIONS = "/invocations"


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


def make_function(stack: LocalAwsStack, *, handler: str = "handlers.work", timeout: int = 10, **settings: Any) -> str:
    """Create a function of tests/local_aws_functions/handlers.py in the stack; return its name."""
    client = local_client(stack.endpoint_url, "lambda")
    iam = local_client(stack.endpoint_url, "iam")
    name = f"ops-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler=handler,
        Code={"ZipFile": zip_directory(HANDLERS)},
        Timeout=timeout,
        **settings,
    )
    return name


def run(name: str, **kwargs: Any) -> Any:
    """Run the operator's whole path in this process; return the XCom value (or raise its error)."""
    op = LambdaInvokeDeferrableOperator(
        task_id="invoke",
        function_name=name,
        aws_conn_id="local_counted",
        deferrable=False,
        poll_interval=1,
        settle_seconds=1,
        **kwargs,
    )
    return op.execute(context_for(TaskInstanceStandIn()))


QUIET_APP = {"LogFormat": "JSON", "ApplicationLogLevel": "WARN"}
QUIET_SYSTEM = {"LogFormat": "JSON", "SystemLogLevel": "WARN"}


def test_application_level_warn_hides_the_correlation_lines_but_success_is_decided(stack, counted, capsys):
    name = make_function(stack, LoggingConfig=QUIET_APP)
    result = run(name, payload={"item": 1})
    assert set(result) == {"request_id", "correlation_id"}
    output = capsys.readouterr().out
    assert "ApplicationLogLevel WARN" in output and "followed by its request id" in output
    assert "work 1 begins" not in output  # an INFO line: Lambda does not send it


def test_application_level_warn_failure_names_the_exception(stack, counted):
    name = make_function(stack, LoggingConfig=QUIET_APP)
    with pytest.raises(LambdaInvocationFailed, match="ValueError: work 2 failed"):
        run(name, payload={"item": 2, "fail": True})


def test_system_level_warn_is_refused_before_invoking(stack, counted):
    name = make_function(stack, LoggingConfig=QUIET_SYSTEM)
    with pytest.raises(LambdaInvokeInputError, match="SystemLogLevel WARN") as refused:
        run(name, payload={"item": 3}, end_marker=None)
    assert "allow_hidden_success=True" in str(refused.value) and "RequestResponse" in str(refused.value)
    assert counted.count(INVOCATIONS) == 0


def test_system_level_warn_with_the_opt_in_counts_a_quiet_deadline_as_success(stack, counted, capsys):
    name = make_function(stack, LoggingConfig=QUIET_SYSTEM)
    result = run(name, payload={"item": 4}, end_marker=None, allow_hidden_success=True, max_wait_seconds=6)
    assert set(result) == {"request_id", "correlation_id"}
    assert "no failure was seen by the deadline" in capsys.readouterr().out
    assert counted.count(INVOCATIONS) == 1


def test_system_level_warn_with_the_opt_in_still_reports_a_failure(stack, counted):
    name = make_function(stack, LoggingConfig=QUIET_SYSTEM)
    with pytest.raises(LambdaInvocationFailed, match="ValueError: work 5 failed"):
        run(name, payload={"item": 5, "fail": True}, end_marker=None, allow_hidden_success=True, max_wait_seconds=30)


def test_system_level_warn_with_request_response_needs_no_opt_in(stack, counted):
    name = make_function(stack, LoggingConfig=QUIET_SYSTEM)
    result = run(name, payload={"item": 6}, end_marker=None, invocation_type="RequestResponse", max_wait_seconds=5)
    assert result == {"item": 6, "tenant_id": None}


def test_a_tenant_invocation_reaches_the_handler_and_the_xcom(stack, counted, capsys):
    name = make_function(
        stack, LoggingConfig={"LogFormat": "JSON"}, TenancyConfig={"TenantIsolationMode": "PER_TENANT"}
    )
    result = run(name, payload={"item": 7}, tenant_id="tenant-b")
    assert result["tenant_id"] == "tenant-b"
    output = capsys.readouterr().out
    assert "tenant tenant-b" in output and "work 7 ends" in output
    assert run(name, payload={"item": 8}, tenant_id="tenant-b", invocation_type="RequestResponse") == {
        "item": 8,
        "tenant_id": "tenant-b",
    }


@pytest.mark.parametrize(
    ("isolated", "tenant_id", "message"),
    [(True, None, "give tenant_id"), (False, "tenant-c", "takes no tenant_id"), (True, 'bad"id', "tenant_id must")],
)
def test_tenant_mistakes_are_refused_before_invoking(stack, counted, isolated, tenant_id, message):
    settings = {"TenancyConfig": {"TenantIsolationMode": "PER_TENANT"}} if isolated else {}
    name = make_function(stack, **settings)
    with pytest.raises(LambdaInvokeInputError, match=message):
        run(name, payload={"item": 9}, tenant_id=tenant_id)
    assert counted.count(INVOCATIONS) == 0


def test_managed_instances_leave_lines_without_ids_out_and_count_them(stack, counted, capsys):
    capacity = {
        "LambdaManagedInstancesCapacityProviderConfig": {
            "CapacityProviderArn": "arn:aws:lambda:us-east-1:123456789012:capacity-provider:local",
            "PerExecutionEnvironmentMaxConcurrency": 4,
        }
    }
    name = make_function(stack, CapacityProviderConfig=capacity)
    run(name, payload={"item": 10})
    output = capsys.readouterr().out
    assert "work 10 ends" in output  # its own JSON lines, attributed by their requestId
    assert "printed during work 10" not in output
    assert "1 line(s) without ids in the request's stretch of stream were left out" in output


def test_system_level_warn_and_an_end_marker_never_logged_time_out_early_naming_the_cause(stack, counted, capsys):
    """The default end marker is accepted as proof that success can show, but `work` never logs it: once the
    request is seen running, the answer comes within its timeout and the allowance, not the 300 s queue
    allowance, and it says what hid the success and the ways out."""
    name = make_function(stack, LoggingConfig=QUIET_SYSTEM)
    started = time.monotonic()
    with pytest.raises(LambdaInvocationTimedOut) as timed_out:
        run(name, payload={"item": 11}, ingestion_allowance_seconds=5, queue_allowance_seconds=300)
    waited = time.monotonic() - started
    message = str(timed_out.value)
    assert "the end marker 'Function ended' never came" in message and "SystemLogLevel WARN" in message
    for way_out in ("SystemLogLevel to INFO", "RequestResponse", "allow_hidden_success=True", "end marker at a level"):
        assert way_out in message
    output = capsys.readouterr().out
    assert "success will be seen only if the function logs its end marker 'Function ended' at INFO" in output
    # The function's timeout (10 s), the ingestion allowance (5 s) and the clock skew allowed (60 s) bound the
    # wait once it is seen running; the deadline it replaces was 300 + 10 + 5 s after the invoke.
    assert waited < 300, waited
    assert counted.count(INVOCATIONS) == 1


def test_allow_hidden_success_is_refused_on_managed_instances(stack, counted):
    """There a timeout or a crash may leave no platform line at all: "no failure seen" proves nothing."""
    capacity = {
        "LambdaManagedInstancesCapacityProviderConfig": {
            "CapacityProviderArn": "arn:aws:lambda:us-east-1:123456789012:capacity-provider:local",
            "PerExecutionEnvironmentMaxConcurrency": 4,
        }
    }
    name = make_function(stack, LoggingConfig=QUIET_SYSTEM, CapacityProviderConfig=capacity)
    with pytest.raises(LambdaInvokeInputError, match="Managed Instances with SystemLogLevel WARN"):
        run(name, payload={"item": 12}, end_marker=None, allow_hidden_success=True)
    assert counted.count(INVOCATIONS) == 0
