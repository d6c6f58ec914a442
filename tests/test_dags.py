"""Every file in dags/ imports cleanly through Airflow's DagBag, and the examples say what they show."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow < 3.2
    from airflow.models.dagbag import DagBag

DAGS = Path(__file__).resolve().parent.parent / "dags"
SCENARIOS = {"sync_with_error", "async_with_error", "sync_without_error", "async_without_error", "async_timeout"}


@pytest.fixture(scope="module")
def dagbag() -> Iterator[DagBag]:
    """Parse dags/ as a deployment whose dags folder it is (Airflow puts that folder on sys.path)."""
    sys.path.insert(0, str(DAGS))
    try:
        yield DagBag(dag_folder=str(DAGS))
    finally:
        sys.path.remove(str(DAGS))


def test_every_dag_file_imports(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"example_lambda_deferrable", "example_lambda_stock", "example_lambda_durable"}


def test_the_durable_example_shows_success_failure_and_a_long_wait(dagbag):
    dag = dagbag.dags["example_lambda_durable"]
    assert set(dag.task_ids) == {"durable_succeeds", "durable_fails", "durable_long_wait"}
    for task in dag.tasks:
        assert task.function_name == "example-durable-function"
        assert task.qualifier  # Lambda starts durable executions only for a version or alias


@pytest.mark.parametrize("dag_id", ["example_lambda_deferrable", "example_lambda_stock"])
def test_examples_cover_the_five_scenarios(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert set(dag.task_ids) == SCENARIOS
    types = {task.task_id: task.invocation_type for task in dag.tasks}
    assert {task for task, kind in types.items() if kind == "RequestResponse"} == {
        "sync_with_error",
        "sync_without_error",
    }


def test_function_name_is_resolved_at_run_time(dagbag):
    task = dagbag.dags["example_lambda_deferrable"].get_task("async_without_error")
    assert task.function_name == "{{ var.value.get('lambda_function_name', 'example-lambda-function') }}"
    assert task.qualifier == "{{ var.value.get('lambda_qualifier', 'live') }}"
    assert task.correlation_id is None  # made per try when the task runs
