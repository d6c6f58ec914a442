"""Check and build what is sent to Lambda, before anything is invoked. Pure: no network, no Airflow."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from airflow_lambda_deferrable.exceptions import LambdaInvokeInputError
from airflow_lambda_deferrable.verdict.log_lines import MAX_JSON_DEPTH, json_text_too_deep, json_value_too_deep

INVOCATION_TYPES = ("Event", "RequestResponse")
# Lambda's payload quotas: 6 MB for a synchronous call, 1 MB for an asynchronous one.
MAX_PAYLOAD_BYTES = {"RequestResponse": 6 * 1024 * 1024, "Event": 1024 * 1024}
# Safe inside a quoted CloudWatch filter term, and long enough not to match unrelated lines.
CORRELATION_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{7,127}")
# A fixed namespace, so the same task try always gets the same id.
CORRELATION_NAMESPACE = uuid.UUID("6f1c3a52-9a4e-4c1f-8f0e-2b1d7c5e9a31")


def check_invocation_type(invocation_type: str) -> str:
    """Return `invocation_type` if this operator can follow it; ``DryRun`` and others are refused."""
    if invocation_type not in INVOCATION_TYPES:
        raise LambdaInvokeInputError(
            f"LambdaInvokeDeferrableOperator: invocation_type {invocation_type!r} is not supported; "
            f"use one of {', '.join(INVOCATION_TYPES)} (DryRun invokes nothing, so there is nothing to follow)"
        )
    return invocation_type


# Invoke's TenantId (header X-Amz-Tenant-Id): 1 to 256 of these characters.
TENANT_ID_PATTERN = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}")
# What Airflow renders a template to when its value is None (``{{ params.tenant }}`` with no tenant).
RENDERED_NONE = "None"


def check_tenant_id(tenant_id: Any) -> str | None:
    """Return the tenant id (``None`` when none is given), or raise `LambdaInvokeInputError` naming what is wrong.

    Blank ids are refused, and so is ``"None"``: it is what a template renders when its value is None, so
    the function would run for a tenant named "None" where the task meant another one, or none. A tenant
    really named "None" cannot be invoked by this operator.
    """
    if tenant_id is None or tenant_id == "":
        return None
    if isinstance(tenant_id, str) and not tenant_id.strip():
        raise LambdaInvokeInputError(
            f"tenant_id is blank ({tenant_id!r}): give a tenant id, or leave it unset for a function that does "
            "not isolate tenants"
        )
    if tenant_id == RENDERED_NONE:
        raise LambdaInvokeInputError(
            "tenant_id is the string 'None', which is what a template renders when its value is None (say "
            "{{ params.tenant }} with no tenant given): give the tenant id, or leave tenant_id unset for no tenant"
        )
    if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise LambdaInvokeInputError(
            f"tenant_id must be 1-256 of the characters a-z A-Z 0-9 . _ : / = + - @ and space, got {tenant_id!r}"
        )
    return tenant_id


def check_correlation_id(correlation_id: Any) -> str:
    """Return `correlation_id` if it is safe inside a CloudWatch filter pattern, else raise."""
    if not isinstance(correlation_id, str) or not CORRELATION_ID_PATTERN.fullmatch(correlation_id):
        raise LambdaInvokeInputError(
            f"LambdaInvokeDeferrableOperator: correlation_id {correlation_id!r} is not usable: it must be "
            "8 to 128 characters of letters, digits and . _ : @ + = / - starting with a letter or digit, "
            "so that it can be searched for in CloudWatch Logs"
        )
    return correlation_id


def correlation_id_for_try(try_key: str) -> str:
    """Return the correlation id of one task try: fresh per try, the same whenever it is recomputed.

    :param try_key: what identifies the try (`try_key_of`): Airflow's task instance id, a UUID new for
        each try, so that two deployments running the same DAG, run and task (a scheduled run's id is its
        date) never share an id. The id is a UUID (version 5) of that key.
    """
    return str(uuid.uuid5(CORRELATION_NAMESPACE, try_key))


def try_key_of(ti: Any) -> str:
    """Return what identifies a task try, for its correlation id and its durable execution's name.

    Airflow's task instance id (a UUID, new for each try) is unique across deployments, where dag, run and
    task ids are not (scheduled run ids are dates). Without one (an older or stand-in task instance), the
    try's coordinates.
    """
    ti_id = getattr(ti, "id", None)
    if ti_id:
        return f"ti:{ti_id}"
    return f"{ti.dag_id}\n{ti.run_id}\n{ti.task_id}\n{ti.map_index}\n{ti.try_number}"


def _refuse_constant(name: str) -> Any:
    """Refuse ``NaN``, ``Infinity`` and ``-Infinity``, which Python's JSON reader accepts but JSON has not."""
    raise ValueError(f"{name} is not a JSON value")


def payload_problem(document: Any) -> str | None:
    """Return what makes a dict payload unsendable before anything recursive (`json.dumps`, `repr`) meets it,
    or ``None``: nesting deeper than `MAX_JSON_DEPTH` (or containing itself), or a key that JSON would
    write twice (``{1: "a", "1": "b"}``), at any depth. Lists and tuples are walked the same way."""
    if json_value_too_deep(document):
        return (
            f"payload is nested more than {MAX_JSON_DEPTH} levels deep (MAX_JSON_DEPTH), or contains itself: "
            "Python's json and Airflow's serializers recurse per level; send deeper data as a JSON string "
            "inside the payload"
        )
    pending: list[tuple[Any, str]] = [(document, "payload")]
    while pending:
        item, where = pending.pop()
        entries = item.items() if isinstance(item, dict) else enumerate(item)
        names: dict[str, Any] = {}
        for key, entry in entries:
            name = _json_key(key) if isinstance(item, dict) else None
            if name is not None and name in names:
                return (
                    f"{where} has the key {name!r} twice once converted to JSON (from {names[name]!r} and "
                    f"{key!r}): the function would read only one of them"
                )
            if name is not None:
                names[name] = key
            if isinstance(entry, (dict, list, tuple)):
                pending.append((entry, f"{where}[{name if name is not None else key!r}]"))
    return None


def _json_key(key: Any) -> str | None:
    """Return the name `json.dumps` writes for a dict key (``1`` as ``"1"``, ``True`` as ``"true"``), or
    ``None`` for a key it refuses (the refusal is `build_payload`'s)."""
    if isinstance(key, str):
        return key
    try:
        return next(iter(json.loads(json.dumps({key: None}))))
    except (TypeError, ValueError):
        return None


def _decoded(payload: bytes | bytearray) -> str:
    """Decode a payload as `json.loads` decodes bytes (UTF-8, -16 or -32, told by its first bytes)."""
    return payload.decode(json.detect_encoding(payload), "surrogatepass")


def load_payload(payload: str | bytes | bytearray | dict[str, Any] | None) -> dict[str, Any]:
    """Return the payload as a JSON object; a JSON string, bytes or a dict are accepted.

    Checked before anything recursive meets it: JSON text nested deeper than `MAX_JSON_DEPTH` is refused
    unparsed, and a dict as `payload_problem` says.
    """
    if payload is None:
        return {}
    if isinstance(payload, dict):
        loaded: Any = payload
        problem = payload_problem(payload)
        if problem:
            raise LambdaInvokeInputError(f"LambdaInvokeDeferrableOperator: {problem}")
    elif isinstance(payload, (str, bytes, bytearray)):
        try:
            text = payload if isinstance(payload, str) else _decoded(payload)
            too_deep = json_text_too_deep(text)
            loaded = None if too_deep else json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as err:
            raise LambdaInvokeInputError(f"LambdaInvokeDeferrableOperator: payload is not valid JSON: {err}") from err
        if too_deep:
            raise LambdaInvokeInputError(
                f"LambdaInvokeDeferrableOperator: payload nests arrays and objects more than {MAX_JSON_DEPTH} "
                "levels deep (MAX_JSON_DEPTH): Python's json and Airflow's serializers recurse per level; "
                "send deeper data as a JSON string inside the payload"
            )
    else:
        raise LambdaInvokeInputError(
            "LambdaInvokeDeferrableOperator: payload must be a JSON string, bytes or a dict, "
            f"got {type(payload).__name__}"
        )
    if not isinstance(loaded, dict):
        raise LambdaInvokeInputError(
            "LambdaInvokeDeferrableOperator: payload must be a JSON object to carry the correlation id, "
            f"got a JSON {type(loaded).__name__}"
        )
    return loaded


def build_payload(
    payload: str | bytes | bytearray | dict[str, Any] | None,
    *,
    correlation_id: str | None,
    correlation_id_key: str,
    invocation_type: str,
    default_correlation_id: str,
) -> tuple[bytes, str]:
    """Return the encoded payload with the correlation id in it, and that id.

    The id is, in order: `correlation_id` if given; the one the payload already holds under
    `correlation_id_key`; `default_correlation_id`. A payload that holds a different id from the
    given one is refused rather than silently overwritten.
    """
    document = load_payload(payload)
    existing = document.get(correlation_id_key)
    if correlation_id is not None and existing is not None and existing != correlation_id:
        raise LambdaInvokeInputError(
            f"LambdaInvokeDeferrableOperator: payload[{correlation_id_key!r}] is {existing!r} but correlation_id "
            f"is {correlation_id!r}; give one or make them equal"
        )
    chosen = check_correlation_id(
        correlation_id if correlation_id is not None else existing if existing is not None else default_correlation_id
    )
    try:
        encoded = json.dumps({**document, correlation_id_key: chosen}, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as err:
        raise LambdaInvokeInputError(
            f"LambdaInvokeDeferrableOperator: payload cannot be sent as JSON: {err} "
            "(give strings, numbers, booleans, null, lists and dicts with string keys; no NaN or infinity)"
        ) from err
    limit = MAX_PAYLOAD_BYTES[check_invocation_type(invocation_type)]
    if len(encoded) > limit:
        raise LambdaInvokeInputError(
            f"LambdaInvokeDeferrableOperator: payload is {len(encoded)} bytes, over Lambda's {limit} byte limit "
            f"for {invocation_type} invocations"
        )
    return encoded, chosen


def describe_payload(document: dict[str, Any], size: int) -> str:
    """Return a description of a payload safe to log: its size and top-level keys, never its values."""
    keys = ", ".join(sorted(map(str, document))) or "no keys"
    return f"{size} bytes, keys: {keys}"
