"""The example of docs/testing-triggers.md, run as a test so that the page cannot show code that fails.

It stands alone on purpose (its own moto server, its own connection, no fixture of conftest.py), as a
user's test of the trigger would: write an invocation's lines as Lambda writes them, run the trigger,
read its first event.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from airflow_lambda_deferrable import LambdaInvocationTrigger

REGION = "us-east-1"
CONN_ID = "aws_moto_example"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """Run moto in server mode: the trigger's aiobotocore client talks real HTTP to it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def connection(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point an Airflow connection at moto, and let the test's reads go faster than a real account allows."""
    extra = {"region_name": REGION, "endpoint_url": moto_url}
    uri = json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra})
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", uri)
    monkeypatch.setenv("AIRFLOW__LAMBDA_DEFERRABLE__MAX_REQUESTS_PER_SECOND", "50")
    return CONN_ID


def write_lines(moto_url: str, group: str, messages: list[str]) -> None:
    """Put `messages` into one new stream of `group`, a millisecond apart, as Lambda's log shipper would."""
    logs = boto3.client(
        "logs",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    logs.create_log_group(logGroupName=group)
    stream = f"2026/01/01/[$LATEST]{uuid.uuid4().hex}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    events = [{"timestamp": now + i, "message": message} for i, message in enumerate(messages)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def powertools(correlation_id: str, request_id: str, message: str, level: str = "INFO") -> str:
    """A line of Powertools' Logger with `inject_lambda_context(correlation_id_path="correlation_id")`."""
    record = {"correlation_id": correlation_id, "level": level, "message": message}
    return json.dumps(record | {"function_request_id": request_id})


def trigger_for(group: str, request_id: str, correlation_id: str, conn_id: str) -> LambdaInvocationTrigger:
    """The trigger the operator would defer to, with test-sized waits (0.2 s reads, 0.5 s to settle)."""
    now = time.time()
    return LambdaInvocationTrigger(
        function_name="my-function",
        log_group=group,
        correlation_id=correlation_id,
        request_id=request_id,
        invoked_at=now - 5,
        deadline=now + 30,
        aws_conn_id=conn_id,
        poll_interval=0.2,
        settle_seconds=0.5,
    )


async def first_event(trigger: LambdaInvocationTrigger) -> dict:
    """Run the trigger until it fires once, as the triggerer would, and return the event's payload."""
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


@pytest.mark.asyncio
async def test_the_function_logged_its_end_marker(moto_url: str, connection: str) -> None:
    group, request_id, correlation_id = f"/aws/lambda/my-function-{uuid.uuid4().hex}", str(uuid.uuid4()), "corr-ok-1"
    write_lines(
        moto_url,
        group,
        [
            f"START RequestId: {request_id} Version: $LATEST",
            powertools(correlation_id, request_id, "Function started"),
            powertools(correlation_id, request_id, "Function ended"),
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}\tDuration: 12.00 ms\tBilled Duration: 13 ms",
        ],
    )
    payload = await asyncio.wait_for(first_event(trigger_for(group, request_id, correlation_id, connection)), 60)
    assert payload["status"] == "success"
    assert payload["message"] == "the function logged its end marker"


@pytest.mark.asyncio
async def test_an_exception_escaped_the_handler(moto_url: str, connection: str) -> None:
    group, request_id, correlation_id = f"/aws/lambda/my-function-{uuid.uuid4().hex}", str(uuid.uuid4()), "corr-err-1"
    write_lines(
        moto_url,
        group,
        [
            f"START RequestId: {request_id} Version: $LATEST",
            powertools(correlation_id, request_id, "Function started"),
            # The runtime's own line carries no id: its place between START and END makes it this request's.
            "[ERROR] RuntimeError: Unable to finish loop\rTraceback (most recent call last):",
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}\tDuration: 12.00 ms\tStatus: error\tError Type: Runtime.Unknown",
        ],
    )
    payload = await asyncio.wait_for(first_event(trigger_for(group, request_id, correlation_id, connection)), 60)
    assert payload["status"] == "failed"
    assert payload["message"] == "RuntimeError: Unable to finish loop"


def test_the_trigger_round_trips_through_serialize() -> None:
    trigger = trigger_for("/aws/lambda/my-function", str(uuid.uuid4()), "corr-rt-1", CONN_ID)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_lambda_deferrable.triggers.LambdaInvocationTrigger"
    assert LambdaInvocationTrigger(**kwargs).serialize() == (classpath, kwargs)
