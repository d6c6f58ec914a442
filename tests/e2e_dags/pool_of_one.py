"""Five ten-second invocations sharing a pool of one slot: deferral frees the slot while each runs."""

from __future__ import annotations

import json
from datetime import datetime

from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

with DAG(dag_id="pool_of_one", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_tasks=5):
    for index in range(5):
        LambdaInvokeDeferrableOperator(
            task_id=f"invoke_{index}",
            function_name="example-lambda-function",
            qualifier="live",
            payload=json.dumps({"n": 10}),
            pool="one_slot",
            poll_interval=2,
        )
