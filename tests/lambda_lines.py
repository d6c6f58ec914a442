"""Build log lines exactly as Lambda and Powertools write them, and put them into moto's CloudWatch Logs."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

STREAM = "2026/11/23/[$LATEST]0123456789abcdef0123456789abcdef"


def new_request_id() -> str:
    return str(uuid.uuid4())


def powertools(correlation_id: str | None, request_id: str, message: str, level: str = "INFO", **extra: Any) -> str:
    """A Powertools Logger line with `inject_lambda_context(correlation_id_path=...)`."""
    record: dict[str, Any] = {}
    if correlation_id is not None:
        record["correlation_id"] = correlation_id
    record |= {
        "level": level,
        "message": message,
        "location": "lambda_handler:20",
        "timestamp": "2026-11-23 10:00:00,000+0000",
        "service": "airflow",
        "cold_start": False,
        "function_name": "example-lambda-function",
        "function_memory_size": 128,
        "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:example-lambda-function",
        "function_request_id": request_id,
    }
    record |= extra
    return json.dumps(record, separators=(",", ":"))


def logged_exception(correlation_id: str, request_id: str, message: str = "Function invocation failed") -> str:
    """What `logger.exception(...)` writes while handling an exception."""
    return powertools(
        correlation_id,
        request_id,
        message,
        level="ERROR",
        exception=(
            'Traceback (most recent call last):\n  File "/var/task/lambda_function.py", line 24, in lambda_handler\n'
            "    raise ValueError('bad row 7')\nValueError: bad row 7"
        ),
        exception_name="ValueError",
    )


def start(request_id: str) -> str:
    return f"START RequestId: {request_id} Version: $LATEST"


def end(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report(
    request_id: str, duration_ms: float = 1012.55, status: str | None = None, error_type: str | None = None
) -> str:
    """REPORT; `status` / `error_type` add the fields Lambda's text format writes since 2026."""
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {int(duration_ms) + 1} ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 52 MB"
    )
    if status is not None:
        line += f"\tStatus: {status}"
    if error_type is not None:
        line += f"\tError Type: {error_type}"
    return line


def timed_out(request_id: str, seconds: float = 3.0) -> str:
    return f"2026-11-23T10:00:03.004Z {request_id} Task timed out after {seconds:.2f} seconds"


def unhandled(error_type: str = "RuntimeError", message: str = "Unable to finish loop") -> str:
    """The Python runtime's line for an exception that escaped the handler (no ids, \\r between lines)."""
    return (
        f"[ERROR] {error_type}: {message}\rTraceback (most recent call last):\r"
        '  File "/var/task/lambda_function.py", line 30, in lambda_handler\r'
        f"    raise {error_type}({message!r}) from e"
    )


def runtime_exit(request_id: str) -> str:
    return f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"


def platform_json(kind: str, request_id: str, **record: Any) -> str:
    """A platform event in Lambda's JSON log format."""
    return json.dumps({"time": "2026-11-23T10:00:00.000Z", "type": kind, "record": {"requestId": request_id, **record}})


def runtime_json_unhandled(
    request_id: str, error_type: str = "RuntimeError", message: str = "Unable to finish loop"
) -> str:
    """The Python runtime's JSON-format line for an exception that escaped the handler (no "message")."""
    return json.dumps(
        {
            "timestamp": "2026-11-23T10:00:01Z",
            "level": "ERROR",
            "errorMessage": message,
            "errorType": error_type,
            "requestId": request_id,
            "stackTrace": ['  File "/var/task/lambda_function.py", line 30, in lambda_handler\n    raise X\n'],
        }
    )


def runtime_json_logged(request_id: str, message: str, level: str = "INFO", **extra: Any) -> str:
    """A `logging` record as the Python runtime writes it in the JSON log format."""
    record = {"timestamp": "2026-11-23T10:00:01Z", "level": level, "message": message, "logger": "root"}
    return json.dumps({**record, **extra, "requestId": request_id})


def now_ms() -> int:
    return int(time.time() * 1000)


def put(logs_client: Any, group: str, messages: list[str], *, stream: str = STREAM, at: int | None = None) -> int:
    """Write `messages` to `group`/`stream` one millisecond apart from `at` (default now); return the next time."""
    stamp = now_ms() if at is None else at
    put_at(logs_client, group, [(stamp + offset, message) for offset, message in enumerate(messages)], stream=stream)
    return stamp + len(messages)


def put_at(logs_client: Any, group: str, events: list[tuple[int, str]], *, stream: str = STREAM) -> None:
    """Write (timestamp, message) events, creating the group and stream when missing."""
    try:
        logs_client.create_log_group(logGroupName=group)
    except logs_client.exceptions.ResourceAlreadyExistsException:
        pass
    try:
        logs_client.create_log_stream(logGroupName=group, logStreamName=stream)
    except logs_client.exceptions.ResourceAlreadyExistsException:
        pass
    if events:
        logs_client.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": stamp, "message": message} for stamp, message in events],
        )


# A request's own platform lines in each log shape Lambda writes: the text format before 2026, the text
# format of 2026 (a failed REPORT carries Status and Error Type) and the JSON format (platform events; a
# success leaves no platform.runtimeDone at the default system log level).
SHAPES = ("text-old", "text-2026", "json")


def request_start(shape: str, request_id: str) -> str:
    return platform_json("platform.start", request_id, version="$LATEST") if shape == "json" else start(request_id)


def request_end(
    shape: str, request_id: str, status: str = "success", error_type: str | None = None, duration_ms: float = 1012.55
) -> list[str]:
    failed = status != "success"
    if shape == "json":
        error = {"errorType": error_type} if error_type else {}
        metrics = {"durationMs": duration_ms, "billedDurationMs": int(duration_ms) + 1, "memorySizeMB": 128}
        done = [platform_json("platform.runtimeDone", request_id, status=status, **error)] if failed else []
        return [*done, platform_json("platform.report", request_id, metrics=metrics, status=status, **error)]
    if shape == "text-2026" and failed:
        return [end(request_id), report(request_id, duration_ms, status=status, error_type=error_type)]
    return [end(request_id), report(request_id, duration_ms)]


def runtime_unhandled(shape: str, request_id: str, error_type: str, message: str) -> str:
    """The runtime's line for an exception that escaped the handler (text: no ids; JSON: with requestId)."""
    return (
        runtime_json_unhandled(request_id, error_type, message) if shape == "json" else unhandled(error_type, message)
    )


def shown(message: str) -> str:
    """The line as the task log shows it (JSON platform events read like the text format)."""
    from airflow_lambda_deferrable.verdict.log_lines import parse_event

    return parse_event({"message": message}).message
