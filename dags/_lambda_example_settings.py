"""Settings shared by the example DAGs: which function to call and how long each scenario runs.

The function name and qualifier are templates, resolved when a task runs (never at parse time): an
Airflow Variable (`lambda_function_name`, `lambda_qualifier`) wins, then the environment
(`LAMBDA_FUNCTION_NAME`, `LAMBDA_QUALIFIER`), then the defaults of the SAM template.
"""

from __future__ import annotations

import json
import os

DEFAULT_FUNCTION_NAME = os.environ.get("LAMBDA_FUNCTION_NAME", "example-lambda-function")
DEFAULT_QUALIFIER = os.environ.get("LAMBDA_QUALIFIER", "live")
FUNCTION_NAME = "{{ var.value.get('lambda_function_name', '" + DEFAULT_FUNCTION_NAME + "') }}"
QUALIFIER = "{{ var.value.get('lambda_qualifier', '" + DEFAULT_QUALIFIER + "') }}"
AWS_CONN_ID = os.environ.get("LAMBDA_AWS_CONN_ID", "aws_default")
# Iterations of about a second each (the example function's `n`); the timeout scenario runs past the
# function's 30 s timeout.
ITERATIONS = int(os.environ.get("LAMBDA_DEMO_ITERATIONS", "10"))
TIMEOUT_ITERATIONS = int(os.environ.get("LAMBDA_DEMO_TIMEOUT_ITERATIONS", "40"))
POLL_INTERVAL = float(os.environ.get("LAMBDA_POLL_INTERVAL", "5"))


def payload(n: int = ITERATIONS, to_fail: bool = False) -> str:
    """Return the example function's event as JSON."""
    return json.dumps({"n": n, "to_fail": to_fail})


# The durable example (dags/example_lambda_durable.py): the durable function of the SAM template, and how
# long its durable waits last (seconds). During a wait no invocation runs and no task holds a worker slot.
DURABLE_FUNCTION_NAME = os.environ.get("LAMBDA_DURABLE_FUNCTION_NAME", "example-durable-function")
DURABLE_WAIT_SECONDS = int(os.environ.get("LAMBDA_DEMO_DURABLE_WAIT_SECONDS", "5"))
DURABLE_LONG_WAIT_SECONDS = int(os.environ.get("LAMBDA_DEMO_DURABLE_LONG_WAIT_SECONDS", "300"))


def durable_payload(wait_seconds: int = DURABLE_WAIT_SECONDS, to_fail: bool = False) -> str:
    """Return the durable example function's event as JSON."""
    return json.dumps({"wait_seconds": wait_seconds, "to_fail": to_fail})
