"""Follow one Lambda invocation through CloudWatch Logs, in Airflow's triggerer, until it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent
from asgiref.sync import sync_to_async
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_lambda_deferrable.cloudwatch.log_source import error_code
from airflow_lambda_deferrable.provider.links import LambdaInvocationLogsLink
from airflow_lambda_deferrable.runtime.clock import Timeline
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
from airflow_lambda_deferrable.sources import SOURCES
from airflow_lambda_deferrable.sources.log_lines import with_log_group_note
from airflow_lambda_deferrable.verdict.durable_execution import decide_execution
from airflow_lambda_deferrable.verdict.evidence import Evidence
from airflow_lambda_deferrable.verdict.outcome import InvocationLog, Verdict, decide, visible_until
from airflow_lambda_deferrable.verdict.task_record import record, returned, succeeded, with_text
from airflow_lambda_deferrable.verdict.trigger_event import InvocationReport, build_payload, carry_result

# The key of a task's returned value in XCom (Airflow's ``XCOM_RETURN_KEY``).
XCOM_RETURN_KEY = "return_value"

# The logs client makes one attempt per call: a throttled call is seen (and paced) by the poller's request
# budget, not retried out of sight inside botocore.
ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


# Where Airflow finds this trigger again when a deferred task resumes (see `serialize`).
PUBLIC_MODULE = "airflow_lambda_deferrable.triggers"


def public_path(trigger: BaseTrigger, ours: type[BaseTrigger]) -> str:
    """Where Airflow imports `trigger` from when it re-creates it: our class by its public path
    (`PUBLIC_MODULE`), which outlives moves of the code behind it, so a task deferred before an upgrade
    resumes after it; a subclass by its own path."""
    cls = type(trigger)
    return f"{PUBLIC_MODULE if cls is ours else cls.__module__}.{cls.__qualname__}"


class LambdaInvocationTrigger(BaseTrigger):
    """Read one invocation's lines in CloudWatch Logs and fire once with its outcome.

    The outcome is decided by `airflow_lambda_deferrable.verdict.outcome.decide`; this class only gathers lines
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
        """Return the class path (`public_path`) and every setting (primitives) the trigger is re-created from."""
        return public_path(self, LambdaInvocationTrigger), self.settings.as_kwargs()

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

    def _lambda_client(self) -> Any:
        """Return a Lambda client (an async context manager) with the user's botocore config, one attempt a call."""
        settings = self.settings
        hook = AwsBaseHook(
            aws_conn_id=settings.aws_conn_id,
            client_type="lambda",
            region_name=settings.region_name,
            verify=settings.verify,
            config=settings.botocore_config,
        )
        return hook.get_client_type(
            region_name=hook.region_name, config=hook.config.merge(ONE_ATTEMPT), deferrable=True
        )

    async def lambda_client(self) -> Any:
        """Build the client of `_lambda_client` off the event loop (resolving the connection may block)."""
        return await sync_to_async(self._lambda_client)()

    async def on_kill(self) -> None:
        """Stop the durable execution when a user kills the deferred task (cleared, marked failed or success).

        Airflow calls this only for a user's action, never when the triggerer restarts or the trigger times
        out. Invocations that are not durable executions cannot be stopped: Lambda has no such call.
        """
        settings = self.settings
        if not settings.durable_execution_arn or not settings.stop_execution_on_kill:
            return
        await stop_execution(self, reason=f"the Airflow task {self.task_id or ''} was killed by a user")

    _timeline: Timeline | None = None

    @property
    def timeline(self) -> Timeline:
        """The trigger's time: the wall clock read as it starts (first asked), then advanced by the monotonic
        clock, so that a step of the wall clock neither ends it early nor extends it (`settings.deadline_for`).
        A restart re-creates the trigger, which reads the wall clock anew."""
        if self._timeline is None:
            self._timeline = Timeline.start()
        return self._timeline

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Follow the invocation until it is decided, then yield exactly one event."""
        timeline = self.timeline  # read the wall clock once, as the trigger starts
        payload = await self.follow()
        early = self.settings.fire_after - timeline.now()
        if early > 0:
            await asyncio.sleep(early)
        if self._ends_task(payload) and await self._pushed(self._record_success(payload)):
            self.log.info("Ending the task here in the triggerer (end_from_trigger): no worker resumes it")
            yield TaskSuccessEvent()
            return
        yield TriggerEvent(payload)

    def _ends_task(self, payload: dict[str, Any]) -> bool:
        """Whether this trigger ends its task (``end_from_trigger``): on success only, and only in a triggerer,
        which tells the trigger its task instance (``dag.test()`` runs triggers inline, and resumes)."""
        return self.settings.end_from_trigger and payload["status"] == "success" and self.task_instance is not None

    def _record_success(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Log what the resumed task would (its lines, notes and verdict); return the XComs it would push: its
        result, and the CloudWatch link with its time range closed."""
        settings = self.settings
        report = InvocationReport.from_payload(payload)
        for level, text in record(report):
            self.log.log(level, "%s", text)
        self.log.log(*with_text(succeeded(report)))
        value, warning = returned(report, invocation_type=settings.invocation_type)
        if warning is not None:
            self.log.log(*with_text(warning))
        xcoms: dict[str, Any] = {}
        if settings.do_xcom_push and value is not None:
            xcoms[XCOM_RETURN_KEY] = value
        if settings.logs_link is not None:
            xcoms[LambdaInvocationLogsLink.key] = {**settings.logs_link, "ended_at": self.timeline.now()}
        return xcoms

    async def _pushed(self, xcoms: dict[str, Any]) -> bool:
        """Push `xcoms` as the worker would (the Task SDK's XCom, through the deployment's XCom backend);
        ``False`` if that failed, and the task resumes on a worker, which pushes them.

        Not ``TaskSuccessEvent(xcoms=...)``: Airflow 3.3.2 stores those JSON-encoded a second time, so a
        downstream task would pull a string where the resumed task pushed a dict."""
        ti = self.task_instance
        where = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "map_index": ti.map_index}
        try:
            from airflow.sdk.execution_time.xcom import XCom

            aset = getattr(XCom, "aset", None)  # Task SDK 1.3 has it; 1.1 only the blocking call
            for key, value in xcoms.items():
                await (aset(key, value, **where) if aset else sync_to_async(XCom.set)(key, value, **where))
        except Exception as err:  # the success still stands: a worker resumes the task and pushes them
            self.log.warning(
                "end_from_trigger: pushing the XComs failed (%s: %s); a worker resumes the task, and logs the "
                "invocation's lines again",
                type(err).__name__,
                err,
            )
            return False
        return True

    async def follow(self) -> dict[str, Any]:
        """Run the completion sources (`sources.SOURCES`) and decide each time one learns something;
        return the event payload. A source's unexpected error propagates."""
        settings = self.settings
        evidence = Evidence(
            log=InvocationLog(
                correlation_id=settings.correlation_id,
                request_ids={settings.request_id} if settings.request_id else set(),
                claim_lines_without_ids=settings.claim_lines_without_ids,
                # A durable execution's replays are requests of their own, tied to it by the correlation id.
                trust_correlated_requests=settings.durable_execution_arn is not None,
                claim_correlated_without_stretch=settings.hidden_platform_level is not None,
                # Only the ends the event can carry are kept: memory stays bounded whatever the function prints.
                keep_lines=settings.max_lines,
                keep_bytes=settings.max_bytes,
            )
        )
        news = asyncio.Event()
        sources = [source for source in (make(self) for make in SOURCES) if source is not None]
        running = [
            asyncio.create_task(
                source.gather(evidence, news), name=f"{type(source).__name__} {settings.correlation_id}"
            )
            for source in sources
        ]
        try:
            while True:
                await self._until_news(news, running)
                news.clear()
                if evidence.unfollowable is not None:
                    self.log.error("Giving up on %s: %s", settings.function_name, evidence.unfollowable)
                    return self._payload("error", evidence.unfollowable, evidence, None)
                verdict = self._decide(evidence)
                if verdict is not None:
                    verdict = await with_log_group_note(self, verdict, evidence)  # a timeout says where it looked
                    self.log.info(
                        "Decided %s for %s (request %s) after %d polls, %d lines: %s",
                        verdict.status,
                        settings.function_name,
                        settings.request_id,
                        evidence.polls,
                        evidence.log.line_count,
                        verdict.reason,
                    )
                    return self._payload(verdict.status, verdict.reason, evidence, verdict)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def _decide(self, evidence: Evidence) -> Verdict | None:
        """Ask the rule that applies: a durable execution's status, or the invocation's log. Every time it
        compares is on the trigger's `timeline`: `now` is the deadline less the monotonic time left."""
        settings = self.settings
        now = self.timeline.now()
        if settings.durable_execution_arn:
            return decide_execution(
                evidence.execution_end,
                ended_seen_at=evidence.execution_ended_seen_at,
                now=now,
                checked_at=evidence.checked_at,
                deadline=settings.deadline,
                settle_seconds=settings.settle_seconds,
                execution_name=settings.durable_execution_name or settings.durable_execution_arn,
            )
        deadline = settings.deadline
        if settings.hidden_platform_level is not None and settings.function_timeout is not None:
            # Only the end marker can show a success: once the request is seen running, it has ended (and been
            # ingested) within its timeout and the allowance, so a later deadline only delays the answer.
            until = visible_until(
                evidence.log,
                function_timeout=settings.function_timeout,
                # Lambda stamps lines with AWS's clock: allow for this triggerer's clock being behind it.
                ingestion_allowance_seconds=settings.ingestion_allowance_seconds + settings.clock_skew_seconds,
            )
            deadline = min(deadline, until) if until is not None else deadline
        return decide(
            evidence.log,
            now=now,
            checked_at=evidence.checked_at,
            deadline=deadline,
            settle_seconds=settings.settle_seconds,
            known=evidence.known,
            allow_hidden_success=settings.allow_hidden_success,
            fail_fast=settings.fail_fast,
            hidden_platform_level=settings.hidden_platform_level,
            end_marker=settings.end_marker,
        )

    @staticmethod
    async def _until_news(news: asyncio.Event, running: list[asyncio.Task[None]]) -> None:
        """Wait until a source has news; raise a source's error, or a `RuntimeError` once every source has
        ended and none has news. A source may end quietly after its last news (closing its client, say)."""
        while True:
            for task in running:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if news.is_set():
                return
            still_running = [task for task in running if not task.done()]
            if not still_running:
                raise RuntimeError("every completion source ended without a verdict")
            waiting = asyncio.ensure_future(news.wait())
            try:
                await asyncio.wait([waiting, *still_running], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()

    def _payload(self, status: str, message: str, evidence: Evidence, verdict: Verdict | None) -> dict[str, Any]:
        settings = self.settings
        result = settings.result
        end = evidence.execution_end
        if end is not None and end.status == "SUCCEEDED" and verdict is not None and verdict.status == "success":
            result = carry_result(end.result)
        return build_payload(
            status=status,
            message=message,
            identity=settings.identity,
            lines=evidence.log.lines,
            verdict=verdict,
            max_lines=settings.max_lines,
            max_bytes=settings.max_bytes,
            polls=evidence.polls,
            result=result,
            unattributed_lines=evidence.log.unattributed_lines,
            foreign_lines=evidence.log.foreign_lines,
            dropped_lines=evidence.log.dropped_lines,
        )


async def stop_execution(trigger: LambdaInvocationTrigger, *, reason: str) -> None:
    """Stop the trigger's durable execution with `StopDurableExecution`, saying why; one that has already
    ended is left as it is."""
    settings = trigger.settings
    async with await trigger.lambda_client() as client:
        try:
            await client.stop_durable_execution(
                DurableExecutionArn=settings.durable_execution_arn,
                Error={"ErrorType": "AirflowTaskKilled", "ErrorMessage": reason},
            )
        except ClientError as err:
            trigger.log.warning(
                "StopDurableExecution of %s failed with %s: %s",
                settings.durable_execution_arn,
                error_code(err),
                err.response.get("Error", {}).get("Message", err),
            )
            return
    trigger.log.info("Stopped durable execution %s: %s", settings.durable_execution_name, reason)
