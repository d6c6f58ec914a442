"""The trigger's verdict on real invocations: the real Python runtime (awslambdaric) behind the local AWS
stack, in each log shape Lambda writes (text before 2026, text of 2026, JSON), through real HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_aws import LocalAwsStack
from local_aws.deploy import zip_directory
from tests.conftest import follow_event_invoke, local_client

HANDLERS = Path(__file__).parent / "local_aws_functions"
REGION = "us-east-1"
SHAPES = ["text-legacy", "text-2026", "json"]


@pytest.fixture(scope="module")
def stacks() -> Iterator[dict[str, LocalAwsStack]]:
    """A stack writing today's text lines (and JSON where the function asks for it) and one writing the old."""
    with (
        LocalAwsStack(port=0, ingestion_delay=0.2, text_generation="2026") as today,
        LocalAwsStack(port=0, ingestion_delay=0.2, text_generation="legacy") as legacy,
    ):
        yield {"text-legacy": legacy, "text-2026": today, "json": today}


def _client(stack: LocalAwsStack, service: str) -> Any:
    return local_client(stack.endpoint_url, service)


EXAMPLE = Path(__file__).resolve().parents[1] / "lambda" / "src"


def make_function(stack: LocalAwsStack, handler: str, shape: str, **settings: Any) -> str:
    name = f"v-{handler}-{uuid.uuid4().hex[:8]}"
    role = _client(stack, "iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    if shape == "json":
        settings["LoggingConfig"] = {"LogFormat": "JSON", **settings.get("LoggingConfig", {})}
    _client(stack, "lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="lambda_function.lambda_handler" if handler == "example" else f"handlers.{handler}",
        Code={"ZipFile": zip_directory(EXAMPLE if handler == "example" else HANDLERS)},
        **{"Timeout": 10, **settings},
    )
    return name


async def follow(
    stack: LocalAwsStack,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    payload: bytes,
    correlation_id: str | None = None,
    claim_lines_without_ids: bool = True,
) -> dict:
    """Invoke asynchronously, then run the trigger the operator would defer to; return its event.

    :param claim_lines_without_ids: ``False`` for a Managed Instances function, as the operator sets it.
    """
    return await follow_event_invoke(
        stack.endpoint_url,
        monkeypatch,
        name,
        payload,
        follow_seconds=40,
        correlation_id=correlation_id,
        claim_lines_without_ids=claim_lines_without_ids,
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", SHAPES)
async def test_success(stacks, monkeypatch, shape):
    stack = stacks[shape]
    event = await follow(stack, monkeypatch, make_function(stack, "levels", shape), b"{}")
    assert event["status"] == "success", event["message"]
    assert any(line["message"].startswith("printed by ") for line in event["lines"])


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", SHAPES)
async def test_unhandled_exception(stacks, monkeypatch, shape):
    stack = stacks[shape]
    event = await follow(stack, monkeypatch, make_function(stack, "levels", shape), b'{"fail": "x"}')
    assert (event["status"], event["error"]["type"], event["error"]["message"]) == ("failed", "RuntimeError", "boom: x")
    assert "Traceback" in (event["error"]["detail"] or "") or "raise RuntimeError" in (event["error"]["detail"] or "")


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", SHAPES)
async def test_timeout(stacks, monkeypatch, shape):
    stack = stacks[shape]
    event = await follow(stack, monkeypatch, make_function(stack, "sleep", shape, Timeout=1), b'{"seconds": 5}')
    assert (event["status"], event["message"]) == ("failed", "Task timed out after 1.00 seconds")
    assert event["error"]["type"] == "Sandbox.Timedout"


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", SHAPES)
async def test_runtime_crash(stacks, monkeypatch, shape):
    stack = stacks[shape]
    event = await follow(stack, monkeypatch, make_function(stack, "crash", shape), b'{"how": "exit"}')
    assert (event["status"], event["error"]["type"]) == ("failed", "Runtime.ExitError")


@pytest.mark.asyncio
async def test_three_concurrent_requests_in_one_stream_each_get_only_their_own_lines(stacks, monkeypatch):
    """Lambda Managed Instances: one environment runs the three at once and writes one JSON stream."""
    stack = stacks["json"]
    capacity = {
        "LambdaManagedInstancesCapacityProviderConfig": {
            "CapacityProviderArn": "arn:aws:lambda:us-east-1:123456789012:capacity-provider:local",
            "PerExecutionEnvironmentMaxConcurrency": 3,
        }
    }
    name = make_function(stack, "work", "json", CapacityProviderConfig=capacity)
    payloads = [
        b'{"item": 0, "seconds": 1.5}',
        b'{"item": 1, "seconds": 1.5, "fail": true}',
        b'{"item": 2, "seconds": 1.5}',
    ]
    events = await asyncio.gather(
        *(follow(stack, monkeypatch, name, payload, claim_lines_without_ids=False) for payload in payloads)
    )

    assert [event["status"] for event in events] == ["success", "failed", "success"]
    assert (events[1]["error"]["type"], events[1]["error"]["message"]) == ("ValueError", "work 1 failed")
    for item, event in enumerate(events):
        mine = [line["message"] for line in event["lines"] if line["message"].startswith("work ")]
        assert mine and all(message.startswith(f"work {item} ") for message in mine), (item, mine)
        # print lines carry no id: with three requests in one stream they are nobody's to claim.
        assert not any(line["message"].startswith("printed during work") for line in event["lines"])
    streams = {line["stream"] for event in events for line in event["lines"]}
    assert len(streams) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", SHAPES)
async def test_an_error_logged_by_a_handler_that_returns_is_a_failure(stacks, monkeypatch, shape):
    stack = stacks[shape]
    event = await follow(stack, monkeypatch, make_function(stack, "levels", shape), b'{"log_error": "row 7"}')
    assert (event["status"], event["error"]["message"]) == ("failed", "handled: row 7")


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("to_fail", [False, True])
async def test_the_example_function_with_powertools_and_its_end_marker(stacks, monkeypatch, shape, to_fail):
    stack = stacks[shape]
    correlation_id = f"corr-{uuid.uuid4().hex}"
    payload = json.dumps({"correlation_id": correlation_id, "n": 2, "sleep_seconds": 0.1, "to_fail": to_fail})
    event = await follow(stack, monkeypatch, make_function(stack, "example", shape), payload.encode(), correlation_id)
    messages = [line["message"] for line in event["lines"]]
    assert [m for m in messages if m.startswith("iteration ")] == ["iteration 1 of 2", "iteration 2 of 2"]
    if to_fail:
        assert (event["status"], event["message"]) == (
            "failed",
            'RuntimeError: Unable to finish loop; the function logged "Function invocation failed"',
        )
    else:
        assert event["status"] == "success" and "Function ended" in messages
