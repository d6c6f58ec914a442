"""Every line shape the trigger meets, classified without any network."""

from __future__ import annotations

import json

import pytest

from airflow_lambda_deferrable.verdict.log_lines import (
    MAX_JSON_DEPTH,
    Marker,
    json_text_too_deep,
    json_value_too_deep,
    parse_event,
)
from tests import lambda_lines as lines

RID = "3f2b1c4d-1111-2222-3333-444455556666"
CID = "corr-12345678"


def parse(message: str, **kwargs):
    return parse_event({"eventId": "1", "timestamp": 5, "logStreamName": "s", "message": message}, **kwargs)


def test_powertools_info_line_carries_both_ids():
    line = parse(lines.powertools(CID, RID, "iteration 1 of 3"))
    assert (line.level, line.message, line.correlation_id, line.request_id) == ("INFO", "iteration 1 of 3", CID, RID)
    assert line.failure is None and line.marker is Marker.NONE
    assert (line.event_id, line.timestamp, line.stream) == ("1", 5, "s")


def test_end_marker_is_recognised_only_when_asked_for():
    text = lines.powertools(CID, RID, "Function ended")
    assert parse(text, end_marker="Function ended").marker is Marker.END_MARKER
    assert parse(text, end_marker=None).marker is Marker.NONE
    assert parse(text, end_marker="Done").marker is Marker.NONE


def test_logged_exception_is_a_failure_with_its_traceback():
    line = parse(lines.logged_exception(CID, RID))
    assert line.level == "ERROR"
    assert line.failure.kind == "logged_error"
    assert line.failure.error_type == "ValueError"
    assert line.failure.error_message == "Function invocation failed"
    assert line.detail.endswith("ValueError: bad row 7")


@pytest.mark.parametrize("level", ["CRITICAL", "critical", "FATAL"])
def test_critical_levels_are_failures(level):
    assert parse(lines.powertools(CID, RID, "boom", level=level)).failure is not None


@pytest.mark.parametrize("level", ["WARNING", "WARN", "DEBUG", "INFO"])
def test_other_levels_are_not_failures(level):
    line = parse(lines.powertools(CID, RID, "fine", level=level))
    assert line.failure is None
    assert line.level in {"WARNING", "DEBUG", "INFO"}


def test_custom_correlation_key():
    text = json.dumps({"trace": CID, "level": "INFO", "message": "m"})
    assert parse(text, correlation_id_key="trace").correlation_id == CID
    assert parse(text).correlation_id is None


@pytest.mark.parametrize(
    ("message", "marker"),
    [(lines.start(RID), Marker.START), (lines.end(RID), Marker.END), (lines.report(RID), Marker.REPORT)],
)
def test_text_platform_lines(message, marker):
    line = parse(message)
    assert (line.marker, line.request_id, line.failure) == (marker, RID, None)


def test_report_with_init_duration_and_trace_is_still_a_report():
    line = parse(lines.report(RID) + "\tInit Duration: 112.84 ms\t\nXRAY TraceId: 1-abc\tSegmentId: 1\tSampled: true")
    assert line.marker is Marker.REPORT and line.ends_invocation


def test_task_timed_out_line():
    line = parse(lines.timed_out(RID, 30.03))
    assert line.request_id == RID
    assert line.failure.kind == "lambda_timeout"
    assert line.failure.error_message == "Task timed out after 30.03 seconds"


def test_runtime_exit_lines():
    line = parse(lines.runtime_exit(RID))
    assert line.request_id == RID and line.failure.error_type == "Runtime.ExitError"
    assert "signal: killed" in line.failure.error_message
    alone = parse("Runtime.ExitError")
    assert alone.failure is not None and alone.request_id is None


def test_unhandled_error_line_splits_the_traceback():
    line = parse(lines.unhandled())
    assert line.failure.kind == "unhandled"
    assert (line.failure.error_type, line.failure.error_message) == ("RuntimeError", "Unable to finish loop")
    assert line.message == "RuntimeError: Unable to finish loop"
    assert line.detail.splitlines()[0] == "Traceback (most recent call last):"
    assert line.request_id is None and line.correlation_id is None


def test_runtime_logging_module_line_in_text_format():
    line = parse(f"[ERROR]\t2026-11-23T10:00:00.000Z\t{RID}\tcould not connect\nTraceback ...")
    assert (line.level, line.request_id) == ("ERROR", RID)
    assert line.failure.error_message == "could not connect"
    info = parse(f"[INFO]\t2026-11-23T10:00:00.000Z\t{RID}\tFunction ended", end_marker="Function ended")
    assert info.failure is None and info.marker is Marker.END_MARKER


def test_json_format_platform_lines():
    assert parse(lines.platform_json("platform.start", RID, version="$LATEST")).marker is Marker.START
    done = parse(lines.platform_json("platform.runtimeDone", RID, status="success"))
    assert done.marker is Marker.END and done.failure is None
    report = parse(lines.platform_json("platform.report", RID, status="success", metrics={"durationMs": 3.2}))
    assert report.marker is Marker.REPORT and report.failure is None and report.request_id == RID


@pytest.mark.parametrize(
    ("status", "error_type"), [("timeout", None), ("error", "Runtime.ExitError"), ("failure", "X")]
)
def test_json_format_report_with_bad_status_is_a_failure(status, error_type):
    record = {"status": status} | ({"errorType": error_type} if error_type else {})
    line = parse(lines.platform_json("platform.report", RID, **record))
    assert line.marker is Marker.REPORT
    assert line.failure.kind == ("lambda_timeout" if status == "timeout" else "platform_status")
    assert line.failure.error_type == (error_type or "Sandbox.Timedout")


@pytest.mark.parametrize(
    ("fields", "kind", "error_type", "message"),
    [
        ("\tStatus: timeout", "lambda_timeout", "Sandbox.Timedout", "Task timed out after 180.00 seconds"),
        (
            "\tStatus: error\tError Type: Runtime.InvalidEntrypoint",
            "platform_status",
            "Runtime.InvalidEntrypoint",
            None,
        ),
        ("\tStatus: failure\tError Type: Sandbox.Failure", "platform_status", "Sandbox.Failure", None),
    ],
)
def test_text_report_of_2026_carries_the_status(fields, kind, error_type, message):
    text = (
        f"REPORT RequestId: {RID}\tDuration: 180000.00 ms\tBilled Duration: 180000 ms\tMemory Size: 1280 MB\t"
        f"Max Memory Used: 1201 MB{fields}"
    )
    line = parse(text)
    assert (line.marker, line.request_id, line.level) == (Marker.REPORT, RID, "ERROR")
    assert (line.failure.kind, line.failure.error_type) == (kind, error_type)
    if message:
        assert line.failure.error_message == message


@pytest.mark.parametrize("fields", ["", "\tStatus: success", "\tInit Duration: 201.22 ms\tStatus: success"])
def test_text_report_without_a_failure_status_is_no_failure(fields):
    line = parse(lines.report(RID) + fields)
    assert line.marker is Marker.REPORT and line.failure is None and line.level == "INFO"


def test_json_format_runtime_unhandled_error():
    text = json.dumps(
        {
            "timestamp": "2026-11-23T10:00:00Z",
            "log_level": "ERROR",
            "errorMessage": "Unable to finish loop",
            "errorType": "RuntimeError",
            "requestId": RID,
            "stackTrace": ['  File "/var/task/f.py", line 3, in h\n', "    raise RuntimeError()\n"],
        }
    )
    line = parse(text)
    assert line.request_id == RID
    assert (line.failure.kind, line.failure.error_type) == ("unhandled", "RuntimeError")
    assert line.message == "RuntimeError: Unable to finish loop"
    assert "raise RuntimeError()" in line.detail


def test_json_platform_events_read_like_the_text_format():
    start = parse(lines.platform_json("platform.start", RID, version="$LATEST", tenantId="t-1"))
    assert start.message == f"START RequestId: {RID} Version: $LATEST Tenant Id: t-1"
    metrics = {"durationMs": 1233.96, "billedDurationMs": 1698, "memorySizeMB": 256, "maxMemoryUsedMB": 123}
    report = parse(lines.platform_json("platform.report", RID, metrics=metrics, status="timeout"))
    assert report.message == (
        f"REPORT RequestId: {RID}\tDuration: 1233.96 ms\tBilled Duration: 1698 ms\tMemory Size: 256 MB\t"
        "Max Memory Used: 123 MB\tStatus: timeout"
    )
    done = parse(lines.platform_json("platform.runtimeDone", RID, status="error", errorType="Runtime.Unknown"))
    assert done.message == f"RUNTIME DONE RequestId: {RID}\tStatus: error\tError Type: Runtime.Unknown"
    other = parse(lines.platform_json("platform.logsDropped", RID, droppedRecords=3))
    assert other.message.startswith("platform.logsDropped {") and '"droppedRecords": 3' in other.message


@pytest.mark.parametrize(
    "message",
    [
        "plain text print output",
        "ERROR: this is just printed text",  # plain text is never judged by its words
        "{not json",
        "[1, 2, 3]",
        '"a json string"',
        "{}",
        "",
        "\x00\x01 binary-ish \udcff text",
        "é" * 300_000,
    ],
)
def test_malformed_or_plain_lines_are_kept_as_info(message):
    line = parse(message)
    assert line.failure is None and line.marker is Marker.NONE
    assert line.level == "INFO"


def test_json_without_level_or_message_is_kept_whole():
    line = parse(json.dumps({"foo": 1, "correlation_id": CID}))
    assert line.level == "INFO" and line.failure is None
    assert '"foo": 1' in line.message and line.correlation_id == CID


def test_json_with_non_string_message_and_unknown_level():
    line = parse(json.dumps({"level": "NOTICE", "message": {"rows": 3}}))
    assert line.level == "INFO" and json.loads(line.message) == {"rows": 3}


def nested_line(depth: int) -> str:
    """An ERROR line with our correlation id whose JSON nests `depth` levels deep (its object included)."""
    return json.dumps({"level": "ERROR", "correlation_id": CID, "message": "boom"})[:-1] + (
        ', "data": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    )


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_200, 5_000])
def test_json_nested_too_deep_is_plain_text(depth):
    # Parsed, it would recurse once per level (RecursionError from about 1,000); as text it is like any print.
    text = nested_line(depth)
    line = parse(text)
    assert (line.level, line.message, line.failure, line.correlation_id) == ("INFO", text, None, None)


def test_json_nested_to_the_limit_is_still_read():
    line = parse(nested_line(MAX_JSON_DEPTH))
    assert (line.level, line.message, line.correlation_id) == ("ERROR", "boom", CID)


def test_brackets_inside_strings_do_not_count_as_depth():
    text = json.dumps({"level": "ERROR", "message": "[{" * 5_000, "note": 'a \\"[ quote'})
    line = parse(text)
    assert (line.level, line.message) == ("ERROR", "[{" * 5_000)


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [
        ("[" * 3 + "]" * 3, True),
        ("[[]]", False),
        (r'[["[[[[", "\\"], {"k[": "\\\"[["}]', False),  # escaped backslashes and quotes
        ('{"a": [[[1]]]}', True),
        ('"[[[[[', False),  # a string left open runs to the end
        ("[[[x", True),  # not JSON, but `json.loads` would recurse before saying so
    ],
)
def test_depth_is_read_from_the_text_without_parsing(text, too_deep):
    limit = 2
    assert json_text_too_deep(text, limit) is too_deep
    if too_deep is False and text.startswith(("[", "{")) and text.endswith(("]", "}")):
        assert json_value_too_deep(json.loads(text), limit) is False


def test_value_depth_is_read_without_recursing():
    value: list = []
    for _ in range(100_000):
        value = [value]
    assert json_value_too_deep(value)
    assert not json_value_too_deep({"a": [{"b": 1}]}, 3) and json_value_too_deep({"a": [{"b": {}}]}, 3)
    itself: list = []
    itself.append(itself)
    assert json_value_too_deep(itself)
    assert not json_value_too_deep("[[[[") and not json_value_too_deep(None)
