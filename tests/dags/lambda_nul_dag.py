"""A DAG run by tests/test_postgres_storage.py through `dag.test()` on PostgreSQL: the function prints a NUL."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

with DAG(dag_id="lambda_nul_dag", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    # tests/local_aws_functions/handlers.py:print_nul, run by local_aws; it logs no Powertools end marker.
    common = {
        "function_name": "nul-printer",
        "aws_conn_id": "aws_local",
        "end_marker": None,
        "poll_interval": 1,
        "settle_seconds": 0.3,
        "min_defer_seconds": 0,
    }
    LambdaInvokeDeferrableOperator(task_id="event_line_with_nul", **common)
    LambdaInvokeDeferrableOperator(
        task_id="request_response_result_with_nul", invocation_type="RequestResponse", **common
    )
