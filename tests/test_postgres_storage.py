"""What the trigger event and the task's kwargs carry must fit PostgreSQL's JSONB (Airflow's `next_kwargs` there).

JSONB rejects the NUL character (``\\u0000``), which a function can print or return. On a real PostgreSQL
(tests/postgres.py) and a real function run by local_aws, a deferred task whose function prints a NUL
succeeds and logs the line with U+FFFD in its place.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy
from sqlalchemy.exc import DataError

from airflow_lambda_deferrable.verdict.trigger_event import storable
from local_aws import LocalAwsStack
from local_aws.deploy import zip_directory
from tests.conftest import REGION, aws_connection

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = "nul-printer"  # as in tests/dags/lambda_nul_dag.py
RESULT_MARK = "DAG TEST STATES: "
TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task_id>\S+)")
# What Airflow's execution API answers when PostgreSQL refuses a value (a NUL in JSONB).
REJECTED = "Value rejected by database"
# The child process: run the DAG with dag.test() (Airflow reads its database setting at import).
RUN_DAG = f"""
import json
from tests.dags.lambda_nul_dag import dag
run = dag.test()
print({RESULT_MARK!r} + json.dumps({{ti.task_id: ti.state for ti in run.get_task_instances()}}), flush=True)
"""


def as_jsonb(engine: sqlalchemy.Engine, value: Any) -> Any:
    """Store `value` as PostgreSQL JSONB and read it back."""
    with engine.connect() as connection:
        return connection.execute(
            sqlalchemy.text("SELECT CAST(:value AS jsonb)"), {"value": json.dumps(value)}
        ).scalar()


def test_jsonb_refuses_nul_and_takes_what_storable_returns(postgres_url):
    engine = sqlalchemy.create_engine(postgres_url)
    result = {"out\x00put": ["before\x00after", "\udcff"]}
    with pytest.raises(DataError, match="unsupported Unicode escape sequence"):
        as_jsonb(engine, result)
    assert as_jsonb(engine, storable(result)) == {"out\ufffdput": ["before\ufffdafter", "\ufffd"]}


@pytest.fixture(scope="module")
def dag_run_on_postgres(postgres_url: str) -> Iterator[tuple[dict[str, str], str]]:
    """Run tests/dags/lambda_nul_dag.py with dag.test() on PostgreSQL; return task states and the output."""
    with LocalAwsStack(port=0, ingestion_delay=0.2) as stack:
        clients = {"region_name": REGION, "endpoint_url": stack.endpoint_url}
        role = boto3.client("iam", **clients).create_role(RoleName="nul-printer", AssumeRolePolicyDocument="{}")
        lambda_client = boto3.client("lambda", **clients)
        lambda_client.create_function(
            FunctionName=FUNCTION,
            Runtime="python3.11",
            Role=role["Role"]["Arn"],
            Handler="handlers.print_nul",
            Code={"ZipFile": zip_directory(ROOT / "tests" / "local_aws_functions")},
            Timeout=10,
        )
        lambda_client.put_function_event_invoke_config(FunctionName=FUNCTION, MaximumRetryAttempts=0)
        env = {
            **os.environ,
            "AIRFLOW_HOME": tempfile.mkdtemp(prefix="airflow-home-postgres-"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres_url,
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "tests" / "dags"),
            "AIRFLOW_CONN_AWS_LOCAL": aws_connection(stack.endpoint_url),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        run = subprocess.run(
            [sys.executable, "-c", RUN_DAG], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
        )
    output = run.stdout + run.stderr
    marked = [line for line in run.stdout.splitlines() if line.startswith(RESULT_MARK)]
    assert run.returncode == 0 and marked, output
    yield json.loads(marked[-1][len(RESULT_MARK) :]), by_task(output)


def by_task(output: str) -> dict[str, str]:
    """Split dag.test()'s output by task (it runs them one after the other)."""
    sections: dict[str, list[str]] = {}
    current = ""
    for line in output.splitlines():
        if match := TASK_START.search(line):
            current = match["task_id"]
        sections.setdefault(current, []).append(line)
    return {task: "\n".join(lines) for task, lines in sections.items()}


def test_a_line_with_nul_is_stored_and_logged_with_a_replacement(dag_run_on_postgres):
    states, output = dag_run_on_postgres
    task_output = output["event_line_with_nul"]
    assert states["event_line_with_nul"] == "success", task_output
    assert REJECTED not in task_output
    assert "[lambda]" in task_output and "INFO before\ufffdafter" in task_output


def test_a_request_response_result_with_nul_is_stored(dag_run_on_postgres):
    # dag.test() runs the trigger even when the deferral could not be stored; a scheduler would fail the task.
    states, output = dag_run_on_postgres
    task_output = output["request_response_result_with_nul"]
    assert states["request_response_result_with_nul"] == "success", task_output
    assert REJECTED not in task_output
