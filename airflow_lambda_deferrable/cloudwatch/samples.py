"""A one-second sample of the streams of running requests, after a full read by request lines: the busy
ones are then read alone with ``GetLogEvents`` when their requests end."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from botocore.exceptions import BotoCoreError

from airflow_lambda_deferrable.cloudwatch.busy_streams import (
    MAX_STREAMS_KEPT,
    busy_in_sample,
    sample_slice,
    sampled_enough,
    to_sample,
)
from airflow_lambda_deferrable.cloudwatch.group_state import GroupState
from airflow_lambda_deferrable.cloudwatch.pages import CallFailed

log = logging.getLogger(__name__)


class Samples:
    """Samples the streams of one log group's running requests."""

    def __init__(self, group: GroupState) -> None:
        self.group = group

    async def sample_quietly(self, client: Any) -> None:
        """`_sample_running`, whose failure (after one try) is only logged: it saves bytes, nothing waits for it."""
        try:
            await self._sample_running(client)
        except (CallFailed, BotoCoreError) as err:
            log.warning("%s: a sample of running requests' streams failed, skipped: %s", self.group.log_group, err)

    async def _sample_running(self, client: Any) -> None:
        """Read one second of the streams whose requests run (one call: `busy_streams.to_sample`; a stream that
        shows no line may be held back by a late batch and is sampled again, `sampled_enough`), and note the
        busy ones. Read by request lines, a request's lines without ids come with its stretch when it ends: a
        busy stream's with GetLogEvents from the start, not after pages of FilterLogEvents at twice the bytes.
        The sample's lines are only counted: the stretches bring them."""
        if self.group.stream_reads_refused:
            return
        first, last = sample_slice(self.group.window_clock.now_ms())
        running: dict[str, int] = {}
        for subscription in self.group.subscriptions:
            for stream, start in subscription.running.items():
                if stream not in self.group.busy_streams:  # the latest request (an earlier one's end may be late)
                    running[stream] = max(start, running.get(stream, start))
        streams = to_sample(running, first, self.group.sampled)
        if not streams:
            return
        counts: Counter[str] = Counter()
        async for page in self.group.pages.read(
            client, (), "sample", max_retries=0, logStreamNames=streams, startTime=first, endTime=last
        ):
            counts.update(str(event.get("logStreamName", "")) for event in page)
        self.group.busy_streams.add_all(busy_in_sample(counts))
        requests = [(stream, running[stream]) for stream in streams]
        self.group.sample_tries.update(requests)
        self.group.sampled.add_all(
            request for request in requests if sampled_enough(counts[request[0]], self.group.sample_tries[request])
        )
        if len(self.group.sample_tries) > MAX_STREAMS_KEPT:
            self.group.sample_tries.clear()
