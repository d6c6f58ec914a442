"""The decision, exhaustively, over plain data: which lines are ours and what they mean."""

from __future__ import annotations

import itertools
import json

import pytest

from airflow_lambda_deferrable.verdict.log_lines import parse_event
from airflow_lambda_deferrable.verdict.outcome import InvocationLog, KnownResult, decide
from tests import lambda_lines as lines

CID = "corr-12345678"
RID = "3f2b1c4d-1111-2222-3333-444455556666"
OTHER_RID = "99999999-1111-2222-3333-444455556666"
SETTLE = 5.0
DEADLINE = 1000.0
_ids = itertools.count(1)


def events(*messages: str, stream: str = "s1", start: int = 100) -> list:
    return [
        parse_event(
            {"eventId": str(next(_ids)), "timestamp": start + offset, "logStreamName": stream, "message": message},
            end_marker="Function ended",
        )
        for offset, message in enumerate(messages)
    ]


def new_log(request_id: str | None = RID) -> InvocationLog:
    return InvocationLog(correlation_id=CID, request_ids={request_id} if request_id else set())


def verdict(log: InvocationLog, now: float, known: KnownResult | None = None):
    return decide(log, now=now, checked_at=now, deadline=DEADLINE, settle_seconds=SETTLE, known=known)


def test_success_by_end_marker_settles_after_the_end_or_after_the_marker():
    log = new_log()
    log.add(
        events(
            lines.start(RID),
            lines.powertools(CID, RID, "Function started"),
            lines.powertools(CID, RID, "Function ended"),
        ),
        seen_at=10,
    )
    assert verdict(log, 14.9) is None
    log.add(events(lines.end(RID), lines.report(RID), start=200), seen_at=13)
    assert verdict(log, 17.9) is None  # settling after the request's end, which was seen at 13
    assert verdict(log, 18).status == "success"
    without_end = new_log()
    without_end.add(events(lines.powertools(CID, RID, "Function ended")), seen_at=10)
    assert verdict(without_end, 15).status == "success"


def test_success_without_marker_needs_report_then_settle():
    log = new_log()
    log.add(events(lines.start(RID), "hello from print", lines.end(RID), lines.report(RID)), seen_at=10)
    assert verdict(log, 14.9) is None
    result = verdict(log, 15)
    assert result.status == "success" and "no failure followed within 5s" in result.reason


def test_settle_window_only_ends_after_a_real_read():
    log = new_log()
    log.add(events(lines.start(RID), lines.end(RID), lines.report(RID)), seen_at=10)
    # Reads failed (throttled) since: time has passed, but no read confirmed there is no late failure line.
    assert decide(log, now=30, checked_at=10, deadline=DEADLINE, settle_seconds=SETTLE) is None
    assert decide(log, now=30, checked_at=30, deadline=DEADLINE, settle_seconds=SETTLE).status == "success"


def test_task_timed_out_after_report_turns_success_into_failure():
    log = new_log()
    log.add(events(lines.start(RID), lines.end(RID), lines.report(RID)), seen_at=10)
    assert verdict(log, 12) is None
    log.add(events(lines.timed_out(RID, 3.0), start=300), seen_at=13)
    result = verdict(log, 15)
    assert result.status == "failed"
    assert result.reason == "Task timed out after 3.00 seconds"
    assert result.error_type == "Sandbox.Timedout"


def test_handled_error_reports_the_logged_message_and_traceback():
    log = new_log()
    log.add(events(lines.start(RID), lines.logged_exception(CID, RID)), seen_at=10)
    assert verdict(log, 15) is None  # still running: its later lines belong in the task log
    log.add(events(lines.end(RID), lines.report(RID)), seen_at=20)
    assert verdict(log, 24.9) is None
    result = verdict(log, 25)
    assert result.status == "failed"
    assert result.reason == "ValueError: Function invocation failed"
    assert result.detail.endswith("ValueError: bad row 7")


def test_a_logged_error_without_the_requests_end_is_decided_at_the_deadline():
    log = new_log()
    log.add(events(lines.start(RID), lines.logged_exception(CID, RID)), seen_at=10)
    assert verdict(log, DEADLINE - 1) is None
    assert verdict(log, DEADLINE).reason == "ValueError: Function invocation failed"


def test_fail_fast_or_hidden_ends_do_not_wait_for_the_requests_end():
    log = new_log()
    log.add(events(lines.start(RID), lines.logged_exception(CID, RID)), seen_at=10)
    for choice in ({"fail_fast": True}, {"allow_hidden_success": True}):
        assert decide(log, now=14, checked_at=14, deadline=DEADLINE, settle_seconds=SETTLE, **choice) is None
        settled = decide(log, now=15, checked_at=15, deadline=DEADLINE, settle_seconds=SETTLE, **choice)
        assert settled.status == "failed", choice


def test_unhandled_error_in_span_is_ours_and_names_the_cause():
    log = new_log()
    log.add(
        events(
            lines.start(RID), lines.logged_exception(CID, RID), lines.unhandled(), lines.end(RID), lines.report(RID)
        ),
        seen_at=10,
    )
    assert verdict(log, 14.9) is None
    result = verdict(log, 15)
    assert result.status == "failed"
    assert result.reason == 'RuntimeError: Unable to finish loop; the function logged "Function invocation failed"'
    assert result.detail.startswith("Traceback (most recent call last):")
    assert "raise RuntimeError" in result.detail


def test_unhandled_error_only_from_runtime_without_powertools():
    log = new_log()
    log.add(events(lines.start(RID), lines.unhandled("KeyError", "'x'"), lines.end(RID), lines.report(RID)), seen_at=10)
    result = verdict(log, 15)
    assert (result.status, result.error_type, result.error_message) == ("failed", "KeyError", "'x'")


def test_runtime_exit_is_reported_once_the_request_ended_and_settled():
    log = new_log()
    log.add(
        events(lines.start(RID), lines.runtime_exit(RID), "Runtime.ExitError", lines.end(RID), lines.report(RID)),
        seen_at=10,
    )
    result = verdict(log, 15)
    assert result.status == "failed" and result.error_type == "Runtime.ExitError"
    assert "signal: killed" in result.reason


def test_failure_sign_without_end_decides_after_settle():
    log = new_log()
    log.add(events(lines.start(RID), lines.runtime_exit(RID)), seen_at=10)
    assert verdict(log, 14) is None
    assert verdict(log, 15).status == "failed"


def test_error_line_beats_end_marker():
    log = new_log()
    log.add(
        events(lines.powertools(CID, RID, "oops", level="ERROR"), lines.powertools(CID, RID, "Function ended")),
        seen_at=10,
    )
    assert verdict(log, 20).status == "failed"


def test_json_platform_report_with_failure_status():
    log = new_log()
    log.add(
        events(
            lines.platform_json("platform.start", RID),
            lines.platform_json("platform.report", RID, status="timeout"),
        ),
        seen_at=10,
    )
    result = verdict(log, 15)
    assert result.status == "failed" and result.error_type == "Sandbox.Timedout"
    assert result.reason == "Lambda reported status 'timeout'"  # no duration in this record


def test_json_format_success():
    log = new_log()
    log.add(
        events(
            lines.platform_json("platform.start", RID),
            lines.powertools(CID, RID, "work"),
            lines.platform_json("platform.runtimeDone", RID, status="success"),
            lines.platform_json("platform.report", RID, status="success"),
        ),
        seen_at=10,
    )
    assert verdict(log, 14) is None
    assert verdict(log, 15).status == "success"


def test_timeout_with_nothing_seen_and_with_a_start():
    log = new_log()
    assert verdict(log, DEADLINE - 1) is None
    result = verdict(log, DEADLINE)
    assert result.status == "timeout" and result.reason.startswith("no line carrying the invocation's request id")
    log.add(events(lines.start(RID), lines.powertools(CID, RID, "iteration 1")), seen_at=10)
    assert "it started but its end was not seen" in verdict(log, DEADLINE).reason


def test_interleaved_invocations_only_ours_are_kept():
    log = new_log()
    mixed = events(
        lines.start(OTHER_RID),
        lines.powertools("corr-someone-else", OTHER_RID, "theirs"),
        lines.unhandled("ValueError", "theirs"),
        lines.end(OTHER_RID),
        lines.report(OTHER_RID),
        lines.start(RID),
        lines.powertools(CID, RID, "ours"),
        lines.end(RID),
        lines.report(RID),
    )
    accepted = log.add(mixed, seen_at=10)
    assert [line.request_id for line in accepted] == [RID] * 4
    assert verdict(log, 15).status == "success"


def test_request_id_learned_from_correlated_lines():
    # An Event invoke's response id may differ from the id the function sees: learn it from our lines.
    log = new_log(request_id=None)
    accepted = log.add(
        events(lines.start(RID), lines.powertools(CID, RID, "Function started"), lines.end(RID), lines.report(RID)),
        seen_at=10,
    )
    assert log.request_ids == {RID}
    assert len(accepted) == 4
    assert log.closed_spans() == [("s1", 100, 103)]


def test_an_end_read_before_its_start_closes_the_stretch_once_the_start_comes():
    # A late batch holds the START (and the lines after it) while END and REPORT were ingested on time.
    log = new_log()
    log.add(events(lines.end(RID), lines.report(RID), start=200), seen_at=10)
    assert log.closed_spans() == []
    log.add(events(lines.start(RID), "print after the start", start=100), seen_at=11)
    assert log.closed_spans() == [("s1", 100, 201)]  # so its whole stretch is read, as for any other


def test_lines_without_ids_outside_our_span_are_not_ours():
    log = new_log()
    log.add(events("before us", lines.start(RID), "during us", lines.end(RID), "after us", start=100), seen_at=10)
    assert [line.message for line in log.lines] == [lines.start(RID), "during us", lines.end(RID)]


def test_plain_text_naming_our_correlation_id_is_ours_only_inside_our_stretch():
    # Another request (the function re-invoked with its own event) prints an error naming our id: not ours.
    log = new_log()
    log.add(events(f"[ERROR] RuntimeError: failed {CID}", stream="other"), seen_at=10)
    assert log.lines == [] and log.failure_seen_at is None
    log.add(events(lines.start(RID), f"processing {CID} now", lines.end(RID), lines.report(RID)), seen_at=11)
    assert [line.message for line in log.lines][1] == f"processing {CID} now"
    assert verdict(log, 20).status == "success"


def test_lines_are_kept_in_time_order_with_same_millisecond_order_preserved():
    log = new_log()
    late = events(lines.powertools(CID, RID, "second"), lines.powertools(CID, RID, "third"), start=200)
    log.add(late, seen_at=10)
    early = events(lines.powertools(CID, RID, "first"), start=150)
    log.add(early, seen_at=11)
    same_ms = [
        parse_event(
            {
                "eventId": str(n),
                "timestamp": 300,
                "logStreamName": "s1",
                "message": lines.powertools(CID, RID, f"same {n}"),
            }
        )
        for n in range(5)
    ]
    log.add(same_ms, seen_at=12)
    assert [line.message for line in log.lines] == ["first", "second", "third"] + [f"same {n}" for n in range(5)]


def test_best_failure_prefers_unhandled_over_logged():
    log = new_log()
    log.add(events(lines.logged_exception(CID, RID), lines.timed_out(RID), lines.start(RID)), seen_at=10)
    assert log.best_failure().kind == "lambda_timeout"


@pytest.mark.parametrize("failed", [False, True])
def test_request_response_result_is_authoritative_and_waits_for_lines(failed):
    known = KnownResult(
        failed=failed, error_type="RuntimeError" if failed else None, error_message="boom", stack_trace="tb"
    )
    log = new_log()
    log.add(events(lines.start(RID), lines.powertools(CID, RID, "working")), seen_at=10)
    assert verdict(log, 11, known) is None
    log.add(events(lines.end(RID), lines.report(RID), start=500), seen_at=12)
    assert verdict(log, 16, known) is None
    result = verdict(log, 17, known)
    assert result.status == ("failed" if failed else "success")
    if failed:
        assert (result.reason, result.detail) == ("RuntimeError: boom", "tb")


def test_request_response_without_lines_still_reports_at_the_deadline():
    known = KnownResult(failed=True, error_type="Sandbox.Timedout", error_message="Task timed out after 3.00 seconds")
    result = verdict(new_log(), DEADLINE, known)
    assert result.status == "failed"
    assert result.reason.startswith(
        "Sandbox.Timedout: Task timed out after 3.00 seconds (its log lines may be incomplete"
    )


OVERLAPPED = (
    lines.start(RID),
    lines.start(OTHER_RID),
    lines.unhandled("ValueError", "whose?"),
    lines.end(OTHER_RID),
    lines.end(RID),
)


def test_overlapping_requests_in_one_stream_leave_lines_without_ids_unclaimed_where_requests_run_at_once():
    log = InvocationLog(correlation_id=CID, request_ids={RID}, claim_lines_without_ids=False)
    log.add(events(*OVERLAPPED), seen_at=10)
    assert [line.request_id for line in log.lines] == [RID, RID]
    assert log.unattributed_lines == 1


def test_platform_lines_printed_inside_our_stretch_do_not_hide_our_unhandled_error():
    # An ordinary environment runs one request at a time: another request's START/END between our START
    # and END can only be the function's own print, and the runtime's error line there is ours.
    log = new_log()
    log.add(events(*OVERLAPPED), seen_at=10)
    assert [line.message for line in log.lines if line.request_id is None] == ["ValueError: whose?"]
    result = verdict(log, 20)
    assert result.status == "failed" and result.error_type == "ValueError"


def test_the_next_requests_start_caps_what_an_open_stretch_claims():
    log = new_log()
    log.add(
        events(lines.start(RID), "ours", lines.start(OTHER_RID), lines.unhandled("ValueError", "theirs")), seen_at=10
    )
    assert [line.message for line in log.lines] == [lines.start(RID), "ours"]
    assert verdict(log, 20) is None


def test_previous_request_ending_in_our_first_millisecond_does_not_hide_our_lines():
    log = new_log()
    boundary = [
        parse_event({"eventId": "b1", "timestamp": 100, "logStreamName": "s1", "message": lines.report(OTHER_RID)}),
        parse_event({"eventId": "b2", "timestamp": 100, "logStreamName": "s1", "message": lines.start(RID)}),
        parse_event({"eventId": "b3", "timestamp": 101, "logStreamName": "s1", "message": lines.unhandled()}),
        parse_event({"eventId": "b4", "timestamp": 102, "logStreamName": "s1", "message": lines.end(RID)}),
    ]
    log.add(boundary, seen_at=10)
    assert verdict(log, 15).error_message == "Unable to finish loop"


# Each scenario as Lambda writes it in the three log shapes a function can have: the text format before
# 2026 ("Task timed out" and runtime-exit lines), the text format of 2026 (REPORT's Status and Error
# Type fields only) and the JSON format (platform events). The verdict must not depend on the shape.
def _json_done(status: str, error_type: str | None = None, duration_ms: float = 3000.0) -> list[str]:
    extra = {"errorType": error_type} if error_type else {}
    metrics = {"durationMs": duration_ms}
    return [
        lines.platform_json("platform.runtimeDone", RID, status=status, metrics=metrics, **extra),
        lines.platform_json("platform.report", RID, status=status, metrics=metrics, **extra),
    ]


GENERATIONS = {
    "timeout": {
        "text-old": [lines.start(RID), lines.end(RID), lines.report(RID, 3000.0), lines.timed_out(RID, 3.0)],
        "text-2026": [lines.start(RID), lines.end(RID), lines.report(RID, 3000.0, status="timeout")],
        "json": [lines.platform_json("platform.start", RID), *_json_done("timeout", "Sandbox.Timedout")],
    },
    "unhandled": {
        "text-old": [lines.start(RID), lines.unhandled(), lines.end(RID), lines.report(RID)],
        "text-2026": [
            lines.start(RID),
            lines.unhandled(),
            lines.end(RID),
            lines.report(RID, status="error", error_type="Runtime.Unknown"),
        ],
        "json": [
            lines.platform_json("platform.start", RID),
            lines.runtime_json_unhandled(RID),
            *_json_done("error", "Runtime.Unknown"),
        ],
    },
    "crash": {
        "text-old": [lines.start(RID), lines.runtime_exit(RID), "Runtime.ExitError", lines.end(RID), lines.report(RID)],
        "text-2026": [
            lines.start(RID),
            lines.end(RID),
            lines.report(RID, status="error", error_type="Runtime.ExitError"),
        ],
        "json": [lines.platform_json("platform.start", RID), *_json_done("error", "Runtime.ExitError")],
    },
    "logged_error": {
        "text-old": [lines.start(RID), lines.logged_exception(CID, RID), lines.end(RID), lines.report(RID)],
        "text-2026": [
            lines.start(RID),
            lines.logged_exception(CID, RID),
            lines.end(RID),
            lines.report(RID, status="error", error_type="Runtime.Unknown"),
        ],
        "json": [
            lines.platform_json("platform.start", RID),
            lines.runtime_json_logged(
                RID, "Function invocation failed", level="ERROR", errorType="ValueError", errorMessage="bad row 7"
            ),
            *_json_done("error", "Runtime.Unknown"),
        ],
    },
    "success": {
        "text-old": [lines.start(RID), "printed", lines.end(RID), lines.report(RID)],
        "text-2026": [lines.start(RID), "printed", lines.end(RID), lines.report(RID, status="success")],
        "json": [lines.platform_json("platform.start", RID), "printed", *_json_done("success")],
    },
}
EXPECTED = {
    "timeout": ("failed", "Sandbox.Timedout", "Task timed out after 3.00 seconds"),
    "unhandled": ("failed", "RuntimeError", "Unable to finish loop"),
    "crash": ("failed", "Runtime.ExitError", None),
    "logged_error": ("failed", "ValueError", "Function invocation failed"),
    "success": ("success", None, None),
}


@pytest.mark.parametrize("shape", ["text-old", "text-2026", "json"])
@pytest.mark.parametrize("scenario", sorted(GENERATIONS))
def test_every_log_shape_gives_the_same_verdict(scenario, shape):
    log = new_log()
    log.add(events(*GENERATIONS[scenario][shape]), seen_at=10)
    assert verdict(log, 14.9) is None  # still settling
    result = verdict(log, 15)
    status, error_type, error_message = EXPECTED[scenario]
    assert (result.status, result.error_type) == (status, error_type), result
    if error_message is not None:
        assert result.error_message == error_message
    if scenario == "timeout":
        assert result.reason == "Task timed out after 3.00 seconds"


def test_a_2026_timeout_report_alone_is_a_failure_not_a_success():
    log = new_log()
    log.add(events(lines.start(RID), lines.end(RID), lines.report(RID, 180000.0, status="timeout")), seen_at=10)
    result = verdict(log, 15)
    assert (result.status, result.reason) == ("failed", "Task timed out after 180.00 seconds")


def test_a_status_error_without_a_line_of_the_function_names_lambdas_error_type():
    log = new_log()
    log.add(
        events(lines.start(RID), lines.end(RID), lines.report(RID, status="error", error_type="Runtime.X")), seen_at=10
    )
    result = verdict(log, 15)
    assert (result.status, result.error_type, result.reason) == (
        "failed",
        "Runtime.X",
        "Runtime.X: Lambda reported status 'error'",
    )


def test_a_hidden_success_counts_only_when_allowed_and_only_without_a_failure():
    quiet = new_log()
    quiet.add(events("printed, no ids", "more print output"), seen_at=10)
    at_deadline = decide(quiet, now=DEADLINE, checked_at=DEADLINE, deadline=DEADLINE, settle_seconds=SETTLE)
    assert at_deadline.status == "timeout" and "no line carrying" in at_deadline.reason
    allowed = decide(
        quiet, now=DEADLINE, checked_at=DEADLINE, deadline=DEADLINE, settle_seconds=SETTLE, allow_hidden_success=True
    )
    assert allowed.status == "success" and "allow_hidden_success=True" in allowed.reason
    assert (
        decide(quiet, now=10, checked_at=10, deadline=DEADLINE, settle_seconds=SETTLE, allow_hidden_success=True)
        is None
    )
    failed = new_log()
    failed.add(
        events(lines.platform_json("platform.runtimeDone", RID, status="error", errorType="Runtime.Unknown")),
        seen_at=10,
    )
    result = decide(
        failed, now=DEADLINE, checked_at=DEADLINE, deadline=DEADLINE, settle_seconds=SETTLE, allow_hidden_success=True
    )
    assert result.status == "failed"


def test_json_lines_of_concurrent_requests_are_attributed_by_their_own_request_id():
    """Managed Instances: several requests at once in one environment, one stream, JSON format."""
    log = InvocationLog(correlation_id=CID, request_ids={RID}, claim_lines_without_ids=False)
    log.add(
        events(
            lines.platform_json("platform.start", OTHER_RID),
            lines.platform_json("platform.start", RID),
            lines.runtime_json_logged(OTHER_RID, "theirs"),
            lines.runtime_json_logged(RID, "ours"),
            "printed by someone",
            lines.platform_json("platform.report", RID, status="success"),
            lines.platform_json("platform.report", OTHER_RID, status="error", errorType="Runtime.Unknown"),
        ),
        seen_at=10,
    )
    assert [line.message for line in log.lines if "RequestId" not in line.message] == ["ours"]
    assert log.unattributed_lines == 1
    assert verdict(log, 15).status == "success"


def test_a_request_enclosing_ours_leaves_lines_without_ids_unclaimed_where_requests_run_at_once():
    log = InvocationLog(correlation_id=CID, request_ids={RID}, claim_lines_without_ids=False)
    log.add(
        events(
            lines.platform_json("platform.start", RID),
            lines.runtime_json_logged(OTHER_RID, "theirs, started before us and ending after us"),
            "printed by someone",
            lines.platform_json("platform.report", RID, status="success"),
        ),
        seen_at=10,
    )
    assert not any(line.message == "printed by someone" for line in log.lines)
    assert log.unattributed_lines == 1


def test_lines_without_ids_are_never_claimed_when_the_environment_is_known_to_be_shared():
    log = InvocationLog(correlation_id=CID, request_ids={RID}, claim_lines_without_ids=False)
    log.add(events(lines.start(RID), "printed", lines.end(RID)), seen_at=10)
    assert [line.message for line in log.lines] == [lines.start(RID), lines.end(RID)]
    assert log.unattributed_lines == 1


@pytest.mark.parametrize("chunk", [1, 2, 3, 5])
def test_one_reads_lines_added_in_chunks_after_noting_them_all_keep_what_one_add_keeps(chunk):
    # Our request id is learned from a line after its START and its print lines; another request's
    # START inside our stretch comes last. Added chunk by chunk without noting the whole read first, the
    # print lines would be judged before the START that opens our stretch is known.
    read = events(
        lines.start(RID),
        "print inside",
        lines.powertools(CID, RID, "Function started"),
        "another print",
        lines.end(RID),
        lines.report(RID),
    )
    overlapped = events(lines.start(RID), "whose print?", lines.start(OTHER_RID), lines.end(RID), start=300)

    for batch in (read, overlapped):
        whole, chunked = new_log(request_id=None), new_log(request_id=None)
        if batch is overlapped:
            whole.request_ids.add(RID)
            chunked.request_ids.add(RID)
        accepted_whole = whole.add(batch, seen_at=10)
        parts = [batch[first : first + chunk] for first in range(0, len(batch), chunk)]
        for part in parts:
            chunked.learn_request_ids(part)
        for part in parts:
            chunked.note_spans(part)
        accepted_chunked = [line for part in parts for line in chunked.add(part, seen_at=10)]
        assert accepted_chunked == accepted_whole
        assert chunked.lines == whole.lines and chunked.closed_spans() == whole.closed_spans()
        assert chunked.unattributed_lines == whole.unattributed_lines
        assert verdict(chunked, 100) == verdict(whole, 100)
    # Overlapped, in an ordinary environment: the other START inside our closed stretch was printed by ours.
    assert [line.message for line in whole.lines] == [lines.start(RID), "whose print?", lines.end(RID)]


# ---- only our invocation decides: foreign requests, forged platform lines, late batches ----------------


def test_lines_of_a_request_that_reinvoked_the_function_with_our_event_are_foreign():
    log = new_log()
    ours = events(lines.start(RID), lines.powertools(CID, RID, "Function started"), stream="ours", start=100)
    log.add(ours, seen_at=10)
    children = [f"aaaaaaaa-0000-4000-8000-{index:012d}" for index in range(500)]
    theirs = events(
        *(lines.powertools(CID, child, "Function ended") for child in children),
        *(lines.powertools(CID, child, "boom", level="ERROR") for child in children[:3]),
        stream="children",
        start=150,
    )
    log.add(theirs, seen_at=11)
    assert log.request_ids == {RID}
    assert log.foreign_lines == 503
    assert {line.request_id for line in log.lines} == {RID}
    assert log.end_marker_seen_at is None and log.failure_seen_at is None
    assert verdict(log, 100) is None  # still waiting for our own request
    log.add(events(lines.unhandled("ValueError", "ours failed"), lines.end(RID), stream="ours", start=400), seen_at=12)
    result = verdict(log, 30)
    assert result.status == "failed" and "ours failed" in result.reason


def test_a_line_with_our_correlation_id_claiming_another_request_decides_nothing():
    log = new_log()
    log.add(events(lines.start(RID), stream="ours"), seen_at=10)
    log.add(events(lines.powertools(CID, OTHER_RID, "Function ended"), lines.end(OTHER_RID)), seen_at=11)
    assert [line.message for line in log.lines] == [lines.start(RID)] and log.foreign_lines == 1
    assert verdict(log, 100) is None and log.request_ids == {RID}


def test_a_report_of_our_request_in_another_stream_does_not_end_it():
    log = new_log()
    log.add(events(lines.start(RID), "working", stream="ours"), seen_at=10)
    forged = events(lines.report(RID, status="success"), lines.end(RID), stream="forger", start=150)
    log.add(forged, seen_at=11)
    assert log.ended_seen_at is None
    assert verdict(log, 100) is None
    log.add(events(lines.unhandled("ValueError", "real failure"), lines.end(RID), stream="ours", start=800), seen_at=12)
    assert verdict(log, 200).status == "failed"


def test_an_end_read_before_its_start_decides_nothing_until_the_stretch_is_read():
    """A late batch holds START and the runtime's id-less error line; END came on time."""
    log = new_log()
    log.add(events(lines.end(RID), lines.report(RID), stream="s1", start=500), seen_at=10)
    assert log.ended_seen_at is None
    assert verdict(log, 200) is None  # no success from an END whose stretch was never read
    straggling = events(lines.start(RID), lines.unhandled("KeyError", "'x'"), stream="s1", start=300)
    log.add(straggling, seen_at=40)
    assert log.ended_seen_at == 40 and log.closed_spans() == [("s1", 300, 501)]
    assert verdict(log, 44) is None  # settling from when the stretch closed
    result = verdict(log, 45)
    assert result.status == "failed" and result.error_type == "KeyError"


def test_an_end_whose_start_never_comes_times_out_at_the_deadline_rather_than_succeeding():
    log = new_log()
    log.add(events(lines.end(RID), lines.report(RID)), seen_at=10)
    result = verdict(log, DEADLINE)
    assert result.status == "timeout" and "START line was not seen" in result.reason


def test_when_invokes_id_is_never_seen_the_earliest_correlated_request_is_learnt_and_no_other():
    log = new_log(request_id="response-id-the-function-never-saw")
    first = events(lines.start(RID), lines.powertools(CID, RID, "Function started"), stream="a", start=100)
    child = events(lines.start(OTHER_RID), lines.powertools(CID, OTHER_RID, "Function started"), stream="b", start=120)
    log.add(child + first, seen_at=10)
    assert log.request_ids == {"response-id-the-function-never-saw", RID}
    assert log.foreign_lines == 1
    log.add(events(lines.powertools(CID, OTHER_RID, "boom", level="ERROR"), stream="b", start=130), seen_at=11)
    assert log.failure_seen_at is None


def test_a_durable_execution_learns_each_replays_request_from_its_correlation_id():
    log = InvocationLog(correlation_id=CID, request_ids=set(), trust_correlated_requests=True)
    log.add(
        events(lines.powertools(CID, RID, "replay 1"), lines.powertools(CID, OTHER_RID, "replay 2"), stream="s"),
        seen_at=10,
    )
    assert log.request_ids == {RID, OTHER_RID} and len(log.lines) == 2


def test_lines_past_a_printed_start_are_ours_once_our_end_shows_the_stretch_reaches_them():
    """A function echoes another request's START line, then crashes; our END comes in a later read. The
    runtime's error line, held back past the cap, is ours once the stretch closes (no read brings it twice)."""
    log = new_log()
    log.add(
        events(lines.start(RID), lines.start(OTHER_RID), lines.unhandled("RuntimeError", "crash"), start=1000),
        seen_at=10,
    )
    assert verdict(log, 100) is None
    log.add(events(lines.end(RID), lines.report(RID), start=1300), seen_at=11)
    result = verdict(log, 100)
    assert result.status == "failed" and result.error_type == "RuntimeError"
    # The next request's lines past the cap, beyond our END, stay out.
    nxt = new_log()
    nxt.add(events(lines.start(RID), "ours", stream="s9", start=100), seen_at=10)
    nxt.add(events(lines.start(OTHER_RID), lines.unhandled("ValueError", "theirs"), stream="s9", start=300), seen_at=11)
    nxt.add(events(lines.end(RID), stream="s9", start=200), seen_at=12)
    assert verdict(nxt, 100).status == "success"
    assert "ValueError: theirs" not in [line.message for line in nxt.lines]


def test_a_child_request_read_before_ours_is_never_taken_for_ours():
    """Invoke answered a Lambda request id: a request carrying our correlation id under another id is another
    invocation, even when all its lines (START to END, "Function ended") are read before any of ours."""
    log = new_log()
    child = events(
        lines.start(OTHER_RID),
        lines.powertools(CID, OTHER_RID, "Function ended"),
        lines.end(OTHER_RID),
        lines.report(OTHER_RID),
        stream="child",
    )
    log.add(child, seen_at=10)
    assert log.request_ids == {RID} and log.foreign_lines == 1
    assert verdict(log, 100) is None


def test_a_synchronous_calls_lines_are_complete_once_its_end_settles_even_without_its_start():
    """SystemLogLevel WARN: a failed request leaves platform.runtimeDone and no platform.start."""
    log = new_log()
    log.add(
        events(lines.platform_json("platform.runtimeDone", RID, status="error", errorType="Runtime.Unknown")),
        seen_at=10,
    )
    known = KnownResult(failed=True, error_type="ValueError", error_message="bad")
    assert verdict(log, 14, known=known) is None
    result = verdict(log, 15, known=known)
    assert result.status == "failed" and "may be incomplete" not in result.reason


def test_where_no_stretch_can_show_lines_with_only_our_correlation_id_are_ours():
    """SystemLogLevel WARN hides START and END; Powertools without the Lambda context logs no request id."""
    plain = json.dumps({"level": "INFO", "message": "Function ended", "correlation_id": CID})
    log = InvocationLog(correlation_id=CID, request_ids={RID}, claim_correlated_without_stretch=True)
    log.add(events(plain), seen_at=10)
    assert verdict(log, 20).status == "success"
    assert new_log().add(events(plain), seen_at=10) == []  # elsewhere such a line waits for our stretch
