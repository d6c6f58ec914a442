"""``end_from_trigger``: the trigger ends a successful task itself, with what the resumed task would log and
push; anything else resumes on a worker. Against moto in server mode, through the real trigger."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from airflow.sdk.execution_time.xcom import XCom
from airflow.triggers.base import TaskSuccessEvent, TriggerEvent

from airflow_lambda_deferrable.exceptions import LambdaInvokeInputError
from airflow_lambda_deferrable.operators import LambdaInvokeDeferrableOperator
from airflow_lambda_deferrable.provider.links import LambdaInvocationLogsLink
from tests import lambda_lines as lines
from tests.test_triggers import CID, GROUP, RID, make_trigger, successful_invocation

LINK = {"region_name": "eu-west-1", "aws_domain": "aws.amazon.com", "log_group": GROUP, "correlation_id": CID}


async def only_event(trigger) -> TriggerEvent:
    """The one event the trigger yields (it must yield exactly one)."""

    async def run() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    events = await asyncio.wait_for(run(), 40)
    assert len(events) == 1, events
    return events[0]


def in_a_triggerer(trigger):
    """Give the trigger its task instance, as Airflow's triggerer does (``dag.test()`` does not)."""
    trigger.task_instance = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=-1)
    return trigger


@pytest.fixture
def pushed(monkeypatch) -> dict[str, object]:
    """What the trigger pushes through the Task SDK's XCom (which, in a triggerer, goes to its supervisor)."""
    store: dict[str, object] = {}

    async def aset(key, value, *, dag_id, task_id, run_id, map_index):
        assert (dag_id, task_id, run_id, map_index) == ("d", "t", "r", -1)
        store[key] = value

    monkeypatch.setattr(XCom, "aset", aset, raising=False)
    return store


@pytest.mark.asyncio
async def test_a_success_ends_the_task_with_the_xcoms_and_the_record_the_resumed_task_would_have(
    logs_client, capfd, pushed
):
    lines.put(logs_client, GROUP, successful_invocation())
    trigger = in_a_triggerer(make_trigger(end_from_trigger=True, logs_link=LINK))
    event = await only_event(trigger)
    assert isinstance(event, TaskSuccessEvent) and event.xcoms is None
    link = pushed.pop(LambdaInvocationLogsLink.key)
    assert pushed == {"return_value": {"request_id": RID, "correlation_id": CID}}
    assert isinstance(link.pop("ended_at"), float) and link == LINK
    # The trigger's log (which Airflow merges into the task log) holds what the resumed task would have logged.
    logged = capfd.readouterr().out.splitlines()
    record = [line.split("[lambda] ", 1)[1] for line in logged if "[lambda] " in line]
    assert [line.split(" INFO ", 1)[1].split(" [airflow", 1)[0] for line in record] == [
        lines.start(RID),
        "Function started",
        "iteration 1 of 1",
        "Function ended",
        lines.end(RID),
        lines.report(RID),
    ]
    assert any("6 line(s) of example-lambda-function" in line for line in logged)
    assert any(f"(request {RID}, correlation id {CID}) succeeded: " in line for line in logged)


@pytest.mark.asyncio
async def test_a_request_response_result_is_the_xcom_and_nothing_is_pushed_without_do_xcom_push(logs_client, pushed):
    lines.put(logs_client, GROUP, successful_invocation())
    known = {"failed": False}
    result = {"value": {"iterations": 1}}
    returning = in_a_triggerer(
        make_trigger(end_from_trigger=True, invocation_type="RequestResponse", known_result=known, result=result)
    )
    event = await only_event(returning)
    assert isinstance(event, TaskSuccessEvent) and pushed == {"return_value": {"iterations": 1}}
    pushed.clear()
    quiet = in_a_triggerer(make_trigger(end_from_trigger=True, do_xcom_push=False))
    event = await only_event(quiet)
    assert isinstance(event, TaskSuccessEvent) and pushed == {}


@pytest.mark.asyncio
async def test_a_failure_resumes_on_a_worker_for_retries_and_callbacks(logs_client, pushed):
    body = successful_invocation(marker=False)
    lines.put(logs_client, GROUP, [*body[:3], lines.unhandled("ValueError", "broken"), *body[3:]])
    event = await only_event(in_a_triggerer(make_trigger(end_from_trigger=True)))
    assert type(event) is TriggerEvent and event.payload["status"] == "failed" and pushed == {}


@pytest.mark.asyncio
async def test_a_success_whose_xcoms_cannot_be_pushed_resumes_on_a_worker_which_pushes_them(logs_client, monkeypatch):
    async def refused(key, value, **where):
        raise ConnectionError("the supervisor went away")

    monkeypatch.setattr(XCom, "aset", refused, raising=False)
    lines.put(logs_client, GROUP, successful_invocation())
    event = await only_event(in_a_triggerer(make_trigger(end_from_trigger=True)))
    assert type(event) is TriggerEvent and event.payload["status"] == "success"


@pytest.mark.asyncio
async def test_without_a_triggerer_or_the_option_the_task_resumes(logs_client, pushed):
    lines.put(logs_client, GROUP, successful_invocation())
    inline = await only_event(make_trigger(end_from_trigger=True))  # dag.test(): no task instance given
    assert type(inline) is TriggerEvent and inline.payload["status"] == "success"
    off = await only_event(in_a_triggerer(make_trigger()))
    assert type(off) is TriggerEvent and off.payload["status"] == "success" and pushed == {}


def test_end_from_trigger_must_be_a_boolean_when_the_dag_is_parsed():
    with pytest.raises(LambdaInvokeInputError, match="end_from_trigger must be True or False, got 'yes'"):
        LambdaInvokeDeferrableOperator(task_id="t", function_name="f", end_from_trigger="yes")
    with pytest.raises(ValueError, match="end_from_trigger must be True or False"):
        make_trigger(end_from_trigger=1)


def test_the_task_resumes_on_a_worker_where_only_a_worker_can_record_its_result():
    from datetime import datetime

    from airflow.sdk import DAG, task

    with DAG(dag_id="where_it_ends", schedule=None, start_date=datetime(2026, 1, 1)):
        plain = LambdaInvokeDeferrableOperator(task_id="plain", function_name="f", end_from_trigger=True)
        off = LambdaInvokeDeferrableOperator(task_id="off", function_name="f")
        in_worker = LambdaInvokeDeferrableOperator(
            task_id="in_worker", function_name="f", end_from_trigger=True, deferrable=False
        )
        split = LambdaInvokeDeferrableOperator(
            task_id="split", function_name="f", end_from_trigger=True, multiple_outputs=True
        )
        mapped_over = LambdaInvokeDeferrableOperator(task_id="mapped_over", function_name="f", end_from_trigger=True)

        @task
        def each(item: str) -> str:
            return item

        each.expand(item=mapped_over.output)
    assert plain.ends_in_triggerer() and not off.ends_in_triggerer()
    assert not in_worker.ends_in_triggerer()
    assert not split.ends_in_triggerer()
    assert not mapped_over.ends_in_triggerer()
