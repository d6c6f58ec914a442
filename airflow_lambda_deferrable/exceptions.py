"""Named errors raised by the operator, so a DAG author can tell what went wrong at a glance."""

from __future__ import annotations

from airflow.exceptions import AirflowException


class LambdaInvokeInputError(AirflowException, ValueError):
    """The operator's arguments are invalid; nothing was invoked."""


class LambdaInvokeError(AirflowException):
    """AWS refused a call made before or during the invocation (unknown function, access denied, ...)."""


class LambdaInvocationError(AirflowException):
    """Base class for an invocation that ran (or was queued) but did not end well."""


class LambdaInvocationFailed(LambdaInvocationError):
    """The function failed: an error it logged, an unhandled exception, a Lambda timeout or a crash."""


class LambdaDurableExecutionFailed(LambdaInvocationFailed):
    """A durable execution ended FAILED, TIMED_OUT or STOPPED; the message gives its error type and message."""


class LambdaInvocationTimedOut(LambdaInvocationError):
    """No outcome was seen in CloudWatch Logs before the deadline."""


class LambdaLogsUnavailable(LambdaInvocationError):
    """CloudWatch Logs could not be read for good (for example access denied on the log group)."""


class LambdaTriggerEventInvalid(LambdaInvocationError):
    """The task resumed with a missing or malformed trigger event; never treated as success."""
