"""What the triggerer holds for one chatty request: a batch of its events at a time, and a few bytes per event
for the dedupe until a read has brought its stretch whole, whatever the request logs
(`benchmarks/chatty_request.py` measures the memory itself)."""

from __future__ import annotations

import asyncio
import time
import tracemalloc

import pytest

from airflow_lambda_deferrable.cloudwatch import pages
from airflow_lambda_deferrable.cloudwatch.event_keys import EventKeys
from airflow_lambda_deferrable.cloudwatch.shared_poller import LogGroupPoller
from airflow_lambda_deferrable.cloudwatch.subscription import MAX_EVENTS_WAITING, Subscription
from airflow_lambda_deferrable.limits import EVENTS_PER_PAGE
from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger
from airflow_lambda_deferrable.runtime import clock
from airflow_lambda_deferrable.runtime.loop_turns import WORK_CHUNK
from airflow_lambda_deferrable.runtime.rate_limit import RequestBudget
from airflow_lambda_deferrable.sources.log_lines import LogLines
from airflow_lambda_deferrable.tuning import KEY_SLICE_MS
from tests import lambda_lines as lines
from tests.conftest import MOTO_CONN_ID

GROUP = "/aws/lambda/example-lambda-function"
CID = "corr-chatty-0001"
RID = "5b0c7e0e-8a1d-4c1e-9b7a-3f7d2c9e4a11"
# Lines the chatty request logs: ten times what may wait for a trigger (`MAX_EVENTS_WAITING`), and a few
# seconds against moto.
CHATTY_LINES = 20_000
# What PutLogEvents takes in one call.
PUT_BATCH = 10_000


def chatty_request(at: int) -> list[tuple[int, str]]:
    """START, `CHATTY_LINES` lines (every tenth a print without ids, which only the request's stretch of
    stream brings), the end marker, END and REPORT: two lines a millisecond from `at`."""
    body = [
        f"printed row {number}" if number % 10 == 0 else lines.powertools(CID, RID, f"row {number}")
        for number in range(CHATTY_LINES)
    ]
    ended = [lines.powertools(CID, RID, "Function ended"), lines.end(RID), lines.report(RID)]
    messages = [lines.start(RID), *body, *ended]
    return [(at + number // 2, message) for number, message in enumerate(messages)]


@pytest.mark.asyncio
async def test_a_chatty_request_is_followed_a_batch_of_its_events_at_a_time_and_each_line_counts_once(
    logs_client, monkeypatch
):
    at = lines.now_ms() - 30_000
    events = chatty_request(at)
    for first in range(0, len(events), PUT_BATCH):
        lines.put_at(logs_client, GROUP, events[first : first + PUT_BATCH])
    held = {"waiting": 0, "parsed": 0, "keys": 0}
    deliver, accept = Subscription.deliver, LogLines._accept

    def noting_deliver(self, routed):
        deliver(self, routed)
        held["waiting"] = max(held["waiting"], len(self.inbox))
        held["keys"] = max(held["keys"], len(self.delivered))

    span_read = Subscription.span_read
    kept_after_stretch: list[int] = []

    def noting_span_read(self, span):
        span_read(self, span)
        kept_after_stretch.append(len(self.delivered))

    async def noting_accept(self, taken, subscription, log):
        held["parsed"] = max(held["parsed"], len(taken))
        return await accept(self, taken, subscription, log)

    monkeypatch.setattr(Subscription, "deliver", noting_deliver)
    # moto keeps this host's time and finds an event as soon as it is put: the reads may count on what was
    # ingested up to the moment they begin, as they would on lines ingested a while before. (Its answers'
    # Date, cut to the second, would make that depend on where the second falls: the host's clock alone.)
    monkeypatch.setattr(clock, "INGESTION_HORIZON_MARGIN_MS", 0)
    monkeypatch.setattr(pages, "answer_horizon_ms", lambda response, took: None)
    monkeypatch.setattr(Subscription, "span_read", noting_span_read)
    monkeypatch.setattr(LogLines, "_accept", noting_accept)
    trigger = LambdaInvocationTrigger(
        function_name="example-lambda-function",
        log_group=GROUP,
        correlation_id=CID,
        request_id=RID,
        invoked_at=at / 1000 - 1,
        deadline=time.time() + 60,
        aws_conn_id=MOTO_CONN_ID,
        poll_interval=0.2,
        settle_seconds=0.6,
        max_lines=50,
    )

    async def first_payload() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    payload = await asyncio.wait_for(first_payload(), 60)
    assert payload["status"] == "success"
    assert len(payload["lines"]) + payload["omitted_lines"] == len(events)  # each line once, none lost
    # Held at once: a batch, and what a chunk of routing adds before the poller waits (the whole read was held
    # before: all 20,004 events, then as many parsed lines).
    bound = MAX_EVENTS_WAITING + WORK_CHUNK
    assert held["waiting"] <= bound, held
    assert held["parsed"] <= bound, held
    # Once the request's stretch was read whole, the dedupe lets go of the keys of every second it covers: at
    # most those of the seconds at its two ends are left (two lines a millisecond), not one per line.
    assert kept_after_stretch, "the request's stretch was never read"
    assert kept_after_stretch[-1] <= 2 * 2 * KEY_SLICE_MS, kept_after_stretch
    # While reads by ids bring the request's lines from its start, each page lets go of the keys of the lines
    # before its newest one: at most a page's keys and a second's are held (all 20,004 were, before).
    assert held["keys"] <= EVENTS_PER_PAGE + 2 * KEY_SLICE_MS, held


def idle_subscription() -> Subscription:
    """A subscriber of a poller that never runs: the test gives it events as routing would."""
    return Subscription(
        poller=LogGroupPoller(log_group=GROUP, client_factory=lambda: None, budget=RequestBudget(5.0)),
        terms=[CID],
        start_ms=0,
        ingestion_allowance_ms=120_000,
        poll_interval=5.0,
    )


def test_a_subscriber_remembers_each_event_it_was_given_in_a_few_bytes_until_its_stretch_is_read_whole():
    # The dedupe keeps a key per event given (overlapping reads bring events again): 8 bytes and a little,
    # where a set of Python ints took about 60; once a read brought the stream's stretch whole, none.
    count = 100_000
    subscription = idle_subscription()
    events = [
        {"logStreamName": "s", "timestamp": number // 3, "message": f"row {number}", "ingestionTime": 0}
        for number in range(count)
    ]
    EventKeys().assign(events)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for first in range(0, count, WORK_CHUNK):  # as routing gives them
            subscription.deliver(events[first : first + WORK_CHUNK])
            subscription.take_new()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(subscription.delivered) == count
    assert kept / count <= 16, f"{kept / count:.1f} bytes per event"
    subscription.deliver(events)
    assert subscription.take_new() == []  # each event once
    last = events[-1]["timestamp"]
    subscription.read_whole("s", 0, last, horizon_ms=1)
    # Only the keys of the last second, which the range covers in part, are left.
    assert len(subscription.delivered) == sum(
        event["timestamp"] // KEY_SLICE_MS == last // KEY_SLICE_MS for event in events
    )
    subscription.deliver(events)
    assert subscription.take_new() == []  # still once


def test_a_followed_streams_keys_stay_within_what_the_reads_have_not_covered_whole_whatever_it_logs():
    # As the reads follow a stream: each brings the last second again (the lookback) and then the new ones;
    # the stream is whole up to a second before the newest line. Keys held stay at about two seconds' lines.
    per_second, seconds = 2_000, 60
    subscription = idle_subscription()
    events = [
        {"logStreamName": "s", "timestamp": number * 1_000 // per_second, "message": f"n{number}", "ingestionTime": 0}
        for number in range(per_second * seconds)
    ]
    EventKeys().assign(events)
    most_kept = given = 0
    for second in range(1, seconds):
        window = events[(second - 1) * per_second : (second + 1) * per_second]
        subscription.deliver(window)
        given += len(subscription.take_new())
        subscription.read_whole("s", 0, second * 1_000 - 1, horizon_ms=1)
        most_kept = max(most_kept, len(subscription.delivered))
    assert given == len(events)  # each once
    assert most_kept <= 2 * per_second, most_kept
