"""Fifty mapped invocations deferred at once: one triggerer follows them all through its shared poller."""

from __future__ import annotations

import json
from datetime import datetime

from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

with DAG(
    dag_id="fifty_invocations", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_tasks=50
):
    LambdaInvokeDeferrableOperator.partial(
        task_id="invoke",
        function_name="example-lambda-function",
        qualifier="live",
        aws_conn_id="aws_counted",  # through a counting proxy (see tests/test_end_to_end.py)
        poll_interval=3,
    ).expand(payload=[json.dumps({"n": 2, "item": index}) for index in range(50)])
