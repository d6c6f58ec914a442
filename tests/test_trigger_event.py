"""The event payload is bounded, serializable, and read back strictly."""

from __future__ import annotations

import json
import random

import pytest

from airflow_lambda_deferrable.exceptions import LambdaTriggerEventInvalid
from airflow_lambda_deferrable.verdict.log_lines import MAX_JSON_DEPTH, LogLine, parse_event
from airflow_lambda_deferrable.verdict.outcome import Verdict
from airflow_lambda_deferrable.verdict.trigger_event import (
    MAX_MESSAGE_CHARS,
    MAX_RESULT_BYTES,
    InvocationReport,
    bound_lines,
    build_payload,
    carry_result,
    storable,
)

IDENTITY = {
    "function_name": "fn",
    "qualifier": None,
    "log_group": "/aws/lambda/fn",
    "correlation_id": "corr-12345678",
    "request_id": "rid",
    "invocation_type": "Event",
}


def make_lines(count: int, size: int = 10) -> list[LogLine]:
    return [
        LogLine(event_id=str(n), timestamp=n, stream="s", level="INFO", message=f"{n:06d}" + "x" * size)
        for n in range(count)
    ]


def test_small_payload_keeps_everything():
    payload = build_payload(status="success", message="ok", identity=IDENTITY, lines=make_lines(3))
    assert [line["timestamp"] for line in payload["lines"]] == [0, 1, 2]
    assert (payload["omitted_lines"], payload["omitted_at"]) == (0, 3)
    assert InvocationReport.from_payload(json.loads(json.dumps(payload))).status == "success"


def test_line_count_bound_keeps_head_and_tail():
    payload = build_payload(status="success", message="ok", identity=IDENTITY, lines=make_lines(1000), max_lines=100)
    kept = [line["timestamp"] for line in payload["lines"]]
    assert len(kept) == 100 and payload["omitted_lines"] == 900
    assert kept[:20] == list(range(20)) and kept[20:] == list(range(920, 1000))
    assert payload["omitted_at"] == 20


def test_byte_bound_is_respected():
    payload = build_payload(
        status="success", message="ok", identity=IDENTITY, lines=make_lines(500, size=1000), max_bytes=50_000
    )
    assert len(json.dumps(payload["lines"])) <= 50_000
    assert payload["omitted_lines"] + len(payload["lines"]) == 500
    assert payload["lines"][-1]["timestamp"] == 499  # the end, where the outcome is, is kept


def test_huge_line_and_odd_text_are_clipped_and_serializable():
    line = LogLine(
        event_id="1", timestamp=1, stream="s", level="ERROR", message="\udcff" + "y" * 100_000, detail="z" * 50_000
    )
    payload = build_payload(
        status="failed",
        message="bad",
        identity=IDENTITY,
        lines=[line],
        verdict=Verdict("failed", "bad", "E", "m", "t" * 40_000),
    )
    text = json.dumps(payload, ensure_ascii=False).encode("utf-8")  # no lone surrogate left
    assert len(text) < 60_000
    message = payload["lines"][0]["message"]
    assert message.endswith("... [100001 characters in all]") and len(message) == 8 * 1024
    assert payload["error"]["type"] == "E"


def test_nul_in_a_line_is_replaced_visibly():
    # PostgreSQL's JSONB (Airflow's next_kwargs column there) rejects \u0000: see tests/test_postgres_storage.py.
    line = LogLine(event_id="1", timestamp=1, stream="s", level="ERROR", message="before\x00after", detail="a\x00")
    payload = build_payload(
        status="failed",
        message="failed: x\x00y",
        identity=IDENTITY,
        lines=[line],
        verdict=Verdict("failed", "bad", "E", "m\x00", "t\x00"),
    )
    assert "\\u0000" not in json.dumps(payload)
    assert payload["lines"][0]["message"] == "before\ufffdafter"
    assert payload["lines"][0]["detail"] == "a\ufffd"
    assert payload["message"] == "failed: x\ufffdy"
    assert payload["error"]["message"] == "m\ufffd" and payload["error"]["detail"] == "t\ufffd"


def test_storable_cleans_every_string_of_a_json_value_keys_included():
    value = {"k\x00": ["a\x00b", "\udcff", 1, 2.5, None, True, {"n": ("\x00",)}], "emoji": "\U0001f600"}
    assert storable(value) == {
        "k\ufffd": ["a\ufffdb", "\ufffd", 1, 2.5, None, True, {"n": ["\ufffd"]}],
        "emoji": "\U0001f600",
    }
    assert storable("plain") == "plain" and storable(None) is None


def test_bound_lines_on_nothing():
    assert bound_lines([], max_lines=10, max_bytes=10) == ([], 0, 0)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (None, "expected the trigger's event"),
        ("success", "expected the trigger's event"),
        ({}, "status None"),
        ({**IDENTITY, "status": "ok", "message": "m", "lines": [], "omitted_lines": 0, "omitted_at": 0}, "status 'ok'"),
        (
            {**IDENTITY, "status": "success", "message": "m", "lines": [{"x": 1}], "omitted_lines": 0, "omitted_at": 0},
            "lines",
        ),
        ({**IDENTITY, "status": "success", "message": "m", "lines": [], "omitted_at": 0}, "omitted_lines"),
        (
            {
                **IDENTITY,
                "correlation_id": None,
                "status": "success",
                "message": "m",
                "lines": [],
                "omitted_lines": 0,
                "omitted_at": 0,
            },
            "correlation_id",
        ),
        (
            {**IDENTITY, "status": "success", "message": "m", "lines": [], "omitted_lines": 0, "omitted_at": 0}
            | {"result": {"n": 1}},
            "result is neither a carried value nor an omitted size",
        ),
        (
            {**IDENTITY, "status": "success", "message": "m", "lines": [], "omitted_lines": 0, "omitted_at": 0}
            | {"result": {"omitted_bytes": "big"}},
            "result is neither",
        ),
    ],
)
def test_malformed_events_are_refused(payload, match):
    with pytest.raises(LambdaTriggerEventInvalid, match=match):
        InvocationReport.from_payload(payload)


def test_a_result_is_carried_up_to_its_limit_and_read_back():
    overhead = len(json.dumps({"x": ""}, separators=(",", ":")))
    at_limit = {"x": "a" * (MAX_RESULT_BYTES - overhead)}
    assert carry_result(at_limit) == {"value": at_limit}
    assert carry_result(None) == {"value": None}  # the function returned null: carried, not lost
    assert carry_result({"x": "a" * (MAX_RESULT_BYTES - overhead + 1)}) == {"omitted_bytes": MAX_RESULT_BYTES + 1}
    # Counted as stored: JSON escapes each non-ASCII character as six bytes (\u00e9).
    assert carry_result({"x": "é" * MAX_RESULT_BYTES}) == {"omitted_bytes": 6 * MAX_RESULT_BYTES + overhead}
    payload = build_payload(status="success", message="ok", identity=IDENTITY, lines=[], result=carry_result([1]))
    assert InvocationReport.from_payload(json.loads(json.dumps(payload))).result == {"value": [1]}
    without = build_payload(status="success", message="ok", identity=IDENTITY, lines=[])
    assert InvocationReport.from_payload(without).result is None


@pytest.mark.parametrize(("max_lines", "max_bytes"), [(500, 256 * 1024), (50, 4096), (10, 1_000_000), (3000, 2048)])
def test_a_log_kept_at_its_ends_gives_the_event_of_the_whole_log(max_lines, max_bytes):
    """A chatty invocation: 20,000 lines arriving in shuffled batches, some very long, one failure in the middle.

    The bounded log keeps at most `max_lines` lines at each end, yet its event is exactly the event of a log
    that kept everything; its verdict names the same failure.
    """
    from airflow_lambda_deferrable.verdict.outcome import InvocationLog, decide
    from airflow_lambda_deferrable.verdict.trigger_event import clip_line

    rng = random.Random(max_lines)
    rid = "3f2b1c4d-1111-2222-3333-444455556666"
    lines = [
        clip_line(
            parse_event(
                {
                    "eventId": str(n),
                    "timestamp": 1000 + n // 3,
                    "logStreamName": "s",
                    "message": json.dumps(
                        {
                            "level": "ERROR" if n == 10_000 else "INFO",
                            "message": f"line {n} " + "x" * rng.choice([0, 10, 200, 20_000]),
                            "function_request_id": rid,
                        }
                    ),
                }
            )
        )
        for n in range(20_000)
    ]
    batches = [lines[i : i + 977] for i in range(0, len(lines), 977)]
    rng.shuffle(batches)
    bounded = InvocationLog(
        correlation_id="corr-12345678", request_ids={rid}, keep_lines=max_lines, keep_bytes=max_bytes
    )
    whole = InvocationLog(correlation_id="corr-12345678", request_ids={rid})
    for batch in batches:
        bounded.add(batch, seen_at=10)
        whole.add(batch, seen_at=10)
        assert len(bounded.lines) <= 2 * max_lines + 2
    assert bounded.line_count == 20_000 and bounded.dropped_lines > 0

    def event(log: InvocationLog) -> dict:
        verdict = decide(log, now=20, checked_at=20, deadline=100, settle_seconds=1, fail_fast=True)
        return build_payload(
            status=verdict.status,
            message=verdict.reason,
            identity=IDENTITY,
            lines=log.lines,
            verdict=verdict,
            max_lines=max_lines,
            max_bytes=max_bytes,
            dropped_lines=log.dropped_lines,
        )

    assert event(bounded) == event(whole)
    assert event(bounded)["status"] == "failed" and event(bounded)["message"].startswith("ERROR: line 10000 ")


def nested_list(depth: int) -> list:
    """A list `depth` levels deep, built without recursing (as `json.loads` or a durable result gives it)."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900, 5_000])
def test_a_result_nested_too_deep_is_carried_as_its_json_text(depth):
    # As a value, Airflow's serializers (trigger kwargs, event, XCom) would recurse per level and fail after
    # the function ran; a retry would run it again.
    carried = carry_result(nested_list(depth))
    assert carried == {"value": "[" * depth + "]" * depth}
    payload = build_payload(status="success", message="ok", identity=IDENTITY, lines=[], result=carried)
    assert InvocationReport.from_payload(json.loads(json.dumps(payload))).result == carried


def test_a_result_nested_to_the_limit_is_carried_as_a_value():
    assert carry_result(nested_list(MAX_JSON_DEPTH)) == {"value": nested_list(MAX_JSON_DEPTH)}


def test_a_deep_result_too_large_is_omitted_and_its_text_keeps_strings_storable():
    deep = {"s": "\x00"}
    for _ in range(MAX_JSON_DEPTH):
        deep = {"a": deep, "pad": "x" * (MAX_RESULT_BYTES // MAX_JSON_DEPTH)}
    assert set(carry_result(deep)) == {"omitted_bytes"}
    small = {"s": "\x00", "n": [1.5, None, True]}
    for _ in range(MAX_JSON_DEPTH):
        small = {"a": small}
    text = carry_result(small)["value"]
    assert text.endswith('{"s":"\\u0000","n":[1.5,null,true]}' + "}" * MAX_JSON_DEPTH)


def test_a_result_with_nan_is_carried_as_its_text():
    # A durable execution's result is read by Python's lenient json; the database stores no NaN.
    assert carry_result({"ratio": float("nan"), "top": float("inf")}) == {"value": '{"ratio":NaN,"top":Infinity}'}


@pytest.mark.parametrize("depth", [1_200, 5_000])
def test_a_line_nested_too_deep_is_stored_as_its_text(depth):
    text = '{"level": "ERROR", "data": ' + "[" * depth + "]" * depth + "}"
    line = parse_event({"eventId": "1", "timestamp": 5, "logStreamName": "s", "message": text})
    payload = build_payload(status="success", message="ok", identity=IDENTITY, lines=[line])
    stored = json.loads(json.dumps(payload))["lines"][0]
    assert stored["level"] == "INFO" and stored["message"][:100] == text[:100]
    assert len(stored["message"]) == min(len(text), MAX_MESSAGE_CHARS)
