"""One invocation that logs a line a second for twelve seconds: its lines show in the task log while deferred."""

from __future__ import annotations

import json
from datetime import datetime

from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

with DAG(dag_id="live_lines", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    LambdaInvokeDeferrableOperator(
        task_id="twelve_seconds",
        function_name="example-lambda-function",
        qualifier="live",
        payload=json.dumps({"n": 12}),
        poll_interval=2,
    )
