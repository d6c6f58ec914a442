"""Only our invocation decides its verdict: foreign requests with our correlation id, forged platform lines
and a straggling batch, against moto in server mode (real HTTP, real aiobotocore), read by the real trigger."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from airflow_lambda_deferrable.tuning import MIN_READ_GAP_SHARE
from tests import lambda_lines as lines
from tests.test_shared_poller import more_full_reads
from tests.test_triggers import CID, GROUP, RID, first_event, live_lines, make_trigger, messages

CHILDREN = [f"cccccccc-0000-4000-8000-{index:012d}" for index in range(500)]
# Full reads come at least `MIN_READ_GAP_SHARE` of the poll interval apart (0.1 s for these triggers' 0.2 s),
# so this many span two settle windows (0.6 s) or more, however loaded the machine: a verdict due on the
# lines read so far would have come.
READS_PAST_SETTLING = math.ceil(2 * 0.6 / (MIN_READ_GAP_SHARE * 0.2)) + 1


@pytest.mark.asyncio
async def test_requests_that_carry_our_correlation_id_but_are_not_ours_decide_nothing(logs_client):
    """The function re-invoked itself with its own event 500 times: each child logs our correlation id with
    its own request id and ends well; a line forges our end in another request; ours fails at its end."""
    stamp = lines.now_ms()
    lines.put_at(logs_client, GROUP, [(stamp, lines.start(RID)), (stamp + 1, lines.powertools(CID, RID, "started"))])
    children = [(stamp + 10 + n, lines.powertools(CID, child, "Function ended")) for n, child in enumerate(CHILDREN)]
    lines.put_at(logs_client, GROUP, children, stream="2026/12/06/[$LATEST]children")
    forged = [
        (stamp + 20, lines.powertools(CID, CHILDREN[0], "Function ended")),
        (stamp + 21, lines.report(RID, status="success")),  # our REPORT, printed in another stream
        (stamp + 22, lines.end(RID)),
    ]
    lines.put_at(logs_client, GROUP, forged, stream="2026/12/06/[$LATEST]forger")
    trigger_task = asyncio.ensure_future(first_event(make_trigger()))
    await more_full_reads(GROUP, READS_PAST_SETTLING)  # the foreign lines are read: they must not have decided
    assert not trigger_task.done()
    lines.put_at(
        logs_client,
        GROUP,
        [
            (stamp + 900, lines.unhandled("ValueError", "ours failed")),
            (stamp + 901, lines.end(RID)),
            (stamp + 902, lines.report(RID)),
        ],
    )
    payload = await trigger_task
    assert payload["status"] == "failed" and "ours failed" in payload["message"]
    assert not any("cccccccc" in str(line.get("request_id")) for line in payload["lines"])
    assert "Function ended" not in messages(payload)
    assert payload["foreign_lines"] == len(CHILDREN) + 1  # each child's line, and the one claiming a child


@pytest.mark.asyncio
async def test_a_straggling_batch_with_start_and_the_error_line_is_waited_for(logs_client):
    """The whole stream but END is ingested late: END alone must not make a success."""
    stamp = lines.now_ms()
    lines.put_at(logs_client, GROUP, [(stamp + 3000, lines.end(RID)), (stamp + 3001, lines.report(RID))])
    trigger_task = asyncio.ensure_future(first_event(make_trigger(deadline=time.time() + 30)))
    await more_full_reads(GROUP, READS_PAST_SETTLING)  # several settle windows pass with END read
    assert not trigger_task.done()
    lines.put_at(logs_client, GROUP, [(stamp, lines.start(RID)), (stamp + 1, lines.unhandled("KeyError", "'x'"))])
    payload = await trigger_task
    assert payload["status"] == "failed" and "KeyError" in payload["message"]
    assert messages(payload)[:2] == [lines.start(RID), "KeyError: 'x'"]


async def output_with(capfd, text: str) -> str:
    """Wait until the process has printed `text`; return what it printed up to then."""
    printed = ""
    async with asyncio.timeout(60):
        while text not in printed:
            await asyncio.sleep(0.05)
            printed += capfd.readouterr().out
    return printed


@pytest.mark.asyncio
async def test_a_trigger_started_late_shows_live_only_what_was_ingested_after_it_started(logs_client, capfd):
    """A restarted triggerer's trigger: the lines ingested before it started may have been shown live by the
    triggerer before it, so it shows only the later ones, says so, and the event still holds every line."""
    lines.put(logs_client, GROUP, [lines.start(RID), lines.powertools(CID, RID, "before the restart")])
    ingested_ms = max(event["ingestionTime"] for event in logs_client.filter_log_events(logGroupName=GROUP)["events"])
    # A restarted trigger starts seconds or more after the lines its predecessor showed. Started within a few
    # ms of their ingestion, it could place them on either side of its start (its clock is two readings: on
    # CI, moto's thread once took the GIL between them), so it starts a second after, by moto's clock.
    while time.time() * 1000 < ingested_ms + 1000:
        await asyncio.sleep(0.05)
    late = make_trigger(invoked_at=time.time() - 60)
    trigger_task = asyncio.ensure_future(first_event(late))
    # The trigger has started, and read the first lines, once it says what it shows live.
    printed = await output_with(capfd, "only lines CloudWatch Logs ingests from now on are shown live here")
    lines.put(logs_client, GROUP, [lines.powertools(CID, RID, "after the restart"), lines.end(RID), lines.report(RID)])
    payload = await trigger_task
    printed += capfd.readouterr().out
    live = [text for _, text in live_lines(printed)]
    assert any(text.endswith("after the restart") for text in live)
    assert not any("before the restart" in text for text in live)
    assert "only lines CloudWatch Logs ingests from now on are shown live here" in printed
    assert {"before the restart", "after the restart"} <= set(messages(payload))


@pytest.mark.asyncio
async def test_a_trigger_started_right_after_the_invoke_shows_every_line_live(logs_client, capfd):
    lines.put(logs_client, GROUP, [lines.start(RID), lines.powertools(CID, RID, "early"), lines.end(RID)])
    await first_event(make_trigger())
    live = [text for _, text in live_lines(capfd.readouterr().out)]
    assert any(text.endswith("early") for text in live)
