"""Invoke an AWS Lambda function, then follow the invocation through CloudWatch Logs without a worker slot."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.lambda_function import LambdaHook
from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import conf
from airflow.triggers.base import StartTriggerArgs
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from airflow_lambda_deferrable.cloudwatch.log_groups import (
    check_log_group_name,
    default_log_group,
    describe_answer,
    named_in,
)
from airflow_lambda_deferrable.cloudwatch.log_source import error_code
from airflow_lambda_deferrable.exceptions import (
    LambdaDurableExecutionFailed,
    LambdaInvocationFailed,
    LambdaInvocationTimedOut,
    LambdaInvokeError,
    LambdaInvokeInputError,
    LambdaLogsUnavailable,
)
from airflow_lambda_deferrable.provider.invocation_request import (
    build_payload,
    check_invocation_type,
    check_tenant_id,
    correlation_id_for_try,
    describe_payload,
    payload_problem,
    try_key_of,
)
from airflow_lambda_deferrable.provider.links import LambdaDurableExecutionLink, LambdaInvocationLogsLink
from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger
from airflow_lambda_deferrable.settings import (
    DEFAULT_CORRELATION_ID_KEY,
    DEFAULT_END_MARKER,
    DEFAULT_INGESTION_ALLOWANCE_SECONDS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_LINES,
    DEFAULT_MIN_DEFER_SECONDS,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_QUEUE_ALLOWANCE_SECONDS,
    DEFAULT_SETTLE_SECONDS,
    OPERATOR_BOUNDS,
    FollowSettings,
    deadline_for,
    problems_with,
)
from airflow_lambda_deferrable.verdict.durable_execution import (
    check_execution_name,
    execution_name_for_try,
    execution_timeout_of,
    is_qualified,
)
from airflow_lambda_deferrable.verdict.log_lines import MAX_JSON_DEPTH, json_text_too_deep
from airflow_lambda_deferrable.verdict.logging_controls import LoggingControls, hidden_success, lambda_level
from airflow_lambda_deferrable.verdict.outcome import KnownResult
from airflow_lambda_deferrable.verdict.task_log_lines import detail_lines, escaped
from airflow_lambda_deferrable.verdict.task_record import record, returned, succeeded, who, with_text
from airflow_lambda_deferrable.verdict.trigger_event import InvocationReport, carry_result

if TYPE_CHECKING:
    from airflow.sdk import Context

# The invoke call's read timeout is the function's timeout plus this, so a slow function is not cut off.
READ_TIMEOUT_MARGIN_SECONDS = 60
# Airflow fails a trigger that has not answered this long after the trigger's own deadline.
DEFER_TIMEOUT_MARGIN_SECONDS = 300.0
# Lambda retries a failed asynchronous invocation twice unless the function's invoke config says otherwise.
LAMBDA_DEFAULT_ASYNC_RETRIES = 2
# Lambda keeps an asynchronous event queued up to 6 hours unless the invoke config says otherwise.
LAMBDA_DEFAULT_MAX_EVENT_AGE_SECONDS = 21_600

# A synchronous invoke of a durable function answers within this (Lambda's limit), else the invocation goes on.
DURABLE_SYNC_LIMIT_SECONDS = 900

# What CloudWatch Logs answers a caller not allowed to call DescribeLogGroups: the group stays unchecked.
ACCESS_DENIED_CODES = ("AccessDeniedException", "AccessDenied")

# Set in the environment, `[operators] default_deferrable` is the deployment's own choice (see `default_deferrable`).
DEFAULT_DEFERRABLE_ENV = "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"

_EXCEPTION_FOR_STATUS = {
    "failed": LambdaInvocationFailed,
    "timeout": LambdaInvocationTimedOut,
    "error": LambdaLogsUnavailable,
}


class LambdaInvokeDeferrableOperator(AwsBaseOperator[LambdaHook]):
    """Invoke a Lambda function and succeed or fail with the invocation's real outcome.

    A correlation id is put into the payload, the function is invoked, and the task defers to
    `LambdaInvocationTrigger`, which reads the invocation's lines in CloudWatch Logs from the triggerer
    and decides success, failure or timeout (see `airflow_lambda_deferrable.verdict.outcome`). The task then
    logs the lines and returns, or raises `LambdaInvocationFailed` / `LambdaInvocationTimedOut` with
    the cause in the function's own words.

    Returns (XCom): for ``RequestResponse`` the function's result (parsed JSON where possible); for
    ``Event`` a dict with ``request_id`` and ``correlation_id``; for a durable function (one with a
    ``DurableConfig``), the execution's result, whatever the invocation type.

    A durable function runs one execution, named per task try (or `durable_execution_name`), followed with
    ``GetDurableExecution`` until it ends; its status decides, and its error is raised as
    `LambdaDurableExecutionFailed`. The task must name a version or alias (`qualifier`): Lambda starts no
    durable execution of an unqualified function. Re-running ``execute`` in the same try gets the same
    execution back, not a second one.

    :param function_name: name, partial ARN or ARN of the function, optionally with ``:qualifier``.
    :param payload: a JSON object, as a dict, a JSON string or bytes.
    :param qualifier: version or alias to invoke.
    :param invocation_type: ``Event`` (asynchronous, the default) or ``RequestResponse``.
    :param correlation_id: id injected into the payload; by default one per task try, made at run time.
    :param correlation_id_key: payload key for the correlation id (the function must log it).
    :param log_group: log group to read; by default the function's ``LoggingConfig.LogGroup`` or
        ``/aws/lambda/<name>``.
    :param end_marker: message the function logs when its handler returns (Powertools middleware's
        "Function ended" by default); ``None`` to rely on Lambda's END/REPORT lines only.
    :param poll_interval: seconds between CloudWatch Logs polls.
    :param settle_seconds: seconds to wait after the request's end for late lines.
    :param queue_allowance_seconds: ``Event`` only: how long the event may wait in Lambda's queue (for a
        durable function, also how long after the invoke its execution may not be visible yet).
    :param ingestion_allowance_seconds: how late CloudWatch Logs may ingest a line.
    :param max_wait_seconds: give up after this many seconds from invoking; by default queue
        allowance + the function's timeout + ingestion allowance.
    :param max_lines: most lines kept in the trigger event (first and last ones kept).
    :param max_bytes: most bytes of lines kept in the trigger event.
    :param min_defer_seconds: a deferred task resumes no sooner than this after it defers, to stay clear
        of an executor race on very fast triggers (docs/zero-worker-runs.md, "Fast functions and the executor
        race"); ``0`` turns it off.
    :param deferrable: defer to the triggerer; ``False`` runs the same trigger logic in the worker, for
        deployments without a triggerer. Unset: ``True``, unless the deployment turned
        ``[operators] default_deferrable`` off in its environment (see `default_deferrable`).
    :param tenant_id: the tenant to invoke for (``TenantId``), for functions with tenant isolation.
    :param end_marker_level: the level the function logs its end marker at (``INFO`` for Powertools'
        "Function ended"); with JSON logging it decides whether ``ApplicationLogLevel`` lets it through.
    :param allow_hidden_success: proceed although the function's ``LoggingConfig`` hides a successful
        ``Event`` invocation (``SystemLogLevel`` above INFO and no visible end marker): "no failure seen by
        the deadline" then counts as success. Without it such a task is refused before invoking.
    :param fail_fast: fail as soon as the function has logged an ERROR line (after ``settle_seconds``),
        without waiting for the request's end; its later lines may then be missing from the task log.
    :param durable_execution_name: durable functions only: the execution's name (1 to 64 letters, digits,
        ``-``, ``_``); by default one derived from the task try. Templated.
    :param stop_execution_on_kill: durable functions only: stop the execution (``StopDurableExecution``)
        when the task is killed (cleared, marked failed or success by a user, or timed out in the worker).
    :param end_from_trigger: on success, the trigger ends the task in the triggerer, with the same XCom and
        the lines in the task log, and no worker resumes it. A failure, timeout or error still resumes on a
        worker, so retries and failure callbacks run as usual. It has no effect with ``deferrable=False``,
        under ``dag.test()`` (which runs triggers inline and resumes), or when a downstream task maps over
        this task's result or ``multiple_outputs`` is set (Airflow records those only from a worker).
    :param durable: whether the function is durable (has a ``DurableConfig``): ``None`` finds out before
        invoking; ``True`` or ``False`` is checked then, and a function that is not what the task says is
        refused before anything is invoked.
    :param start_from_trigger: durable functions only (``durable=True``), Airflow 3.3 or later: the scheduler
        hands the task straight to the triggerer, which invokes and follows it; no worker runs it before
        its outcome (and none at all with ``end_from_trigger``). Refused when the DAG is parsed for any
        other function: Lambda has no idempotency key for plain invocations, so a restarted triggerer could
        invoke twice, while a durable execution's name makes a second Invoke return the same execution. A
        mapped task (``.partial().expand()``) starts on a worker as usual.
    """

    aws_hook_class = LambdaHook
    template_fields: Sequence[str] = aws_template_fields(
        "function_name", "payload", "qualifier", "correlation_id", "tenant_id", "durable_execution_name"
    )
    template_fields_renderers = {"payload": "json"}
    operator_extra_links = (LambdaInvocationLogsLink(), LambdaDurableExecutionLink())
    ui_color = "#ff9900"

    def __init__(
        self,
        *,
        function_name: str,
        payload: str | bytes | dict[str, Any] | None = None,
        qualifier: str | None = None,
        invocation_type: str = "Event",
        correlation_id: str | None = None,
        correlation_id_key: str = DEFAULT_CORRELATION_ID_KEY,
        log_group: str | None = None,
        end_marker: str | None = DEFAULT_END_MARKER,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        queue_allowance_seconds: float = DEFAULT_QUEUE_ALLOWANCE_SECONDS,
        ingestion_allowance_seconds: float = DEFAULT_INGESTION_ALLOWANCE_SECONDS,
        max_wait_seconds: float | None = None,
        max_lines: int = DEFAULT_MAX_LINES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        min_defer_seconds: float = DEFAULT_MIN_DEFER_SECONDS,
        deferrable: bool | None = None,
        tenant_id: str | None = None,
        end_marker_level: str = "INFO",
        allow_hidden_success: bool = False,
        fail_fast: bool = False,
        durable_execution_name: str | None = None,
        stop_execution_on_kill: bool = True,
        end_from_trigger: bool = False,
        durable: bool | None = None,
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.function_name = function_name
        self.payload = payload
        self.qualifier = qualifier
        self.invocation_type = check_invocation_type(invocation_type)
        self.correlation_id = correlation_id
        self.correlation_id_key = correlation_id_key
        self.log_group = log_group if log_group is None else self._checked_log_group(log_group)
        self.end_marker = end_marker
        self.poll_interval = poll_interval
        self.settle_seconds = settle_seconds
        self.queue_allowance_seconds = queue_allowance_seconds
        self.ingestion_allowance_seconds = ingestion_allowance_seconds
        self.max_wait_seconds = max_wait_seconds
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.min_defer_seconds = min_defer_seconds
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.tenant_id = tenant_id
        self.allow_hidden_success = allow_hidden_success
        self.fail_fast = fail_fast
        self.durable_execution_name = durable_execution_name
        self.stop_execution_on_kill = stop_execution_on_kill
        if not isinstance(end_from_trigger, bool):
            raise LambdaInvokeInputError(
                f"{type(self).__name__} {self.task_id}: end_from_trigger must be True or False, "
                f"got {end_from_trigger!r}"
            )
        self.end_from_trigger = end_from_trigger
        if durable not in (None, True, False):
            raise LambdaInvokeInputError(
                f"{type(self).__name__} {self.task_id}: durable must be True, False or None, got {durable!r}"
            )
        self.durable = durable
        # The durable execution this task started, while `execute` runs (for `on_kill`).
        self._durable_execution_arn: str | None = None
        try:
            self.end_marker_level = lambda_level(end_marker_level)
        except ValueError as err:
            raise LambdaInvokeInputError(f"{type(self).__name__} {self.task_id}: end_marker_level {err}") from err
        if isinstance(payload, (dict, list, tuple)) and (problem := payload_problem(payload)):
            # Before `repr` below (and Airflow's templating), which recurse into the payload.
            raise LambdaInvokeInputError(f"{type(self).__name__} {self.task_id}: {problem}")
        # Templates are rendered later; an id given without the try number in it is the same in every try.
        self._given_id_varies_per_try = "try_number" in repr((correlation_id, payload))
        self._check_tuning()
        if start_from_trigger is not False:
            self._start_in_triggerer(start_from_trigger)

    def _start_in_triggerer(self, start_from_trigger: Any) -> None:
        """Have the scheduler hand this task to the triggerer (`start_trigger.LambdaStartTrigger`), or refuse
        when the DAG is parsed: only a durable function's Invoke can safely run again after a restart."""
        problem = start_from_trigger_problem(
            start_from_trigger, durable=self.durable, payload=self.payload, airflow_version=airflow_version()
        )
        if problem is not None:
            raise LambdaInvokeInputError(f"{type(self).__name__} {self.task_id}: start_from_trigger: {problem}")
        self.start_from_trigger = True
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=START_TRIGGER_PATH,
            trigger_kwargs=self.start_kwargs(),
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None,  # the trigger's own deadline ends it, once the function's configuration tells it
        )

    def start_kwargs(self) -> dict[str, Any]:
        """What the triggerer builds this task again from (`start_trigger.LambdaStartTrigger`): every setting
        the DAG gave, templated ones unrendered (the triggerer renders them)."""
        return {name: getattr(self, name) for name in START_KWARGS}

    def _check_tuning(self) -> None:
        """Refuse numbers out of `OPERATOR_BOUNDS` (NaN, infinity, huge or fractional counts) at parse time."""
        numbers = {name: getattr(self, name) for name in OPERATOR_BOUNDS}
        if self.max_wait_seconds is None:
            del numbers["max_wait_seconds"]
        problems = problems_with(numbers, OPERATOR_BOUNDS)
        if problems:
            raise LambdaInvokeInputError(f"{type(self).__name__} {self.task_id}: " + "; ".join(problems))
        if not self.correlation_id_key or not isinstance(self.correlation_id_key, str):
            raise LambdaInvokeInputError(
                f"{type(self).__name__} {self.task_id}: correlation_id_key must be a non-empty string"
            )

    def execute(self, context: Context) -> Any:
        """Check the inputs, invoke, then defer (or follow in the worker when ``deferrable=False``)."""
        settings = self.invoke(context)
        trigger = LambdaInvocationTrigger(settings)
        if not self.deferrable:
            event = asyncio.run(_first_event(trigger))
            self._durable_execution_arn = None
            return self.execute_complete(context, event=event)
        self._durable_execution_arn = None  # the trigger follows it now (and stops it if the task is killed)
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=max(settings.deadline - time.time(), 0) + DEFER_TIMEOUT_MARGIN_SECONDS),
        )

    def invoke(self, context: Context) -> FollowSettings:
        """Check the inputs, invoke, store the links; return how to follow the invocation.

        Blocking (boto3): a worker calls it from `execute`, the triggerer from a thread when the task starts
        there (`start_trigger.LambdaStartTrigger`). `context` needs only ``ti``: the try it identifies, and
        where the links' XComs go.
        """
        payload, correlation_id = self._prepare_payload(context)
        configuration = self._function_configuration()
        tenant_id = self._check_tenant(configuration)
        hidden_success_allowed = self._check_logging_controls(configuration)
        log_group = self.log_group or self._log_group_of(configuration)
        self._check_log_group(log_group, configuration)
        execution_timeout = execution_timeout_of(configuration)
        if self.durable is not None and self.durable != (execution_timeout is not None):
            raise LambdaInvokeInputError(
                f"{type(self).__name__} {self.task_id}: {self.function_name} is "
                f"{'not ' if self.durable else ''}a durable function (its configuration has "
                f"{'no' if self.durable else 'a'} DurableConfig), but the task says durable={self.durable}"
            )
        execution_name = self._execution_name(context, durable=execution_timeout is not None)
        # A durable execution runs for its own timeout, over many invocations of the function.
        function_timeout = execution_timeout or int(configuration.get("Timeout") or 3)
        if self.invocation_type == "Event":
            self._warn_about_async_config()

        invoked_at = time.time()
        response = self._invoke(payload, function_timeout, tenant_id, execution_name)
        request_id = response.get("ResponseMetadata", {}).get("RequestId")
        execution_arn = response.get("DurableExecutionArn")
        if execution_name is not None and not execution_arn:
            raise LambdaInvokeError(
                f"Invoke of durable function {self.function_name} (execution {execution_name}) answered no "
                "DurableExecutionArn: the execution cannot be followed"
            )
        self._durable_execution_arn = execution_arn
        self.log.info(
            "Invoked %s (%s, qualifier %s%s): request %s, correlation id %s, log group %s%s",
            self.function_name,
            self.invocation_type,
            self.qualifier,
            f", tenant {tenant_id}" if tenant_id else "",
            request_id,
            correlation_id,
            log_group,
            f", durable execution {execution_arn}" if execution_arn else "",
        )
        # Stored as `BaseAwsLink.persist` stores it, and kept: whoever ends the task closes its time range
        # (the triggerer cannot pull XComs back).
        logs_link = {
            "region_name": self.hook.conn_region_name,
            "aws_domain": LambdaInvocationLogsLink.get_aws_domain(self.hook.conn_partition),
            "log_group": log_group,
            "correlation_id": correlation_id,
            "invoked_at": invoked_at,
        }
        if self.do_xcom_push:
            context["ti"].xcom_push(key=LambdaInvocationLogsLink.key, value=logs_link)
        if execution_arn:
            LambdaDurableExecutionLink.persist(
                context=context,
                operator=self,
                region_name=self.hook.conn_region_name,
                aws_partition=self.hook.conn_partition,
                execution_arn=execution_arn,
            )

        known_result, result = self._read_response(response)
        end_from_trigger = self.ends_in_triggerer()
        deadline = deadline_for(
            invoked_at=invoked_at,
            function_timeout=function_timeout,
            queue_allowance_seconds=self.queue_allowance_seconds,
            ingestion_allowance_seconds=self.ingestion_allowance_seconds,
            max_wait_seconds=self.max_wait_seconds,
            responded_at=time.time() if known_result is not None else None,
        )
        handed_over_at = time.time()
        settings = FollowSettings(
            function_name=self.function_name,
            log_group=log_group,
            correlation_id=correlation_id,
            request_id=request_id,
            invoked_at=invoked_at,
            deadline=deadline,
            qualifier=self.qualifier,
            invocation_type=self.invocation_type,
            known_result=known_result,
            result=carry_result(result) if known_result is not None and not known_result["failed"] else None,
            tenant_id=tenant_id,
            durable_execution_arn=execution_arn,
            durable_execution_name=execution_name,
            stop_execution_on_kill=self.stop_execution_on_kill,
            # Managed Instances run several requests at once in one environment and stream.
            claim_lines_without_ids=not configuration.get("CapacityProviderConfig"),
            allow_hidden_success=hidden_success_allowed,
            hidden_platform_level=self._hidden_platform_level(configuration, durable=execution_arn is not None),
            function_timeout=function_timeout,
            fail_fast=self.fail_fast,
            end_marker=self.end_marker,
            correlation_id_key=self.correlation_id_key,
            poll_interval=self.poll_interval,
            settle_seconds=self.settle_seconds,
            queue_allowance_seconds=self.queue_allowance_seconds,
            ingestion_allowance_seconds=self.ingestion_allowance_seconds,
            # From the hand-over, not the Invoke: the race is with the task's own deferral, and a synchronous
            # Invoke may already have outlasted the guard when the task defers.
            fire_after=handed_over_at + self.min_defer_seconds if self.deferrable else 0.0,
            handed_over_at=handed_over_at,
            max_lines=self.max_lines,
            max_bytes=self.max_bytes,
            end_from_trigger=end_from_trigger,
            do_xcom_push=self.do_xcom_push,
            logs_link=logs_link if end_from_trigger and self.do_xcom_push else None,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
        )
        return settings

    def ends_in_triggerer(self) -> bool:
        """Whether the trigger may end this task on success (``end_from_trigger``); say why not if asked."""
        if not self.end_from_trigger:
            return False
        reason = None
        if not self.deferrable:
            reason = "the task follows the invocation in the worker (deferrable=False)"
        elif self.multiple_outputs:
            reason = "multiple_outputs is set, and Airflow splits the result into XComs only on a worker"
        elif self.has_dag() and next(self.iter_mapped_dependants(), None) is not None:  # (else: the caller's)
            reason = "a downstream task maps over its result, which Airflow records only from a worker"
        if reason is None:
            return True
        self.log.warning("%s %s: end_from_trigger has no effect: %s", type(self).__name__, self.task_id, reason)
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, result: Any = None) -> Any:
        """Log the invocation's lines once, then return its result or raise with its exact cause.

        :param result: the result as deferrals made before the event carried it passed it (in the defer
            kwargs, which ``dag.test()`` does not pass on).
        """
        report = InvocationReport.from_payload(event)
        self._end_link_time_range(context)
        for level, text in record(report):
            self.log.log(level, "%s", text)
        if report.status == "success":
            self.log.log(*with_text(succeeded(report)))
            value, warning = returned(report, invocation_type=self.invocation_type, result=result)
            if warning is not None:
                self.log.log(*with_text(warning))
            return value
        name = who(report)
        if report.error and report.error.get("detail"):
            self.log.error("%s error detail:%s", name, detail_lines(report.error["detail"]))
        verb = {"failed": "failed", "timeout": "timed out", "error": "could not be followed"}[report.status]
        if report.status == "failed" and report.durable_execution_arn:
            raise LambdaDurableExecutionFailed(f"{name} {verb}: {escaped(report.message)}")
        # The cause is in the function's own words, escaped: Airflow logs the exception into the task log.
        raise _EXCEPTION_FOR_STATUS[report.status](f"{name} {verb}: {escaped(report.message)}")

    def on_kill(self) -> None:
        """Stop the durable execution this task started, if it is still followed from the worker.

        A deferred task's execution is stopped by the trigger's ``on_kill`` instead.
        """
        arn = self._durable_execution_arn
        if not arn or not self.stop_execution_on_kill:
            return
        try:
            self.hook.conn.stop_durable_execution(
                DurableExecutionArn=arn,
                Error={"ErrorType": "AirflowTaskKilled", "ErrorMessage": f"the Airflow task {self.task_id} was killed"},
            )
        except ClientError as err:
            self.log.warning("StopDurableExecution of %s failed: %s", arn, err)
            return
        self.log.info("Stopped durable execution %s", arn)

    def _execution_name(self, context: Context, *, durable: bool) -> str | None:
        """Return the durable execution's name (``None`` for a function that is not durable), or refuse
        what Lambda would: a name for a function that is not durable, a bad name, no version or alias."""
        who = f"{type(self).__name__} {self.task_id}"
        if not durable:
            if self.durable_execution_name:
                raise LambdaInvokeInputError(
                    f"{who}: {self.function_name} is not a durable function (no DurableConfig), so it takes no "
                    f"durable_execution_name (got {self.durable_execution_name!r})"
                )
            return None
        if not is_qualified(self.function_name, self.qualifier):
            raise LambdaInvokeInputError(
                f"{who}: {self.function_name} is a durable function: Lambda starts its executions only for a "
                "version or alias; give qualifier (a published version, an alias, or '$LATEST')"
            )
        if self.durable_execution_name:
            try:
                return check_execution_name(self.durable_execution_name)
            except LambdaInvokeInputError as err:
                raise LambdaInvokeInputError(f"{who}: {err}") from None
        ti = context["ti"]
        return execution_name_for_try(ti.task_id, try_key_of(ti))

    def _end_link_time_range(self, context: Context) -> None:
        """Close the CloudWatch link's time range now that the outcome is known (it ran to "now" until then)."""
        ti = context["ti"]
        stored = ti.xcom_pull(key=LambdaInvocationLogsLink.key)
        if isinstance(stored, dict) and "invoked_at" in stored:
            ti.xcom_push(key=LambdaInvocationLogsLink.key, value={**stored, "ended_at": time.time()})

    def _prepare_payload(self, context: Context) -> tuple[bytes, str]:
        if not isinstance(self.function_name, str) or not self.function_name.strip():
            raise LambdaInvokeInputError(f"{type(self).__name__} {self.task_id}: function_name is empty")
        ti = context["ti"]
        default_id = correlation_id_for_try(try_key_of(ti))
        payload, correlation_id = build_payload(
            self.payload,
            correlation_id=self.correlation_id,
            correlation_id_key=self.correlation_id_key,
            invocation_type=self.invocation_type,
            default_correlation_id=default_id,
        )
        self.log.info("Payload for %s: %s", self.function_name, describe_payload(json.loads(payload), len(payload)))
        if correlation_id != default_id and ti.try_number > 1 and not self._given_id_varies_per_try:
            self.log.warning(
                "%s %s: correlation id %s is given rather than made per try, so try %d reuses it: lines an earlier "
                "try's invocation still logs would be read as this one's. Leave correlation_id unset (one id per "
                "try is made) or put {{ ti.try_number }} in it.",
                type(self).__name__,
                self.task_id,
                correlation_id,
                ti.try_number,
            )
        return payload, correlation_id

    def _function_configuration(self) -> dict[str, Any]:
        request: dict[str, Any] = {"FunctionName": self.function_name}
        if self.qualifier:
            request["Qualifier"] = self.qualifier
        try:
            return self.hook.conn.get_function_configuration(**request)
        except ClientError as err:
            raise _aws_error("GetFunctionConfiguration", request, err) from err

    @staticmethod
    def _log_group_of(configuration: dict[str, Any]) -> str:
        custom = (configuration.get("LoggingConfig") or {}).get("LogGroup")
        return custom or f"/aws/lambda/{configuration['FunctionName']}"

    def _checked_log_group(self, log_group: Any) -> str:
        """Refuse at parse time a `log_group` CloudWatch Logs could not hold: the task would wait out its deadline."""
        try:
            return check_log_group_name(log_group)
        except LambdaInvokeInputError as err:
            raise LambdaInvokeInputError(f"{type(self).__name__} {self.task_id}: {err}") from None

    def _check_log_group(self, log_group: str, configuration: dict[str, Any]) -> None:
        """Before invoking, refuse a `log_group` that does not exist and that Lambda will not create, since it
        writes the function's lines elsewhere; warn of the function's own custom group missing.

        Lambda creates the group it writes to (``/aws/lambda/<name>``, or its ``LoggingConfig.LogGroup``) on
        the first write, given the execution role's ``logs:CreateLogGroup``: only the default one is not asked
        about. Access denied on ``DescribeLogGroups`` leaves the group unchecked, with a warning.
        """
        function = configuration["FunctionName"]
        if log_group == default_log_group(function):
            return
        who = f"{type(self).__name__} {self.task_id}"
        request = {"logGroupNamePrefix": log_group}
        try:
            answer = self._logs_client().describe_log_groups(**request)
        except ClientError as err:
            message = err.response.get("Error", {}).get("Message", err)
            if error_code(err) not in ACCESS_DENIED_CODES:
                raise LambdaInvokeError(
                    f"{who}: DescribeLogGroups of {log_group} (the log group of {self.function_name}) failed with "
                    f"{error_code(err)}: {message}"
                ) from err
            self.log.warning(
                "%s: log group %s of %s could not be checked (DescribeLogGroups: %s: %s); invoking anyway",
                who,
                log_group,
                self.function_name,
                error_code(err),
                message,
            )
            return
        if named_in(answer, log_group):
            return
        own = self._log_group_of(configuration)
        answered = f"DescribeLogGroups (logGroupNamePrefix {log_group}) answered {describe_answer(answer)}"
        if log_group != own:
            raise LambdaInvokeInputError(
                f"{who}: {self.function_name} was not invoked: log group {log_group} (log_group) does not exist, "
                f"and nothing will create it: Lambda writes {function}'s lines to {own}. {answered}"
            )
        self.log.warning(
            "%s: log group %s (LoggingConfig.LogGroup of %s) does not exist yet: Lambda creates it on the "
            "function's first write if its execution role may (logs:CreateLogGroup); otherwise the task waits "
            "out its deadline. %s",
            who,
            log_group,
            self.function_name,
            answered,
        )

    def _logs_client(self) -> Any:
        """Return a CloudWatch Logs client on the operator's connection, region and botocore config."""
        return AwsLogsHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify, config=self.botocore_config
        ).conn

    def _warn_about_async_config(self) -> None:
        """Warn when Lambda may retry a failed event, or keep it queued longer than this task waits for it."""
        request: dict[str, Any] = {"FunctionName": self.function_name}
        if self.qualifier:
            request["Qualifier"] = self.qualifier
        try:
            config = self.hook.conn.get_function_event_invoke_config(**request)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                self.log.warning("Could not read the async invoke config of %s: %s", self.function_name, err)
                return
            config = {}
        retries = config.get("MaximumRetryAttempts", LAMBDA_DEFAULT_ASYNC_RETRIES)
        if retries:
            self.log.warning(
                "%s may be retried by Lambda up to %s time(s) after a failure (MaximumRetryAttempts); this task "
                "reports the first attempt's outcome and does not wait for retries. Set MaximumRetryAttempts to 0 "
                "and use Airflow's retries instead.",
                self.function_name,
                retries,
            )
        max_age = config.get("MaximumEventAgeInSeconds", LAMBDA_DEFAULT_MAX_EVENT_AGE_SECONDS)
        if max_age > self.queue_allowance_seconds:
            self.log.warning(
                "%s keeps a queued event up to %s s (MaximumEventAgeInSeconds), longer than this task's "
                "queue_allowance_seconds (%s s): the event may run after the task gave up on it, even after an "
                "Airflow retry invoked again. Set MaximumEventAgeInSeconds to %d or less (Lambda's minimum is 60), "
                "or raise queue_allowance_seconds to %s.",
                self.function_name,
                max_age,
                self.queue_allowance_seconds,
                max(int(self.queue_allowance_seconds), 60),
                max_age,
            )

    def _check_tenant(self, configuration: dict[str, Any]) -> str | None:
        """Return the tenant id to send; refuse one the function cannot take, or its absence where needed."""
        try:
            tenant_id = check_tenant_id(self.tenant_id)
        except LambdaInvokeInputError as err:
            raise LambdaInvokeInputError(f"{type(self).__name__} {self.task_id}: {err}") from None
        isolated = (configuration.get("TenancyConfig") or {}).get("TenantIsolationMode") == "PER_TENANT"
        if isolated and tenant_id is None:
            raise LambdaInvokeInputError(
                f"{type(self).__name__} {self.task_id}: {self.function_name} isolates tenants "
                "(TenancyConfig PER_TENANT): give tenant_id"
            )
        if tenant_id is not None and not isolated:
            raise LambdaInvokeInputError(
                f"{type(self).__name__} {self.task_id}: {self.function_name} does not isolate tenants, "
                f"so it takes no tenant_id (got {tenant_id!r})"
            )
        return tenant_id

    def _check_logging_controls(self, configuration: dict[str, Any]) -> bool:
        """Refuse (before invoking) an ``Event`` invocation whose success the function's LoggingConfig hides,
        unless allowed; return whether the trigger may count a quiet deadline as success."""
        controls = LoggingControls.from_configuration(configuration)
        if not controls.correlation_lines_visible:
            self.log.info(
                "%s logs at ApplicationLogLevel %s: its INFO lines (the correlation id's among them) are not "
                "sent; the invocation is followed by its request id",
                self.function_name,
                controls.application_log_level,
            )
        reason = hidden_success(
            controls,
            invocation_type=self.invocation_type,
            end_marker=self.end_marker,
            end_marker_level=self.end_marker_level,
        )
        if reason is None:
            if self.invocation_type == "Event" and not controls.platform_success_visible:
                self.log.warning(
                    "%s has SystemLogLevel %s, which hides Lambda's START, END and REPORT of a successful request: "
                    "success will be seen only if the function logs its end marker %r at %s or above (a level "
                    "ApplicationLogLevel %s sends). A function that never logs it ends in a timeout that says so.",
                    self.function_name,
                    controls.system_log_level,
                    self.end_marker,
                    self.end_marker_level,
                    controls.application_log_level,
                )
            return False
        if not self.allow_hidden_success:
            raise LambdaInvokeInputError(
                f"{type(self).__name__} {self.task_id}: {self.function_name} was not invoked: {reason}"
            )
        if configuration.get("CapacityProviderConfig"):
            # Managed Instances write no platform.runtimeDone (reported by one source): at SystemLogLevel WARN a
            # timeout or a crash would leave no line either, and "no failure by the deadline" would call it success.
            raise LambdaInvokeInputError(
                f"{type(self).__name__} {self.task_id}: {self.function_name} was not invoked: it runs on Lambda "
                f"Managed Instances with SystemLogLevel {controls.system_log_level}, where a timed-out or crashed "
                "request may leave no line at all (Managed Instances write no platform.runtimeDone), so "
                "allow_hidden_success=True could count a failure as success. Set SystemLogLevel to INFO, log the "
                "end marker at a level that is sent, or invoke with invocation_type='RequestResponse'"
            )
        self.log.warning("%s: %s; allow_hidden_success=True, so proceeding", self.function_name, reason)
        return True

    def _hidden_platform_level(self, configuration: dict[str, Any], *, durable: bool) -> str | None:
        """Return the SystemLogLevel that hides a successful ``Event`` request's START, END and REPORT, if any
        (a durable execution's status decides it instead; a ``RequestResponse`` response tells its outcome)."""
        controls = LoggingControls.from_configuration(configuration)
        if durable or self.invocation_type != "Event" or controls.platform_success_visible:
            return None
        return controls.system_log_level

    def _invoke(
        self, payload: bytes, function_timeout: int, tenant_id: str | None = None, execution_name: str | None = None
    ) -> dict[str, Any]:
        """Invoke once: the client never retries (a retried invoke can run the function twice).

        A durable execution is named, so invoking again with the same name and payload is safe: Lambda
        answers the execution it already has.
        """
        if execution_name is not None:
            function_timeout = min(function_timeout, DURABLE_SYNC_LIMIT_SECONDS)
        invoke_config = Config(
            read_timeout=function_timeout + READ_TIMEOUT_MARGIN_SECONDS,
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        client = self.hook.get_client_type(config=self.hook.config.merge(invoke_config))
        request: dict[str, Any] = {
            "FunctionName": self.function_name,
            "InvocationType": self.invocation_type,
            "Payload": payload,
        }
        if self.qualifier:
            request["Qualifier"] = self.qualifier
        if tenant_id is not None:
            request["TenantId"] = tenant_id
        if execution_name is not None:
            request["DurableExecutionName"] = execution_name
        try:
            response = client.invoke(**request)
        except ClientError as err:
            if error_code(err) == "DurableExecutionAlreadyStartedException":
                raise LambdaInvokeError(
                    f"Invoke of {self.function_name} refused: durable execution {execution_name} already exists "
                    "with another payload (the payload changed between two runs of this try, or "
                    f"durable_execution_name is reused). Lambda said: {err.response.get('Error', {}).get('Message')}"
                ) from err
            raise _aws_error("Invoke", request, err) from err
        except ReadTimeoutError as err:
            raise LambdaInvokeError(
                f"Invoke of {self.function_name} got no answer within "
                f"{function_timeout + READ_TIMEOUT_MARGIN_SECONDS}s; "
                "the function may still be running and was not invoked again"
            ) from err
        expected = 202 if self.invocation_type == "Event" else 200
        if response.get("StatusCode") != expected:
            raise LambdaInvokeError(
                f"Invoke of {self.function_name} answered status {response.get('StatusCode')}, expected {expected}"
            )
        return response

    def _read_response(self, response: dict[str, Any]) -> tuple[dict[str, Any] | None, Any]:
        """Return what a ``RequestResponse`` call said (for the trigger) and its result (for XCom).

        Invoke has run, so no shape of result may fail the task (its retry would run the function again): a
        result nested deeper than `MAX_JSON_DEPTH` is returned as its JSON text, a string, with a warning, as
        a result that is not JSON is; parsed, it would fail Python's json or Airflow's serializers.
        """
        if self.invocation_type != "RequestResponse":
            return None, None
        body = response["Payload"].read().decode("utf-8", "replace") if response.get("Payload") else ""
        parsed: Any = body
        if body and json_text_too_deep(body):
            if not response.get("FunctionError"):
                self.log.warning(
                    "The result of %s (request %s) nests arrays and objects more than %d levels deep "
                    "(MAX_JSON_DEPTH): the task returns it as its JSON text, a string, rather than fail after the "
                    "function ran",
                    self.function_name,
                    response.get("ResponseMetadata", {}).get("RequestId"),
                    MAX_JSON_DEPTH,
                )
        else:
            try:
                parsed = json.loads(body, parse_constant=_refuse_constant) if body else None
            except ValueError:
                parsed = body
        if not response.get("FunctionError"):
            return vars(KnownResult(failed=False)), parsed
        error = parsed if isinstance(parsed, dict) else {"errorMessage": body}
        stack = error.get("stackTrace")
        known = KnownResult(
            failed=True,
            error_type=str(error.get("errorType") or response["FunctionError"]),
            error_message=str(error.get("errorMessage", "")),
            stack_trace="".join(stack) if isinstance(stack, list) else (str(stack) if stack else None),
        )
        self.log.error("%s returned an error: %s: %s", self.function_name, known.error_type, known.error_message)
        return vars(known), None


# The settings a task started in the triggerer is built again from (`start_kwargs`).
START_KWARGS = (
    "function_name",
    "payload",
    "qualifier",
    "invocation_type",
    "correlation_id",
    "correlation_id_key",
    "log_group",
    "end_marker",
    "poll_interval",
    "settle_seconds",
    "queue_allowance_seconds",
    "ingestion_allowance_seconds",
    "max_wait_seconds",
    "max_lines",
    "max_bytes",
    "min_defer_seconds",
    "tenant_id",
    "end_marker_level",
    "allow_hidden_success",
    "fail_fast",
    "durable_execution_name",
    "stop_execution_on_kill",
    "end_from_trigger",
    "durable",
    # The base operator's and the AWS hook's.
    "aws_conn_id",
    "region_name",
    "verify",
    "botocore_config",
    "do_xcom_push",
)
# Where Airflow finds the trigger that starts a task in the triggerer (its public path).
START_TRIGGER_PATH = "airflow_lambda_deferrable.triggers.LambdaStartTrigger"
# Airflow switched start_from_trigger off in 3.0 to 3.2 and back on in 3.3 (apache/airflow PR #55068).
START_FROM_TRIGGER_SINCE = (3, 3)


def airflow_version() -> tuple[int, int]:
    """The running Airflow's (major, minor)."""
    from airflow import __version__ as version

    major, minor = version.split(".")[:2]
    return int(major), int("".join(char for char in minor if char.isdigit()) or 0)


def start_from_trigger_problem(
    start_from_trigger: Any, *, durable: bool | None, payload: Any, airflow_version: tuple[int, int]
) -> str | None:
    """Why a task may not start in the triggerer, or ``None`` if it may."""
    if start_from_trigger is not True:
        return f"must be True or False, got {start_from_trigger!r}"
    if durable is not True:
        return (
            "only for a durable function, declared with durable=True: Lambda has no idempotency key for a plain "
            "invocation, so a triggerer restarted while invoking could invoke it twice (a durable execution's "
            "name makes a second Invoke return the same execution)"
        )
    if airflow_version < START_FROM_TRIGGER_SINCE:
        return (
            f"needs Airflow {'.'.join(map(str, START_FROM_TRIGGER_SINCE))} or later (3.0 to 3.2 switched it off); "
            f"this is Airflow {'.'.join(map(str, airflow_version))}"
        )
    if isinstance(payload, bytes | bytearray):
        return "give the payload as a dict or a JSON string: the triggerer's kwargs are stored as JSON"
    return None


def default_deferrable() -> bool:
    """Return ``deferrable`` for a task that does not set it: ``True`` unless the deployment turned
    ``[operators] default_deferrable`` off in its environment.

    The Amazon provider's operators default to the option itself, which Airflow sets to False; this
    operator exists to defer, so only a deployment's own choice turns that off. Airflow writes
    ``default_deferrable = false`` into every ``airflow.cfg`` it generates, so a False read from the file
    cannot be told from Airflow's default; one from ``AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE`` can. True,
    from anywhere, is followed.
    """
    if conf.getboolean("operators", "default_deferrable", fallback=False):
        return True
    return DEFAULT_DEFERRABLE_ENV not in os.environ


def _aws_error(operation: str, request: dict[str, Any], err: ClientError) -> LambdaInvokeError:
    """Return an error naming the call, the function and AWS's error code and message."""
    error = err.response.get("Error", {})
    target = request["FunctionName"] + (f":{request['Qualifier']}" if request.get("Qualifier") else "")
    return LambdaInvokeError(
        f"{operation} of {target} failed with {error.get('Code', 'Unknown')}: {error.get('Message', err)}"
    )


def _refuse_constant(name: str) -> Any:
    """Refuse ``NaN`` and ``Infinity`` in JSON: they are not JSON, and Airflow could not store them."""
    raise ValueError(f"{name} is not JSON")


async def _first_event(trigger: LambdaInvocationTrigger) -> dict[str, Any]:
    """Run the trigger in the worker and return its event's payload (``deferrable=False``)."""
    async for event in trigger.run():
        return event.payload
    raise LambdaInvokeError(f"LambdaInvocationTrigger for {trigger.settings.function_name} ended without an event")
