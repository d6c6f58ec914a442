"""The pure rules of durable executions: names, qualifiers, status-read cadence, the verdict."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from airflow_lambda_deferrable.exceptions import LambdaInvokeInputError
from airflow_lambda_deferrable.provider.invocation_request import try_key_of
from airflow_lambda_deferrable.tuning import MAX_STATUS_READ_SECONDS, STEADY_READS_SECONDS, SYNC_VISIBILITY_SECONDS
from airflow_lambda_deferrable.verdict.durable_execution import (
    EXECUTION_NAME_PATTERN,
    MAX_EXECUTION_TIMEOUT_SECONDS,
    ExecutionEnd,
    check_execution_name,
    decide_execution,
    execution_name_for_try,
    execution_pending,
    execution_timeout_of,
    is_qualified,
    not_found_for_good,
    status_read_delay,
    visibility_bound,
)
from airflow_lambda_deferrable.verdict.trigger_event import carry_result


@dataclass
class Try:
    dag_id: str = "dag"
    run_id: str = "scheduled__2026-12-01T00:00:00+00:00"
    task_id: str = "task"
    map_index: int = -1
    try_number: int = 1
    id: str | None = None


def name_of(ti: Try) -> str:
    return execution_name_for_try(ti.task_id, try_key_of(ti))


def test_a_try_always_derives_the_same_name_and_another_try_another():
    first = name_of(Try())
    assert first == name_of(Try())
    others = {
        name_of(Try(try_number=2)),
        name_of(Try(run_id="scheduled__2026-12-02T00:00:00+00:00")),
        name_of(Try(map_index=0)),
        name_of(Try(dag_id="dag2")),
    }
    assert first not in others and len(others) == 4


def test_the_task_instance_id_tells_two_deployments_apart():
    """Two deployments sharing an AWS account run the same scheduled run of the same DAG."""
    prod, dev = Try(id="0193a1b2-0000-7000-8000-000000000001"), Try(id="0193a1b2-0000-7000-8000-000000000002")
    assert name_of(prod) != name_of(dev)
    assert name_of(prod) == name_of(Try(id=prod.id, try_number=9))  # the id alone names the try


@pytest.mark.parametrize(
    ("task_id", "prefix"),
    [
        ("t", "t-"),
        ("group.task with spaces", "group_task_with_spaces-"),
        ("x" * 250, "x" * 31 + "-"),
        ("ünïcode.task", "_n_code_task-"),
    ],
)
def test_a_derived_name_is_one_lambda_accepts_and_starts_with_the_task_id(task_id, prefix):
    name = name_of(Try(task_id=task_id, id="0193a1b2-0000-7000-8000-000000000001"))
    assert EXECUTION_NAME_PATTERN.fullmatch(name)
    assert name.startswith(prefix)


@pytest.mark.parametrize("name", ["", "a" * 65, "with space", "dot.ted", "slash/ed", None, 12])
def test_a_name_lambda_refuses_is_refused(name):
    with pytest.raises(LambdaInvokeInputError, match="durable_execution_name must be 1 to 64"):
        check_execution_name(name)


def test_a_name_lambda_accepts_is_kept():
    assert check_execution_name("nightly-load_2026") == "nightly-load_2026"
    assert check_execution_name("a" * 64) == "a" * 64


@pytest.mark.parametrize(
    ("function_name", "qualifier", "qualified"),
    [
        ("fn", None, False),
        ("fn", "$LATEST", True),
        ("fn:live", None, True),
        ("123456789012:function:fn", None, False),
        ("123456789012:function:fn:3", None, True),
        ("arn:aws:lambda:us-east-1:123456789012:function:fn", None, False),
        ("arn:aws:lambda:us-east-1:123456789012:function:fn:7", None, True),
        ("arn:aws:lambda:us-east-1:123456789012:function:fn", "live", True),
    ],
)
def test_a_durable_invoke_must_name_a_version_or_alias(function_name, qualifier, qualified):
    assert is_qualified(function_name, qualifier) is qualified


def test_the_execution_timeout_comes_from_the_durable_config():
    assert execution_timeout_of({"Timeout": 30}) is None
    assert execution_timeout_of({"DurableConfig": {"ExecutionTimeout": 3600}}) == 3600
    assert execution_timeout_of({"DurableConfig": {"RetentionPeriodInDays": 7}}) == MAX_EXECUTION_TIMEOUT_SECONDS


def test_status_reads_are_steady_at_first_then_slow_down_within_the_bound():
    assert status_read_delay(0, 5.0) == 5.0
    assert status_read_delay(STEADY_READS_SECONDS, 5.0) == 5.0
    delays = [status_read_delay(age, 5.0) for age in (900, 3_600, 86_400, 30 * 86_400)]
    assert delays == sorted(delays)
    assert delays[0] == 45.0  # 5 % of the execution's age
    assert delays[-1] == MAX_STATUS_READ_SECONDS
    assert status_read_delay(700, 60.0) == 60.0  # never more often than the task's poll interval


def test_a_running_execution_reports_no_end():
    assert ExecutionEnd.from_response({"Status": "RUNNING"}) is None


def test_a_succeeded_execution_carries_its_result_as_json():
    end = ExecutionEnd.from_response({"Status": "SUCCEEDED", "Result": '{"rows": 3}'})
    assert end == ExecutionEnd(status="SUCCEEDED", result={"rows": 3})
    assert ExecutionEnd.from_response({"Status": "SUCCEEDED", "Result": "not json"}).result == "not json"


@pytest.mark.parametrize("depth", [1_200, 5_000])
def test_a_succeeded_execution_with_a_result_nested_too_deep_carries_it_as_text(depth):
    deep = "[" * depth + "]" * depth
    end = ExecutionEnd.from_response({"Status": "SUCCEEDED", "Result": deep})
    assert end == ExecutionEnd(status="SUCCEEDED", result=deep)
    assert carry_result(end.result) == {"value": deep}


def test_a_failed_execution_carries_its_error_and_stack():
    end = ExecutionEnd.from_response(
        {
            "Status": "FAILED",
            "Error": {"ErrorType": "ValueError", "ErrorMessage": "bad row 7", "StackTrace": ["  at a", "  at b"]},
        }
    )
    assert end == ExecutionEnd(
        status="FAILED", error_type="ValueError", error_message="bad row 7", stack_trace="  at a\n  at b"
    )


END = ExecutionEnd(status="FAILED", error_type="ValueError", error_message="bad row 7", stack_trace="trace")


def decide(end, *, seen=100.0, now=110.0, checked=105.0, deadline=1_000.0):
    return decide_execution(
        end,
        ended_seen_at=seen if end else None,
        now=now,
        checked_at=checked,
        deadline=deadline,
        settle_seconds=3.0,
        execution_name="run-1",
    )


def test_an_ended_execution_is_decided_once_a_read_after_the_settle_window_began():
    assert decide(END, now=102.0, checked=101.0) is None  # still settling
    assert decide(END, now=110.0, checked=102.0) is None  # settled, but no read since
    verdict = decide(END, now=110.0, checked=103.5)
    assert verdict.status == "failed"
    assert (verdict.error_type, verdict.error_message, verdict.detail) == ("ValueError", "bad row 7", "trace")
    assert "run-1 ended FAILED: ValueError: bad row 7" in verdict.reason


@pytest.mark.parametrize("status", ["TIMED_OUT", "STOPPED"])
def test_timed_out_and_stopped_executions_fail_naming_the_status(status):
    verdict = decide(ExecutionEnd(status=status, error_message="why"))
    assert verdict.status == "failed"
    assert verdict.error_type == status
    assert f"ended {status}: why" in verdict.reason


def test_a_succeeded_execution_is_a_success():
    assert decide(ExecutionEnd(status="SUCCEEDED", result=1)).status == "success"


def test_the_deadline_decides_an_execution_that_has_not_ended_and_cuts_settling_short():
    assert decide(None, now=999.0) is None
    assert decide(None, now=1_000.0).status == "timeout"
    assert decide(END, now=1_000.0, checked=0.0).status == "failed"


@pytest.mark.parametrize(
    ("code", "invocation_type", "seconds_after_invoke", "pending"),
    [
        # An Event start may not be visible for as long as the event may wait in the queue (here 300 s).
        ("ResourceNotFoundException", "Event", 0.0, True),
        ("ResourceNotFoundException", "Event", 299.9, True),
        ("ResourceNotFoundException", "Event", 300.0, False),
        ("ResourceNotFoundException", "Event", 3_600.0, False),
        # A synchronous invoke started it before answering: only seconds of eventual consistency.
        ("ResourceNotFoundException", "RequestResponse", 0.0, True),
        ("ResourceNotFoundException", "RequestResponse", SYNC_VISIBILITY_SECONDS - 0.1, True),
        ("ResourceNotFoundException", "RequestResponse", SYNC_VISIBILITY_SECONDS, False),
        ("ResourceNotFoundException", "RequestResponse", 299.9, False),
        # Only "not found" can mean "not yet".
        ("AccessDeniedException", "Event", 0.0, False),
        ("ValidationException", "RequestResponse", 0.0, False),
        (None, "Event", 0.0, False),
    ],
)
def test_an_execution_not_found_yet_is_pending_within_its_bound_from_the_invoke(
    code, invocation_type, seconds_after_invoke, pending
):
    assert (
        execution_pending(
            code,
            invocation_type=invocation_type,
            now=1_000.0 + seconds_after_invoke,
            invoked_at=1_000.0,
            queue_allowance_seconds=300.0,
        )
        is pending
    )


@pytest.mark.parametrize(
    ("invocation_type", "queue_allowance_seconds", "bound"),
    [
        ("Event", 300.0, 300.0),
        ("Event", 3.0, 3.0),
        ("Event", 0.0, 0.0),  # no allowance: the first "not found" is final
        ("RequestResponse", 300.0, SYNC_VISIBILITY_SECONDS),
        ("RequestResponse", 0.0, SYNC_VISIBILITY_SECONDS),
    ],
)
def test_the_bound_is_the_queue_allowance_for_an_event_and_seconds_otherwise(
    invocation_type, queue_allowance_seconds, bound
):
    assert visibility_bound(invocation_type, queue_allowance_seconds) == bound
    assert not execution_pending(
        "ResourceNotFoundException",
        invocation_type=invocation_type,
        now=1_000.0 + bound,
        invoked_at=1_000.0,
        queue_allowance_seconds=queue_allowance_seconds,
    )


@pytest.mark.parametrize(
    ("invocation_type", "allowed"),
    [
        ("Event", "past the task's queue_allowance_seconds (3 s) for an Event invoke"),
        ("RequestResponse", f"past {SYNC_VISIBILITY_SECONDS:g} s for a RequestResponse invoke"),
    ],
)
def test_giving_up_says_what_was_asked_for_how_long_and_what_lambda_answered(invocation_type, allowed):
    arn = "arn:aws:lambda:us-east-1:123456789012:function:f:1/durable-execution/n/id"
    message = not_found_for_good(
        arn,
        f"Durable execution {arn} does not exist",
        invocation_type=invocation_type,
        waited_seconds=12.34,
        queue_allowance_seconds=3.0,
    )
    assert message.startswith(
        f"GetDurableExecution of {arn} answered ResourceNotFoundException "
        f"(Durable execution {arn} does not exist) 12.3 s after the invoke, "
    )
    assert allowed in message
