"""A durable execution's status, read with ``GetDurableExecution`` until the execution ends.

The reads of one triggerer process share one request budget per connection (apart from the log reads'
budget: another API, another quota). Throttling slows that budget down and backs off; transient errors,
expired credentials and lost connections are retried with a fresh client. An execution not found yet is
read again until `durable_execution.visibility_bound` after the invoke (an ``Event`` start waits in
Lambda's queue, and the read is eventually consistent); past it, and on any other error (access is
denied), the invocation is unfollowable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import weakref
from contextlib import AsyncExitStack
from typing import Any

from botocore.exceptions import ClientError

from airflow_lambda_deferrable.cloudwatch.log_source import (
    CLIENT_FAILURES,
    RETRYABLE_ERROR_CODES,
    THROTTLING_ERROR_CODES,
    error_code,
    needs_fresh_client,
)
from airflow_lambda_deferrable.runtime.backoff import backoff_ceiling
from airflow_lambda_deferrable.runtime.rate_limit import RequestBudget
from airflow_lambda_deferrable.settings import DEFAULT_MAX_STATUS_READS_PER_SECOND
from airflow_lambda_deferrable.sources.context import SourceContext
from airflow_lambda_deferrable.verdict.durable_execution import (
    NOT_FOUND,
    ExecutionEnd,
    execution_pending,
    not_found_for_good,
    status_read_delay,
    visibility_bound,
)
from airflow_lambda_deferrable.verdict.evidence import Evidence

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

    def __init__(self, trigger: SourceContext, arn: str) -> None:
        self.trigger = trigger
        self.settings = trigger.settings
        self.arn = arn
        self.log: logging.Logger = trigger.log
        self.last_status: str | None = None
        self.said_not_visible = False

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
                    if self._not_visible_yet(err):
                        budget.succeeded()  # an answer, not a throttle
                        news.set()  # the trigger checks its deadline on news
                        await asyncio.sleep(settings.poll_interval)
                        continue
                    if not _worth_retrying(err):
                        evidence.unfollowable = self._unfollowable_because(err)
                        news.set()
                        return
                    if isinstance(err, ClientError) and error_code(err) in THROTTLING_ERROR_CODES:
                        budget.throttled()
                    if needs_fresh_client(err):
                        await opened.aclose()
                        client = await opened.enter_async_context(await self.trigger.lambda_client())
                    failures += 1
                    self.log.warning("GetDurableExecution of %s failed (%s); retrying", self.arn, err)
                    await asyncio.sleep(random.uniform(1.0, backoff_ceiling(failures, 1.0)))
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

    def _not_visible_yet(self, err: Exception) -> bool:
        """Whether `err` says only that the execution is not visible yet (`execution_pending`); say so once."""
        settings = self.settings
        if not isinstance(err, ClientError) or not execution_pending(
            error_code(err),
            invocation_type=settings.invocation_type,
            now=self.trigger.timeline.now(),
            invoked_at=settings.invoked_at,
            queue_allowance_seconds=settings.queue_allowance_seconds,
        ):
            return False
        if not self.said_not_visible:
            queued = (
                "it starts when Lambda takes the Event from its queue, and "
                if settings.invocation_type == "Event"
                else ""
            )
            self.log.info(
                "Durable execution %s of %s is not visible yet (GetDurableExecution answered %s): %s"
                "GetDurableExecution is eventually consistent. Reading it again until %g s after the invoke.",
                settings.durable_execution_name,
                settings.function_name,
                error_code(err),
                queued,
                visibility_bound(settings.invocation_type, settings.queue_allowance_seconds),
            )
            self.said_not_visible = True
        return True

    def _unfollowable_because(self, err: Exception) -> str:
        """Return why the task gives up: not found past `visibility_bound`, or another final error."""
        settings = self.settings
        if isinstance(err, ClientError) and error_code(err) == NOT_FOUND:
            return not_found_for_good(
                self.arn,
                str(err.response.get("Error", {}).get("Message", err)),
                invocation_type=settings.invocation_type,
                waited_seconds=self.trigger.timeline.now() - settings.invoked_at,
                queue_allowance_seconds=settings.queue_allowance_seconds,
            )
        return _unfollowable_because(self.arn, err)

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


def source_for(trigger: SourceContext) -> DurableStatus | None:
    arn = trigger.settings.durable_execution_arn
    return DurableStatus(trigger, arn) if arn else None
