"""Only our invocation decides our verdict: hostile shapes against moto over real HTTP.

A log line or a result nested too deep for Python's json, a payload Lambda would read differently from what
the task was given, a tenant id a template got wrong: none may fail the task after it invoked (a retry would
run the function again), and a bad input is refused before anything is invoked.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.serialization.serialized_objects import BaseSerialization

from airflow_lambda_deferrable.exceptions import LambdaInvokeInputError
from airflow_lambda_deferrable.verdict.log_lines import MAX_JSON_DEPTH
from tests import lambda_lines as lines
from tests.test_operators import (
    FUNCTION,
    INVOCATIONS,
    context_for,
    defer,
    event,
    operator,
    proxy,  # noqa: F401 (a fixture: a counting proxy in front of moto)
)
from tests.test_triggers import CID, GROUP, RID, first_event, make_trigger

# How deep the lines and results below nest: past the ~1,000 levels where Python's json gives up.
DEEPER_THAN_JSON_READS = 5_000
# About where a result recursed out of the operator after Invoke (Airflow's serializers take two frames a level).
DEEP_RESULT = 900


def nested_dict(depth: int) -> dict[str, Any]:
    """A dict `depth` levels deep, built without recursing."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def deep_json_line(depth: int) -> str:
    """An ERROR line with our ids whose JSON nests `depth` levels deep."""
    head = json.dumps({"level": "ERROR", "message": "deep", "correlation_id": CID, "function_request_id": RID})
    return head[:-1] + ', "data": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.mark.asyncio
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_200, DEEPER_THAN_JSON_READS])
async def test_a_log_line_nested_too_deep_is_plain_text_and_the_invocation_decides(logs_client, depth):
    deep = deep_json_line(depth)
    lines.put(
        logs_client,
        GROUP,
        [
            lines.start(RID),
            lines.powertools(CID, RID, "Function started"),
            deep,
            lines.powertools(CID, RID, "Function ended"),
            lines.end(RID),
            lines.report(RID),
        ],
    )
    payload = await first_event(make_trigger())
    # Read as text (like any print), the line neither raises out of the trigger nor passes for an error.
    assert (payload["status"], payload["message"]) == ("success", "the function logged its end marker")
    kept = [line for line in payload["lines"] if line["message"][:100] == deep[:100]]
    assert len(kept) == 1 and kept[0]["level"] == "INFO"
    json.dumps(payload)


def test_a_result_nested_too_deep_is_returned_as_its_text_after_one_invoke(function, proxy, capsys):  # noqa: F811
    body = '{"tree": ' + "[" * (DEEP_RESULT - 1) + "]" * (DEEP_RESULT - 1) + "}"
    proxy.respond_next(INVOCATIONS, 200, {"x-amzn-RequestId": "req-deep"}, body)
    op = operator(aws_conn_id="aws_proxy", invocation_type="RequestResponse")
    trigger = defer(op).trigger
    assert proxy.count(INVOCATIONS) == 1
    assert trigger.settings.result == {"value": body}
    BaseSerialization.serialize(trigger.serialize()[1])  # what Airflow stores as the trigger's kwargs
    assert op.execute_complete(context_for(), event("success", result=trigger.settings.result)) == body
    warnings = [line for line in capsys.readouterr().out.splitlines() if "[warning" in line]
    assert any(
        f"The result of {FUNCTION} (request req-deep) nests arrays and objects more than {MAX_JSON_DEPTH} levels "
        "deep (MAX_JSON_DEPTH): the task returns it as its JSON text" in line
        for line in warnings
    )


def isolate_tenants(lambda_client: Any, proxy: Any) -> None:  # noqa: F811
    """Answer the next GetFunctionConfiguration with the function isolating tenants (moto has no TenancyConfig)."""
    configuration = lambda_client.get_function_configuration(FunctionName=FUNCTION)
    del configuration["ResponseMetadata"]
    configuration["TenancyConfig"] = {"TenantIsolationMode": "PER_TENANT"}
    proxy.respond_next("/configuration", 200, {"Content-Type": "application/json"}, json.dumps(configuration))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"payload": nested_dict(10_000)}, rf"more than {MAX_JSON_DEPTH} levels deep \(MAX_JSON_DEPTH\)"),
        ({"payload": '{"a": ' * 10_000 + "1" + "}" * 10_000}, rf"more than {MAX_JSON_DEPTH} levels deep"),
        ({"payload": {1: "a", "1": "b"}}, r"payload has the key '1' twice once converted to JSON"),
        ({"tenant_id": "   "}, "tenant_id is blank"),
        ({"tenant_id": "{{ params.tenant }}"}, "what a template renders when its value is None"),
    ],
    ids=["deep-dict", "deep-text", "duplicate-key", "blank-tenant", "tenant-rendered-from-none"],
)
def test_hostile_inputs_are_refused_by_task_before_anything_is_invoked(function, lambda_client, proxy, kwargs, match):  # noqa: F811
    if "tenant_id" in kwargs:
        isolate_tenants(lambda_client, proxy)  # so that only the tenant id's own check can refuse it
    with pytest.raises(LambdaInvokeInputError, match=rf"LambdaInvokeDeferrableOperator( invoke)?: .*{match}"):
        op = operator(aws_conn_id="aws_proxy", **kwargs)
        op.render_template_fields({"params": {"tenant": None}})
        op.execute(context_for())
    assert proxy.count(INVOCATIONS) == 0
