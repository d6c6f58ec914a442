"""Fifty mapped Event invocations with known outcomes, for two triggerers sharing one metadata database.

Most succeed; every tenth (from item 3) fails on request and every tenth (from item 7) loops past the
function's timeout (tests/test_several_triggerers.py deploys it with a 30 s timeout). The functions run
20-30 s, so a triggerer killed while the tasks are deferred leaves many of them for the other to finish.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

DAG_ID = "several_triggerers"
ITEMS = 50
TIMEOUT_ITERATIONS = 45  # about 45 s: past the 30 s timeout the test deploys the function with


def payload(item: int) -> dict[str, Any]:
    """The example function's event for one mapped task; the test reads each task's expected outcome from it."""
    if item % 10 == 3:
        return {"n": 20, "to_fail": True, "item": item}
    if item % 10 == 7:
        return {"n": TIMEOUT_ITERATIONS, "item": item}
    return {"n": 20 + item % 10, "item": item}


with DAG(dag_id=DAG_ID, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_tasks=ITEMS):
    LambdaInvokeDeferrableOperator.partial(
        task_id="invoke",
        function_name="example-lambda-function",
        qualifier="live",
        aws_conn_id="aws_counted",  # through a counting proxy: every Invoke is counted
        poll_interval=2,
    ).expand(payload=[json.dumps(payload(item)) for item in range(ITEMS)])
