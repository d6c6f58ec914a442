"""Tasks that end in the triggerer on success (``end_from_trigger``), and one that fails and retries."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

with DAG(dag_id="end_from_trigger", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    common = {"function_name": "example-lambda-function", "qualifier": "live", "poll_interval": 2}
    ends_there = LambdaInvokeDeferrableOperator(
        task_id="ends_in_the_triggerer", payload=json.dumps({"n": 3}), end_from_trigger=True, **common
    )
    returns_there = LambdaInvokeDeferrableOperator(
        task_id="returns_in_the_triggerer",
        invocation_type="RequestResponse",
        payload=json.dumps({"n": 2}),
        end_from_trigger=True,
        **common,
    )
    LambdaInvokeDeferrableOperator(
        task_id="fails_and_retries",
        payload=json.dumps({"n": 2, "to_fail": True}),
        end_from_trigger=True,
        retries=1,
        retry_delay=timedelta(seconds=1),
        **common,
    )

    @task
    def downstream(event_identity: dict, result: dict) -> dict:
        """What a downstream task pulls: the same values a resumed task would have pushed."""
        return {"event": event_identity, "result": result}

    downstream(ends_there.output, returns_there.output)
