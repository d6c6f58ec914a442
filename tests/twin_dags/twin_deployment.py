"""One DAG that two Airflow deployments (staging and production, say) both run: tests/test_two_deployments.py.

The same DAG id, task id and run id in both; only the environment says whether this deployment's call of
the shared function fails. Run as a script, it runs one DAG run through `dag.test()` at a fixed logical
date (so both deployments get the same run id) and prints the task's state and XCom as JSON.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

LOGICAL_DATE = datetime(2026, 12, 6, tzinfo=UTC)

with DAG(dag_id="twin_deployment", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False) as dag:
    LambdaInvokeDeferrableOperator(
        task_id="invoke",
        function_name="example-lambda-function",
        qualifier="live",
        payload={"n": int(os.environ.get("TWIN_ITERATIONS", "2")), "to_fail": os.environ.get("TWIN_TO_FAIL") == "1"},
        aws_conn_id="aws_local",
        poll_interval=1,
        settle_seconds=1,
    )

if __name__ == "__main__":
    run = dag.test(logical_date=LOGICAL_DATE, run_after=LOGICAL_DATE)
    (ti,) = run.get_task_instances()
    print(
        "TWIN-RESULT " + json.dumps({"run_id": run.run_id, "state": ti.state, "xcom": ti.xcom_pull(task_ids="invoke")})
    )
