"""The function's log lines in CloudWatch Logs, read through the log group's poller (`shared_poller`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from typing import Any

from airflow.configuration import conf
from botocore.exceptions import BotoCoreError, ClientError

from airflow_lambda_deferrable.cloudwatch.log_groups import named_in, timeout_note
from airflow_lambda_deferrable.cloudwatch.log_source import error_code
from airflow_lambda_deferrable.cloudwatch.registry import subscribe
from airflow_lambda_deferrable.cloudwatch.subscription import PollNotServed, Subscription
from airflow_lambda_deferrable.runtime.loop_turns import loop_turns
from airflow_lambda_deferrable.runtime.rate_limit import checked_max_rate
from airflow_lambda_deferrable.settings import FollowSettings
from airflow_lambda_deferrable.sources.context import SourceContext
from airflow_lambda_deferrable.tuning import (
    FIRST_START_WITHIN_SECONDS,
    LOG_GROUP_CHECK_SECONDS,
    MIN_STRETCH_TAIL_SECONDS,
    MIN_WAIT_SECONDS,
)
from airflow_lambda_deferrable.verdict.durable_execution import status_read_delay
from airflow_lambda_deferrable.verdict.evidence import Evidence
from airflow_lambda_deferrable.verdict.log_lines import LogLine, parse_event
from airflow_lambda_deferrable.verdict.outcome import InvocationLog, Verdict
from airflow_lambda_deferrable.verdict.task_log_lines import LIVE_LABEL, task_log_line
from airflow_lambda_deferrable.verdict.trigger_event import clip_line


class LogLines:
    """Reads one invocation's lines: each full read of the group, then the request's closed stretches of
    stream (for lines without ids), each read once when the settle window after the request's end is over.

    When the verdict rests on the request's own stream (`settles_by_its_stretch`), that read of its
    stretches, up to the settle window's length past its end, is the read the settle window waits for: the
    trigger does not pull a full read of the group forward for it (at volume, one every half interval).

    The poller retries throttling, transient errors, credentials and connections; the errors it hands
    over (access denied, ...) make the invocation unfollowable.

    Its times are the trigger's (`SourceContext.timeline`), as are the deadline's comparisons.
    """

    def __init__(self, trigger: SourceContext) -> None:
        self.trigger = trigger
        self.settings = trigger.settings
        self.timeline = trigger.timeline
        self.log: logging.Logger = trigger.log
        self._stretches_read: set[tuple[str, int, int]] = set()
        self._shown_live = 0  # lines logged live so far (each new line once)
        # Lines ingested before this (epoch ms) are not shown live: a triggerer before this one may have.
        settings = trigger.settings
        self._live_from_ms = live_from_ms(self.timeline.now(), max(settings.invoked_at, settings.handed_over_at))
        self._said_live_from = False
        self._settles_by_its_stretch = settles_by_its_stretch(trigger.settings)
        # One batch of events is taken in at a time, in the order taken: a read's, or one the intake took while
        # a read brought a chatty request's lines (`_take_in_as_they_come`), which counts its lines here.
        self._taking = asyncio.Lock()
        self._taken_meanwhile = 0

    async def gather(self, evidence: Evidence, news: asyncio.Event) -> None:
        settings = self.settings
        async with subscribe(
            connection_key=settings.connection_key,
            log_group=settings.log_group,
            client_factory=self.trigger.logs_client,
            terms=[settings.correlation_id, *([settings.request_id] if settings.request_id else [])],
            start_ms=settings.start_ms,
            ingestion_allowance_ms=settings.ingestion_allowance_ms,
            poll_interval=settings.poll_interval,
            max_rate=checked_max_rate(conf.get("lambda_deferrable", "max_requests_per_second", fallback=None)),
            shared=conf.getboolean("lambda_deferrable", "shared_poller", fallback=True),
            roaming=settings.durable_execution_arn is not None,  # each replay runs in any environment
            ids_read_live=ids_read_live(settings),
            timeline=self.timeline,
        ) as subscription:
            durable = settings.durable_execution_arn is not None
            hurry = (
                asyncio.create_task(self._hurry_when_the_execution_ends(subscription, evidence)) if durable else None
            )
            intake = asyncio.create_task(self._take_in_as_they_come(subscription, evidence.log))
            try:
                while evidence.unfollowable is None:
                    if intake.done():
                        intake.result()  # its error, raised here
                    settling_read_at = self._settling_read_at(subscription, evidence.log)
                    if settling_read_at is None:
                        await self._read(subscription, evidence)
                    else:
                        await self._read_settling_stretches(subscription, evidence, settling_read_at)
                    news.set()
                    now = self.timeline.now()
                    if durable and evidence.execution_end is None:
                        subscription.pace(status_read_delay(now - settings.invoked_at, settings.poll_interval))
                    wanted = read_wanted_at(
                        evidence.log,
                        now=now,
                        checked_at=evidence.checked_at,
                        settings=settings,
                        execution_ended_seen_at=evidence.execution_ended_seen_at,
                    )
                    if wanted is not None and self._settling_read_at(subscription, evidence.log) is None:
                        subscription.want_read_at(wanted)
            finally:
                intake.cancel()
                if hurry is not None:
                    hurry.cancel()

    async def _hurry_when_the_execution_ends(self, subscription: Subscription, evidence: Evidence) -> None:
        """Back to the task's poll interval once a durable execution has ended, and a read after its settle
        window: the verdict waits for that read (an execution that ran for days was read slowly)."""
        await evidence.execution_ended.wait()
        subscription.pace(self.settings.poll_interval)
        ended_seen_at = evidence.execution_ended_seen_at or self.timeline.now()
        subscription.want_read_at(ended_seen_at + self.settings.settle_seconds)

    async def _read(self, subscription: Subscription, evidence: Evidence) -> None:
        """Take in the next full read of the group, then the request's stretches whose settle window is over."""

        async def read() -> int:
            # The rest of the read, after what the intake took of it: all of it is in once this returns.
            accepted = await self._take(await subscription.fetch_new(), subscription, evidence.log)
            evidence.checked_at = subscription.read_started_at
            accepted += await self._read_stretches(subscription, evidence.log)
            return accepted + await self._accept_routed_meanwhile(subscription, evidence.log)

        await self._take_in(read(), evidence)

    def _settling_read_at(self, subscription: Subscription, log: InvocationLog) -> float | None:
        """When to read the request's closed stretches as the read that ends its settle window (the settle
        window's end, or the deadline if sooner), or ``None`` when a full read must end it: the verdict does
        not rest on the request's stream alone, or the request has not ended, or its stretches are read
        already, or the reads follow one of its streams (its lines come with the full reads)."""
        if not self._settles_by_its_stretch or log.ended_seen_at is None:
            return None
        spans = [span for span in log.closed_spans() if span not in self._stretches_read]
        if not spans or any(subscription.follows_from(stream, start) for stream, start, _ in spans):
            return None
        return min(log.ended_seen_at + self.settings.settle_seconds, self.settings.deadline)

    async def _read_settling_stretches(self, subscription: Subscription, evidence: Evidence, at: float) -> None:
        """At `at`, read the request's closed stretches, each up to the settle window's length past its end (the
        older runtimes' "Task timed out" line comes after REPORT), with what the full reads brought meanwhile;
        the settle window then counts as checked from when the reads were asked for (each began later)."""
        await asyncio.sleep(max(0.0, at - self.timeline.now()))
        log, asked_at = evidence.log, self.timeline.now()
        tail_ms = round(max(self.settings.settle_seconds, MIN_STRETCH_TAIL_SECONDS) * 1000)

        async def read() -> int:
            accepted = await self._take(subscription.take_new(), subscription, log)
            whole = True
            for span in log.closed_spans():
                if span in self._stretches_read:
                    continue
                stream, start, end = span
                whole = whole and not subscription.follows_from(stream, start)
                events = await subscription.fetch_span(stream, start, end + tail_ms)
                accepted += await self._take(events, subscription, log)
                # Only once the read has succeeded; a line of its tail that ends the request (REPORT after
                # END) makes the stretch longer, but what the tail held has been read.
                self._stretches_read.update(
                    later for later in log.closed_spans() if later[:2] == span[:2] and later[2] <= end + tail_ms
                )
            if whole:
                evidence.checked_at = max(evidence.checked_at, asked_at)
            return accepted + await self._accept_routed_meanwhile(subscription, log)

        await self._take_in(read(), evidence)

    async def _accept_routed_meanwhile(self, subscription: Subscription, log: InvocationLog) -> int:
        """Take in what full reads routed here while stretches were read: a full cycle routes its pages before
        it reads the stretches asked for, and a stretch's events that were routed already are not new to it
        (at volume, "Task timed out" came that way, and a verdict decided without it said success)."""
        return await self._take(subscription.take_new(), subscription, log)

    async def _take_in_as_they_come(self, subscription: Subscription, log: InvocationLog) -> None:
        """Take in the events routed here whenever `shared_poller.MAX_EVENTS_WAITING` wait, while a read brings
        them (`Subscription.next_batch`): the poller then holds no more of them for this trigger, and a chatty
        request's read is parsed and kept a batch at a time, not held whole. Its lines count with the next read."""
        try:
            while True:
                self._taken_meanwhile += await self._take(await subscription.next_batch(), subscription, log)
        finally:
            subscription.stop_taking_in()

    async def _take(self, events: list[dict[str, Any]], subscription: Subscription, log: InvocationLog) -> int:
        """Parse and keep `events` (`_accept`) and show the accepted ones live, after the batches taken before;
        return how many were accepted. The caller calls this as soon as it takes the events (no wait between):
        batches are taken in the order they were taken from the subscription."""
        async with self._taking:
            accepted = await self._accept(events, subscription, log)
            if accepted:
                await self._show_live(accepted)
        return len(accepted)

    async def _take_in(self, reading: Coroutine[Any, Any, int], evidence: Evidence) -> None:
        """Run one read of the invocation's lines (it shows what it accepts) and say how many it accepted; an
        error the poller hands over makes the invocation unfollowable, a read not served in time is tried
        again."""
        evidence.polls += 1
        try:
            accepted = await reading
        except ClientError as err:  # the poller hands a subscriber only errors retrying will not cure
            evidence.unfollowable = (
                f"reading CloudWatch Logs group {self.settings.log_group} failed with {error_code(err)}: "
                f"{err.response.get('Error', {}).get('Message', err)}"
            )
            return
        except PollNotServed as err:
            self.log.warning("%s; still waiting (%d reads asked for)", err, evidence.polls)
            return
        accepted, self._taken_meanwhile = accepted + self._taken_meanwhile, 0
        if accepted:
            self.log.info(
                "%s: %d new line(s) of the invocation, %d in all",
                self.settings.function_name,
                accepted,
                evidence.log.line_count,
            )

    async def _show_live(self, lines: list[LogLine]) -> None:
        """Log new lines as they are read (Airflow shows a deferred task's trigger log in its task log), up
        to the event's line budget; say once when the rest is left out of this live view. After a late
        start (`live_from_ms`), only lines ingested since it are shown, so that none is shown twice."""
        if self._live_from_ms is not None:
            if not self._said_live_from:
                self._said_live_from = True
                self.log.info(
                    "%s This trigger started %.0f s after the task handed the invocation over (a triggerer "
                    "restart, or a late start): only lines CloudWatch Logs ingests from now on are shown live here, "
                    "so that none is shown twice; the task logs every line when it resumes",
                    LIVE_LABEL,
                    self._live_from_ms / 1000 - max(self.settings.invoked_at, self.settings.handed_over_at),
                )
            lines = [line for line in lines if line.ingested >= self._live_from_ms]
        budget = self.settings.max_lines
        shown = sorted(lines, key=lambda line: line.timestamp)[: max(0, budget + 1 - self._shown_live)]
        await loop_turns().map(shown, self._log_live)
        self._shown_live += len(lines) - len(shown)  # the rest is only counted

    def _log_live(self, lines: Sequence[LogLine]) -> None:
        budget = self.settings.max_lines
        for line in lines:
            if self._shown_live < budget:
                level, text = task_log_line(
                    timestamp_ms=line.timestamp, level=line.level, message=line.message, detail=line.detail
                )
                self.log.log(level, "%s %s", LIVE_LABEL, text)
            elif self._shown_live == budget:
                self.log.info(
                    "%s further lines are not shown live (max_lines = %d); the task logs the invocation's lines "
                    "when it resumes",
                    LIVE_LABEL,
                    budget,
                )
            self._shown_live += 1

    async def _read_stretches(self, subscription: Subscription, log: InvocationLog) -> int:
        """Read each of our request's closed stretches of stream once, when the settle window after the
        request's end is over (or the deadline comes first): a stream is ingested in order, so its lines
        up to the end are in by then, and the verdict waits for that window anyway. (Read once when it
        closed and once more after the window, it cost the volume benchmark a second call per batch.)"""
        accepted = 0
        settle_end = (log.ended_seen_at or 0.0) + self.settings.settle_seconds
        if self.timeline.now() < min(settle_end, self.settings.deadline):
            return accepted
        for span in log.closed_spans():
            if span not in self._stretches_read:
                accepted += await self._take(await subscription.fetch_span(*span), subscription, log)
                self._stretches_read.add(span)  # only once the read has succeeded
        return accepted

    async def _accept(
        self, events: list[dict[str, Any]], subscription: Subscription, log: InvocationLog
    ) -> list[LogLine]:
        """Parse `events` and keep the invocation's lines, in chunks that take turns on the event loop
        (`loop_turns`): a read can bring a chatty request thousands of lines."""
        if not events:
            return []
        settings = self.settings
        turns = loop_turns()

        def parse(chunk: Sequence[dict[str, Any]]) -> list[LogLine]:
            return [
                clip_line(
                    parse_event(event, correlation_id_key=settings.correlation_id_key, end_marker=settings.end_marker)
                )
                for event in chunk
            ]

        lines = await turns.flat_map(events, parse)
        # Ids and stretches from the whole read first, so that each chunk is judged as one batch would be.
        await turns.map(lines, log.learn_request_ids)
        await turns.map(lines, log.note_spans)
        seen_at = self.timeline.now()
        accepted = await turns.flat_map(lines, lambda chunk: log.add(chunk, seen_at=seen_at))
        if len(accepted) < len(lines):
            kept = {id(line) for line in accepted}
            subscription.give_back(
                [
                    (line.stream, line.timestamp, line.event_id)
                    for line in lines
                    if id(line) not in kept and log.awaits_its_stretch(line)
                ]
            )
        for request_id in sorted(log.request_ids):
            subscription.watch(request_id)
        subscription.note_running(log.open_spans())
        return accepted


def live_from_ms(started_at: float, handed_over_at: float) -> int | None:
    """Return from when (epoch ms of ingestion) lines are shown live, or ``None`` for all of them: a trigger
    that starts later than `FIRST_START_WITHIN_SECONDS` after the task handed the invocation over shows only
    what is ingested after its start, since a triggerer before it may have shown the rest."""
    if started_at - handed_over_at <= FIRST_START_WITHIN_SECONDS:
        return None
    return int(started_at * 1000)


def read_wanted_at(
    log: InvocationLog,
    *,
    now: float,
    checked_at: float,
    settings: FollowSettings,
    execution_ended_seen_at: float | None = None,
) -> float | None:
    """Return when a read should start for this invocation sooner than the poller's pace, or ``None``.

    A settle window (after a sign in the log, or after a durable execution's end) or the deadline that ends
    before the next regular read, with no read started since it ended, wants a read right then (at once if
    it already has ended): the verdict waits for that read. Once the request's end is seen, the verdict
    waits for its settle window alone (`outcome.decide`): a failure or the end marker seen later (with the
    request's stretch of stream) wants no read of its own, which would come after the trigger has gone.
    """
    signs = (log.ended_seen_at,) if log.ended_seen_at is not None else (log.failure_seen_at, log.end_marker_seen_at)
    settle_ends = (seen + settings.settle_seconds for seen in (*signs, execution_ended_seen_at) if seen is not None)
    uncovered = [moment for moment in (settings.deadline, *settle_ends) if moment > checked_at]
    if uncovered and min(uncovered) < now + settings.poll_interval:
        return max(min(uncovered), now + MIN_WAIT_SECONDS)
    return None


def settles_by_its_stretch(settings: FollowSettings) -> bool:
    """Whether the read of the request's own stretches of stream can end its settle window: all its lines
    are there (Lambda writes a request's lines to the stream of the environment that runs it), and they
    need not be read as they come (`ids_read_live`: fail-fast, no request id, durable replays in any
    stream, a logging config that may hide START and REPORT)."""
    return not ids_read_live(settings)


def ids_read_live(settings: FollowSettings) -> bool:
    """Whether this invocation's lines with ids must be read as they come (`Subscription.ids_read_live`), not
    only with its request's stretch of stream when the request ends: it fails fast on an ERROR line, or its
    request lines may not find it (no request id from Invoke, a durable execution's replays each have their
    own, a logging config that hides a success's START and REPORT)."""
    return (
        settings.request_id is None
        or settings.durable_execution_arn is not None
        or settings.fail_fast
        or settings.allow_hidden_success
        or settings.hidden_platform_level is not None  # only the end marker, a line with ids, shows a success
    )


def source_for(trigger: SourceContext) -> LogLines:
    return LogLines(trigger)


async def with_log_group_note(trigger: SourceContext, verdict: Verdict, evidence: Evidence) -> Verdict:
    """Return a timeout's verdict with its reason saying where the lines were looked for: whether the log
    group exists (``DescribeLogGroups``) and how many lines of the invocation were read there; any other
    verdict (or a durable execution's timeout, decided by its status) as it is.

    A group that was never created (a mistyped ``log_group``, a function that never ran) looks the same as a
    quiet function to the reads, which treat a missing group as an empty one. The check never fails the
    trigger: an error or no answer in time is said instead.
    """
    settings = trigger.settings
    if verdict.status != "timeout" or settings.durable_execution_arn:
        return verdict
    group, unchecked_because = settings.log_group, ""
    exists: bool | None = None
    try:
        async with asyncio.timeout(LOG_GROUP_CHECK_SECONDS):
            async with await trigger.logs_client() as client:
                answer = await client.describe_log_groups(logGroupNamePrefix=group)
        exists = named_in(answer, group)
    except ClientError as err:
        unchecked_because = (
            f"DescribeLogGroups failed with {error_code(err)}: {err.response.get('Error', {}).get('Message', err)}"
        )
    except TimeoutError:  # before OSError, of which it is one
        unchecked_because = f"DescribeLogGroups did not answer within {LOG_GROUP_CHECK_SECONDS:g} s"
    except (BotoCoreError, OSError) as err:
        unchecked_because = f"DescribeLogGroups failed: {err}"
    if exists is None:
        trigger.log.warning(
            "Log group %s of %s could not be checked: %s", group, settings.function_name, unchecked_because
        )
    note = timeout_note(group, exists=exists, lines_read=evidence.log.line_count, unchecked_because=unchecked_because)
    return replace(verdict, reason=verdict.reason + note)
