"""The response of a synchronous invoke: known before the trigger starts, and final."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from airflow_lambda_deferrable.evidence import Evidence
from airflow_lambda_deferrable.outcome import KnownResult

if TYPE_CHECKING:
    from airflow_lambda_deferrable.triggers import LambdaInvocationTrigger


class InvokeResponse:
    """Hands the trigger what a ``RequestResponse`` invoke said (success, or the function's error)."""

    def __init__(self, known: KnownResult) -> None:
        self.known = known

    async def gather(self, evidence: Evidence, news: asyncio.Event) -> None:
        evidence.known = self.known
        news.set()


def source_for(trigger: LambdaInvocationTrigger) -> InvokeResponse | None:
    known = trigger.settings.known_result
    return InvokeResponse(KnownResult(**known)) if known is not None else None
