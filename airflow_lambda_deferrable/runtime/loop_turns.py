"""Take turns on the event loop: the triggers' CPU work in bounded chunks, one chunk at a time.

A triggerer runs every trigger, and Airflow's own heartbeat, in one event loop. One full read of a busy
log group wakes every trigger that follows it at once; if each then parsed all of its new lines in one
go, the loop would run all that work in a single pass and be blocked for seconds. Here the work is cut
into chunks of at most `WORK_CHUNK` items (events parsed, lines kept or logged, events routed), and a
chunk is done only while holding the loop's one turn, which its holder keeps until the loop has made
one more pass (timers, I/O, other tasks): a thousand woken triggers queue for it in arrival order, and
each pass of the loop does at most one chunk.

The triggers share the loop's turns (`loop_turns`); a log group's poller, which serves them all, has turns
of its own, so that routing a page never waits behind a queue of triggers (each pass of the loop then
does at most one trigger's chunk and one chunk per poller).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from airflow_lambda_deferrable.tuning import WORK_CHUNK

Item = TypeVar("Item")
Result = TypeVar("Result")


async def _next_pass() -> None:
    await asyncio.sleep(0)


class LoopTurns:
    """One event loop's turn for CPU work: chunks of at most `chunk` items, one task at a time."""

    def __init__(self, *, chunk: int | None = None, pause: Callable[[], Awaitable[None]] = _next_pass) -> None:
        """:param chunk: items per chunk (`WORK_CHUNK` by default).
        :param pause: what a task awaits after each chunk (by default one pass of the loop)."""
        chunk = WORK_CHUNK if chunk is None else chunk
        if chunk < 1:
            raise ValueError(f"LoopTurns: chunk must be at least 1, not {chunk}")
        self.chunk = chunk
        self._pause = pause
        self._turn = asyncio.Lock()  # asyncio locks serve waiters in arrival order
        self.chunks = 0
        self.largest_chunk = 0

    async def map(self, items: Sequence[Item], work: Callable[[Sequence[Item]], Result]) -> list[Result]:
        """Call `work` on consecutive chunks of `items`, each during a turn; return its results in order.

        :param work: synchronous (it runs while the turn is held; nothing else runs meanwhile).
        """
        results = []
        for first in range(0, len(items), self.chunk):
            chunk = items[first : first + self.chunk]
            async with self._turn:
                self.chunks += 1
                self.largest_chunk = max(self.largest_chunk, len(chunk))
                results.append(work(chunk))
                # Hold the turn over the pause: a task asking for it in this pass of the loop waits for
                # the next one, so that one pass does at most one chunk, however many tasks have work.
                await self._pause()
        return results

    async def flat_map(self, items: Sequence[Item], work: Callable[[Sequence[Item]], list[Result]]) -> list[Result]:
        """Like `map`, with `work` returning a list per chunk; return the lists joined."""
        return [result for part in await self.map(items, work) for result in part]


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopTurns] = weakref.WeakKeyDictionary()


def loop_turns() -> LoopTurns:
    """Return the running loop's turns (made on first use, with `WORK_CHUNK`)."""
    loop = asyncio.get_running_loop()
    turns = _turns.get(loop)
    if turns is None:
        turns = _turns[loop] = LoopTurns()
    return turns
