"""Reads of requests' stretches of stream: together with ``FilterLogEvents``, or a busy stream alone with
``GetLogEvents`` (`busy_streams.read_alone` decides), each page handed to the subscribers that asked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import aclosing
from typing import Any

from airflow_lambda_deferrable.cloudwatch.busy_streams import (
    read_alone,
)
from airflow_lambda_deferrable.cloudwatch.group_state import GroupState
from airflow_lambda_deferrable.cloudwatch.pages import Page, StreamReadRefused
from airflow_lambda_deferrable.cloudwatch.router import Router
from airflow_lambda_deferrable.cloudwatch.routing import Span, StretchesRead
from airflow_lambda_deferrable.cloudwatch.stretch_plan import alone_from, batches, extents, resume_at
from airflow_lambda_deferrable.cloudwatch.subscription import Subscription
from airflow_lambda_deferrable.runtime import clock

log = logging.getLogger(__name__)


class StretchReads:
    """Serves the stretches of stream the subscribers of one log group ask for."""

    def __init__(self, group: GroupState, router: Router) -> None:
        self.group = group
        self.router = router

    async def read_spans(self, client: Any, served: list[Subscription]) -> None:
        """Serve requested stretches of streams, with one call for up to 100 streams at once. Each page's
        events go to the subscribers that asked for the stretches holding them as it comes (`_hand_over`):
        a read of stretches holds a page, not the stretches."""
        for batch in batches(span for subscription in served for span in subscription.spans):
            concerned = [subscription for subscription in served if subscription.spans.intersection(batch)]
            # Who asked for each stretch as its read begins: one who asks for it meanwhile missed its first
            # pages, and is served by the next read.
            askers = {
                span: [subscription for subscription in concerned if span in subscription.spans] for span in batch
            }
            horizon_ms = clock.ingestion_horizon_ms()
            read: StretchesRead[Subscription] = StretchesRead(askers, horizon_ms=horizon_ms)
            await self._read_batch(client, concerned, batch, read)
            for span, subscriptions in askers.items():
                for subscription in subscriptions:
                    subscription.span_read(span)

    async def _read_batch(
        self, client: Any, concerned: list[Subscription], batch: list[Span], read: StretchesRead[Subscription]
    ) -> None:
        """Read the stretches of `batch`: the streams known busy with GetLogEvents at once, while the others are
        read together with FilterLogEvents (each API has its own budget and quota, so neither waits for the
        other); a stream the read together finds busy is then read alone from where it got to. The first error
        stops the other reads and is raised as it is (the poller tells retryable errors apart)."""
        stretch_of = extents(batch)
        refused = self.group.stream_reads_refused
        busy = [
            stream
            for stream, (start, end) in stretch_of.items()
            if read_alone(
                start_ms=start, end_ms=end, marked_busy=stream in self.group.busy_streams, get_refused=refused
            )
        ]
        alone = self._start_streams(client, concerned, batch, stretch_of, busy, read)
        try:
            found = await self._read_together(client, concerned, stretch_of, busy, read)
            alone += self._start_streams(client, concerned, batch, stretch_of, found, read)
            await asyncio.gather(*alone)
        except BaseException:
            for pending in alone:
                pending.cancel()
            await asyncio.gather(*alone, return_exceptions=True)
            raise

    async def _read_together(
        self,
        client: Any,
        concerned: list[Subscription],
        stretch_of: dict[str, tuple[int, int]],
        busy: list[str],
        read: StretchesRead[Subscription],
    ) -> list[str]:
        """Read the stretches of the streams not in `busy` with FilterLogEvents, all in one read, but for the
        streams `read_alone` picks as its pages come; then the others are read on from where `resume_at` says.
        Return the streams it picked, for `_read_stream`."""
        together = sorted(stream for stream in stretch_of if stream not in busy)
        picked: list[str] = []
        start_ms = read.start_ms
        while together:
            found: list[str] = []
            pages = self.group.pages.read(
                client, concerned, "stretch", logStreamNames=together, startTime=start_ms, endTime=read.end_ms
            )
            async with aclosing(pages):
                async for page in pages:
                    await self._hand_over(page, read)
                    found = [stream for stream in together if self._read_alone_now(stream, stretch_of, read, page)]
                    if found:
                        break
            if not found:
                break
            self.group.busy_streams.add_all(found)
            picked += found
            resume = resume_at(together, stretch_of, read.newest_of, left_out=found)
            together = sorted(resume)
            start_ms = min(resume.values(), default=start_ms)
        return picked

    def _read_alone_now(
        self, stream: str, stretch_of: dict[str, tuple[int, int]], read: StretchesRead[Subscription], page: Page
    ) -> bool:
        """`read_alone` for a stream of a read of stretches under way, after `page`."""
        start, end = stretch_of[stream]
        return read_alone(
            start_ms=start,
            end_ms=end,
            marked_busy=stream in self.group.busy_streams,
            get_refused=self.group.stream_reads_refused,
            more_pages=page.more,
            count=read.count_of(stream),
            newest_ms=read.newest_of(stream),
        )

    def _start_streams(
        self,
        client: Any,
        concerned: list[Subscription],
        batch: list[Span],
        extent_of: dict[str, tuple[int, int]],
        streams: list[str],
        read: StretchesRead[Subscription],
    ) -> list[asyncio.Future[None]]:
        """Start reading each of `streams` alone (the budget of stream reads spaces the calls), from the newest
        event the read together brought of it, or from its stretch's start (`extent_of`: the batch's `extents`)."""
        reads: list[asyncio.Future[None]] = []
        for stream in streams:
            spans = [span for span in batch if span[0] == stream]
            start_ms, end_ms = alone_from(extent_of[stream], read.newest_of(stream))
            asking = [subscription for subscription in concerned if subscription.spans.intersection(spans)]
            reads.append(asyncio.ensure_future(self._read_stream(client, asking, stream, start_ms, end_ms, read)))
        return reads

    async def _read_stream(
        self,
        client: Any,
        concerned: list[Subscription],
        stream: str,
        start_ms: int,
        end_ms: int,
        read: StretchesRead[Subscription],
    ) -> None:
        """Read one busy stream from `start_ms` to `end_ms` with GetLogEvents (with FilterLogEvents if
        GetLogEvents is denied: the permission is new in this release)."""
        if not self.group.stream_reads_refused:
            try:
                async for (
                    page
                ) in self.group.pages.read(  # GetLogEvents leaves `endTime` out, FilterLogEvents counts it in
                    client, concerned, "busy-stream", stream=stream, startTime=start_ms, endTime=end_ms + 1
                ):
                    await self._hand_over(page, read)
                return
            except StreamReadRefused as refused:
                if not self.group.stream_reads_refused:  # once, though busy streams are read at the same time
                    log.warning(
                        "%s: GetLogEvents was refused (%s); reading busy streams with FilterLogEvents from now "
                        "on (allow logs:GetLogEvents on the log group: it has its own quota)",
                        self.group.log_group,
                        refused,
                    )
                self.group.stream_reads_refused = True
        async for page in self.group.pages.read(
            client, concerned, "stretch", logStreamNames=[stream], startTime=start_ms, endTime=end_ms
        ):
            await self._hand_over(page, read)

    async def _hand_over(self, page: Page, read: StretchesRead[Subscription]) -> None:
        """Give a page of a read of stretches to the subscribers that asked for the stretches holding its events
        (`_in_turns`): the read holds a page, not the stretches."""
        read.lower_horizon(page.horizon_ms)

        def hand_out(chunk: Sequence[dict[str, Any]]) -> None:
            for subscription, events in read.hand_out(chunk).items():
                subscription.deliver(events)

        await self.router.in_turns(page, hand_out)
        # What each asker has been given every event of so far: its keys there are let go as the pages come, so
        # a long stretch's read holds about a page of them and a second at each end, not the stretch's.
        streams = {str(event.get("logStreamName", "")) for event in page}
        for subscription, stream, first, last, horizon in read.whole(streams):
            subscription.read_whole(stream, first, last, horizon)
