"""A durable execution that would wait ten minutes: the test marks the deferred task failed, and the
trigger's on_kill stops the execution."""

from __future__ import annotations

import json
from datetime import datetime

from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

with DAG(dag_id="durable_killed", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    LambdaInvokeDeferrableOperator(
        task_id="killed_by_user",
        function_name="example-durable-function",
        qualifier="live",
        payload=json.dumps({"wait_seconds": 600}),
        poll_interval=2,
    )
