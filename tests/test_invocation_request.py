"""Inputs are checked, and the correlation id injected, before anything is invoked."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from airflow_lambda_deferrable.exceptions import LambdaInvokeInputError
from airflow_lambda_deferrable.invocation_request import (
    build_payload,
    check_correlation_id,
    check_invocation_type,
    correlation_id_for_try,
    describe_payload,
    load_payload,
)

DEFAULT = "default-id-0001"


def build(payload, correlation_id=None, invocation_type="Event", key="correlation_id"):
    encoded, chosen = build_payload(
        payload,
        correlation_id=correlation_id,
        correlation_id_key=key,
        invocation_type=invocation_type,
        default_correlation_id=DEFAULT,
    )
    return json.loads(encoded), chosen


@pytest.mark.parametrize("payload", [{"n": 3}, '{"n": 3}', b'{"n": 3}', bytearray(b'{"n": 3}')])
def test_payload_forms_are_accepted_and_the_id_injected(payload):
    document, chosen = build(payload)
    assert document == {"n": 3, "correlation_id": DEFAULT}
    assert chosen == DEFAULT


def test_no_payload_becomes_an_object_with_the_id():
    assert build(None) == ({"correlation_id": DEFAULT}, DEFAULT)


def test_custom_key_and_given_id():
    document, chosen = build({"a": 1}, correlation_id="my-own-id-42", key="trace_id")
    assert document == {"a": 1, "trace_id": "my-own-id-42"} and chosen == "my-own-id-42"


def test_id_already_in_payload_is_adopted():
    assert build({"correlation_id": "from-payload-1"})[1] == "from-payload-1"


def test_conflicting_ids_are_refused():
    with pytest.raises(LambdaInvokeInputError, match="give one or make them equal"):
        build({"correlation_id": "from-payload-1"}, correlation_id="given-id-0002")


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ("not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        (42, "must be a JSON string, bytes or a dict"),
        ('{"n": NaN}', "NaN is not a JSON value"),
        (b'{"n": [Infinity]}', "Infinity is not a JSON value"),
        ('{"n": -Infinity}', "-Infinity is not a JSON value"),
    ],
)
def test_bad_payloads(payload, match):
    with pytest.raises(LambdaInvokeInputError, match=match):
        load_payload(payload)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"n": float("nan")}, "Out of range float values are not JSON compliant"),
        ({"deep": [{"n": float("inf")}]}, "Out of range float values are not JSON compliant"),
        ({"when": datetime(2026, 11, 30, tzinfo=UTC)}, "Object of type datetime is not JSON serializable"),
        ({"ids": {1, 2}}, "Object of type set is not JSON serializable"),
        ({(1, 2): "tuple key"}, "keys must be str, int, float, bool or None"),
    ],
)
def test_dicts_that_are_not_json_are_refused_by_name(payload, match):
    with pytest.raises(LambdaInvokeInputError, match=f"payload cannot be sent as JSON: {match}"):
        build(payload)


@pytest.mark.parametrize(("invocation_type", "limit"), [("Event", 1024 * 1024), ("RequestResponse", 6 * 1024 * 1024)])
def test_size_limits_per_invocation_type(invocation_type, limit):
    overhead = len(json.dumps({"x": "", "correlation_id": DEFAULT}, separators=(",", ":")))
    build({"x": "a" * (limit - overhead)}, invocation_type=invocation_type)  # exactly at the limit
    with pytest.raises(LambdaInvokeInputError, match=f"over Lambda's {limit} byte limit"):
        build({"x": "a" * (limit - overhead + 1)}, invocation_type=invocation_type)


@pytest.mark.parametrize("invocation_type", ["DryRun", "event", "", "Async"])
def test_unsupported_invocation_types(invocation_type):
    with pytest.raises(LambdaInvokeInputError, match="not supported"):
        check_invocation_type(invocation_type)


@pytest.mark.parametrize(
    "bad",
    [
        'has"quote',
        "has space1",
        "short",
        "-leading-dash",
        "x" * 129,
        "back\\slash1",
        "",
        None,
        12345678,
        "abcdefgh-1234\n",  # `$` alone would accept the newline, and the id would never be found
    ],
)
def test_unsafe_correlation_ids_are_refused(bad):
    with pytest.raises(LambdaInvokeInputError, match="correlation_id"):
        check_correlation_id(bad)


@pytest.mark.parametrize("good", ["abcdefgh", "2850fda4-9005-4375-aca8-88dfdda222ba", "run:2026-11-23/task.a@1+x=y"])
def test_safe_correlation_ids(good):
    assert check_correlation_id(good) == good


def test_correlation_id_is_deterministic_and_differs_per_try_and_map_index():
    base = ("dag", "manual__2026", "task", -1, 1)
    assert correlation_id_for_try(*base) == correlation_id_for_try(*base)
    others = {correlation_id_for_try(*base[:4], 2), correlation_id_for_try(*base[:3], 0, 1)}
    others.add(correlation_id_for_try("dag", "manual__2026", "task2", -1, 1))
    assert correlation_id_for_try(*base) not in others and len(others) == 3
    check_correlation_id(correlation_id_for_try(*base))


def test_payload_description_shows_keys_not_values():
    text = describe_payload({"password": "hunter2", "n": 1}, 40)
    assert text == "40 bytes, keys: n, password"
    assert "hunter2" not in text
