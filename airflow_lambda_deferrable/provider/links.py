"""A task's extra link to its invocation's lines in the CloudWatch console."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


def _console_escape(text: str) -> str:
    """Escape for the console's ``#logsV2:`` fragment, which uses ``$`` where a URL uses ``%``."""
    return quote(quote(text, safe=""), safe="").replace("%", "$")


_now = time.time  # the clock of "until then, now" (tests replace it)

# The range starts this long before the invocation: the worker's clock and Lambda's may disagree a little.
CLOCK_SKEW_MARGIN_SECONDS = 60


class LambdaInvocationLogsLink(BaseAwsLink):
    """Open the function's log group in the CloudWatch console, filtered to the correlation id, over the
    invocation's time range: from when it was invoked to when the task learned its outcome (until then, now).
    """

    name = "CloudWatch Logs (this invocation)"
    key = "lambda_invocation_logs"
    format_str = (
        BASE_AWS_CONSOLE_LINK
        + "/cloudwatch/home?region={region_name}#logsV2:log-groups/log-group/{log_group}"
        + "/log-events$3FfilterPattern$3D{filter_pattern}{time_range}"
    )

    def format_link(self, **kwargs: Any) -> str:
        """Return the link, or "" when the task has not stored what it needs.

        :param invoked_at: epoch seconds of the invocation; the range starts there (less a clock-skew margin).
        :param ended_at: epoch seconds when the task learned the outcome; the range ends there, or at the
            time the link is shown while the invocation is still followed.
        """
        if "log_group" not in kwargs or "correlation_id" not in kwargs:
            return ""
        time_range = ""
        if isinstance(kwargs.get("invoked_at"), int | float):
            start_ms = int((kwargs["invoked_at"] - CLOCK_SKEW_MARGIN_SECONDS) * 1000)
            ended_at = kwargs.get("ended_at")
            end_ms = int((ended_at if isinstance(ended_at, int | float) else _now()) * 1000)
            time_range = f"$26start$3D{start_ms}$26end$3D{max(end_ms, start_ms)}"
        return super().format_link(
            **{
                **kwargs,
                "log_group": _console_escape(kwargs["log_group"]),
                "filter_pattern": _console_escape(f'"{kwargs["correlation_id"]}"'),
                "time_range": time_range,
            }
        )


class LambdaDurableExecutionLink(BaseAwsLink):
    """Open, in the Lambda console, the function version a durable execution runs (the version is part of the
    execution's ARN; an alias is resolved to it). The console's address of one execution is not documented,
    so the link stops at the version, whose page lists its executions; the task log names the execution.
    """

    name = "Lambda console (durable execution)"
    key = "lambda_durable_execution"
    format_str = BASE_AWS_CONSOLE_LINK + "/lambda/home?region={region_name}#/functions/{function}/versions/{version}"

    def format_link(self, **kwargs: Any) -> str:
        """Return the link, or "" when the task started no durable execution.

        :param execution_arn: ``arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME:VERSION/durable-execution/...``
        """
        parts = str(kwargs.get("execution_arn") or "").split(":")
        if len(parts) != 8 or "/durable-execution/" not in parts[7]:
            return ""
        version = parts[7].split("/", 1)[0]
        return super().format_link(
            **{**kwargs, "function": quote(parts[6], safe=""), "version": quote(version, safe="")}
        )
