"""The same five scenarios with Airflow's stock `LambdaInvokeFunctionOperator`, to show the difference.

Expect both asynchronous failures (`async_with_error`, `async_timeout`) to be marked success, since the
stock operator only sees Lambda's 202, and the synchronous failure to say only that the function
returned an error.
"""

from __future__ import annotations

from datetime import datetime

from _lambda_example_settings import AWS_CONN_ID, FUNCTION_NAME, QUALIFIER, TIMEOUT_ITERATIONS, payload
from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.sdk import DAG

with DAG(
    dag_id="example_lambda_stock",
    description="Airflow's stock Lambda operator on the same scenarios",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=5,
    tags=["lambda", "example"],
    default_args={"function_name": FUNCTION_NAME, "qualifier": QUALIFIER, "aws_conn_id": AWS_CONN_ID},
):
    LambdaInvokeFunctionOperator(
        task_id="sync_with_error", invocation_type="RequestResponse", payload=payload(to_fail=True)
    )
    LambdaInvokeFunctionOperator(task_id="async_with_error", invocation_type="Event", payload=payload(to_fail=True))
    LambdaInvokeFunctionOperator(task_id="sync_without_error", invocation_type="RequestResponse", payload=payload())
    LambdaInvokeFunctionOperator(task_id="async_without_error", invocation_type="Event", payload=payload())
    LambdaInvokeFunctionOperator(
        task_id="async_timeout", invocation_type="Event", payload=payload(n=TIMEOUT_ITERATIONS)
    )
