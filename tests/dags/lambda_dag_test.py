"""A DAG run by tests/test_dag_run.py through `dag.test()`: moto stands in for AWS (see the test)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

with DAG(dag_id="lambda_dag_test", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    common = {
        "function_name": "example-lambda-function",
        "aws_conn_id": "aws_moto",
        "poll_interval": 1,
        "settle_seconds": 0.3,
        "min_defer_seconds": 1,
    }
    LambdaInvokeDeferrableOperator(
        task_id="event_success", correlation_id="dagtest-ok-0001", payload={"n": 1}, **common
    )
    LambdaInvokeDeferrableOperator(
        task_id="event_failure", correlation_id="dagtest-fail-0001", payload={"n": 1, "to_fail": True}, **common
    )
    LambdaInvokeDeferrableOperator(
        task_id="request_response_success",
        correlation_id="dagtest-rr-0001",
        invocation_type="RequestResponse",
        payload='{"n": 1}',
        **common,
    )
