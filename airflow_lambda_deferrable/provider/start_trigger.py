"""Start a durable function's task in the triggerer (Airflow's ``start_from_trigger``): invoke, then follow.

The scheduler hands such a task straight to the triggerer, with the kwargs the DAG gave the operator
(`LambdaInvokeDeferrableOperator.start_kwargs`); the triggerer renders the templated ones on this trigger's
attributes of the same names, and gives it its task instance. The trigger builds the operator again from
them and calls its `invoke` in a thread (boto3 blocks), so the checks, the payload, the correlation id, the
execution's name (both from the task instance's id, new per try) and the links are exactly a worker's. It
then follows the invocation as `LambdaInvocationTrigger` does, and ends or resumes the task the same way.

A restarted or taken-over triggerer runs this again from the start. That is safe only because the function
is durable: Invoke with the same ``DurableExecutionName`` returns the execution it started the first time
(the operator refuses ``start_from_trigger`` for any other function when the DAG is parsed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from asgiref.sync import sync_to_async

from airflow_lambda_deferrable.provider.operator import START_KWARGS, LambdaInvokeDeferrableOperator
from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger, public_path


class LambdaStartTrigger(BaseTrigger):
    """Invoke a durable function from the triggerer, then follow its execution to the task's end."""

    def __init__(self, **operator_kwargs: Any) -> None:
        super().__init__()
        unknown = set(operator_kwargs) - set(START_KWARGS)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown setting(s) {', '.join(sorted(unknown))}")
        self._names = sorted(operator_kwargs)
        for name, value in operator_kwargs.items():  # attributes: the triggerer renders the templated ones
            setattr(self, name, value)
        self._follower: LambdaInvocationTrigger | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return public_path(self, LambdaStartTrigger), {name: getattr(self, name) for name in self._names}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Invoke (a worker's checks and call, in a thread), then follow until the one event."""
        ti = self.task_instance
        if ti is None:
            raise RuntimeError(
                f"{type(self).__name__} runs in Airflow's triggerer, which gives it its task instance "
                "(start_from_trigger); it cannot invoke without one"
            )
        operator = LambdaInvokeDeferrableOperator(
            task_id=ti.task_id, deferrable=True, **{name: getattr(self, name) for name in self._names}
        )
        operator._log = self.log  # its messages (the checks, "Invoked ...") go to the task's log
        if operator.end_from_trigger and _mapped_over(ti):
            self.log.warning("end_from_trigger has no effect: a downstream task maps over this task's result")
            operator.end_from_trigger = False
        try:
            settings = await sync_to_async(operator.invoke)({"ti": TriggererTaskInstance(ti)})
        except Exception as err:
            self.log.error(
                "Could not start %s from the triggerer: %s: %s", operator.function_name, type(err).__name__, err
            )
            raise
        self._follower = LambdaInvocationTrigger(settings)
        self._follower.task_instance = ti
        async for event in self._follower.run():
            yield event

    async def on_kill(self) -> None:
        """Stop the execution when a user kills the task (as `LambdaInvocationTrigger.on_kill`)."""
        if self._follower is not None:
            await self._follower.on_kill()


def _mapped_over(ti: Any) -> bool:
    """Whether a downstream task maps over the task's result (Airflow records that only from a worker): asked
    of the task as the scheduler serialized it, since the operator built here belongs to no DAG. When it
    cannot tell, the task resumes on a worker (which is always right)."""
    try:
        return next(ti.task.iter_mapped_dependants(), None) is not None
    except (AttributeError, RuntimeError):
        return True


class TriggererTaskInstance:
    """The triggerer's task instance as `LambdaInvokeDeferrableOperator.invoke` uses it: its identity as is,
    and XComs pushed with the Task SDK's `XCom` (the triggerer's task instance cannot push its own: its task
    is the scheduler's serialized copy, which lacks what pushing reads)."""

    def __init__(self, ti: Any) -> None:
        self._ti = ti

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ti, name)

    def xcom_push(self, key: str, value: Any) -> None:
        from airflow.sdk.execution_time.xcom import XCom

        ti = self._ti
        XCom.set(key, value, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index)
