"""Check and build what is sent to Lambda, before anything is invoked. Pure: no network, no Airflow."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from airflow_lambda_deferrable.exceptions import LambdaInvokeInputError

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


def check_tenant_id(tenant_id: Any) -> str | None:
    """Return the tenant id (``None`` when none is given), or raise `LambdaInvokeInputError` naming what is wrong."""
    if tenant_id is None or tenant_id == "":
        return None
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


def correlation_id_for_try(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    """Return the correlation id of one task try: fresh per try, the same whenever it is recomputed."""
    return str(uuid.uuid5(CORRELATION_NAMESPACE, f"{dag_id}\n{run_id}\n{task_id}\n{map_index}\n{try_number}"))


def _refuse_constant(name: str) -> Any:
    """Refuse ``NaN``, ``Infinity`` and ``-Infinity``, which Python's JSON reader accepts but JSON has not."""
    raise ValueError(f"{name} is not a JSON value")


def load_payload(payload: str | bytes | bytearray | dict[str, Any] | None) -> dict[str, Any]:
    """Return the payload as a JSON object; a JSON string, bytes or a dict are accepted."""
    if payload is None:
        return {}
    if isinstance(payload, dict):
        loaded: Any = payload
    elif isinstance(payload, (str, bytes, bytearray)):
        try:
            loaded = json.loads(payload, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as err:
            raise LambdaInvokeInputError(f"LambdaInvokeDeferrableOperator: payload is not valid JSON: {err}") from err
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
