"""The payload of the trigger's one event: built small enough for Airflow's database, read back strictly.

The trigger builds it with `build_payload`; the task reads it with `InvocationReport.from_payload`,
which refuses anything missing or malformed (a broken event must never pass for success).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from airflow_lambda_deferrable.exceptions import LambdaTriggerEventInvalid
from airflow_lambda_deferrable.settings import DEFAULT_MAX_BYTES, DEFAULT_MAX_LINES
from airflow_lambda_deferrable.verdict.log_lines import LogLine, json_value_too_deep
from airflow_lambda_deferrable.verdict.outcome import Verdict

STATUSES = frozenset({"success", "failed", "timeout", "error"})
MAX_MESSAGE_CHARS = 8 * 1024
MAX_DETAIL_CHARS = 16 * 1024
# A ``RequestResponse`` result larger than this (as JSON) is not carried back to the task; Lambda allows 6 MB.
MAX_RESULT_BYTES = 256 * 1024
# When lines must be left out, keep this share of the budget for the first lines; the rest is the tail.
HEAD_SHARE = 0.2
# What PostgreSQL's JSONB (where Airflow stores `next_kwargs`) cannot hold: NUL, and surrogates, which
# in a Python string are always lone ones (no UTF-8 encoding). Each becomes U+FFFD, visibly.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def storable(value: Any) -> Any:
    """Return a JSON value with every string (dict keys too) made storable: NUL and lone surrogates become U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(item) for item in value]
    return value


def _clip(text: str | None, limit: int) -> str | None:
    """Cut `text` to at most `limit` characters, saying how many were cut, and make it safe to store (see
    `storable`). Clipping a clipped text changes nothing."""
    if text is None:
        return None
    clean = storable(text)
    if len(clean) <= limit:
        return clean
    note = f"... [{len(clean)} characters in all]"
    return clean[: limit - len(note)] + note


def clip_line(line: LogLine) -> LogLine:
    """Return `line` with its message and traceback cut as the event stores them (a trigger keeps no more)."""
    return replace(
        line, message=_clip(line.message, MAX_MESSAGE_CHARS) or "", detail=_clip(line.detail, MAX_DETAIL_CHARS)
    )


def line_to_dict(line: LogLine) -> dict[str, Any]:
    """Return the stored form of a line: time, level, message, traceback, stream, request id (if it has one)."""
    return {
        "timestamp": line.timestamp,
        "level": line.level,
        "message": _clip(line.message, MAX_MESSAGE_CHARS),
        "detail": _clip(line.detail, MAX_DETAIL_CHARS),
        "stream": line.stream,
        "request_id": line.request_id,
    }


def bound_lines(
    lines: list[dict[str, Any]], *, max_lines: int, max_bytes: int, dropped: int = 0
) -> tuple[list[dict[str, Any]], int, int]:
    """Keep the first and last lines within both budgets.

    :param dropped: lines already left out between the earliest and the latest ones given (the trigger
        keeps only the two ends of a long log; see `outcome.InvocationLog.keep_lines`).
    :return: the kept lines, how many were left out, and the index in the kept list where they were.
    """
    # Each line costs its JSON text plus the ", " that separates it from the next in the stored list.
    sizes = [len(json.dumps(line)) + 2 for line in lines]
    if not dropped and len(lines) <= max_lines and sum(sizes) <= max_bytes:
        return lines, 0, len(lines)
    head_lines, head_bytes = int(max_lines * HEAD_SHARE), int(max_bytes * HEAD_SHARE)
    head: list[dict[str, Any]] = []
    used = 0
    for line, size in zip(lines, sizes, strict=True):
        if len(head) >= head_lines or used + size > head_bytes:
            break
        head.append(line)
        used += size
    tail: list[dict[str, Any]] = []
    for line, size in zip(reversed(lines[len(head) :]), reversed(sizes[len(head) :]), strict=True):
        if len(head) + len(tail) >= max_lines or used + size > max_bytes:
            break
        tail.append(line)
        used += size
    tail.reverse()
    return head + tail, len(lines) - len(head) - len(tail) + dropped, len(head)


def carry_result(result: Any) -> dict[str, Any]:
    """Return the function's result as the trigger carries it back to the task; never raises, for the
    function has run (a task failed here would be retried, and run it again).

    ``{"value": result}``, or ``{"omitted_bytes": size}`` when its JSON is over `MAX_RESULT_BYTES`.
    `result` must be JSON data (as parsed from Lambda's response). A result nested deeper than
    `MAX_JSON_DEPTH`, or holding NaN or infinity (a durable execution's result is read leniently), is
    carried as its JSON text, a string, as a response that is not JSON is: Airflow's serializers recurse
    per level, and the database stores no NaN.
    """
    if json_value_too_deep(result):
        result = _json_text(result)
    clean = storable(result)  # stored as the trigger's kwargs and in the event, in the metadata database
    try:
        size = len(json.dumps(clean, allow_nan=False, separators=(",", ":")).encode())
    except ValueError:  # NaN or infinity
        clean = storable(_json_text(result))
        size = len(json.dumps(clean).encode())
    return {"value": clean} if size <= MAX_RESULT_BYTES else {"omitted_bytes": size}


class _Written(str):
    """A piece of JSON text already written (a bracket, a separator, a key), as `_json_text` queues it."""


def _json_text(value: Any) -> str:
    """Return JSON data as compact JSON text without recursing, however deep (`json.dumps` recurses)."""
    parts: list[str] = []
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _Written):
            parts.append(item)
        elif isinstance(item, dict):
            parts.append("{")
            pending.append(_Written("}"))
            for index, (key, entry) in reversed(list(enumerate(item.items()))):
                pending.append(entry)
                pending.append(_Written(("," if index else "") + json.dumps(str(key)) + ":"))
        elif isinstance(item, (list, tuple)):
            parts.append("[")
            pending.append(_Written("]"))
            for index in reversed(range(len(item))):
                pending.append(item[index])
                if index:
                    pending.append(_Written(","))
        else:
            parts.append(json.dumps(item, default=str))
    return "".join(parts)


def build_payload(
    *,
    status: str,
    message: str,
    identity: dict[str, Any],
    lines: list[LogLine],
    verdict: Verdict | None = None,
    max_lines: int = DEFAULT_MAX_LINES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    polls: int = 0,
    result: dict[str, Any] | None = None,
    unattributed_lines: int = 0,
    dropped_lines: int = 0,
    foreign_lines: int = 0,
) -> dict[str, Any]:
    """Return the event payload (JSON-serializable primitives only).

    :param identity: which invocation (`settings.FollowSettings.identity`).
    :param result: a ``RequestResponse`` function's result, as `carry_result` made it.
    :param dropped_lines: lines the trigger did not keep, between the earliest and latest of `lines`.
    :param unattributed_lines: lines without ids in the request's stretch of stream that could have been
        another request's (an environment running several at once), left out.
    :param foreign_lines: lines carrying our correlation id in another request (`outcome.InvocationLog`),
        left out.
    """
    kept, omitted, omitted_at = bound_lines(
        [line_to_dict(line) for line in lines], max_lines=max_lines, max_bytes=max_bytes, dropped=dropped_lines
    )
    error = None
    if verdict is not None and verdict.status == "failed":
        error = {
            "type": verdict.error_type,
            "message": _clip(verdict.error_message, MAX_MESSAGE_CHARS),
            "detail": _clip(verdict.detail, MAX_DETAIL_CHARS),
        }
    return storable(
        {
            "status": status,
            "message": _clip(message, MAX_MESSAGE_CHARS),
            **identity,
            "error": error,
            "lines": kept,
            "omitted_lines": omitted,
            "omitted_at": omitted_at,
            "unattributed_lines": unattributed_lines,
            "foreign_lines": foreign_lines,
            "polls": polls,
            "result": result,
        }
    )


@dataclass(frozen=True)
class InvocationReport:
    """A validated trigger event, as the task reads it."""

    status: str
    message: str
    function_name: str
    request_id: str | None
    correlation_id: str
    log_group: str
    lines: list[dict[str, Any]]
    omitted_lines: int
    omitted_at: int
    error: dict[str, Any] | None
    qualifier: str | None = None
    result: dict[str, Any] | None = None
    tenant_id: str | None = None
    unattributed_lines: int = 0
    foreign_lines: int = 0
    durable_execution_arn: str | None = None
    durable_execution_name: str | None = None

    @classmethod
    def from_payload(cls, payload: Any) -> InvocationReport:
        """Validate an event payload; raise `LambdaTriggerEventInvalid` naming what is wrong."""
        if not isinstance(payload, dict):
            raise LambdaTriggerEventInvalid(
                "LambdaInvokeDeferrableOperator.execute_complete: expected the trigger's event (a dict), "
                f"got {type(payload).__name__}"
            )
        problems = []
        if payload.get("status") not in STATUSES:
            problems.append(f"status {payload.get('status')!r} is not one of {sorted(STATUSES)}")
        for key in ("message", "function_name", "correlation_id", "log_group"):
            if not isinstance(payload.get(key), str):
                problems.append(f"{key} is missing or not a string")
        lines = payload.get("lines")
        if not isinstance(lines, list) or not all(
            isinstance(line, dict) and isinstance(line.get("message"), str) and isinstance(line.get("timestamp"), int)
            for line in lines
        ):
            problems.append("lines is missing or malformed")
        for key in ("omitted_lines", "omitted_at"):
            if not isinstance(payload.get(key), int):
                problems.append(f"{key} is missing or not an integer")
        result = payload.get("result")
        if result is not None and not (
            isinstance(result, dict)
            and (
                set(result) == {"value"}
                or (set(result) == {"omitted_bytes"} and isinstance(result["omitted_bytes"], int))
            )
        ):
            problems.append("result is neither a carried value nor an omitted size")
        if problems:
            raise LambdaTriggerEventInvalid(
                "LambdaInvokeDeferrableOperator.execute_complete: malformed trigger event: " + "; ".join(problems)
            )
        return cls(
            status=payload["status"],
            message=payload["message"],
            function_name=payload["function_name"],
            request_id=payload.get("request_id"),
            correlation_id=payload["correlation_id"],
            log_group=payload["log_group"],
            lines=lines,  # type: ignore[arg-type]
            omitted_lines=payload["omitted_lines"],
            omitted_at=payload["omitted_at"],
            error=payload.get("error") if isinstance(payload.get("error"), dict) else None,
            qualifier=payload.get("qualifier"),
            result=result,
            tenant_id=payload["tenant_id"] if isinstance(payload.get("tenant_id"), str) else None,
            durable_execution_arn=_text_or_none(payload.get("durable_execution_arn")),
            durable_execution_name=_text_or_none(payload.get("durable_execution_name")),
            unattributed_lines=_count(payload.get("unattributed_lines")),
            foreign_lines=_count(payload.get("foreign_lines")),
        )


def _count(value: Any) -> int:
    """Return a count the event carries; 0 when absent (an older trigger's event) or malformed."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
