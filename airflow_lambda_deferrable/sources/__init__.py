"""The completion sources a trigger runs. A new source is a module here and one line in `SOURCES`.

Each entry takes the trigger, as a `context.SourceContext`, and returns a `verdict.evidence.CompletionSource`,
or ``None`` when it does not apply to that invocation.
"""

from __future__ import annotations

from collections.abc import Callable

from airflow_lambda_deferrable.sources import durable_status, invoke_response, log_lines
from airflow_lambda_deferrable.sources.context import SourceContext
from airflow_lambda_deferrable.verdict.evidence import CompletionSource

SOURCES: tuple[Callable[[SourceContext], CompletionSource | None], ...] = (
    invoke_response.source_for,
    log_lines.source_for,
    durable_status.source_for,
)
