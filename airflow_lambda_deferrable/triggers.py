"""Follow one Lambda invocation through CloudWatch Logs, in Airflow's triggerer, until it ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.configuration import conf
from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from airflow.triggers.base import BaseTrigger, TriggerEvent
from asgiref.sync import sync_to_async
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_lambda_deferrable.log_lines import parse_event
from airflow_lambda_deferrable.log_source import error_code
from airflow_lambda_deferrable.outcome import InvocationLog, KnownResult, Verdict, decide
from airflow_lambda_deferrable.settings import (  # noqa: F401  (the defaults are importable from here too)
    DEFAULT_CLOCK_SKEW_SECONDS,
    DEFAULT_END_MARKER,
    DEFAULT_INGESTION_ALLOWANCE_SECONDS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_LINES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_SETTLE_SECONDS,
    FollowSettings,
)
from airflow_lambda_deferrable.shared_poller import PollNotServed, Subscription, checked_max_rate, subscribe
from airflow_lambda_deferrable.trigger_event import build_payload, clip_line

# The shortest pause between two reads asked for by one trigger.
MIN_WAIT_SECONDS = 0.05
# The logs client makes one attempt per call: a throttled call is seen (and paced) by the poller's request
# budget, not retried out of sight inside botocore.
ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


class LambdaInvocationTrigger(BaseTrigger):
    """Read one invocation's lines in CloudWatch Logs and fire once with its outcome.

    The outcome is decided by `airflow_lambda_deferrable.outcome.decide`; this class only gathers lines
    and reports. The lines come from the log group's poller (`shared_poller`), which paces the reads,
    retries throttling, transient errors, credentials and connections, and hands a trigger only the errors
    that retrying will not cure (access denied, ...): those end in an ``error`` event.

    Built from the kwargs of `settings.FollowSettings` (see there for each one), or from a
    ``FollowSettings`` as ``LambdaInvocationTrigger(settings)``. Kwargs serialized by earlier versions are
    accepted (``late_arrival_seconds`` is now ``ingestion_allowance_seconds``); numbers out of
    `settings.TRIGGER_BOUNDS` raise ``ValueError``.
    """

    def __init__(self, settings: FollowSettings | None = None, /, **kwargs: Any) -> None:
        super().__init__()
        if settings is not None and kwargs:
            raise TypeError(f"{type(self).__name__}: give either a FollowSettings or its kwargs, not both")
        self.settings = (
            settings if settings is not None else FollowSettings.from_kwargs(kwargs, who=type(self).__name__)
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and every setting (primitives) the trigger is re-created from."""
        return f"{type(self).__module__}.{type(self).__qualname__}", self.settings.as_kwargs()

    def hook(self) -> AwsLogsHook:
        """Return the CloudWatch Logs hook for the trigger's connection, region and botocore config."""
        settings = self.settings
        return AwsLogsHook(
            aws_conn_id=settings.aws_conn_id,
            region_name=settings.region_name,
            verify=settings.verify,
            config=settings.botocore_config,
        )

    def _logs_client(self) -> Any:
        """Return a logs client (an async context manager) with the user's botocore config, one attempt a call."""
        hook = self.hook()
        config = hook.config.merge(ONE_ATTEMPT)  # the trigger's botocore_config, or the connection's
        return hook.get_client_type(region_name=hook.region_name, config=config, deferrable=True)

    async def logs_client(self) -> Any:
        """Build the client of `_logs_client` off the event loop (resolving the connection may block)."""
        return await sync_to_async(self._logs_client)()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Follow the invocation until it is decided, then yield exactly one event.

        The triggers of a triggerer process share one poller per log group (see `shared_poller`);
        ``[lambda_deferrable] shared_poller = False`` gives each trigger a poller and a budget of its own.
        """
        settings = self.settings
        connection_key = {
            "aws_conn_id": settings.aws_conn_id,
            "region_name": settings.region_name,
            "verify": settings.verify,
            "botocore_config": settings.botocore_config,
        }
        async with subscribe(
            connection_key=connection_key,
            log_group=settings.log_group,
            client_factory=self.logs_client,
            terms=[settings.correlation_id, *([settings.request_id] if settings.request_id else [])],
            start_ms=settings.start_ms,
            ingestion_allowance_ms=settings.ingestion_allowance_ms,
            poll_interval=settings.poll_interval,
            max_rate=checked_max_rate(conf.get("lambda_deferrable", "max_requests_per_second", fallback=None)),
            shared=conf.getboolean("lambda_deferrable", "shared_poller", fallback=True),
        ) as subscription:
            payload = await self.follow(subscription)
        early = settings.fire_after - time.time()
        if early > 0:
            await asyncio.sleep(early)
        yield TriggerEvent(payload)

    async def follow(self, source: Subscription) -> dict[str, Any]:
        """Read the invocation's lines from `source` until decided; return the event payload."""
        settings = self.settings
        known = KnownResult(**settings.known_result) if settings.known_result is not None else None
        log = InvocationLog(
            correlation_id=settings.correlation_id,
            request_ids={settings.request_id} if settings.request_id else set(),
            claim_lines_without_ids=settings.claim_lines_without_ids,
            # Only the ends the event can carry are kept: memory stays bounded whatever the function prints.
            keep_lines=settings.max_lines,
            keep_bytes=settings.max_bytes,
        )
        polls = 0
        checked_at = 0.0
        span_reads: dict[Any, float] = {}
        while True:
            polls += 1
            try:
                await self._poll_once(source, log, span_reads)
                checked_at = source.read_started_at
            except ClientError as err:  # the poller hands a subscriber only errors retrying will not cure
                message = (
                    f"reading CloudWatch Logs group {settings.log_group} failed with {error_code(err)}: "
                    f"{err.response.get('Error', {}).get('Message', err)}"
                )
                self.log.error("Giving up on %s: %s", settings.function_name, message)
                return self._payload("error", message, log, None, polls)
            except PollNotServed as err:
                self.log.warning("%s; still waiting (%d reads asked for)", err, polls)

            now = time.time()
            verdict = decide(
                log,
                now=now,
                checked_at=checked_at,
                deadline=settings.deadline,
                settle_seconds=settings.settle_seconds,
                known=known,
                allow_hidden_success=settings.allow_hidden_success,
                fail_fast=settings.fail_fast,
            )
            if verdict is not None:
                self.log.info(
                    "Decided %s for %s (request %s) after %d polls, %d lines: %s",
                    verdict.status,
                    settings.function_name,
                    settings.request_id,
                    polls,
                    log.line_count,
                    verdict.reason,
                )
                return self._payload(verdict.status, verdict.reason, log, verdict, polls)
            wanted = read_wanted_at(log, now=now, checked_at=checked_at, deadline=settings.deadline, settings=settings)
            if wanted is not None:
                source.want_read_at(wanted)

    async def _poll_once(self, source: Subscription, log: InvocationLog, span_reads: dict[Any, float]) -> None:
        """Read new events, then our request's finished stretches of stream (for lines without ids).

        A stretch is read when it closes and once more after the settle window, for its late lines.
        """
        accepted = self._accept(await source.fetch_new(), source, log)
        for span in log.closed_spans():
            last_read = span_reads.get(span)
            settle_end = (log.ended_seen_at or 0.0) + self.settings.settle_seconds
            if last_read is None or last_read < settle_end <= time.time():
                read_at = time.time()
                accepted += self._accept(await source.fetch_span(*span), source, log)
                span_reads[span] = read_at  # only once the read has succeeded
        if accepted:
            self.log.info(
                "%s: %d new line(s) of the invocation, %d in all",
                self.settings.function_name,
                len(accepted),
                log.line_count,
            )

    def _accept(self, events: list[dict[str, Any]], source: Subscription, log: InvocationLog) -> list[Any]:
        settings = self.settings
        lines = [
            clip_line(
                parse_event(event, correlation_id_key=settings.correlation_id_key, end_marker=settings.end_marker)
            )
            for event in events
        ]
        accepted = log.add(lines, seen_at=time.time())
        for request_id in sorted(log.request_ids):
            source.watch(request_id)
        return accepted

    def _payload(
        self, status: str, message: str, log: InvocationLog, verdict: Verdict | None, polls: int
    ) -> dict[str, Any]:
        settings = self.settings
        identity = {
            "function_name": settings.function_name,
            "qualifier": settings.qualifier,
            "log_group": settings.log_group,
            "correlation_id": settings.correlation_id,
            "request_id": settings.request_id,
            "invocation_type": settings.invocation_type,
            "tenant_id": settings.tenant_id,
        }
        return build_payload(
            status=status,
            message=message,
            identity=identity,
            lines=log.lines,
            verdict=verdict,
            max_lines=settings.max_lines,
            max_bytes=settings.max_bytes,
            polls=polls,
            result=settings.result,
            unattributed_lines=log.unattributed_lines,
            dropped_lines=log.dropped_lines,
        )


def read_wanted_at(
    log: InvocationLog, *, now: float, checked_at: float, deadline: float, settings: FollowSettings
) -> float | None:
    """Return when a read should start for this trigger sooner than the poller's pace, or ``None``.

    A settle window or the deadline that ends before the next regular read, with no read started since it
    ended, wants a read right then (at once if it already has ended): the verdict waits for that read.
    """
    settle_ends = (
        seen + settings.settle_seconds
        for seen in (log.failure_seen_at, log.end_marker_seen_at, log.ended_seen_at)
        if seen is not None
    )
    uncovered = [moment for moment in (deadline, *settle_ends) if moment > checked_at]
    if uncovered and min(uncovered) < now + settings.poll_interval:
        return max(min(uncovered), now + MIN_WAIT_SECONDS)
    return None
