"""A whole DAG through Airflow's own `dag.test()`: invoke (moto), defer, trigger inline, resume."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import lambda_lines as lines
from tests.test_operators import FUNCTION, GROUP

pytestmark = pytest.mark.usefixtures("function")


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Create Airflow's SQLite database for this test session (dag.test() records the run in it)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, timeout=300)


def write_invocation(logs_client, correlation_id: str, *, fail: bool) -> None:
    request_id = lines.new_request_id()
    body = [lines.start(request_id), lines.powertools(correlation_id, request_id, "Function started")]
    if fail:
        body += [lines.logged_exception(correlation_id, request_id), lines.unhandled()]
    else:
        body += [lines.powertools(correlation_id, request_id, "Function ended")]
    lines.put(
        logs_client, GROUP, [*body, lines.end(request_id), lines.report(request_id)], stream=f"stream-{correlation_id}"
    )


def test_dag_test_runs_each_task_to_its_real_outcome(airflow_db, logs_client, capsys):
    write_invocation(logs_client, "dagtest-ok-0001", fail=False)
    write_invocation(logs_client, "dagtest-fail-0001", fail=True)
    write_invocation(logs_client, "dagtest-rr-0001", fail=False)
    from tests.dags.lambda_dag_test import dag

    run = dag.test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"event_success": "success", "event_failure": "failed", "request_response_success": "success"}
    assert run.state == "failed"
    returned = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}
    # moto echoes a RequestResponse payload: the result is what was sent, with the injected id.
    assert returned["request_response_success"] == {"n": 1, "correlation_id": "dagtest-rr-0001"}
    assert returned["event_success"]["correlation_id"] == "dagtest-ok-0001"
    logged = capsys.readouterr().out
    assert (
        f"Lambda function {FUNCTION} (request " in logged
        and "correlation id dagtest-fail-0001) failed: RuntimeError: Unable to finish loop" in logged
    )
    assert "[lambda]" in logged and "Function started" in logged
