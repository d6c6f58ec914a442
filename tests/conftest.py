"""Shared fixtures: a moto server over real HTTP, and an Airflow connection pointing at it."""

from __future__ import annotations

import asyncio
import io
import json
import os
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

# Airflow reads its configuration at import: give the test run its own home before anything imports it.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(os.path.dirname(__file__), "dags"))
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)
# Tests poll every fraction of a second; the shared poller's budget is tested on its own.
os.environ.setdefault("AIRFLOW__LAMBDA_DEFERRABLE__MAX_REQUESTS_PER_SECOND", "50")

import boto3  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from tests.postgres import postgres_url  # noqa: E402, F401 (a fixture: a throwaway PostgreSQL)

MOTO_CONN_ID = "aws_moto"
# Seconds a test marked `slow` (a real Airflow, a clean virtual environment) may run before pytest-timeout
# fails it; the others get pyproject.toml's `timeout`. The longest slow test took about 4 minutes here.
SLOW_TEST_TIMEOUT = 900
REGION = "us-east-1"
FUNCTION = "example-lambda-function"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give tests marked `slow` the longer timeout, unless they set their own."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT))


def aws_connection(endpoint_url: str) -> str:
    """Return an Airflow AWS connection (the JSON of an AIRFLOW_CONN_... variable) for `endpoint_url`."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"region_name": REGION, "endpoint_url": endpoint_url},
        }
    )


def local_client(endpoint_url: str, service: str) -> Any:
    """Return a boto3 client for `service` at `endpoint_url` that never retries (a retried Invoke runs the
    function twice) and waits longer than any test function runs."""
    from botocore.config import Config

    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(read_timeout=60, retries={"total_max_attempts": 1}),
    )


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start one moto server for the session and return its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ[f"AIRFLOW_CONN_{MOTO_CONN_ID.upper()}"] = aws_connection(endpoint)
    yield endpoint
    server.stop()


@pytest.fixture
def moto(moto_endpoint: str) -> str:
    """Return the moto URL with all state cleared, and Lambda set to echo payloads (no Docker here)."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    requests.post(f"{moto_endpoint}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10)
    return moto_endpoint


@pytest.fixture
def logs_client(moto: str):
    """Return a boto3 CloudWatch Logs client against moto (to write events as Lambda would)."""
    return boto3.client("logs", region_name=REGION, endpoint_url=moto)


@pytest.fixture
def lambda_client(moto: str):
    """Return a boto3 Lambda client against moto."""
    return boto3.client("lambda", region_name=REGION, endpoint_url=moto)


@pytest.fixture
def function(moto: str) -> dict[str, Any]:
    """Create the example function in moto (its code is never run: moto echoes payloads here)."""
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto)
    role = iam.create_role(RoleName="lambda-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("lambda_function.py", "def lambda_handler(event, context):\n    return event\n")
    client = boto3.client("lambda", region_name=REGION, endpoint_url=moto)
    created = client.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": archive.getvalue()},
        Timeout=30,
        Publish=True,
    )
    client.put_function_event_invoke_config(FunctionName=FUNCTION, MaximumRetryAttempts=0)
    return created


async def follow_event_invoke(
    endpoint_url: str,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    payload: bytes,
    *,
    follow_seconds: float,
    correlation_id: str | None = None,
    **trigger_kwargs: Any,
) -> dict:
    """Invoke `name` asynchronously at `endpoint_url`, then run the trigger the operator would defer to, with a
    deadline of `follow_seconds`; return its event. The test handlers do not log a correlation id (they are
    followed by request id) unless `correlation_id` is given; `trigger_kwargs` are the trigger's other kwargs
    (a Managed Instances function's, say)."""
    from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger

    monkeypatch.setenv("AIRFLOW_CONN_LOCAL_FOLLOWED", aws_connection(endpoint_url))
    invoked_at = time.time()
    response = local_client(endpoint_url, "lambda").invoke(FunctionName=name, InvocationType="Event", Payload=payload)
    trigger = LambdaInvocationTrigger(
        function_name=name,
        log_group=f"/aws/lambda/{name}",
        correlation_id=correlation_id or f"corr-{uuid.uuid4().hex}",
        request_id=response["ResponseMetadata"]["RequestId"],
        invoked_at=invoked_at,
        deadline=invoked_at + follow_seconds,
        aws_conn_id="local_followed",
        poll_interval=0.3,
        settle_seconds=1.0,
        **trigger_kwargs,
    )

    async def first() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return await asyncio.wait_for(first(), follow_seconds + 30)
