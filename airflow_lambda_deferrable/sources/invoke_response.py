"""The response of a synchronous invoke: known before the trigger starts, and final."""

from __future__ import annotations

import asyncio

from airflow_lambda_deferrable.sources.context import SourceContext
from airflow_lambda_deferrable.verdict.evidence import Evidence
from airflow_lambda_deferrable.verdict.outcome import KnownResult


class InvokeResponse:
    """Hands the trigger what a ``RequestResponse`` invoke said (success, or the function's error)."""

    def __init__(self, known: KnownResult) -> None:
        self.known = known

    async def gather(self, evidence: Evidence, news: asyncio.Event) -> None:
        evidence.known = self.known
        news.set()


def source_for(trigger: SourceContext) -> InvokeResponse | None:
    known = trigger.settings.known_result
    return InvokeResponse(KnownResult(**known)) if known is not None else None
