"""Read one CloudWatch Logs event written by a Lambda function or by Lambda itself.

This module knows the shapes of the lines (Powertools JSON, Lambda's platform lines in the text and
JSON log formats, the Python runtime's unhandled-error line) and nothing of Airflow or of the network.
Whether a line decides anything is `outcome`'s job; here a line only says what it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

FAILURE_LEVELS = frozenset({"ERROR", "CRITICAL", "FATAL"})
KNOWN_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL", "TRACE"})

_START = re.compile(r"^START RequestId: (?P<rid>\S+)")
_END = re.compile(r"^END RequestId: (?P<rid>\S+)")
_REPORT = re.compile(r"^REPORT RequestId: (?P<rid>\S+)")
_TIMED_OUT = re.compile(r"^(?:\S+\s+)?(?P<rid>\S+)\s+(?P<text>Task timed out after [\d.]+ seconds)")
_RUNTIME_EXIT = re.compile(r"^RequestId: (?P<rid>\S+) Error: (?P<text>Runtime exited.*)$", re.DOTALL)
_RUNTIME_EXIT_ALONE = re.compile(r"^Runtime\.\w+$")
# The Python runtime's unhandled exception: "[ERROR] RuntimeError: message\rTraceback ..."
_UNHANDLED = re.compile(r"^\[ERROR\] (?P<type>[A-Za-z_][\w.]*): ?(?P<text>[^\r\n]*)(?P<rest>.*)$", re.DOTALL)
# The runtime's text-format handler for the `logging` module: "[LEVEL]\t<time>\t<request id>\t<message>"
_RUNTIME_LOGGING = re.compile(r"^\[(?P<level>[A-Z]+)\]\t\S+\t(?P<rid>\S+)\t(?P<text>.*)$", re.DOTALL)


class Marker(Enum):
    """What a line marks in an invocation's life, if anything."""

    NONE = "none"
    START = "start"
    END = "end"
    REPORT = "report"
    END_MARKER = "end_marker"


@dataclass(frozen=True)
class Failure:
    """A sign that the invocation failed, in the function's (or Lambda's) own words."""

    kind: str
    error_type: str
    error_message: str
    rank: int


# Which failure sign names the cause best when several are seen, highest first.
RANK_UNHANDLED = 50
RANK_LAMBDA_TIMEOUT = 40
RANK_RUNTIME_EXIT = 30
RANK_PLATFORM_STATUS = 20
RANK_LOGGED_ERROR = 10


@dataclass(frozen=True)
class LogLine:
    """One CloudWatch event, classified."""

    event_id: str
    timestamp: int
    stream: str
    level: str
    message: str
    detail: str | None = None
    request_id: str | None = None
    correlation_id: str | None = None
    marker: Marker = Marker.NONE
    failure: Failure | None = None

    @property
    def ends_invocation(self) -> bool:
        """Return whether Lambda wrote this line as the request finished (END, REPORT, runtimeDone)."""
        return self.marker in (Marker.END, Marker.REPORT)


def parse_event(
    event: dict[str, Any], *, correlation_id_key: str = "correlation_id", end_marker: str | None = None
) -> LogLine:
    """Classify one event as returned by ``FilterLogEvents``.

    :param correlation_id_key: the JSON key under which the function logs the correlation id.
    :param end_marker: the message that means "the handler returned" (``None`` turns it off).
    """
    base = {
        "event_id": str(event.get("eventId", "")),
        "timestamp": int(event.get("timestamp", 0)),
        "stream": str(event.get("logStreamName", "")),
    }
    text = str(event.get("message", "")).rstrip("\r\n")
    if text.startswith("{"):
        record = _load_json_object(text)
        if record is not None:
            platform_type = record.get("type")
            if isinstance(platform_type, str) and platform_type.startswith("platform."):
                return _platform_json(base, platform_type, record)
            return _application_json(base, record, correlation_id_key, end_marker)
    return _text_line(base, text, end_marker)


def _load_json_object(text: str) -> dict[str, Any] | None:
    try:
        loaded = json.loads(text)
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _platform_json(base: dict[str, Any], platform_type: str, record: dict[str, Any]) -> LogLine:
    """Lambda's JSON log format: ``{"type": "platform.report", "record": {...}}``."""
    body = record.get("record") if isinstance(record.get("record"), dict) else {}
    request_id = body.get("requestId")
    request_id = str(request_id) if request_id else None
    status = body.get("status")
    failure = None
    if platform_type in ("platform.runtimeDone", "platform.report") and status not in (None, "success"):
        error_type = _as_text(body.get("errorType")) or f"Lambda.{str(status).capitalize()}"
        failure = Failure("platform_status", error_type, f"Lambda reported status {status!r}", RANK_PLATFORM_STATUS)
    marker = {
        "platform.start": Marker.START,
        "platform.runtimeDone": Marker.END,
        "platform.report": Marker.REPORT,
    }.get(platform_type, Marker.NONE)
    message = f"{platform_type} {json.dumps(body, sort_keys=True, default=str)}"
    level = "ERROR" if failure else "INFO"
    return LogLine(**base, level=level, message=message, request_id=request_id, marker=marker, failure=failure)


def _application_json(
    base: dict[str, Any], record: dict[str, Any], correlation_id_key: str, end_marker: str | None
) -> LogLine:
    """A JSON line written by the function (Powertools) or by the runtime in the JSON log format."""
    raw_level = record.get("level", record.get("log_level", record.get("levelname")))
    level = str(raw_level).upper() if raw_level is not None else "INFO"
    if level not in KNOWN_LEVELS:
        level = "INFO"
    request_id = record.get("function_request_id") or record.get("requestId") or record.get("AWSRequestId")
    correlation_id = record.get(correlation_id_key)
    message = _as_text(record.get("message", record.get("msg", record.get("errorMessage"))))
    if not message and "message" not in record:
        message = json.dumps(record, sort_keys=True, default=str)
    detail = _json_detail(record)
    failure = None
    if level in FAILURE_LEVELS:
        if record.get("errorType") and "errorMessage" in record:
            failure = Failure(
                "unhandled", _as_text(record["errorType"]), _as_text(record["errorMessage"]), RANK_UNHANDLED
            )
        else:
            error_type = _as_text(record.get("exception_name")) or level
            failure = Failure("logged_error", error_type, message, RANK_LOGGED_ERROR)
    marker = Marker.END_MARKER if end_marker is not None and message == end_marker else Marker.NONE
    return LogLine(
        **base,
        level="WARNING" if level == "WARN" else level,
        message=message,
        detail=detail,
        request_id=str(request_id) if request_id else None,
        correlation_id=str(correlation_id) if correlation_id is not None else None,
        marker=marker,
        failure=failure,
    )


def _json_detail(record: dict[str, Any]) -> str | None:
    """Return the traceback a JSON line carries, in whichever key its writer used."""
    exception = record.get("exception")
    if exception:
        return _as_text(exception)
    stack = record.get("stackTrace")
    if isinstance(stack, list) and stack:
        return "".join(str(frame) if str(frame).endswith("\n") else f"{frame}\n" for frame in stack).rstrip()
    if stack:
        return _as_text(stack)
    return None


def _text_line(base: dict[str, Any], text: str, end_marker: str | None) -> LogLine:
    """Lambda's text log format, the runtime's own lines, and anything a function prints."""
    for pattern, marker in ((_START, Marker.START), (_END, Marker.END), (_REPORT, Marker.REPORT)):
        match = pattern.match(text)
        if match:
            return LogLine(**base, level="INFO", message=text, request_id=match["rid"], marker=marker)
    match = _TIMED_OUT.match(text)
    if match:
        failure = Failure("lambda_timeout", "Sandbox.Timedout", match["text"], RANK_LAMBDA_TIMEOUT)
        return LogLine(**base, level="ERROR", message=text, request_id=match["rid"], failure=failure)
    match = _RUNTIME_EXIT.match(text)
    if match:
        failure = Failure("runtime_exit", "Runtime.ExitError", match["text"].strip(), RANK_RUNTIME_EXIT)
        return LogLine(**base, level="ERROR", message=text, request_id=match["rid"], failure=failure)
    if _RUNTIME_EXIT_ALONE.match(text):
        failure = Failure("runtime_exit", text, text, RANK_RUNTIME_EXIT)
        return LogLine(**base, level="ERROR", message=text, failure=failure)
    match = _UNHANDLED.match(text)
    if match:
        rest = match["rest"].replace("\r", "\n").strip("\n") or None
        failure = Failure("unhandled", match["type"], match["text"], RANK_UNHANDLED)
        message = f"{match['type']}: {match['text']}"
        return LogLine(**base, level="ERROR", message=message, detail=rest, failure=failure)
    match = _RUNTIME_LOGGING.match(text)
    if match and match["level"] in KNOWN_LEVELS:
        level = "WARNING" if match["level"] == "WARN" else match["level"]
        failure = None
        if level in FAILURE_LEVELS:
            failure = Failure(
                "logged_error", level, match["text"].splitlines()[0] if match["text"] else "", RANK_LOGGED_ERROR
            )
        marker = Marker.END_MARKER if end_marker is not None and match["text"] == end_marker else Marker.NONE
        return LogLine(
            **base, level=level, message=match["text"], request_id=match["rid"], marker=marker, failure=failure
        )
    return LogLine(**base, level="INFO", message=text)


# Lambda's request ids are UUIDs; a request id learned from a line must look like one of reasonable size
# (it becomes a term of a filter pattern, which cannot hold quotes and has a length limit).
_REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9-]{1,64}")


def is_request_id(value: str) -> bool:
    """Whether `value` has the shape of a request id (letters, digits and dashes, at most 64)."""
    return _REQUEST_ID_SHAPE.fullmatch(value) is not None
