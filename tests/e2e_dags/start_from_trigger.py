"""A durable function's task that the scheduler hands straight to the triggerer, which invokes and follows it,
and ends it there (``start_from_trigger`` with ``end_from_trigger``): no worker runs it."""

from __future__ import annotations

import json
import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

with DAG(dag_id="start_from_trigger", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    LambdaInvokeDeferrableOperator(
        task_id="starts_in_triggerer",
        function_name="{{ 'example-durable-function' }}",  # templated: the triggerer renders it
        qualifier="live",
        payload=json.dumps({"wait_seconds": int(os.environ.get("E2E_START_WAIT_SECONDS", "20"))}),
        durable=True,
        start_from_trigger=True,
        end_from_trigger=True,
        poll_interval=2,
    )
