"""A durable execution waits minutes, deferred, while the pool's only slot runs another task meanwhile."""

from __future__ import annotations

import json
import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

WAIT_SECONDS = int(os.environ.get("E2E_DURABLE_WAIT_SECONDS", "180"))

with DAG(
    dag_id="durable_in_pool_of_one",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=2,
):
    LambdaInvokeDeferrableOperator(
        task_id="durable_waits",
        function_name="example-durable-function",
        qualifier="live",
        payload=json.dumps({"wait_seconds": WAIT_SECONDS}),
        pool="one_slot",
        priority_weight=10,  # takes the slot first
        poll_interval=2,
    )
    LambdaInvokeDeferrableOperator(
        task_id="plain_meanwhile",
        function_name="example-lambda-function",
        qualifier="live",
        payload=json.dumps({"n": 3}),
        pool="one_slot",
        priority_weight=1,
        poll_interval=2,
    )
