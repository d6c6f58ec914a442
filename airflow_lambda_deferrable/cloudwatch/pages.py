"""The one door to CloudWatch Logs: each call through its budget, an error answered as `log_source.classify`
says, and the answer yielded page by page with every event keyed (`event_keys`).

Tests give the reader any object with the two methods of `LogsClient`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Collection
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from airflow_lambda_deferrable.cloudwatch.event_keys import EventKeys
from airflow_lambda_deferrable.cloudwatch.log_source import Answer, classify, error_code, is_throttling
from airflow_lambda_deferrable.limits import EVENT_OVERHEAD_BYTES, EVENTS_PER_PAGE, PAGE_BYTES
from airflow_lambda_deferrable.runtime import clock
from airflow_lambda_deferrable.runtime.loop_turns import LoopTurns
from airflow_lambda_deferrable.runtime.rate_limit import RequestBudget
from airflow_lambda_deferrable.tuning import (
    FULL_PAGE_SHARE,
    MAX_PAGE_PAUSE_SECONDS,
    MAX_PAGE_RETRIES,
    MIN_CYCLE_SECONDS,
)

log = logging.getLogger(__name__)

# What a call is for (`PageReader.read`'s `kind`): counted in `RequestBudget.calls_by_kind` and logged.
CALL_KINDS = {
    "window": "the group, unfiltered",
    "pattern": "the group by ids",
    "catch-up": "ids from their invocations' start",
    "sweep": "the ids of subscribers that follow no stream, as far back as a sweep",
    "request-lines": "the lines that open or close a request",
    "behind": "followed streams from where each is complete",
    "stretch": "a request's stretch of stream",
    "busy-stream": "one busy stream's stretch, with GetLogEvents",
    "sample": "a second of the streams of running requests",
}


class LogsClient(Protocol):
    """The two calls the reader makes (an aiobotocore ``logs`` client has them)."""

    async def filter_log_events(self, **request: Any) -> dict[str, Any]: ...

    async def get_log_events(self, **request: Any) -> dict[str, Any]: ...


class Failable(Protocol):
    """Who a call serves: an error that is theirs alone goes to them (`Subscription.fail`)."""

    def fail(self, err: Exception) -> None: ...


class PatternRefused(Exception):
    """CloudWatch refused a filter pattern the poller chose (not one made of the subscribers' ids)."""


class StreamReadRefused(Exception):
    """GetLogEvents was denied (a policy that allows only FilterLogEvents): busy streams go back to it."""


class CallFailed(Exception):
    """A call that still failed after its retries (throttling, the service's transient errors), or whose client
    failed (credentials, connection): the cycle fails and is tried again. Names the API that failed."""

    def __init__(self, api: str, cause: Exception) -> None:
        super().__init__(f"{api} failed: {type(cause).__name__}: {cause}")
        self.api = api
        self.cause = cause


class Page(list[dict[str, Any]]):
    """The events of one answer, whether another page follows (`more`), and the read's horizon by CloudWatch's
    own clock, from its first answer (`horizon_ms`: `answer_horizon_ms`): the triggerer's clock may be off or
    stepped."""

    more: bool = False
    horizon_ms: int | None = None


class PageReader:
    """Makes the calls of one log group's reader, each through the budget of its API."""

    def __init__(
        self, log_group: str, budget: RequestBudget, stream_budget: RequestBudget, turns: LoopTurns | None = None
    ) -> None:
        """:param turns: the poller's turns of the loop, shared with its routing (default: turns of its own)."""
        self.log_group = log_group
        self.budget = budget
        self.stream_budget = stream_budget
        self.turns = turns or LoopTurns()
        self.calls = 0

    async def read(
        self,
        client: LogsClient,
        concerned: Collection[Failable],
        kind: str,
        *,
        refusable: bool = False,
        stream: str | None = None,
        max_retries: int = MAX_PAGE_RETRIES,
        **request: Any,
    ) -> AsyncIterator[Page]:
        """Call ``FilterLogEvents`` (``GetLogEvents`` on `stream` if given) and yield each page's events, keyed,
        to the last page (`Page.more` says whether another follows).

        :param kind: what the call is for: one of `CALL_KINDS`.
        :param max_retries: how many times a page answered with throttling or a transient error is asked again
            before `CallFailed` (a sample, which nothing waits for, asks once).
        :param refusable: the reader chose the pattern: ``InvalidParameterException`` raises `PatternRefused`.
        :param stream: read this one stream with ``GetLogEvents``, from the head, on the budget of stream reads;
            ``AccessDeniedException`` raises `StreamReadRefused`.
        :param concerned: the subscribers this call serves: an error that is theirs alone goes to them, and the
            pages stop.
        """
        token_field = self._prepare(request, stream, kind)
        keys = EventKeys(stream)
        horizon_ms: int | None = None
        first_answer = True
        while True:
            answered = await self._answer(client, concerned, kind, stream, max_retries, refusable, request)
            if answered is None:
                return
            response, took = answered
            if first_answer:  # everything the read brings was ingested by its first call's search, or later
                horizon_ms, first_answer = answer_horizon_ms(response, took), False
            page = Page(response.get("events", []))
            page.horizon_ms = horizon_ms
            await self.turns.map(page, keys.assign)
            token = response.get(token_field)
            # GetLogEvents answers the token it was given at the end of the stream. A page short of 1 MB and
            # 10,000 events, or empty, does not mean the end (its API reference says so): only that does.
            page.more = bool(token) and token != request.get("nextToken")
            yield page
            if not page.more:
                return
            request["nextToken"] = token

    def _prepare(self, request: dict[str, Any], stream: str | None, kind: str) -> str:
        """Fill in the group (and the stream, read from its head); return the field of the next page's token."""
        if kind not in CALL_KINDS:
            raise ValueError(f"PageReader.read: unknown kind of call {kind!r}; known: {', '.join(CALL_KINDS)}")
        request["logGroupName"] = self.log_group
        if stream is None:
            return "nextToken"
        request.update(logStreamName=stream, startFromHead=True)
        return "nextForwardToken"

    async def _answer(
        self,
        client: LogsClient,
        concerned: Collection[Failable],
        kind: str,
        stream: str | None,
        max_retries: int,
        refusable: bool,
        request: dict[str, Any],
    ) -> tuple[dict[str, Any], float] | None:
        """One page's answer, asked again after throttling or a transient error, with how long its call took
        (seconds); ``None`` when there is none."""
        api, budget = ("FilterLogEvents", self.budget) if stream is None else ("GetLogEvents", self.stream_budget)
        call = client.filter_log_events if stream is None else client.get_log_events
        retries = 0
        while True:
            await budget.acquire()
            self.calls += 1
            budget.calls_by_kind[kind] += 1
            began = clock.monotonic()
            try:
                response = await call(**request)
            except Exception as err:
                if is_throttling(err):
                    budget.throttled()
                answer = classify(
                    err, retries_left=retries < max_retries, refusable=refusable, stream_read=stream is not None
                )
                if answer is Answer.ASK_AGAIN:
                    retries += 1
                    await asyncio.sleep(page_retry_pause(retries))
                    continue
                self._settle(answer, api, budget, concerned, err, request)
                return None
            budget.succeeded()
            took = clock.monotonic() - began
            log.debug("%s: %s (%s) took %.2fs", self.log_group, api, kind, took)
            return response, took

    def _settle(
        self,
        answer: Answer,
        api: str,
        budget: RequestBudget,
        concerned: Collection[Failable],
        err: Exception,
        request: dict[str, Any],
    ) -> None:
        """Act on an error that ends the call (`classify`): raise what the reader handles, give the rest away."""
        if answer is Answer.DONE:
            budget.succeeded()
            return
        if answer is Answer.RAISE:
            raise err
        if answer is Answer.FAIL_CYCLE:
            raise CallFailed(api, err) from err
        if answer is Answer.PATTERN_REFUSED:
            raise PatternRefused(
                f"{error_code(err) if isinstance(err, ClientError) else type(err).__name__}: {err}"
            ) from err
        if answer is Answer.STREAM_READ_REFUSED:
            raise StreamReadRefused(
                f"{error_code(err) if isinstance(err, ClientError) else type(err).__name__}: {err}"
            ) from err
        shown = {key: value for key, value in request.items() if key not in ("nextToken", "nextForwardToken")}
        log.warning("%s: %s %s failed for %d subscriber(s): %s", self.log_group, api, shown, len(concerned), err)
        for subscriber in concerned:
            subscriber.fail(err)


def answer_horizon_ms(response: dict[str, Any], took: float) -> int | None:
    """Before when, by CloudWatch's clock, every event it ingested is in the read that `response` answers
    first: the later of two moments the search ran after, less the margin of `clock.ingestion_horizon_ms`
    (an event just ingested may take a moment to be found). One is the answer's ``Date`` (whole seconds, cut
    down) less the call's duration `took` (the search ran after the call was sent); the other, the newest
    ``ingestionTime`` among its events (each was in the search), which holds where a proxy's ``Date`` runs
    slow. ``None`` if the answer gives neither. A read counts only on events ingested before then, whatever
    the triggerer's clock says: one fast, or stepped forward, would have it take an event not ingested yet
    for one it had read (`cloudwatch.delivered`)."""
    bounds = []
    metadata = response.get("ResponseMetadata")
    headers = metadata.get("HTTPHeaders") if isinstance(metadata, dict) else None
    if isinstance(headers, dict) and "date" in headers:
        try:
            answered = parsedate_to_datetime(str(headers["date"]))
        except (TypeError, ValueError, IndexError, OverflowError):
            answered = None
        if answered is not None and answered.tzinfo is not None:  # a date without a zone says nothing sure
            bounds.append(answered.timestamp() - took)
    ingested = [event.get("ingestionTime") for event in response.get("events", ()) if isinstance(event, dict)]
    numbers = [stamp for stamp in ingested if isinstance(stamp, int)]
    if numbers:
        bounds.append(max(numbers) / 1000)
    return clock.ingestion_horizon_ms(max(bounds)) if bounds else None


def code_of(err: Exception) -> str:
    """AWS's error code of `err`, or its class's name when AWS gave none."""
    return error_code(err) if isinstance(err, ClientError) else type(err).__name__


def page_retry_pause(retries: int, draw: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds to wait before asking a page again for the `retries`-th time: jittered, at most 1, 2, 4, then
    `MAX_PAGE_PAUSE_SECONDS`. CloudWatch counts calls per second, so a page asked again within about a second
    mostly gets through, and the budget, halved by the throttling, spaces the calls after it."""
    return draw(MIN_CYCLE_SECONDS, min(MAX_PAGE_PAUSE_SECONDS, 2.0 ** max(0, retries - 1)))


def fills_a_page(page: list[dict[str, Any]]) -> bool:
    """Whether a page holds `FULL_PAGE_SHARE` of what CloudWatch puts in one (10,000 events, or 1 MB counting
    26 bytes per event): it also answers short or empty pages with more to come when it stops searching."""
    if len(page) >= EVENTS_PER_PAGE * FULL_PAGE_SHARE:
        return True
    page_bytes = sum(len(str(event.get("message", ""))) + EVENT_OVERHEAD_BYTES for event in page)
    return page_bytes >= PAGE_BYTES * FULL_PAGE_SHARE
