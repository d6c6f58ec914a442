"""A durable Lambda function, followed through its execution: checkpointed steps, a durable wait, replays.

`GetDurableExecution` decides each task: the execution's result becomes the task's XCom, its error the
task's exception (`LambdaDurableExecutionFailed`). The long wait shows a task deferred for minutes (the
example waits five by default; an execution may last a year) without a worker slot or a running invocation.
"""

from __future__ import annotations

from datetime import datetime

from _lambda_example_settings import (
    AWS_CONN_ID,
    DURABLE_FUNCTION_NAME,
    DURABLE_LONG_WAIT_SECONDS,
    POLL_INTERVAL,
    QUALIFIER,
    durable_payload,
)
from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

with DAG(
    dag_id="example_lambda_durable",
    description="Start durable executions and follow each to its real end",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=3,
    tags=["lambda", "durable", "example"],
    default_args={
        "function_name": DURABLE_FUNCTION_NAME,
        # Lambda starts durable executions only for a version or an alias.
        "qualifier": QUALIFIER,
        "aws_conn_id": AWS_CONN_ID,
        "poll_interval": POLL_INTERVAL,
    },
):
    LambdaInvokeDeferrableOperator(task_id="durable_succeeds", payload=durable_payload())
    LambdaInvokeDeferrableOperator(task_id="durable_fails", payload=durable_payload(to_fail=True))
    LambdaInvokeDeferrableOperator(
        task_id="durable_long_wait", payload=durable_payload(wait_seconds=DURABLE_LONG_WAIT_SECONDS)
    )
