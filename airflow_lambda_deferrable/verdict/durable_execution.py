"""Lambda durable executions: names, status reads and the verdict. Pure: no network, no Airflow.

A durable function runs one workflow as many invocations (replays); `GetDurableExecution` says how the
whole execution ended, which no single invocation's log can. So a durable task's verdict comes from the
execution's status alone; the log lines are only gathered for the task log.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from airflow_lambda_deferrable.exceptions import LambdaInvokeInputError
from airflow_lambda_deferrable.tuning import (
    AGE_SHARE,
    MAX_STATUS_READ_SECONDS,
    STEADY_READS_SECONDS,
    SYNC_VISIBILITY_SECONDS,
)
from airflow_lambda_deferrable.verdict.log_lines import json_text_too_deep
from airflow_lambda_deferrable.verdict.outcome import Verdict

# Invoke's DurableExecutionName: 1 to 64 of these characters, unique per account and region.
EXECUTION_NAME_PATTERN = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# A fixed namespace, so that one task try always derives the same execution name.
EXECUTION_NAMESPACE = uuid.UUID("0b8e3f4c-5d1a-4e7b-9c2f-6a3d8e1f7b54")
# The part of a derived name taken from the task id (the rest is a 32-character digest and a dash).
TASK_ID_CHARS = 31

RUNNING = "RUNNING"
ENDED_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"})

# Lambda's ExecutionTimeout when a function's DurableConfig does not give one, and its ceiling (a year).
MAX_EXECUTION_TIMEOUT_SECONDS = 366 * 86_400
# What GetDurableExecution answers for an execution it does not know (yet).
NOT_FOUND = "ResourceNotFoundException"


def execution_name_for_try(task_id: str, try_key: str) -> str:
    """Return the durable execution name of one task try: the same whenever it is recomputed, new per try.

    It starts with the task id (cut, other characters as ``_``) so that a reader of the Lambda console
    knows whose it is; the digest of `try_key` (`try_key_of`) makes it unique to the try.
    """
    digest = uuid.uuid5(EXECUTION_NAMESPACE, try_key).hex
    readable = re.sub(r"[^a-zA-Z0-9_-]", "_", task_id)[:TASK_ID_CHARS]
    return f"{readable}-{digest}"


def check_execution_name(name: Any) -> str:
    """Return `name` if Lambda accepts it as a DurableExecutionName, else raise `LambdaInvokeInputError`."""
    if not isinstance(name, str) or not EXECUTION_NAME_PATTERN.fullmatch(name):
        raise LambdaInvokeInputError(
            f"durable_execution_name must be 1 to 64 letters, digits, '-' or '_', got {name!r}"
        )
    return name


def is_qualified(function_name: str, qualifier: str | None) -> bool:
    """Whether the invoke names a version or alias: Lambda refuses to start a durable execution without one.

    A function is named by name, ``name:qualifier``, ``account:function:name[:qualifier]`` or a full ARN
    ``arn:partition:lambda:region:account:function:name[:qualifier]``.
    """
    if qualifier:
        return True
    parts = function_name.split(":")
    if parts[0] == "arn":
        return len(parts) == 8
    return len(parts) in (2, 4)


def execution_timeout_of(configuration: dict[str, Any]) -> int | None:
    """Return the execution timeout (seconds) of a function's configuration, or ``None`` if it is not durable."""
    durable = configuration.get("DurableConfig")
    if not isinstance(durable, dict):
        return None
    timeout = durable.get("ExecutionTimeout")
    return int(timeout) if isinstance(timeout, int) and timeout > 0 else MAX_EXECUTION_TIMEOUT_SECONDS


def status_read_delay(age_seconds: float, poll_interval: float) -> float:
    """Return how long to wait before the next status read of an execution `age_seconds` old."""
    if age_seconds <= STEADY_READS_SECONDS:
        return poll_interval
    return max(poll_interval, min(MAX_STATUS_READ_SECONDS, age_seconds * AGE_SHARE))


def visibility_bound(invocation_type: str, queue_allowance_seconds: float) -> float:
    """Return how long after the invoke an execution `GetDurableExecution` does not find may still appear.

    An ``Event`` invoke answers once the event is queued; the execution starts when Lambda takes the event
    from its queue, as late as the task's `queue_allowance_seconds`. A synchronous invoke has started it
    before answering (`SYNC_VISIBILITY_SECONDS`).
    """
    return queue_allowance_seconds if invocation_type == "Event" else SYNC_VISIBILITY_SECONDS


def execution_pending(
    code: str | None, *, invocation_type: str, now: float, invoked_at: float, queue_allowance_seconds: float
) -> bool:
    """Whether a failed `GetDurableExecution` means "not visible yet, read again" rather than a final answer.

    Only ``ResourceNotFoundException`` within `visibility_bound` of the invoke is pending, also after the
    execution was once seen (an eventually consistent read may answer from a replica that has not caught up).

    :param code: the error code Lambda answered.
    :param now: the trigger's time (epoch seconds), on the same clock as `invoked_at`.
    """
    return code == NOT_FOUND and now - invoked_at < visibility_bound(invocation_type, queue_allowance_seconds)


def not_found_for_good(
    arn: str, message: str, *, invocation_type: str, waited_seconds: float, queue_allowance_seconds: float
) -> str:
    """Return why the task gives up on an execution `GetDurableExecution` still does not find past the bound."""
    bound = visibility_bound(invocation_type, queue_allowance_seconds)
    allowed = (
        f"the task's queue_allowance_seconds ({bound:g} s) for an Event invoke"
        if invocation_type == "Event"
        else f"{bound:g} s for a {invocation_type} invoke"
    )
    return (
        f"GetDurableExecution of {arn} answered {NOT_FOUND} ({message}) {waited_seconds:.1f} s after the invoke, "
        f"past {allowed}: the execution was never visible, or is gone"
    )


@dataclass(frozen=True)
class ExecutionEnd:
    """How a durable execution ended, as `GetDurableExecution` said."""

    status: str
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    stack_trace: str | None = None

    @classmethod
    def from_response(cls, response: dict[str, Any]) -> ExecutionEnd | None:
        """Return the end a `GetDurableExecution` answer reports, or ``None`` while the execution runs."""
        status = response.get("Status")
        if status not in ENDED_STATUSES:
            return None
        error = response.get("Error") or {}
        stack = error.get("StackTrace")
        return cls(
            status=status,
            result=_parsed(response.get("Result")) if status == "SUCCEEDED" else None,
            error_type=error.get("ErrorType"),
            error_message=error.get("ErrorMessage"),
            stack_trace="\n".join(stack) if isinstance(stack, list) else stack,
        )


def _parsed(result: str | None) -> Any:
    """Return the execution's result as JSON data when it is JSON, else as the text it is (also when it
    nests deeper than `log_lines.MAX_JSON_DEPTH`: parsing it would exhaust the stack, in the trigger)."""
    if result is None or json_text_too_deep(result):
        return result
    try:
        return json.loads(result)
    except ValueError:
        return result


def decide_execution(
    end: ExecutionEnd | None,
    *,
    ended_seen_at: float | None,
    now: float,
    checked_at: float,
    deadline: float,
    settle_seconds: float,
    execution_name: str,
) -> Verdict | None:
    """Return the verdict on a durable execution, or ``None`` to keep watching.

    The execution's own status decides; a replay's failed invocation does not (the SDK may retry it).
    Once it has ended, the verdict waits `settle_seconds` and a log read begun after that, so the last
    replay's lines reach the task log. Nothing by the deadline is a timeout.
    """
    if end is not None and ended_seen_at is not None:
        settled = now >= ended_seen_at + settle_seconds and checked_at >= ended_seen_at + settle_seconds
        if settled or now >= deadline:
            return _verdict(end, execution_name)
        return None
    if now >= deadline:
        return Verdict(status="timeout", reason=f"durable execution {execution_name} had not ended by the deadline")
    return None


def _verdict(end: ExecutionEnd, execution_name: str) -> Verdict:
    if end.status == "SUCCEEDED":
        return Verdict(status="success", reason=f"durable execution {execution_name} SUCCEEDED")
    cause = ": ".join(part for part in (end.error_type, end.error_message) if part) or "no error given"
    return Verdict(
        status="failed",
        reason=f"durable execution {execution_name} ended {end.status}: {cause}",
        error_type=end.error_type or end.status,
        error_message=end.error_message,
        detail=end.stack_trace,
    )
