"""A task whose function prints one JSON line nested 5,000 levels deep and succeeds: tests/test_two_deployments.py
runs it through `dag.test()` with a retry allowed, and checks it succeeds on its one invocation."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

with DAG(dag_id="deep_line", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False) as dag:
    LambdaInvokeDeferrableOperator(
        task_id="invoke",
        function_name=os.environ.get("DEEP_LINE_FUNCTION", "deep-line"),
        payload={"depth": 5000},
        aws_conn_id="aws_local",
        poll_interval=1,
        settle_seconds=1,
        retries=1,
    )

if __name__ == "__main__":
    run = dag.test()
    (ti,) = run.get_task_instances()
    print("DEEP-RESULT " + json.dumps({"state": ti.state, "try_number": ti.try_number}))
