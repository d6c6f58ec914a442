"""Only our invocation decides, with real functions behind the local AWS stack (the Python runtime interface
client): a function that re-invokes itself with its own event gets its own request's verdict."""

from __future__ import annotations

import uuid

import pytest

from airflow_lambda_deferrable.exceptions import LambdaInvocationFailed
from local_aws.deploy import zip_directory
from tests.conftest import local_client
from tests.test_operator_logging_controls import HANDLERS, counted, run, stack  # noqa: F401 (fixtures)

INVOCATIONS = "/invocations"


def test_a_function_that_reinvokes_itself_with_its_own_event_gets_its_own_verdict(stack, counted):  # noqa: F811
    client = local_client(stack.endpoint_url, "lambda")
    iam = local_client(stack.endpoint_url, "iam")
    name = f"fanout-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="handlers.reinvoke",
        Code={"ZipFile": zip_directory(HANDLERS)},
        Timeout=20,
    )
    with pytest.raises(LambdaInvocationFailed) as failed:
        run(name, payload={"children": 3, "seconds": 8})
    assert "RuntimeError: the parent of correlation id" in str(failed.value)
    # Through the proxy only our Invoke went (the function calls the stack directly for its children).
    assert counted.count(INVOCATIONS) == 1
