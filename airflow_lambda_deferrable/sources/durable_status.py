"""A durable execution's status, read with ``GetDurableExecution`` until the execution ends.

The reads of one triggerer process share one request budget per connection (apart from the log reads'
budget: another API, another quota). Throttling slows that budget down and backs off; transient errors,
expired credentials and lost connections are retried with a fresh client; any other error (the execution
is not found, access is denied) makes the invocation unfollowable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import weakref
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_lambda_deferrable.durable_execution import ExecutionEnd, status_read_delay
from airflow_lambda_deferrable.evidence import Evidence
from airflow_lambda_deferrable.log_source import (
    CLIENT_FAILURES,
    RETRYABLE_ERROR_CODES,
    THROTTLING_ERROR_CODES,
    error_code,
    needs_fresh_client,
)
from airflow_lambda_deferrable.settings import DEFAULT_MAX_STATUS_READS_PER_SECOND
from airflow_lambda_deferrable.shared_poller import RequestBudget

if TYPE_CHECKING:
    from airflow_lambda_deferrable.triggers import LambdaInvocationTrigger

# After a failed read, wait 2 ** failures seconds (jittered), at most this long.
MAX_RETRY_PAUSE_SECONDS = 60.0

_budgets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, RequestBudget]] = weakref.WeakKeyDictionary()


def status_budget(connection_key: dict[str, Any]) -> RequestBudget:
    """Return the running loop's budget of status reads for one connection (made on first use)."""
    budgets = _budgets.setdefault(asyncio.get_running_loop(), {})
    key = json.dumps(connection_key, sort_keys=True, default=str)
    if key not in budgets:
        budgets[key] = RequestBudget(DEFAULT_MAX_STATUS_READS_PER_SECOND)
    return budgets[key]


class DurableStatus:
    """Reads the execution's status: often at first, then less often as it ages (`status_read_delay`)."""

    def __init__(self, trigger: LambdaInvocationTrigger, arn: str) -> None:
        self.trigger = trigger
        self.settings = trigger.settings
        self.arn = arn
        self.log: logging.Logger = trigger.log
        self.last_status: str | None = None

    async def gather(self, evidence: Evidence, news: asyncio.Event) -> None:
        settings = self.settings
        budget = status_budget(settings.connection_key)
        failures = 0
        async with AsyncExitStack() as opened:
            client = await opened.enter_async_context(await self.trigger.lambda_client())
            while True:
                await budget.acquire()
                try:
                    response = await client.get_durable_execution(DurableExecutionArn=self.arn)
                except (ClientError, *CLIENT_FAILURES) as err:
                    if not _worth_retrying(err):
                        evidence.unfollowable = _unfollowable_because(self.arn, err)
                        news.set()
                        return
                    if isinstance(err, ClientError) and error_code(err) in THROTTLING_ERROR_CODES:
                        budget.throttled()
                    if needs_fresh_client(err):
                        await opened.aclose()
                        client = await opened.enter_async_context(await self.trigger.lambda_client())
                    failures += 1
                    self.log.warning("GetDurableExecution of %s failed (%s); retrying", self.arn, err)
                    await asyncio.sleep(random.uniform(1.0, min(MAX_RETRY_PAUSE_SECONDS, 2.0**failures)))
                    continue
                budget.succeeded()
                failures = 0
                self._note_status(response)
                end = ExecutionEnd.from_response(response)
                if end is not None:
                    evidence.execution_end = end
                    evidence.execution_ended_seen_at = self.trigger.timeline.now()
                    evidence.execution_ended.set()
                    news.set()
                    return
                news.set()  # the trigger checks its deadline on news
                age = self.trigger.timeline.now() - settings.invoked_at
                await asyncio.sleep(status_read_delay(age, settings.poll_interval))

    def _note_status(self, response: dict[str, Any]) -> None:
        status = response.get("Status")
        if status != self.last_status:
            self.log.info(
                "Durable execution %s of %s is %s",
                self.settings.durable_execution_name,
                self.settings.function_name,
                status,
            )
            self.last_status = status


def _worth_retrying(err: Exception) -> bool:
    if isinstance(err, ClientError):
        return error_code(err) in RETRYABLE_ERROR_CODES or needs_fresh_client(err)
    return True  # credentials missing for now, or no connection


def _unfollowable_because(arn: str, err: Exception) -> str:
    message = err.response.get("Error", {}).get("Message", err) if isinstance(err, ClientError) else err
    code = error_code(err) if isinstance(err, ClientError) else type(err).__name__
    return f"GetDurableExecution of {arn} failed with {code}: {message}"


def source_for(trigger: LambdaInvocationTrigger) -> DurableStatus | None:
    arn = trigger.settings.durable_execution_arn
    return DurableStatus(trigger, arn) if arn else None
