"""``start_from_trigger``: who may start in the triggerer, decided when the DAG is parsed, and what the
scheduler is handed. (A real start, restart included: tests/test_end_to_end.py.)"""

from __future__ import annotations

import textwrap

import pytest

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow before 3.2
    from airflow.models.dagbag import DagBag

from airflow_lambda_deferrable.exceptions import LambdaInvokeInputError
from airflow_lambda_deferrable.operators import LambdaInvokeDeferrableOperator
from airflow_lambda_deferrable.provider.operator import START_TRIGGER_PATH, airflow_version, start_from_trigger_problem
from airflow_lambda_deferrable.triggers import LambdaStartTrigger

AIRFLOW_3_3 = (3, 3)


@pytest.mark.parametrize(
    ("start", "durable", "payload", "version", "problem"),
    [
        (True, True, '{"a": 1}', AIRFLOW_3_3, None),
        (True, True, {"a": "{{ ds }}"}, (4, 0), None),
        (True, None, None, AIRFLOW_3_3, "only for a durable function, declared with durable=True"),
        (True, False, None, AIRFLOW_3_3, "no idempotency key for a plain invocation"),
        (True, True, None, (3, 2), "needs Airflow 3.3 or later (3.0 to 3.2 switched it off); this is Airflow 3.2"),
        (True, True, b"{}", AIRFLOW_3_3, "give the payload as a dict or a JSON string"),
        ("yes", True, None, AIRFLOW_3_3, "must be True or False, got 'yes'"),
    ],
)
def test_only_a_declared_durable_function_on_airflow_3_3_may_start_in_the_triggerer(
    start, durable, payload, version, problem
):
    found = start_from_trigger_problem(start, durable=durable, payload=payload, airflow_version=version)
    assert found is None if problem is None else problem in found


@pytest.mark.skipif(airflow_version() < AIRFLOW_3_3, reason="start_from_trigger needs Airflow 3.3")
def test_the_scheduler_is_handed_the_trigger_with_the_dags_settings_unrendered():
    operator = LambdaInvokeDeferrableOperator(
        task_id="t",
        function_name="{{ var.value.fn }}",
        qualifier="live",
        payload={"day": "{{ ds }}"},
        durable=True,
        start_from_trigger=True,
        end_from_trigger=True,
    )
    args = operator.start_trigger_args
    assert operator.start_from_trigger is True and args.trigger_cls == START_TRIGGER_PATH
    assert args.next_method == "execute_complete" and args.next_kwargs is None
    assert args.trigger_kwargs["function_name"] == "{{ var.value.fn }}"
    assert args.trigger_kwargs["payload"] == {"day": "{{ ds }}"} and args.trigger_kwargs["end_from_trigger"] is True
    trigger = LambdaStartTrigger(**args.trigger_kwargs)  # what the triggerer builds, by the public path
    path, kwargs = trigger.serialize()
    assert path == START_TRIGGER_PATH and kwargs == args.trigger_kwargs
    assert trigger.function_name == "{{ var.value.fn }}"  # an attribute: the triggerer renders it there
    # By default nothing changes: the task starts on a worker.
    assert LambdaInvokeDeferrableOperator(task_id="u", function_name="f").start_from_trigger is False


def test_a_plain_function_started_from_the_trigger_is_refused_when_the_dag_is_parsed(tmp_path):
    (tmp_path / "plain.py").write_text(
        textwrap.dedent(
            """
            from datetime import datetime
            from airflow.sdk import DAG
            from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

            with DAG(dag_id="plain_start", schedule=None, start_date=datetime(2026, 1, 1)):
                LambdaInvokeDeferrableOperator(task_id="plain", function_name="f", start_from_trigger=True)
            """
        )
    )
    bag = DagBag(dag_folder=str(tmp_path))
    assert "plain_start" not in bag.dags
    (error,) = bag.import_errors.values()
    assert "start_from_trigger: only for a durable function, declared with durable=True" in error
    assert "could invoke it twice" in error


def test_a_task_that_says_its_function_is_durable_must_be_given_bools():
    with pytest.raises(LambdaInvokeInputError, match="durable must be True, False or None, got 'yes'"):
        LambdaInvokeDeferrableOperator(task_id="t", function_name="f", durable="yes")


def test_the_start_trigger_refuses_settings_it_does_not_know():
    with pytest.raises(TypeError, match="unknown setting"):
        LambdaStartTrigger(function_name="f", retries=3)
