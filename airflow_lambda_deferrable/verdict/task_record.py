"""What the task log records of an invocation, and what the task returns: the same whether a worker resumes
the task or the trigger ends it (``end_from_trigger``). Pure: entries of (logging level, text), no logger.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_lambda_deferrable.verdict.task_log_lines import RESUMED_LABEL, escaped, task_log_line
from airflow_lambda_deferrable.verdict.trigger_event import MAX_RESULT_BYTES, InvocationReport

Entry = tuple[int, str]


def with_text(entry: Entry) -> tuple[int, str, str]:
    """An entry as the arguments of ``Logger.log``: the text is an argument, never a format."""
    return entry[0], "%s", entry[1]


def who(report: InvocationReport) -> str:
    """Name the invocation in the task's messages: function, request, correlation id, tenant, execution."""
    tenant = f", tenant {report.tenant_id}" if report.tenant_id else ""
    text = (
        f"Lambda function {report.function_name} (request {report.request_id}, "
        f"correlation id {report.correlation_id}{tenant})"
    )
    return text + (f", durable execution {report.durable_execution_name}" if report.durable_execution_name else "")


def record(report: InvocationReport) -> list[Entry]:
    """The invocation's lines as the task log holds them (each once, at its own level; a durable execution's
    grouped by invocation), then the notes on lines left out; the verdict's own line is the caller's."""
    entries: list[Entry] = [
        (
            logging.INFO,
            f"{len(report.lines) + report.omitted_lines} line(s) of {report.function_name} in {report.log_group} "
            f"(correlation id {report.correlation_id}):",
        )
    ]
    omitted = (logging.WARNING, f"... {report.omitted_lines} line(s) left out to keep the trigger event small ...")
    invocation = None  # a durable execution's lines are grouped by invocation (each replay is one)
    for index, line in enumerate(report.lines):
        if index == report.omitted_at and report.omitted_lines:
            entries.append(omitted)
        request_id = line.get("request_id")
        if report.durable_execution_arn and request_id and request_id != invocation:
            invocation = request_id
            entries.append((logging.INFO, f"{RESUMED_LABEL} --- invocation {request_id} ---"))
        level, text = task_log_line(
            timestamp_ms=line["timestamp"], level=line.get("level"), message=line["message"], detail=line.get("detail")
        )
        entries.append((level, f"{RESUMED_LABEL} {text}"))
    if report.omitted_lines and report.omitted_at >= len(report.lines):
        entries.append(omitted)
    return entries + _notes(report)


def _notes(report: InvocationReport) -> list[Entry]:
    notes = []
    if report.unattributed_lines:
        notes.append(
            (
                logging.INFO,
                f"{report.unattributed_lines} line(s) without ids in the request's stretch of stream were left out: "
                "another request ran in the same environment at the time, so they could be either's",
            )
        )
    if report.foreign_lines:
        notes.append(
            (
                logging.WARNING,
                f"{report.foreign_lines} line(s) carrying the correlation id {report.correlation_id} came from other "
                "requests (the function invoked with this event again, another deployment's task, or a forged "
                "line): left out, and none decided the outcome",
            )
        )
    return notes


def succeeded(report: InvocationReport) -> Entry:
    """The verdict's line of a success."""
    return logging.INFO, f"{who(report)} succeeded: {escaped(report.message)}"


def returned(report: InvocationReport, *, invocation_type: str, result: Any = None) -> tuple[Any, Entry | None]:
    """Return what a successful task returns (its XCom), and a warning to log when the result was too large.

    A ``RequestResponse`` invocation or a durable execution returns the function's result; an ``Event`` one,
    which has no result, which request it was (and the tenant). `result` is the result as deferrals made
    before the event carried it passed it.
    """
    if invocation_type != "RequestResponse" and not report.durable_execution_arn:
        identity = {"request_id": report.request_id, "correlation_id": report.correlation_id}
        return identity | ({"tenant_id": report.tenant_id} if report.tenant_id else {}), None
    if report.result is None:
        return result, None
    if "omitted_bytes" in report.result:
        return None, (
            logging.WARNING,
            f"The result of {report.function_name} (request {report.request_id}) is "
            f"{report.result['omitted_bytes']} bytes of JSON, over the {MAX_RESULT_BYTES} bytes the trigger event "
            "carries: the task returns None. Have the function store a large result (in S3, say) and return where.",
        )
    return report.result["value"], None
