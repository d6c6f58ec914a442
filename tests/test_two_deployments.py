"""Real Airflow (`dag.test()`, the trigger inline) against the local AWS stack, for what a probe saw there.

Two Airflow deployments, one function: the same DAG, task and run id in both, one success, one failure.

Each deployment is its own Airflow home and database, running the DAG through `dag.test()` (the trigger
runs inline) against one local AWS stack at the same time. Before correlation ids came from Airflow's task
instance id, both computed the same id and the failing run reported the other's success.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local_aws.deploy import deploy_template
from local_aws.stack import LocalAwsStack
from tests.conftest import aws_connection, local_client
from tests.test_operator_logging_controls import make_function

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
DAG_FILE = ROOT / "tests" / "twin_dags" / "twin_deployment.py"


def deployment_env(home: Path, endpoint_url: str, *, to_fail: bool, iterations: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    return env | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW_CONN_AWS_LOCAL": aws_connection(endpoint_url),
        "TWIN_TO_FAIL": "1" if to_fail else "0",
        "TWIN_ITERATIONS": str(iterations),
        "PYTHONPATH": str(ROOT),
    }


def test_two_deployments_running_the_same_dag_and_run_each_get_their_own_verdict(tmp_path):
    with LocalAwsStack(port=0, ingestion_delay=0.5) as stack:
        deploy_template(stack.endpoint_url, ROOT / "template.yml", timeout=30)
        # Staging succeeds fast; production fails after a few more iterations, so staging's end comes first.
        envs = {
            "staging": deployment_env(tmp_path / "staging", stack.endpoint_url, to_fail=False, iterations=1),
            "production": deployment_env(tmp_path / "production", stack.endpoint_url, to_fail=True, iterations=5),
        }
        for env in envs.values():
            migrate = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
            )
            assert migrate.returncode == 0, migrate.stderr[-3000:]
        running = {
            name: subprocess.Popen(
                [sys.executable, str(DAG_FILE)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for name, env in envs.items()
        }
        outputs = {name: process.communicate(timeout=300)[0] for name, process in running.items()}
    results = {}
    for name, output in outputs.items():
        (line,) = [line for line in output.splitlines() if line.startswith("TWIN-RESULT ")]
        results[name] = json.loads(line.removeprefix("TWIN-RESULT "))
    assert results["staging"]["run_id"] == results["production"]["run_id"]
    assert results["staging"]["state"] == "success", outputs["staging"][-3000:]
    assert results["production"]["state"] == "failed", outputs["production"][-3000:]
    assert "RuntimeError: Unable to finish loop" in outputs["production"]
    staging_id = results["staging"]["xcom"]["correlation_id"]
    assert staging_id not in outputs["production"]  # not one of staging's lines reached production's task


def test_a_function_printing_a_line_nested_5000_deep_succeeds_on_its_one_invocation(tmp_path):
    """Before parse depth was bounded, the line raised RecursionError out of the trigger: "Trigger failure",
    and the retry invoked the function again."""

    with LocalAwsStack(port=0, ingestion_delay=0.2) as stack:
        function_name = make_function(stack, handler="handlers.deep_line")
        env = deployment_env(tmp_path / "home", stack.endpoint_url, to_fail=False, iterations=1)
        env["DEEP_LINE_FUNCTION"] = function_name
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
        )
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        script = ROOT / "tests" / "twin_dags" / "deep_line.py"
        ran = subprocess.run(
            [sys.executable, str(script)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        output = ran.stdout + ran.stderr
        logs = local_client(stack.endpoint_url, "logs")
        starts = logs.filter_log_events(logGroupName=f"/aws/lambda/{function_name}", filterPattern='"START RequestId"')
    (line,) = [line for line in output.splitlines() if line.startswith("DEEP-RESULT ")]
    result = json.loads(line.removeprefix("DEEP-RESULT "))
    assert result == {"state": "success", "try_number": 1}, output[-3000:]
    assert len(starts["events"]) == 1  # invoked once: no retry ran it again
