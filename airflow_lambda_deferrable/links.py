"""A task's extra link to its invocation's lines in the CloudWatch console."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


def _console_escape(text: str) -> str:
    """Escape for the console's ``#logsV2:`` fragment, which uses ``$`` where a URL uses ``%``."""
    return quote(quote(text, safe=""), safe="").replace("%", "$")


class LambdaInvocationLogsLink(BaseAwsLink):
    """Open the function's log group in the CloudWatch console, filtered to the correlation id."""

    name = "CloudWatch Logs (this invocation)"
    key = "lambda_invocation_logs"
    format_str = (
        BASE_AWS_CONSOLE_LINK
        + "/cloudwatch/home?region={region_name}#logsV2:log-groups/log-group/{log_group}"
        + "/log-events$3FfilterPattern$3D{filter_pattern}"
    )

    def format_link(self, **kwargs: Any) -> str:
        """Return the link, or "" when the task has not stored what it needs."""
        if "log_group" not in kwargs or "correlation_id" not in kwargs:
            return ""
        return super().format_link(
            **{
                **kwargs,
                "log_group": _console_escape(kwargs["log_group"]),
                "filter_pattern": _console_escape(f'"{kwargs["correlation_id"]}"'),
            }
        )
