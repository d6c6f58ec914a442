"""Log lines exactly as Lambda and Powertools write them (the shapes of tests/lambda_lines.py).

Copied rather than imported: the benchmark must not depend on the test suite's helpers.
"""

from __future__ import annotations

import json
from typing import Any

FUNCTION_NAME = "bench-fn"
LOG_GROUP = f"/aws/lambda/{FUNCTION_NAME}"
# A fixed wall-clock text inside messages: the trigger never reads it, so it need not match the event time.
TEXT_TIME = "2026-11-23 10:00:00,000+0000"


def powertools(
    correlation_id: str, request_id: str, message: str, *, level: str = "INFO", cold_start: bool = False, **extra: Any
) -> str:
    """Return a Powertools Logger line with ``inject_lambda_context(correlation_id_path=...)``."""
    record: dict[str, Any] = {
        "correlation_id": correlation_id,
        "level": level,
        "message": message,
        "location": "lambda_handler:20",
        "timestamp": TEXT_TIME,
        "service": "airflow",
        "cold_start": cold_start,
        "function_name": FUNCTION_NAME,
        "function_memory_size": 128,
        "function_arn": f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION_NAME}",
        "function_request_id": request_id,
    }
    record |= extra
    return json.dumps(record, separators=(",", ":"))


def logged_exception(correlation_id: str, request_id: str) -> str:
    """Return what ``logger.exception("Function invocation failed")`` writes while handling an error."""
    return powertools(
        correlation_id,
        request_id,
        "Function invocation failed",
        level="ERROR",
        exception=(
            'Traceback (most recent call last):\n  File "/var/task/lambda_function.py", line 24, in lambda_handler\n'
            "    raise RuntimeError('Unable to finish loop')\nRuntimeError: Unable to finish loop"
        ),
        exception_name="RuntimeError",
    )


def unhandled() -> str:
    """Return the Python runtime's line for an exception that escaped the handler (no ids, ``\\r`` inside)."""
    return (
        "[ERROR] RuntimeError: Unable to finish loop\rTraceback (most recent call last):\r"
        '  File "/var/task/lambda_function.py", line 30, in lambda_handler\r'
        "    raise RuntimeError('Unable to finish loop') from e"
    )


def start(request_id: str) -> str:
    return f"START RequestId: {request_id} Version: $LATEST"


def end(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report(request_id: str, duration_s: float, init_s: float | None = None) -> str:
    """Return the REPORT line (tab-separated; "Init Duration" only on a cold start)."""
    duration_ms = round(duration_s * 1000, 2)
    text = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms} ms\tBilled Duration: {int(duration_ms) + 1} ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 52 MB"
    )
    if init_s is not None:
        text += f"\tInit Duration: {round(init_s * 1000, 2)} ms"
    return text


def timed_out(request_id: str, seconds: float) -> str:
    return f"2026-11-23T10:00:00.000Z {request_id} Task timed out after {seconds:.2f} seconds"


def runtime_exit(request_id: str) -> str:
    return f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"


RUNTIME_EXIT_ERROR = "Runtime.ExitError"
