"""The completion sources a trigger runs. A new source is a module here and one line in `SOURCES`.

Each entry takes the trigger and returns a `evidence.CompletionSource`, or ``None`` when it does not apply
to that invocation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from airflow_lambda_deferrable.sources import durable_status, invoke_response, log_lines

if TYPE_CHECKING:
    from airflow_lambda_deferrable.evidence import CompletionSource
    from airflow_lambda_deferrable.triggers import LambdaInvocationTrigger

SOURCES: tuple[Callable[[LambdaInvocationTrigger], CompletionSource | None], ...] = (
    invoke_response.source_for,
    log_lines.source_for,
    durable_status.source_for,
)
