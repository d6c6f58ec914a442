"""Lambda's own log lines (text log format) and its error payloads for timeouts and runtime exits.

Plain functions over plain values, so that the exact wording can be read and tested in one place. Two
generations of the text format exist: before 2026 a timeout wrote "Task timed out after N seconds" after
REPORT and a dead runtime wrote "Runtime exited with error" lines; since 2026 REPORT ends with
``Status: timeout`` or ``Status: error`` and ``Error Type: ...`` instead, and those lines are gone.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import signal
from typing import Literal

TextGeneration = Literal["2026", "legacy"]
TEXT_GENERATIONS: tuple[TextGeneration, ...] = ("2026", "legacy")
# The error types Lambda takes from a runtime's Lambda-Runtime-Function-Error-Type header; anything else
# (the Python runtime sends none) is reported as Runtime.Unknown.
_PLATFORM_ERROR_TYPE = re.compile(r"(Runtime|Function)\.[A-Z][a-zA-Z]+")

# How Lambda (written in Go) names the signal that killed a runtime: Go's signal strings.
_SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGTERM: "terminated",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGINT: "interrupt",
    signal.SIGBUS: "bus error",
    signal.SIGHUP: "hangup",
}


def start_line(request_id: str, version: str) -> str:
    """Return the START line."""
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    """Return the END line."""
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
) -> str:
    """Return the REPORT line: tab-separated fields, ``Init Duration`` only after a cold start, and (2026
    form) ``Status`` with ``Error Type`` when the request did not succeed."""
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms",
        f"Memory Size: {memory_size_mb} MB",
        f"Max Memory Used: {max_memory_used_mb} MB",
    ]
    if init_duration_ms is not None:
        fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if status is not None:
        fields.append(f"Status: {status}")
    if error_type is not None:
        fields.append(f"Error Type: {error_type}")
    return "\t".join(fields)


def platform_error_type(runtime_error_type: str | None) -> str:
    """Return the error type Lambda reports for a runtime's error: its header when well formed, else
    ``Runtime.Unknown``."""
    if runtime_error_type and _PLATFORM_ERROR_TYPE.fullmatch(runtime_error_type):
        return runtime_error_type
    return "Runtime.Unknown"


def timeout_line(request_id: str, *, timed_out_at: float, seconds: float) -> str:
    """Return the line Lambda writes (after REPORT) when a function runs past its timeout."""
    when = dt.datetime.fromtimestamp(timed_out_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    return f"{when}Z {request_id} Task timed out after {seconds:.2f} seconds"


def describe_exit(exit_status: int) -> str:
    """Describe a runtime's end as Lambda does: ``signal: killed`` or ``exit status 3``."""
    if exit_status < 0:
        number = -exit_status
        try:
            name = _SIGNAL_NAMES.get(signal.Signals(number), f"signal {number}")
        except ValueError:
            name = f"signal {number}"
        return f"signal: {name}"
    return f"exit status {exit_status}"


def exit_lines(request_id: str, exit_status: int) -> list[str]:
    """Return the two lines Lambda writes when the runtime process dies during an invocation."""
    return [
        f"RequestId: {request_id} Error: Runtime exited with error: {describe_exit(exit_status)}",
        "Runtime.ExitError",
    ]


def timeout_error(request_id: str, seconds: float) -> bytes:
    """Return the payload a synchronous caller gets when the function timed out."""
    message = f"RequestId: {request_id} Error: Task timed out after {seconds:.2f} seconds"
    return json.dumps({"errorMessage": message, "errorType": "Sandbox.Timedout"}).encode()


def exit_error(request_id: str, exit_status: int) -> bytes:
    """Return the payload a synchronous caller gets when the runtime process died."""
    message = f"RequestId: {request_id} Error: Runtime exited with error: {describe_exit(exit_status)}"
    return json.dumps({"errorMessage": message, "errorType": "Runtime.ExitError"}).encode()
