"""Only our invocation decides, with real functions behind the local AWS stack (the Python runtime interface
client): a function that re-invokes itself with its own event gets its own request's verdict."""

from __future__ import annotations

import pytest

from airflow_lambda_deferrable.exceptions import LambdaInvocationFailed
from tests.test_operator_logging_controls import counted, make_function, run, stack  # noqa: F401 (fixtures)

INVOCATIONS = "/invocations"


def test_a_function_that_reinvokes_itself_with_its_own_event_gets_its_own_verdict(stack, counted):  # noqa: F811
    name = make_function(stack, handler="handlers.reinvoke", timeout=20)
    with pytest.raises(LambdaInvocationFailed) as failed:
        run(name, payload={"children": 3, "seconds": 8})
    assert "RuntimeError: the parent of correlation id" in str(failed.value)
    # Through the proxy only our Invoke went (the function calls the stack directly for its children).
    assert counted.count(INVOCATIONS) == 1
