"""Follow one Lambda invocation through CloudWatch Logs, in Airflow's triggerer, until it ends."""

from __future__ import annotations

import asyncio
import random
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
from airflow_lambda_deferrable.log_source import (
    CLIENT_FAILURES,
    EXPIRED_CREDENTIALS_ERROR_CODES,
    RETRYABLE_ERROR_CODES,
    InvocationLogSource,
    LogSource,
    error_code,
)
from airflow_lambda_deferrable.outcome import InvocationLog, KnownResult, Verdict, decide
from airflow_lambda_deferrable.settings_bounds import TRIGGER_BOUNDS, problems_with
from airflow_lambda_deferrable.shared_poller import PollNotServed, checked_max_rate, subscribe
from airflow_lambda_deferrable.trigger_event import DEFAULT_MAX_BYTES, DEFAULT_MAX_LINES, build_payload, clip_line

DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_SETTLE_SECONDS = 3.0
DEFAULT_LATE_ARRIVAL_SECONDS = 120.0
DEFAULT_CLOCK_SKEW_SECONDS = 60.0
DEFAULT_END_MARKER = "Function ended"
MAX_BACKOFF_SECONDS = 60.0
# The shortest pause between two reads of one trigger.
MIN_WAIT_SECONDS = 0.05
# 2 ** this many failed reads is already past any backoff ceiling; more would only overflow a float.
MAX_BACKOFF_DOUBLINGS = 16
# The logs client makes one attempt per call: a throttled call is seen (and paced) by the shared poller's
# request budget or the trigger's own backoff, not retried out of sight inside botocore.
ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


class LambdaInvocationTrigger(BaseTrigger):
    """Poll CloudWatch Logs for one invocation's lines and fire once with its outcome.

    The outcome is decided by `airflow_lambda_deferrable.outcome.decide`; this class only fetches,
    waits and reports. Throttling, transient errors, missing or expired credentials and lost connections
    are retried with jittered backoff until the deadline (the last two with a fresh client); a missing
    log group means "nothing yet"; any other AWS error ends in an ``error`` event.

    :param function_name: the function as it was invoked (name or ARN), for messages.
    :param log_group: the function's CloudWatch Logs group.
    :param correlation_id: the id injected into the payload, logged by the function.
    :param request_id: the request id of the invoke response.
    :param invoked_at: when the invoke call was made (epoch seconds).
    :param deadline: when to give up and report a timeout (epoch seconds).
    :param known_result: for ``RequestResponse``, what the response said (see `KnownResult`).
    :param result: for ``RequestResponse``, the function's result as `trigger_event.carry_result` made it;
        the event carries it back to the task.
    :param tenant_id: the tenant the invocation ran for (tenant isolation), for messages.
    :param claim_lines_without_ids: ``False`` where one environment runs several requests at once (Lambda
        Managed Instances): lines without ids are then left out and counted, never guessed.
    :param allow_hidden_success: the function's logging config hides a success (see `logging_controls`);
        no failure seen by the deadline counts as success.
    :param end_marker: the message that means the handler returned; ``None`` to rely on END/REPORT.
    :param poll_interval: seconds between polls.
    :param settle_seconds: how long to wait after the request's end, or a failure sign, for late lines.
    :param late_arrival_seconds: how far behind the newest line an earlier line may still be ingested.
    :param clock_skew_seconds: how much earlier than `invoked_at` lines are searched for.
    :param fire_after: never fire before this time (epoch seconds). An event that comes within a few
        seconds of deferring can race the executor's report of the deferring run and fail the resumed
        task (seen with LocalExecutor, Airflow 3.3); the operator sets this just past that window.
    :param max_lines: at most this many lines go into the event (first and last ones kept).
    :param max_bytes: at most this many bytes of lines go into the event.

    Numbers out of `settings_bounds.TRIGGER_BOUNDS` (from old or tampered kwargs) raise ``ValueError``.
    """

    def __init__(
        self,
        *,
        function_name: str,
        log_group: str,
        correlation_id: str,
        request_id: str | None,
        invoked_at: float,
        deadline: float,
        qualifier: str | None = None,
        invocation_type: str = "Event",
        known_result: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        tenant_id: str | None = None,
        claim_lines_without_ids: bool = True,
        allow_hidden_success: bool = False,
        end_marker: str | None = DEFAULT_END_MARKER,
        correlation_id_key: str = "correlation_id",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        late_arrival_seconds: float = DEFAULT_LATE_ARRIVAL_SECONDS,
        clock_skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        fire_after: float = 0.0,
        max_lines: int = DEFAULT_MAX_LINES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.function_name = function_name
        self.log_group = log_group
        self.correlation_id = correlation_id
        self.request_id = request_id
        self.invoked_at = invoked_at
        self.deadline = deadline
        self.qualifier = qualifier
        self.invocation_type = invocation_type
        self.known_result = known_result
        self.result = result
        self.tenant_id = tenant_id
        self.claim_lines_without_ids = claim_lines_without_ids
        self.allow_hidden_success = allow_hidden_success
        self.end_marker = end_marker
        self.correlation_id_key = correlation_id_key
        self.poll_interval = poll_interval
        self.settle_seconds = settle_seconds
        self.late_arrival_seconds = late_arrival_seconds
        self.clock_skew_seconds = clock_skew_seconds
        self.fire_after = fire_after
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        problems = problems_with({name: getattr(self, name) for name in TRIGGER_BOUNDS}, TRIGGER_BOUNDS)
        if result is not None and not isinstance(result, dict):
            problems.append(
                f"result must be a dict from trigger_event.carry_result or None, got {type(result).__name__}"
            )
        if problems:
            raise ValueError(f"{type(self).__name__} for {function_name}: " + "; ".join(problems))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the primitives this trigger is re-created from."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "function_name": self.function_name,
                "log_group": self.log_group,
                "correlation_id": self.correlation_id,
                "request_id": self.request_id,
                "invoked_at": self.invoked_at,
                "deadline": self.deadline,
                "qualifier": self.qualifier,
                "invocation_type": self.invocation_type,
                "known_result": self.known_result,
                "result": self.result,
                "tenant_id": self.tenant_id,
                "claim_lines_without_ids": self.claim_lines_without_ids,
                "allow_hidden_success": self.allow_hidden_success,
                "end_marker": self.end_marker,
                "correlation_id_key": self.correlation_id_key,
                "poll_interval": self.poll_interval,
                "settle_seconds": self.settle_seconds,
                "late_arrival_seconds": self.late_arrival_seconds,
                "clock_skew_seconds": self.clock_skew_seconds,
                "fire_after": self.fire_after,
                "max_lines": self.max_lines,
                "max_bytes": self.max_bytes,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
            },
        )

    def hook(self) -> AwsLogsHook:
        """Return the CloudWatch Logs hook for the trigger's connection, region and botocore config."""
        return AwsLogsHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
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
        """Poll until the invocation is decided, then yield exactly one event.

        By default the triggerer's triggers share one poller per log group (see `shared_poller`);
        ``[lambda_deferrable] shared_poller = False`` gives each trigger its own client and polls.
        """
        terms = [self.correlation_id, *([self.request_id] if self.request_id else [])]
        start_ms = int((self.invoked_at - self.clock_skew_seconds) * 1000)
        late_arrival_ms = int(self.late_arrival_seconds * 1000)
        if conf.getboolean("lambda_deferrable", "shared_poller", fallback=True):
            connection_key = {
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
            }
            async with subscribe(
                connection_key=connection_key,
                log_group=self.log_group,
                client_factory=self.logs_client,
                terms=terms,
                start_ms=start_ms,
                late_arrival_ms=late_arrival_ms,
                poll_interval=self.poll_interval,
                max_rate=checked_max_rate(conf.get("lambda_deferrable", "max_requests_per_second", fallback=None)),
            ) as subscription:
                payload = await self.follow(subscription)
        else:
            async with InvocationLogSource(
                self.logs_client,
                log_group=self.log_group,
                terms=terms,
                start_ms=start_ms,
                late_arrival_ms=late_arrival_ms,
            ) as source:
                payload = await self.follow(source)
        early = self.fire_after - time.time()
        if early > 0:
            await asyncio.sleep(early)
        yield TriggerEvent(payload)

    async def follow(self, source: LogSource) -> dict[str, Any]:
        """Read the invocation's lines from `source` until decided; return the event payload."""
        known = KnownResult(**self.known_result) if self.known_result is not None else None
        log = InvocationLog(
            correlation_id=self.correlation_id,
            request_ids={self.request_id} if self.request_id else set(),
            claim_lines_without_ids=self.claim_lines_without_ids,
            # Only the ends the event can carry are kept: memory stays bounded whatever the function prints.
            keep_lines=self.max_lines,
            keep_bytes=self.max_bytes,
        )
        polls = failed_polls = 0
        checked_at = 0.0
        span_reads: dict[Any, float] = {}
        while True:
            polls += 1
            try:
                await self._poll_once(source, log, span_reads)
                checked_at = source.read_started_at
                failed_polls = 0
            except ClientError as err:
                code = error_code(err)
                if code not in RETRYABLE_ERROR_CODES and code not in EXPIRED_CREDENTIALS_ERROR_CODES:
                    message = (
                        f"reading CloudWatch Logs group {self.log_group} failed with {code}: "
                        f"{err.response.get('Error', {}).get('Message', err)}"
                    )
                    self.log.error("Giving up on %s: %s", self.function_name, message)
                    return self._payload("error", message, log, None, polls)
                failed_polls += 1
                self.log.warning("FilterLogEvents answered %s (%d in a row); backing off", code, failed_polls)
            except (*CLIENT_FAILURES, PollNotServed) as err:
                failed_polls += 1
                self.log.warning("FilterLogEvents failed (%s, %d in a row); backing off", err, failed_polls)

            now = time.time()
            verdict = decide(
                log,
                now=now,
                checked_at=checked_at,
                deadline=self.deadline,
                settle_seconds=self.settle_seconds,
                known=known,
                allow_hidden_success=self.allow_hidden_success,
            )
            if verdict is not None:
                self.log.info(
                    "Decided %s for %s (request %s) after %d polls, %d lines: %s",
                    verdict.status,
                    self.function_name,
                    self.request_id,
                    polls,
                    log.line_count,
                    verdict.reason,
                )
                return self._payload(verdict.status, verdict.reason, log, verdict, polls)
            when, needed = self._next_read(log, now, checked_at, failed_polls)
            await source.pause_until(when, read_needed=needed)

    async def _poll_once(self, source: LogSource, log: InvocationLog, span_reads: dict[Any, float]) -> None:
        """Read new events, then our request's finished stretches of stream (for lines without ids).

        A stretch is read when it closes and once more after the settle window, for its late lines.
        """
        accepted = self._accept(await source.fetch_new(), source, log)
        for span in log.closed_spans():
            last_read = span_reads.get(span)
            settle_end = (log.ended_seen_at or 0.0) + self.settle_seconds
            if last_read is None or last_read < settle_end <= time.time():
                read_at = time.time()
                accepted += self._accept(await source.fetch_span(*span), source, log)
                span_reads[span] = read_at  # only once the read has succeeded
        if accepted:
            self.log.info(
                "%s: %d new line(s) of the invocation, %d in all", self.function_name, len(accepted), log.line_count
            )

    def _accept(self, events: list[dict[str, Any]], source: LogSource, log: InvocationLog) -> list[Any]:
        lines = [
            clip_line(parse_event(event, correlation_id_key=self.correlation_id_key, end_marker=self.end_marker))
            for event in events
        ]
        accepted = log.add(lines, seen_at=time.time())
        for request_id in sorted(log.request_ids):
            source.watch(request_id)
        return accepted

    def _next_read(self, log: InvocationLog, now: float, checked_at: float, failed_polls: int) -> tuple[float, bool]:
        """Return when to read next (epoch seconds) and whether a read is needed then.

        A read is needed when a settle window or the deadline ends before the next regular read and no
        read has started since it ended (at once if it already has). Otherwise: the poll interval. After
        failed reads, back off instead (jittered, exponential, capped): moments already passed must never
        turn a throttled trigger into a busy loop.
        """
        if failed_polls:
            ceiling = min(MAX_BACKOFF_SECONDS, self.poll_interval * 2.0 ** min(failed_polls, MAX_BACKOFF_DOUBLINGS))
            return now + max(self.poll_interval / 2, random.uniform(0, ceiling)), False
        settle_ends = (
            seen + self.settle_seconds
            for seen in (log.failure_seen_at, log.end_marker_seen_at, log.ended_seen_at)
            if seen is not None
        )
        uncovered = [moment for moment in (self.deadline, *settle_ends) if moment > checked_at]
        if uncovered and min(uncovered) < now + self.poll_interval:
            return max(min(uncovered), now + MIN_WAIT_SECONDS), True
        return now + self.poll_interval, False

    def _payload(
        self, status: str, message: str, log: InvocationLog, verdict: Verdict | None, polls: int
    ) -> dict[str, Any]:
        identity = {
            "function_name": self.function_name,
            "qualifier": self.qualifier,
            "log_group": self.log_group,
            "correlation_id": self.correlation_id,
            "request_id": self.request_id,
            "invocation_type": self.invocation_type,
            "tenant_id": self.tenant_id,
        }
        return build_payload(
            status=status,
            message=message,
            identity=identity,
            lines=log.lines,
            verdict=verdict,
            max_lines=self.max_lines,
            max_bytes=self.max_bytes,
            polls=polls,
            result=self.result,
            unattributed_lines=log.unattributed_lines,
            dropped_lines=log.dropped_lines,
        )
