"""What is known of one invocation so far, and the shape of a source that adds to it. Pure: no I/O.

A trigger runs a few completion sources at once (`airflow_lambda_deferrable.sources.SOURCES`): the invoke
response, the function's log lines, later an execution's status. Each adds what it learns to one
`Evidence` whenever it learns it and says so; the trigger then asks `outcome.decide` again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from airflow_lambda_deferrable.verdict.durable_execution import ExecutionEnd
from airflow_lambda_deferrable.verdict.outcome import InvocationLog, KnownResult


@dataclass
class Evidence:
    """Everything the sources have found about one invocation."""

    log: InvocationLog
    # When the latest complete read of the log began (epoch seconds): lines ingested later may be missing.
    checked_at: float = 0.0
    # What a synchronous invoke's response said.
    known: KnownResult | None = None
    # Why the invocation cannot be followed any further (for an ``error`` event), once a source knows.
    unfollowable: str | None = None
    # Reads asked of the log so far.
    polls: int = 0
    # How a durable execution ended (`GetDurableExecution`), and when that was first seen (epoch seconds).
    execution_end: ExecutionEnd | None = None
    execution_ended_seen_at: float | None = None
    # Set with the two above, for sources that wait on something else meanwhile (the log's slow pace).
    execution_ended: asyncio.Event = field(default_factory=asyncio.Event)


class CompletionSource(Protocol):
    """Something that learns how an invocation is going, for as long as the trigger runs it."""

    async def gather(self, evidence: Evidence, news: asyncio.Event) -> None:
        """Add what is learnt to `evidence` and set `news` each time; return when there is nothing more to
        learn (the trigger cancels the sources once it has decided)."""
        ...
