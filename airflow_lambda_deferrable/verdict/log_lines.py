"""Read one CloudWatch Logs event written by a Lambda function or by Lambda itself.

This module knows the shapes of the lines (Powertools JSON, Lambda's platform lines in the text and
JSON log formats, the Python runtime's unhandled-error line) and nothing of Airflow or of the network.
Whether a line decides anything is `outcome`'s job; here a line only says what it is.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from enum import Enum
from typing import Any

FAILURE_LEVELS = frozenset({"ERROR", "CRITICAL", "FATAL"})
KNOWN_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL", "TRACE"})

_START = re.compile(r"^START RequestId: (?P<rid>\S+)")
_END = re.compile(r"^END RequestId: (?P<rid>\S+)")
_REPORT = re.compile(r"^REPORT RequestId: (?P<rid>\S+)")
# REPORT's tab-separated "Name: value" fields; since 2026 a failed request's REPORT ends with
# "\tStatus: timeout" or "\tStatus: error\tError Type: Runtime.X" (and no "Task timed out" line follows).
_REPORT_FIELD = re.compile(r"\t(?P<name>[A-Za-z][A-Za-z ]*): (?P<value>[^\t]*)")
_DURATION_MS = re.compile(r"^(?P<ms>\d+(?:\.\d+)?) ms$")
_TIMED_OUT = re.compile(r"^(?:\S+\s+)?(?P<rid>\S+)\s+(?P<text>Task timed out after [\d.]+ seconds)")
_RUNTIME_EXIT = re.compile(r"^RequestId: (?P<rid>\S+) Error: (?P<text>Runtime exited.*)$", re.DOTALL)
_RUNTIME_EXIT_ALONE = re.compile(r"^Runtime\.\w+$")
# The Python runtime's unhandled exception: "[ERROR] RuntimeError: message\rTraceback ..."
_UNHANDLED = re.compile(r"^\[ERROR\] (?P<type>[A-Za-z_][\w.]*): ?(?P<text>[^\r\n]*)(?P<rest>.*)$", re.DOTALL)
# The runtime's text-format handler for the `logging` module: "[LEVEL]\t<time>\t<request id>\t<message>"
_RUNTIME_LOGGING = re.compile(r"^\[(?P<level>[A-Z]+)\]\t\S+\t(?P<rid>\S+)\t(?P<text>.*)$", re.DOTALL)

# Python's json and Airflow's serializers (trigger kwargs, events, XCom, templates) recurse a frame or two per
# level under the interpreter's 1,000-frame limit, from a stack already deep: real JSON is far shallower.
MAX_JSON_DEPTH = 100
# A JSON string, to its closing quote or the text's end (so nothing is scanned twice), or a bracket.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)


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
    # When CloudWatch Logs ingested it (epoch ms; 0 when the answer did not say): what a triggerer before
    # this one can have read and shown.
    ingested: int = 0

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
        # One string per stream, not per line: a trigger holds up to thousands of lines of one stream.
        "stream": sys.intern(str(event.get("logStreamName", ""))),
        "ingested": _ingested(event.get("ingestionTime")),
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


def json_text_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Return whether JSON `text` nests arrays and objects deeper than `limit`, without parsing it.

    Linear in the text, and stops at the first level too many; brackets inside strings do not count. Text
    that is not JSON gets an answer too, whatever it is: `json.loads` refuses it anyway.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(text):
        char = text[token.start()]
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def json_value_too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Return whether dicts, lists and tuples nest deeper than `limit` in `value`, without recursing
    (a value that contains itself is too deep)."""
    pending: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, (dict, list, tuple)) else []
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))
    return False


def _ingested(value: Any) -> int:
    """Return an event's ``ingestionTime`` (epoch ms), or 0 when it has none a number can be read from."""
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _load_json_object(text: str) -> dict[str, Any] | None:
    """Return the JSON object `text` holds, or ``None``: not JSON, not an object, or nested deeper than
    `MAX_JSON_DEPTH` (then the line is plain text, like anything a function prints)."""
    if json_text_too_deep(text):
        return None
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
    failure = None
    if platform_type in ("platform.runtimeDone", "platform.report"):
        metrics = body.get("metrics") if isinstance(body.get("metrics"), dict) else {}
        duration_ms = metrics.get("durationMs")
        failure = status_failure(
            body.get("status"),
            _as_text(body.get("errorType")) or None,
            float(duration_ms) if isinstance(duration_ms, (int, float)) and not isinstance(duration_ms, bool) else None,
        )
    marker = {
        "platform.start": Marker.START,
        "platform.runtimeDone": Marker.END,
        "platform.report": Marker.REPORT,
    }.get(platform_type, Marker.NONE)
    level = "ERROR" if failure else "INFO"
    message = describe_platform_event(platform_type, body)
    return LogLine(**base, level=level, message=message, request_id=request_id, marker=marker, failure=failure)


# How a JSON platform record's metrics read in the text format's REPORT line.
_REPORT_METRICS = (
    ("durationMs", "Duration", "ms", "{:.2f}"),
    ("billedDurationMs", "Billed Duration", "ms", "{:.0f}"),
    ("memorySizeMB", "Memory Size", "MB", "{:.0f}"),
    ("maxMemoryUsedMB", "Max Memory Used", "MB", "{:.0f}"),
    ("initDurationMs", "Init Duration", "ms", "{:.2f}"),
)


def describe_platform_event(platform_type: str, body: dict[str, Any]) -> str:
    """Return a JSON platform event as a reader knows it from the text format (START / REPORT fields);
    other events keep their record as JSON after their type."""
    request = f"RequestId: {body.get('requestId')}"
    fields: list[str] = []
    metrics = body.get("metrics") if isinstance(body.get("metrics"), dict) else {}
    for key, label, unit, form in _REPORT_METRICS:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            fields.append(f"{label}: {form.format(value)} {unit}")
    for key, label in (("status", "Status"), ("errorType", "Error Type"), ("tenantId", "Tenant Id")):
        if body.get(key) is not None:
            fields.append(f"{label}: {_as_text(body[key])}")
    if platform_type == "platform.start":
        version = f" Version: {body['version']}" if body.get("version") else ""
        tenant = f" Tenant Id: {body['tenantId']}" if body.get("tenantId") else ""
        return f"START {request}{version}{tenant}"
    if platform_type == "platform.report":
        return "\t".join([f"REPORT {request}", *fields])
    if platform_type == "platform.runtimeDone":
        return "\t".join([f"RUNTIME DONE {request}", *fields])
    return f"{platform_type} {json.dumps(body, sort_keys=True, default=str)}"


def status_failure(status: Any, error_type: str | None, duration_ms: float | None) -> Failure | None:
    """Return the failure that Lambda's own request status says, or ``None`` for success or no status.

    The same reading for the text ``REPORT ... Status:`` fields and the JSON ``platform.report`` /
    ``platform.runtimeDone`` records, so both formats (and the older "Task timed out" line) agree:
    ``timeout`` is a timeout that names its duration; ``error`` and ``failure`` carry Lambda's error type,
    which for a Python exception is only ``Runtime.Unknown`` (the cause is in the function's own lines).
    """
    if status is None or str(status) == "success":
        return None
    status = str(status)
    if status == "timeout":
        if duration_ms is None:  # a record without metrics: one that names the duration is preferred
            return Failure(
                "lambda_timeout",
                error_type or "Sandbox.Timedout",
                "Lambda reported status 'timeout'",
                RANK_LAMBDA_TIMEOUT - 1,
            )
        message = f"Task timed out after {duration_ms / 1000:.2f} seconds"
        return Failure("lambda_timeout", error_type or "Sandbox.Timedout", message, RANK_LAMBDA_TIMEOUT)
    return Failure(
        "platform_status",
        error_type or f"Lambda.{status.capitalize()}",
        f"Lambda reported status {status!r}",
        RANK_PLATFORM_STATUS,
    )


def _report_failure(text: str) -> Failure | None:
    """Read a text REPORT line's ``Status`` (2026 form); a REPORT without it says nothing of the outcome."""
    fields = {match["name"]: match["value"].strip() for match in _REPORT_FIELD.finditer(text)}
    duration = _DURATION_MS.match(fields.get("Duration", ""))
    return status_failure(
        fields.get("Status"), fields.get("Error Type") or None, float(duration["ms"]) if duration else None
    )


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
    unhandled = bool(record.get("errorType")) and "errorMessage" in record and "message" not in record
    if unhandled:
        message = f"{_as_text(record['errorType'])}: {_as_text(record['errorMessage'])}"
    if not message and "message" not in record:
        message = json.dumps(record, sort_keys=True, default=str)
    detail = _json_detail(record)
    failure = None
    if level in FAILURE_LEVELS:
        if unhandled:
            # The runtime's line for an exception that escaped the handler has no "message".
            failure = Failure(
                "unhandled", _as_text(record["errorType"]), _as_text(record["errorMessage"]), RANK_UNHANDLED
            )
        else:
            # logger.exception(): Powertools names the type "exception_name", the runtime's JSON "errorType".
            error_type = _as_text(record.get("exception_name") or record.get("errorType")) or level
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
            failure = _report_failure(text) if marker is Marker.REPORT else None
            level = "ERROR" if failure else "INFO"
            return LogLine(**base, level=level, message=text, request_id=match["rid"], marker=marker, failure=failure)
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
