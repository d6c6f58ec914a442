"""Turns on the event loop: CPU work in chunks, one chunk per pass of the loop, whoever asks."""

from __future__ import annotations

import asyncio

import pytest

from airflow_lambda_deferrable.runtime import loop_turns as loop_turns_module
from airflow_lambda_deferrable.runtime.loop_turns import LoopTurns, loop_turns


@pytest.mark.asyncio
async def test_work_comes_in_chunks_with_a_pause_after_each():
    journal: list[object] = []

    async def pause() -> None:
        journal.append("pause")

    def work(chunk):
        journal.append(len(chunk))
        return [item * 2 for item in chunk]

    turns = LoopTurns(chunk=3, pause=pause)
    assert await turns.flat_map(list(range(10)), work) == [item * 2 for item in range(10)]
    assert journal == [3, "pause", 3, "pause", 3, "pause", 1, "pause"]
    assert (turns.chunks, turns.largest_chunk) == (4, 3)


@pytest.mark.asyncio
async def test_many_tasks_woken_together_do_one_chunk_per_pass_of_the_loop():
    # A ticker notes each pass of the loop (sleep(0) puts it back at the end of the ready queue): the work
    # noted between two ticks ran in one pass, without a timer or I/O getting in between.
    turns = LoopTurns(chunk=5)
    journal: list[str | int] = []
    go = asyncio.Event()
    stop = False

    async def ticker() -> None:
        while not stop:
            journal.append("tick")
            await asyncio.sleep(0)

    async def trigger(items: int) -> None:
        await go.wait()  # all woken in the same pass, as one full read wakes its subscribers
        await turns.map(list(range(items)), lambda chunk: journal.append(len(chunk)))

    ticking = asyncio.create_task(ticker())
    triggers = [asyncio.create_task(trigger(items)) for items in (12, 3, 40, 7, 1, 25)]
    await asyncio.sleep(0)
    go.set()
    await asyncio.gather(*triggers)
    stop = True
    await ticking

    per_pass: list[int] = []
    for entry in journal:
        if entry == "tick":
            per_pass.append(0)
        elif per_pass:
            per_pass[-1] += int(entry)
    assert sum(per_pass) == 12 + 3 + 40 + 7 + 1 + 25  # no work lost
    assert max(per_pass) <= 5  # never more than one chunk in a pass, though six tasks had work


@pytest.mark.asyncio
async def test_the_loops_turns_use_the_configured_chunk(monkeypatch):
    monkeypatch.setattr(loop_turns_module, "WORK_CHUNK", 7)
    turns = loop_turns()
    assert turns is loop_turns()  # one per loop
    assert turns.chunk == 7


def test_a_chunk_must_hold_something():
    with pytest.raises(ValueError, match="at least 1"):
        LoopTurns(chunk=0)
