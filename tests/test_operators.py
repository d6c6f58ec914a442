"""The operator against moto over real HTTP: inputs, invocation, deferral and resumption."""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_lambda_deferrable import LambdaInvocationTrigger, LambdaInvokeDeferrableOperator
from airflow_lambda_deferrable.exceptions import (
    LambdaInvocationFailed,
    LambdaInvocationTimedOut,
    LambdaInvokeError,
    LambdaInvokeInputError,
    LambdaLogsUnavailable,
    LambdaTriggerEventInvalid,
)
from airflow_lambda_deferrable.provider import links
from airflow_lambda_deferrable.provider.invocation_request import correlation_id_for_try, try_key_of
from airflow_lambda_deferrable.provider.links import LambdaInvocationLogsLink
from airflow_lambda_deferrable.provider.operator import DEFAULT_DEFERRABLE_ENV
from tests import lambda_lines as lines
from tests.conftest import FUNCTION as CONFTEST_FUNCTION
from tests.conftest import MOTO_CONN_ID, REGION, aws_connection
from tests.fault_proxy import FaultProxy

FUNCTION = CONFTEST_FUNCTION
GROUP = f"/aws/lambda/{FUNCTION}"
INVOCATIONS = "/invocations"


@dataclass
class TaskInstanceStandIn:
    """The few task-instance fields the operator reads, and the XComs it pushes."""

    dag_id: str = "lambda_dag"
    run_id: str = "manual__2026-11-23T10:00:00+00:00"
    task_id: str = "invoke"
    map_index: int = -1
    try_number: int = 1
    # Airflow's task instance id: a UUID, new for each try.
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    xcoms: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, key: str) -> Any:
        return self.xcoms.get(key)


def context_for(ti: TaskInstanceStandIn | None = None) -> dict[str, Any]:
    return {"ti": ti or TaskInstanceStandIn()}


@pytest.fixture
def proxy(moto: str, monkeypatch) -> FaultProxy:
    """A counting, fault-injecting proxy in front of moto, with an Airflow connection to it."""
    with FaultProxy(moto) as running:
        monkeypatch.setenv(
            "AIRFLOW_CONN_AWS_PROXY",
            aws_connection(running.url),
        )
        yield running


def operator(**kwargs: Any) -> LambdaInvokeDeferrableOperator:
    defaults: dict[str, Any] = {"task_id": "invoke", "function_name": FUNCTION, "aws_conn_id": MOTO_CONN_ID}
    return LambdaInvokeDeferrableOperator(**(defaults | kwargs))


def defer(op: LambdaInvokeDeferrableOperator, ti: TaskInstanceStandIn | None = None) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context_for(ti))
    return deferred.value


def test_event_invoke_defers_with_everything_the_trigger_needs(function):
    before = time.time()
    ti = TaskInstanceStandIn()
    deferred = defer(operator(payload={"n": 2}, poll_interval=3, settle_seconds=1), ti)
    after = time.time()
    trigger = deferred.trigger
    assert isinstance(trigger, LambdaInvocationTrigger)
    assert deferred.method_name == "execute_complete"
    _, kwargs = trigger.serialize()
    assert kwargs["function_name"] == FUNCTION and kwargs["log_group"] == GROUP
    assert kwargs["correlation_id"] == correlation_id_for_try(f"ti:{ti.id}")
    assert kwargs["request_id"]  # moto's id for this invoke
    assert before <= kwargs["invoked_at"] <= after
    assert kwargs["deadline"] == pytest.approx(kwargs["invoked_at"] + 300 + 30 + 120)
    assert (kwargs["poll_interval"], kwargs["settle_seconds"], kwargs["aws_conn_id"]) == (3, 1, MOTO_CONN_ID)
    assert kwargs["known_result"] is None
    # Deferred at some moment between `before` and `after`, for the time left to the deadline plus 300 s.
    assert kwargs["deadline"] - after + 300 <= deferred.timeout.total_seconds() <= kwargs["deadline"] - before + 300
    json.dumps(kwargs)


def test_request_response_result_shows_the_injected_payload(function):
    # moto echoes the payload as the result: what it returns is exactly what Lambda was sent.
    before = time.time()
    deferred = defer(operator(payload='{"n": 1, "to_fail": false}', invocation_type="RequestResponse"))
    after = time.time()
    sent = deferred.trigger.settings.result["value"]
    correlation_id = deferred.trigger.settings.correlation_id
    assert sent == {"n": 1, "to_fail": False, "correlation_id": correlation_id}
    assert deferred.trigger.settings.known_result == {
        "failed": False,
        "error_type": None,
        "error_message": None,
        "stack_trace": None,
    }
    # The response came between `before` and `after`; only ingestion (120 s) remains after it.
    assert before + 120 <= deferred.trigger.settings.deadline <= after + 120


def test_correlation_id_is_made_at_run_time_per_try(function):
    op = operator()
    assert op.correlation_id is None  # nothing made at parse time
    try_one = TaskInstanceStandIn(try_number=1)
    first = defer(op, try_one).trigger.settings.correlation_id
    again = defer(op, try_one).trigger.settings.correlation_id
    # Airflow gives each try, and each mapped instance, a task instance id of its own.
    second_try = defer(op, TaskInstanceStandIn(try_number=2)).trigger.settings.correlation_id
    mapped = defer(op, TaskInstanceStandIn(map_index=3)).trigger.settings.correlation_id
    # Another deployment: the same DAG, run, task and try, another task instance id.
    twin = defer(op, TaskInstanceStandIn(try_number=1)).trigger.settings.correlation_id
    assert first == again
    assert len({first, second_try, mapped, twin}) == 4


def test_templated_fields_are_rendered(function):
    op = operator(
        function_name="{{ params.fn }}",
        payload='{"day": "{{ ds }}"}',
        correlation_id="run-{{ ds_nodash }}-x",
        invocation_type="RequestResponse",
    )
    assert set(LambdaInvokeDeferrableOperator.template_fields) >= {
        "function_name",
        "payload",
        "qualifier",
        "correlation_id",
    }
    op.render_template_fields({"params": {"fn": FUNCTION}, "ds": "2026-11-23", "ds_nodash": "20261123"})
    deferred = defer(op)
    assert deferred.trigger.settings.result == {"value": {"day": "2026-11-23", "correlation_id": "run-20261123-x"}}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"payload": "{not json"}, "payload is not valid JSON"),
        ({"payload": "[1, 2]"}, "must be a JSON object"),
        ({"payload": {"blob": "x" * (1024 * 1024)}}, "over Lambda's 1048576 byte limit for Event"),
        ({"correlation_id": 'bad"id" with spaces'}, "correlation_id"),
        ({"function_name": ""}, "function_name is empty"),
        ({"correlation_id": "abcdefgh-1234\n"}, "correlation_id"),
        ({"payload": '{"n": NaN}'}, "NaN is not a JSON value"),
        ({"payload": {"n": float("inf")}}, "cannot be sent as JSON: Out of range float"),
        ({"payload": {"when": datetime(2026, 11, 30, tzinfo=UTC)}}, "cannot be sent as JSON: Object of type datetime"),
        ({"payload": {"ids": {1, 2}}}, "cannot be sent as JSON: Object of type set"),
    ],
)
def test_bad_input_fails_before_anything_is_invoked(function, proxy, kwargs, match):
    with pytest.raises(LambdaInvokeInputError, match=match):
        operator(aws_conn_id="aws_proxy", **kwargs).execute(context_for())
    assert proxy.count(INVOCATIONS) == 0
    assert proxy.count("/configuration") == 0


@pytest.mark.parametrize("invocation_type", ["DryRun", "Async"])
def test_unsupported_invocation_type_fails_at_parse_time(invocation_type):
    with pytest.raises(LambdaInvokeInputError, match="not supported"):
        operator(invocation_type=invocation_type)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("poll_interval", 0),
        ("poll_interval", math.nan),
        ("poll_interval", 0.1),  # with the shared poller, everyone's log group would be read every 0.1 s
        ("settle_seconds", -1),
        ("max_lines", "10"),
        ("max_lines", math.nan),
        ("max_lines", 10.5),
        ("max_bytes", 10**12),
        ("max_wait_seconds", math.inf),
        ("queue_allowance_seconds", 21_601),
        ("ingestion_allowance_seconds", True),
        ("min_defer_seconds", -math.inf),
    ],
)
def test_bad_tuning_fails_at_parse_time(name, value):
    with pytest.raises(
        LambdaInvokeInputError, match=rf"LambdaInvokeDeferrableOperator invoke: {name} must be .*{value!r}"
    ):
        operator(**{name: value})


def test_tuning_at_its_bounds_is_accepted():
    operator(poll_interval=1, settle_seconds=0, max_wait_seconds=366 * 86_400, max_lines=100_000, max_bytes=1024)


def test_unknown_function_names_the_aws_error_and_invokes_nothing(function, proxy):
    with pytest.raises(
        LambdaInvokeError, match="GetFunctionConfiguration of no-such-function failed with ResourceNotFoundException"
    ):
        operator(aws_conn_id="aws_proxy", function_name="no-such-function").execute(context_for())
    assert proxy.count(INVOCATIONS) == 0


def test_access_denied_on_invoke_names_the_code(function, proxy):
    proxy.fail_next("POST /2015-03-31/functions", 1, code="AccessDeniedException", status=403, message="not allowed")
    with pytest.raises(
        LambdaInvokeError, match="Invoke of example-lambda-function failed with AccessDeniedException: not allowed"
    ):
        operator(aws_conn_id="aws_proxy").execute(context_for())


def test_invoke_is_never_retried_by_the_client(function, proxy):
    proxy.fail_next("POST /2015-03-31/functions", 1, code="ServiceException", status=500, message="try again")
    with pytest.raises(LambdaInvokeError, match="ServiceException"):
        operator(aws_conn_id="aws_proxy").execute(context_for())
    assert proxy.count(INVOCATIONS) == 1  # botocore would have retried a 500 four times


@pytest.mark.parametrize("form", ["name", "arn", "name_with_qualifier", "arn_with_qualifier"])
def test_log_group_whatever_form_the_function_name_takes(function, form):
    arn = function["FunctionArn"]
    name = {"name": FUNCTION, "arn": arn, "name_with_qualifier": f"{FUNCTION}:1", "arn_with_qualifier": f"{arn}:1"}[
        form
    ]
    assert defer(operator(function_name=name)).trigger.settings.log_group == GROUP


def test_log_group_override_and_logging_config():
    assert operator(log_group="/custom/group").log_group == "/custom/group"
    configuration = {"FunctionName": "fn", "LoggingConfig": {"LogFormat": "JSON", "LogGroup": "/shared/lambdas"}}
    assert LambdaInvokeDeferrableOperator._log_group_of(configuration) == "/shared/lambdas"
    assert LambdaInvokeDeferrableOperator._log_group_of({"FunctionName": "fn"}) == "/aws/lambda/fn"


def task_log(capsys) -> str:
    """Return what the operator logged (Airflow's structlog writes task logs to stdout in tests)."""
    return capsys.readouterr().out


def test_payload_values_are_not_logged(function, capsys):
    defer(operator(payload={"api_token": "s3cr3t-value", "n": 1}))
    logged = task_log(capsys)
    assert "s3cr3t-value" not in logged
    assert "keys: api_token, correlation_id, n" in logged


@pytest.mark.parametrize(("retries", "warned"), [(0, False), (2, True), (None, True)])
def test_async_retry_setting_is_warned_about(function, lambda_client, capsys, retries, warned):
    lambda_client.delete_function_event_invoke_config(FunctionName=FUNCTION)
    if retries is not None:
        lambda_client.put_function_event_invoke_config(FunctionName=FUNCTION, MaximumRetryAttempts=retries)
    defer(operator())
    warnings = [line for line in task_log(capsys).splitlines() if "[warning" in line]
    assert any("reports the first attempt's outcome" in line for line in warnings) is warned


@pytest.mark.parametrize(
    ("max_age", "queue_allowance", "warned"),
    [(None, 300, True), (600, 300, True), (300, 300, False), (60, 300, False), (3600, 3600, False)],
)
def test_event_age_longer_than_the_queue_allowance_is_warned_about(
    function, lambda_client, capsys, max_age, queue_allowance, warned
):
    lambda_client.delete_function_event_invoke_config(FunctionName=FUNCTION)
    config = {"MaximumRetryAttempts": 0} | ({"MaximumEventAgeInSeconds": max_age} if max_age else {})
    lambda_client.put_function_event_invoke_config(FunctionName=FUNCTION, **config)
    defer(operator(queue_allowance_seconds=queue_allowance))
    warnings = [line for line in task_log(capsys).splitlines() if "[warning" in line]
    expected = (
        f"{FUNCTION} keeps a queued event up to {max_age or 21600} s (MaximumEventAgeInSeconds), longer than this "
        f"task's queue_allowance_seconds ({queue_allowance} s)"
    )
    assert any(expected in line for line in warnings) is warned
    assert not any("MaximumRetryAttempts" in line for line in warnings)


def test_no_event_invoke_config_warns_of_retries_and_of_the_six_hour_event_age(function, lambda_client, capsys):
    lambda_client.delete_function_event_invoke_config(FunctionName=FUNCTION)
    defer(operator())
    logged = task_log(capsys)
    assert "Set MaximumEventAgeInSeconds to 300 or less (Lambda's minimum is 60)" in logged
    assert "may be retried by Lambda up to 2 time(s)" in logged


@pytest.mark.parametrize(
    ("kwargs", "try_number", "warned"),
    [
        ({"correlation_id": "fixed-id-0001"}, 2, True),
        ({"payload": {"correlation_id": "in-payload-0001"}}, 3, True),
        ({"correlation_id": "fixed-id-0001"}, 1, False),
        ({"correlation_id": "fixed-{{ ti.try_number }}-id"}, 2, False),
        ({}, 2, False),
    ],
)
def test_a_given_correlation_id_reused_by_a_retry_is_warned_about(function, capsys, kwargs, try_number, warned):
    ti = TaskInstanceStandIn(try_number=try_number)
    op = operator(**kwargs)
    op.render_template_fields({"ti": ti})
    correlation_id = defer(op, ti).trigger.settings.correlation_id
    warnings = [line for line in task_log(capsys).splitlines() if "[warning" in line]
    expected = (
        f"LambdaInvokeDeferrableOperator invoke: correlation id {correlation_id} is given rather than made per try"
    )
    assert any(expected in line for line in warnings) is warned


def test_extra_link_points_at_the_correlation_id(function):
    ti = TaskInstanceStandIn()
    correlation_id = defer(operator(), ti).trigger.settings.correlation_id
    stored = ti.xcoms[LambdaInvocationLogsLink.key]
    assert (stored["log_group"], stored["correlation_id"], stored["region_name"]) == (GROUP, correlation_id, REGION)
    link = LambdaInvocationLogsLink().format_link(**stored)
    assert link.startswith(
        "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/"
    )
    assert "$252Faws$252Flambda$252Fexample-lambda-function" in link
    assert f"filterPattern$3D$2522{correlation_id}$2522" in link


def test_extra_link_spans_the_invocation_from_invoke_to_outcome(function, monkeypatch):
    ti = TaskInstanceStandIn()
    before = time.time()
    defer(operator(), ti)
    after = time.time()
    stored = ti.xcoms[LambdaInvocationLogsLink.key]
    assert before <= stored["invoked_at"] <= after
    assert "ended_at" not in stored

    def time_range(link: str) -> tuple[int, int]:
        match = re.search(r"\$26start\$3D(\d+)\$26end\$3D(\d+)$", link)
        assert match, link
        return int(match[1]), int(match[2])

    # While the task waits, the range runs to the moment the link is shown.
    start_ms = int((stored["invoked_at"] - links.CLOCK_SKEW_MARGIN_SECONDS) * 1000)
    monkeypatch.setattr(links, "_now", lambda: stored["invoked_at"] + 90)
    assert time_range(LambdaInvocationLogsLink().format_link(**stored)) == (
        start_ms,
        int((stored["invoked_at"] + 90) * 1000),
    )

    # Once the outcome is known, it ends there, whenever the link is shown.
    operator().execute_complete(context_for(ti), event("success"))
    finished = time.time()
    stored = ti.xcoms[LambdaInvocationLogsLink.key]
    assert after <= stored["ended_at"] <= finished
    monkeypatch.setattr(links, "_now", lambda: finished + 86_400)
    assert time_range(LambdaInvocationLogsLink().format_link(**stored)) == (start_ms, int(stored["ended_at"] * 1000))


def test_extra_link_stored_without_a_time_range_still_opens_the_filtered_group():
    stored = {"region_name": "us-east-1", "aws_domain": "aws.amazon.com", "log_group": GROUP, "correlation_id": "c1"}
    link = LambdaInvocationLogsLink().format_link(**stored)
    assert link.endswith("filterPattern$3D$2522c1$2522")
    assert LambdaInvocationLogsLink().format_link(region_name="us-east-1", aws_domain="aws.amazon.com") == ""


def test_failed_request_response_still_defers_with_the_functions_error(function, proxy):
    # What Lambda answers when the handler raised: 200, X-Amz-Function-Error and the error document.
    error = {
        "errorMessage": "Unable to finish loop",
        "errorType": "RuntimeError",
        "requestId": "r",
        "stackTrace": ['  File "f.py"\n', "    raise\n"],
    }
    proxy.respond_next(
        INVOCATIONS, 200, {"X-Amz-Function-Error": "Unhandled", "x-amzn-RequestId": "req-1"}, json.dumps(error)
    )
    deferred = defer(operator(aws_conn_id="aws_proxy", invocation_type="RequestResponse"))
    assert deferred.trigger.settings.request_id == "req-1"
    assert deferred.trigger.settings.known_result == {
        "failed": True,
        "error_type": "RuntimeError",
        "error_message": "Unable to finish loop",
        "stack_trace": '  File "f.py"\n    raise\n',
    }
    assert deferred.trigger.settings.result is None


def event(status: str, message: str = "why", **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "message": message,
        "function_name": FUNCTION,
        "qualifier": None,
        "log_group": GROUP,
        "correlation_id": "corr-12345678",
        "request_id": "req-1",
        "invocation_type": "Event",
        "error": None,
        "lines": [
            {
                "timestamp": 1_763_892_000_000,
                "level": "INFO",
                "message": "Function started",
                "detail": None,
                "stream": "s",
            },
            {
                "timestamp": 1_763_892_000_500,
                "level": "ERROR",
                "message": "Function invocation failed",
                "detail": "Traceback: boom",
                "stream": "s",
            },
        ],
        "omitted_lines": 0,
        "omitted_at": 2,
        "polls": 3,
    } | extra


def test_execute_complete_success_returns_ids_for_event_and_result_for_request_response(capsys):
    assert operator().execute_complete(context_for(), event("success")) == {
        "request_id": "req-1",
        "correlation_id": "corr-12345678",
    }
    assert operator(invocation_type="RequestResponse").execute_complete(
        context_for(), event("success", result={"value": {"ok": 1}})
    ) == {"ok": 1}
    logged = task_log(capsys)
    assert logged.count("Function started") == 2  # once per call
    failed_line = (
        "[error    ] [lambda] 2025-11-23T10:00:00.500+00:00 ERROR Function invocation failed\n  | Traceback: boom"
    )
    assert logged.count(failed_line) == 2
    assert logged.count("[info     ] [lambda] 2025-11-23T10:00:00.000+00:00 INFO Function started") == 2


def test_an_event_of_an_older_trigger_takes_the_result_from_the_defer_kwargs():
    assert operator(invocation_type="RequestResponse").execute_complete(
        context_for(), event("success"), result={"ok": 1}
    ) == {"ok": 1}


def test_a_result_too_large_to_carry_is_none_with_a_warning(capsys):
    returned = operator(invocation_type="RequestResponse").execute_complete(
        context_for(), event("success", result={"omitted_bytes": 300_000})
    )
    assert returned is None
    warnings = [line for line in task_log(capsys).splitlines() if "[warning" in line]
    assert any(
        f"The result of {FUNCTION} (request req-1) is 300000 bytes of JSON, over the 262144 bytes the trigger event "
        "carries: the task returns None." in line
        for line in warnings
    )


def test_a_large_result_is_not_put_into_the_trigger(function, proxy):
    big = json.dumps({"blob": "x" * 300_000, "correlation_id": "big-result-0001"})
    proxy.respond_next(INVOCATIONS, 200, {"x-amzn-RequestId": "req-big"}, big)
    deferred = defer(operator(aws_conn_id="aws_proxy", invocation_type="RequestResponse"))
    assert deferred.trigger.settings.result == {
        "omitted_bytes": len(json.dumps(json.loads(big), separators=(",", ":")))
    }


@pytest.mark.parametrize(
    ("status", "exception", "verb"),
    [
        ("failed", LambdaInvocationFailed, "failed"),
        ("timeout", LambdaInvocationTimedOut, "timed out"),
        ("error", LambdaLogsUnavailable, "could not be followed"),
    ],
)
def test_execute_complete_raises_named_errors(status, exception, verb):
    with pytest.raises(exception) as raised:
        operator().execute_complete(context_for(), event(status, "RuntimeError: Unable to finish loop"))
    assert str(raised.value) == (
        f"Lambda function {FUNCTION} (request req-1, correlation id corr-12345678) {verb}: "
        "RuntimeError: Unable to finish loop"
    )


@pytest.mark.parametrize("bad", [None, {}, {"status": "success"}, event("success", lines="nope")])
def test_execute_complete_never_succeeds_on_a_bad_event(bad):
    with pytest.raises(LambdaTriggerEventInvalid):
        operator().execute_complete(context_for(), bad)


def test_omitted_lines_are_announced(capsys):
    operator().execute_complete(context_for(), event("success", omitted_lines=42, omitted_at=1))
    logged = task_log(capsys)
    assert "44 line(s) of example-lambda-function" in logged
    assert logged.index("Function started") < logged.index("42 line(s) left out") < logged.index("Function invocation")


def test_not_deferrable_runs_the_trigger_in_the_worker(function, logs_client):
    ti = TaskInstanceStandIn(task_id="in_worker")
    correlation_id = correlation_id_for_try(try_key_of(ti))
    request_id = lines.new_request_id()
    lines.put(
        logs_client,
        GROUP,
        [
            lines.start(request_id),
            lines.powertools(correlation_id, request_id, "Function started"),
            lines.powertools(correlation_id, request_id, "Function ended"),
            lines.end(request_id),
            lines.report(request_id),
        ],
    )
    op = operator(task_id="in_worker", deferrable=False, poll_interval=1, settle_seconds=0.2)
    result = op.execute(context_for(ti))
    assert result["correlation_id"] == correlation_id


def test_not_deferrable_failure_raises_with_the_cause(function, logs_client):
    ti = TaskInstanceStandIn(task_id="in_worker_fails")
    correlation_id = correlation_id_for_try(try_key_of(ti))
    request_id = lines.new_request_id()
    lines.put(
        logs_client,
        GROUP,
        [
            lines.start(request_id),
            lines.logged_exception(correlation_id, request_id),
            lines.unhandled(),
            lines.end(request_id),
            lines.report(request_id),
        ],
    )
    op = operator(task_id="in_worker_fails", deferrable=False, poll_interval=1, settle_seconds=0.2)
    with pytest.raises(
        LambdaInvocationFailed,
        match=r"failed: RuntimeError: Unable to finish loop; the function logged \"Function invocation failed\"",
    ):
        op.execute(context_for(ti))


def test_deferred_trigger_does_not_fire_in_the_first_seconds(function):
    trigger = defer(operator()).trigger
    assert trigger.settings.fire_after == trigger.settings.handed_over_at + 6
    at_once = defer(operator(min_defer_seconds=0)).trigger
    assert at_once.settings.fire_after == at_once.settings.handed_over_at


def test_the_guard_counts_from_the_deferral_when_a_synchronous_invoke_outlasts_it(function, proxy):
    # The executor race is with the task's own deferral: a RequestResponse call that took longer than
    # min_defer_seconds must not leave the trigger free to fire at once (seen in the screenshots' demo run).
    proxy.slow_next("/invocations", 2.0)
    op = operator(aws_conn_id="aws_proxy", invocation_type="RequestResponse", min_defer_seconds=1)
    settings = defer(op).trigger.settings
    assert settings.handed_over_at - settings.invoked_at >= 2.0
    assert settings.fire_after == settings.handed_over_at + 1


def test_a_result_with_nan_is_carried_as_its_text(function, proxy):
    # Python's JSON reader takes NaN, but it is not JSON and Airflow could not store it in the event.
    proxy.respond_next(INVOCATIONS, 200, {"x-amzn-RequestId": "req-nan"}, '{"ratio": NaN}')
    deferred = defer(operator(aws_conn_id="aws_proxy", invocation_type="RequestResponse"))
    assert deferred.trigger.settings.result == {"value": '{"ratio": NaN}'}


@pytest.mark.parametrize(
    ("environment", "given", "expected"),
    [
        pytest.param(None, None, True, id="unset-defers"),
        pytest.param("False", None, False, id="deployment-turned-it-off"),
        pytest.param("True", None, True, id="deployment-turned-it-on"),
        pytest.param("False", True, True, id="argument-wins-over-off"),
        pytest.param("True", False, False, id="argument-wins-over-on"),
        pytest.param(None, False, False, id="argument-off"),
    ],
)
def test_deferrable_follows_the_deployments_default_deferrable(monkeypatch, environment, given, expected):
    if environment is None:
        monkeypatch.delenv(DEFAULT_DEFERRABLE_ENV, raising=False)
    else:
        monkeypatch.setenv(DEFAULT_DEFERRABLE_ENV, environment)
    kwargs = {} if given is None else {"deferrable": given}
    assert operator(**kwargs).deferrable is expected


def test_airflows_own_default_for_default_deferrable_does_not_turn_deferral_off(monkeypatch):
    """Airflow's default (False, written into every airflow.cfg it generates) is not the deployment's choice."""
    from airflow.providers.common.compat.sdk import conf

    monkeypatch.delenv(DEFAULT_DEFERRABLE_ENV, raising=False)
    assert conf.getboolean("operators", "default_deferrable") is False
    assert operator().deferrable is True


def test_deferrable_from_default_args(monkeypatch):
    from airflow.sdk import DAG

    monkeypatch.setenv(DEFAULT_DEFERRABLE_ENV, "True")
    with DAG(dag_id="no_triggerer_here", schedule=None, default_args={"deferrable": False}):
        task = operator()
    assert task.deferrable is False


# --- log_group: its name refused at parse time, a group nothing will create refused before Invoke ---


@pytest.mark.parametrize(
    ("log_group", "match"),
    [
        ("bad group*name", r"invoke: log_group 'bad group\*name' is not a CloudWatch Logs group name"),
        ("x" * 1000, "invoke: log_group is 1000 characters long, over CloudWatch Logs' 512"),
        ("", "invoke: log_group must be a CloudWatch Logs group name"),
    ],
)
def test_a_malformed_log_group_is_refused_at_parse_time(log_group, match):
    with pytest.raises(LambdaInvokeInputError, match=f"LambdaInvokeDeferrableOperator {match}"):
        operator(log_group=log_group)


def test_a_missing_log_group_is_refused_before_anything_is_invoked(function, proxy, logs_client):
    logs_client.create_log_group(logGroupName="/custom/missing-too")  # named like it, but not it
    with pytest.raises(LambdaInvokeInputError) as refused:
        operator(aws_conn_id="aws_proxy", log_group="/custom/missing").execute(context_for())
    assert str(refused.value) == (
        f"LambdaInvokeDeferrableOperator invoke: {FUNCTION} was not invoked: log group /custom/missing (log_group) "
        f"does not exist, and nothing will create it: Lambda writes {FUNCTION}'s lines to {GROUP}. DescribeLogGroups "
        "(logGroupNamePrefix /custom/missing) answered 1 group(s) whose names start so (/custom/missing-too), none of "
        "that exact name"
    )
    assert proxy.count("DescribeLogGroups") == 1
    assert proxy.count(INVOCATIONS) == 0
    assert logs_client.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"] == []  # nor did anything run


def test_an_existing_custom_log_group_is_followed(function, proxy, logs_client):
    logs_client.create_log_group(logGroupName="/custom/present")
    deferred = defer(operator(aws_conn_id="aws_proxy", log_group="/custom/present"))
    assert deferred.trigger.settings.log_group == "/custom/present"
    assert (proxy.count("DescribeLogGroups"), proxy.count(INVOCATIONS)) == (1, 1)


def test_the_functions_default_group_is_not_asked_about(function, proxy):
    # Lambda creates /aws/lambda/<name> on the first write: it need not exist before the first invoke.
    assert defer(operator(aws_conn_id="aws_proxy", log_group=GROUP)).trigger.settings.log_group == GROUP
    defer(operator(aws_conn_id="aws_proxy"))
    assert (proxy.count("DescribeLogGroups"), proxy.count(INVOCATIONS)) == (0, 2)


def test_access_denied_on_describe_log_groups_leaves_the_group_unchecked(function, proxy, capsys):
    proxy.fail_next("DescribeLogGroups", 1, code="AccessDeniedException", message="not allowed to describe")
    deferred = defer(operator(aws_conn_id="aws_proxy", log_group="/custom/unknown"))
    assert deferred.trigger.settings.log_group == "/custom/unknown"
    assert proxy.count(INVOCATIONS) == 1
    warnings = [line for line in task_log(capsys).splitlines() if "[warning" in line]
    assert any(
        f"log group /custom/unknown of {FUNCTION} could not be checked (DescribeLogGroups: AccessDeniedException: "
        "not allowed to describe); invoking anyway" in line
        for line in warnings
    )


def test_another_error_of_describe_log_groups_invokes_nothing(function, proxy):
    proxy.fail_next("DescribeLogGroups", 5, code="ServiceUnavailableException", status=503, message="down")
    with pytest.raises(LambdaInvokeError, match="DescribeLogGroups of /custom/unknown .* ServiceUnavailableException"):
        operator(aws_conn_id="aws_proxy", log_group="/custom/unknown").execute(context_for())
    assert proxy.count(INVOCATIONS) == 0


def test_the_functions_own_custom_group_missing_is_warned_about_not_refused(function, proxy, lambda_client, capsys):
    # Lambda creates a LoggingConfig.LogGroup that does not exist on the function's first write (given the
    # execution role's logs:CreateLogGroup), as it does /aws/lambda/<name>. moto keeps no LoggingConfig: the
    # proxy answers GetFunctionConfiguration with moto's own answer plus one.
    configuration = lambda_client.get_function_configuration(FunctionName=FUNCTION)
    del configuration["ResponseMetadata"]
    configuration["LoggingConfig"] = {"LogFormat": "Text", "LogGroup": "/custom/own"}
    path = f"GET /2015-03-31/functions/{FUNCTION}/configuration"
    proxy.respond_next(path, 200, {"Content-Type": "application/json"}, json.dumps(configuration, default=str))
    deferred = defer(operator(aws_conn_id="aws_proxy"))
    assert deferred.trigger.settings.log_group == "/custom/own"
    assert (proxy.count("DescribeLogGroups"), proxy.count(INVOCATIONS)) == (1, 1)
    warnings = [line for line in task_log(capsys).splitlines() if "[warning" in line]
    assert any(
        f"log group /custom/own (LoggingConfig.LogGroup of {FUNCTION}) does not exist yet: Lambda creates it" in line
        for line in warnings
    )


# --- a function's control characters reach the task log escaped, its traceback behind a prefix ---


def test_control_characters_of_a_function_reach_the_resumed_task_log_escaped(function, logs_client, capsys):
    import asyncio

    from airflow_lambda_deferrable.verdict.task_log_lines import DETAIL_PREFIX

    deferred = defer(operator(min_defer_seconds=0, poll_interval=1, settle_seconds=0.2))
    settings = deferred.trigger.settings
    cid, rid = settings.correlation_id, settings.request_id
    forged = "2025-11-23T10:00:00.000+00:00 ERROR [lambda] forged by the function"
    lines.put(
        logs_client,
        GROUP,
        [
            lines.start(rid),
            lines.powertools(cid, rid, f"colour \x1b[31mred\x1b[0m bell\x07 back\rover\n{forged}"),
            lines.powertools(
                cid, rid, "handled", exception=f"Traceback (most recent call last):\n{forged}\nValueError: \x1b[2J"
            ),
            lines.powertools(cid, rid, "Function ended"),
            lines.end(rid),
            lines.report(rid),
        ],
    )

    async def first_event() -> dict[str, Any]:
        async for event in deferred.trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    event = asyncio.run(asyncio.wait_for(first_event(), 40))
    assert event["status"] == "success"
    capsys.readouterr()  # only what the resumed task logs
    operator().execute_complete(context_for(), event)
    logged = task_log(capsys)
    assert f"INFO colour \\x1b[31mred\\x1b[0m bell\\x07 back\\rover\\n{forged}" in logged
    assert f"INFO handled\n{DETAIL_PREFIX}Traceback (most recent call last):\n{DETAIL_PREFIX}{forged}\n" in logged
    assert f"\n{DETAIL_PREFIX}ValueError: \\x1b[2J" in logged
    assert not {"\x1b", "\x07", "\r"} & set(logged)
    # Each line naming the forgery is the function's own record (after the real label) or a traceback line.
    for line in logged.splitlines():
        if "forged" in line:
            assert "] [lambda] 2" in line.split("forged")[0] or line.startswith(DETAIL_PREFIX), line


def test_the_raised_cause_cannot_start_a_task_log_line_of_its_own():
    cause = "ValueError: bad\n[lambda] 2026-12-06T00:00:00.000+00:00 INFO \x1b[32mall fine\x1b[0m"
    with pytest.raises(LambdaInvocationFailed) as raised:
        operator().execute_complete(context_for(), event("failed", cause))
    assert "\n" not in str(raised.value) and "\x1b" not in str(raised.value)
    assert str(raised.value).endswith(
        "failed: ValueError: bad\\n[lambda] 2026-12-06T00:00:00.000+00:00 INFO \\x1b[32mall fine\\x1b[0m"
    )


def test_lines_of_other_requests_with_our_correlation_id_are_reported_as_left_out(capsys):
    operator().execute_complete(context_for(), event("success", foreign_lines=500))
    logged = task_log(capsys)
    assert "500 line(s) carrying the correlation id corr-12345678 came from other requests" in logged
