"""Lambda's JSON log format: platform events as JSON records, and the level filters of ``LoggingConfig``.

Plain functions over plain values. What Lambda does, as read in its documentation and the runtimes' sources
(see ``../shared/reference/lambda-2026.md`` sections 1 and 2):

* every platform event is one ``{"time", "type": "platform.<name>", "record": {...}}`` object; there are no
  START/END/REPORT text lines;
* ``SystemLogLevel`` filters them: ``platform.start``, ``platform.report`` and ``platform.initStart`` are
  INFO; ``platform.runtimeDone`` is DEBUG when the request succeeded and WARN otherwise;
* ``ApplicationLogLevel`` filters the function's lines by their ``level`` field; a line without one
  (``print``) counts as INFO.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

# Lambda's level names, least severe first (TRACE and FATAL exist only for application logs).
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LEVELS = ("DEBUG", "INFO", "WARN")
DEFAULT_LEVEL = "INFO"
# Python's and Powertools' names for the same levels.
_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL", "NOTSET": "TRACE"}


def lambda_level(name: Any) -> str | None:
    """Return Lambda's name for a level written by a runtime or library, or ``None`` if it is not one."""
    if not isinstance(name, str):
        return None
    upper = name.upper()
    upper = _ALIASES.get(upper, upper)
    return upper if upper in LEVELS else None


def passes(level: str, threshold: str) -> bool:
    """Return whether a line of `level` is sent at `threshold`."""
    return LEVELS.index(level) >= LEVELS.index(threshold)


def application_line_level(line: str) -> str:
    """Return the level Lambda gives a line the function wrote: its JSON ``level`` field, else INFO."""
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return DEFAULT_LEVEL
        if isinstance(record, dict):
            found = lambda_level(record.get("level", record.get("log_level")))
            if found is not None:
                return found
    return DEFAULT_LEVEL


def _event(kind: str, at: float, record: dict[str, Any]) -> str:
    when = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return json.dumps({"time": when, "type": kind, "record": record}, separators=(",", ":"))


def start_event(request_id: str, *, version: str, function_arn: str, at: float, tenant_id: str | None = None) -> str:
    """Return ``platform.start``."""
    record: dict[str, Any] = {"requestId": request_id, "functionArn": function_arn, "version": version}
    if tenant_id is not None:
        record["tenantId"] = tenant_id
    return _event("platform.start", at, record)


def end_events(
    request_id: str,
    *,
    status: str,
    error_type: str | None,
    duration_ms: float,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None,
    at: float,
    system_level: str,
    tenant_id: str | None = None,
    runtime_done: bool = True,
) -> list[str]:
    """Return the events that end a request (``platform.runtimeDone``, ``platform.report``) that pass
    `system_level`.

    :param runtime_done: ``False`` writes no ``platform.runtimeDone`` at all, only ``platform.report``: what
        Lambda Managed Instances are reported to do (one source: DataDog/datadog-lambda-extension PR #1299).
    """
    error = {"errorType": error_type} if error_type else {}
    tenant = {"tenantId": tenant_id} if tenant_id is not None else {}
    done = {
        "requestId": request_id,
        "status": status,
        **error,
        "metrics": {"durationMs": round(duration_ms, 3), "producedBytes": 0},
        **tenant,
    }
    metrics: dict[str, Any] = {
        "durationMs": round(duration_ms, 2),
        "billedDurationMs": max(1, math.ceil(duration_ms)),
        "memorySizeMB": memory_size_mb,
        "maxMemoryUsedMB": max_memory_used_mb,
    }
    if init_duration_ms is not None:
        metrics["initDurationMs"] = round(init_duration_ms, 3)
    report = {"requestId": request_id, "metrics": metrics, "status": status, **error, **tenant}
    events = []
    if runtime_done and passes("DEBUG" if status == "success" else "WARN", system_level):
        events.append(_event("platform.runtimeDone", at, done))
    if passes("INFO", system_level):
        events.append(_event("platform.report", at, report))
    return events
