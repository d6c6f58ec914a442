"""The origin blog's five scenarios with `LambdaInvokeDeferrableOperator`: two succeed, three fail.

Each failure ends with its exact cause in the task log ("RuntimeError: Unable to finish loop",
"Task timed out after 30.00 seconds"), and every task lets go of its worker slot while the function runs.
"""

from __future__ import annotations

from datetime import datetime

from _lambda_example_settings import (
    AWS_CONN_ID,
    FUNCTION_NAME,
    POLL_INTERVAL,
    QUALIFIER,
    TIMEOUT_ITERATIONS,
    payload,
)
from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

with DAG(
    dag_id="example_lambda_deferrable",
    description="Invoke Lambda and follow each invocation to its real outcome",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=5,
    tags=["lambda", "example"],
    default_args={
        "function_name": FUNCTION_NAME,
        "qualifier": QUALIFIER,
        "aws_conn_id": AWS_CONN_ID,
        "poll_interval": POLL_INTERVAL,
    },
):
    LambdaInvokeDeferrableOperator(
        task_id="sync_with_error",
        invocation_type="RequestResponse",
        payload=payload(to_fail=True),
    )
    LambdaInvokeDeferrableOperator(
        task_id="async_with_error",
        invocation_type="Event",
        payload=payload(to_fail=True),
    )
    LambdaInvokeDeferrableOperator(
        task_id="sync_without_error",
        invocation_type="RequestResponse",
        payload=payload(),
    )
    LambdaInvokeDeferrableOperator(
        task_id="async_without_error",
        invocation_type="Event",
        payload=payload(),
    )
    LambdaInvokeDeferrableOperator(
        task_id="async_timeout",
        invocation_type="Event",
        payload=payload(n=TIMEOUT_ITERATIONS),
    )
