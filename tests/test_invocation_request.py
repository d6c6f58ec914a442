"""Inputs are checked, and the correlation id injected, before anything is invoked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from airflow_lambda_deferrable.exceptions import LambdaInvokeInputError
from airflow_lambda_deferrable.provider.invocation_request import (
    build_payload,
    check_correlation_id,
    check_invocation_type,
    check_tenant_id,
    correlation_id_for_try,
    describe_payload,
    load_payload,
    payload_problem,
    try_key_of,
)
from airflow_lambda_deferrable.verdict.log_lines import MAX_JSON_DEPTH

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


def test_correlation_id_is_deterministic_and_unique_to_the_task_instance_try():
    # Two deployments, one DAG, run, task and try (a scheduled run's id is its date): their task instance ids
    # differ, and so do their correlation ids.
    production = SimpleNamespace(id="0190c3b2-7a1e-7c3d-8e4f-000000000001", **TWIN_COORDINATES)
    staging = SimpleNamespace(id="0190c3b2-7a1e-7c3d-8e4f-000000000002", **TWIN_COORDINATES)
    assert correlation_id_for_try(try_key_of(production)) == correlation_id_for_try(try_key_of(production))
    assert correlation_id_for_try(try_key_of(production)) != correlation_id_for_try(try_key_of(staging))
    check_correlation_id(correlation_id_for_try(try_key_of(production)))
    # Without a task instance id (an older or stand-in task instance): the try's coordinates.
    base = SimpleNamespace(id=None, **TWIN_COORDINATES)
    others = {
        try_key_of(SimpleNamespace(**{**vars(base), "try_number": 2})),
        try_key_of(SimpleNamespace(**{**vars(base), "map_index": 0})),
        try_key_of(SimpleNamespace(**{**vars(base), "task_id": "task2"})),
    }
    assert try_key_of(base) not in others and len(others) == 3


TWIN_COORDINATES = {
    "dag_id": "dag",
    "run_id": "scheduled__2026-12-06T00:00:00+00:00",
    "task_id": "task",
    "map_index": -1,
    "try_number": 1,
}


def test_payload_description_shows_keys_not_values():
    text = describe_payload({"password": "hunter2", "n": 1}, 40)
    assert text == "40 bytes, keys: n, password"
    assert "hunter2" not in text


def nested_dict(depth: int) -> dict:
    """A dict `depth` levels deep, built without recursing."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def nested_text(depth: int) -> str:
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


@pytest.mark.parametrize(
    "payload",
    [
        nested_dict(MAX_JSON_DEPTH + 1),
        nested_dict(10_000),
        {"rows": [nested_dict(10_000)]},
        nested_text(MAX_JSON_DEPTH + 1),
        nested_text(10_000),
        nested_text(10_000).encode(),
        nested_text(10_000).encode("utf-16"),  # `json.loads` reads UTF-16 bytes; so does the depth check
        '{"a": ' + "[" * 10_000,  # not JSON either, but `json.loads` would recurse before saying so
    ],
    ids=["dict-101", "dict", "dict-in-list", "text-101", "text", "utf-8", "utf-16", "unfinished-text"],
)
def test_a_payload_nested_too_deep_is_refused_naming_the_limit(payload):
    with pytest.raises(LambdaInvokeInputError, match=rf"more than {MAX_JSON_DEPTH} levels deep \(MAX_JSON_DEPTH\)"):
        build(payload)


def test_a_payload_nested_to_the_limit_is_sent():
    assert build(nested_dict(MAX_JSON_DEPTH))[0]["a"] == nested_dict(MAX_JSON_DEPTH - 1)
    assert build(nested_text(MAX_JSON_DEPTH))[0]["a"] == nested_dict(MAX_JSON_DEPTH - 1)
    assert build({"text": "[" * 10_000})[0]["text"] == "[" * 10_000  # brackets in strings are no depth


def test_a_payload_that_contains_itself_is_refused():
    itself: dict = {"n": 1}
    itself["again"] = itself
    with pytest.raises(LambdaInvokeInputError, match="or contains itself"):
        build(itself)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({1: "a", "1": "b"}, r"payload has the key '1' twice once converted to JSON \(from 1 and '1'\)"),
        ({"x": [{"y": {True: 1, "true": 2}}]}, r"payload\['x'\]\[0\]\['y'\] has the key 'true' twice"),
        ({"n": {None: 1, "null": 2}}, r"payload\['n'\] has the key 'null' twice"),
        ({"f": ({1.0: 1, "1.0": 2},)}, r"payload\['f'\]\[0\] has the key '1.0' twice"),
    ],
)
def test_keys_that_json_writes_twice_are_refused_by_name(payload, match):
    with pytest.raises(LambdaInvokeInputError, match=match):
        build(payload)


def test_keys_that_differ_once_converted_are_sent():
    assert build({1: "a", "2": "b", None: 0})[0] == {"1": "a", "2": "b", "null": 0, "correlation_id": DEFAULT}
    assert payload_problem({"a": [1, {"b": 2}], 3: None}) is None


@pytest.mark.parametrize("tenant_id", [" ", "   ", "\t"])
def test_a_blank_tenant_id_is_refused(tenant_id):
    with pytest.raises(LambdaInvokeInputError, match="tenant_id is blank"):
        check_tenant_id(tenant_id)


def test_the_string_none_a_template_renders_for_none_is_refused():
    with pytest.raises(LambdaInvokeInputError, match="what a template renders when its value is None"):
        check_tenant_id("None")


@pytest.mark.parametrize(
    ("tenant_id", "expected"), [(None, None), ("", None), ("tenant-a", "tenant-a"), ("none", "none")]
)
def test_tenant_ids_that_are_given_or_not(tenant_id, expected):
    assert check_tenant_id(tenant_id) == expected
