"""The one seam between a trigger and CloudWatch Logs: an object that returns an invocation's new events.

Everything that talks to ``FilterLogEvents`` is here, so that a later change can let many triggers of
one triggerer share one poller per log group by replacing this class, without touching the decision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, Protocol

from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

# CloudWatch Logs rejects filter patterns longer than this.
MAX_FILTER_PATTERN_LENGTH = 1024

# Errors that mean "ask again later". Throttling also slows the shared poller's request budget down.
THROTTLING_ERROR_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
RETRYABLE_ERROR_CODES = THROTTLING_ERROR_CODES | {
    "LimitExceededException",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
    "RequestTimeout",
    "RequestTimeoutException",
}
# Answers that mean the client's credentials ran out (temporary ones expired, or a refresh failed):
# a fresh client resolves them again.
EXPIRED_CREDENTIALS_ERROR_CODES = frozenset(
    {"ExpiredTokenException", "ExpiredToken", "RequestExpired", "UnrecognizedClientException"}
)
# Failures of the client rather than of a call: credentials missing or not refreshable, no connection.
CLIENT_FAILURES = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    TokenRetrievalError,
    BotoConnectionError,
    HTTPClientError,
    OSError,
)


class LogSource(Protocol):
    """What a trigger reads an invocation's events from: its own client, or the shared poller."""

    # When the latest read whose events `fetch_new` has returned began (epoch seconds): lines ingested
    # after that may be missing.
    read_started_at: float

    def watch(self, term: str) -> None: ...

    async def pause_until(self, when: float, *, read_needed: bool) -> None:
        """Return when the next `fetch_new` may begin (`when`, epoch seconds, or sooner for a source that
        paces its own reads). `read_needed`: a settle window or the deadline ends at `when`, so a read
        that starts then is wanted, not just the regular pace."""
        ...

    async def fetch_new(self) -> list[dict[str, Any]]: ...

    async def fetch_span(self, stream: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]: ...


class InvocationLogSource:
    """Return the events of one invocation that were not returned before.

    An event is a candidate when its text contains one of the watched terms (the correlation id and
    request ids). CloudWatch filters with an OR pattern of the terms; the same test is repeated here
    because some emulators ignore OR patterns. Each call searches from a little before the newest
    event seen (``late_arrival_ms``), so events ingested late or out of order are still found; event
    ids already returned are never returned again. Use it as an async context manager: it opens its
    client on the first call, and a fresh one after the client's own failures (credentials, connection).

    :param client_factory: makes the client (an awaitable of an aiobotocore ``logs`` client context
        manager, as ``AwsLogsHook.get_async_conn``).
    :param start_ms: the earliest timestamp an event of the invocation can carry.
    :param late_arrival_ms: how far behind the newest event a late event may still appear.
    :param page_limit: events per page asked of ``FilterLogEvents`` (``None``: the service's maximum).
    """

    def __init__(
        self,
        client_factory: Callable[[], Awaitable[Any]],
        *,
        log_group: str,
        terms: list[str],
        start_ms: int,
        late_arrival_ms: int,
        page_limit: int | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._open_client = AsyncExitStack()
        self._client: Any = None
        self.log_group = log_group
        self._terms: list[str] = []
        self._start_ms = start_ms
        self._late_arrival_ms = late_arrival_ms
        self._page_limit = page_limit
        self._newest_ms: int | None = None
        self._returned: set[str] = set()
        self.read_started_at = 0.0
        self.calls = 0
        for term in terms:
            self.watch(term)

    async def __aenter__(self) -> InvocationLogSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._open_client.aclose()

    @property
    def terms(self) -> tuple[str, ...]:
        """Return the terms searched for."""
        return tuple(self._terms)

    def watch(self, term: str) -> None:
        """Search for `term` too, from the start of the invocation (its earlier events were not asked for)."""
        if term in self._terms:
            return
        check_term(term, "InvocationLogSource.watch")
        self._terms.append(term)
        self._newest_ms = None

    async def pause_until(self, when: float, *, read_needed: bool) -> None:
        """Sleep until `when` (epoch seconds): this source reads whenever it is asked, needed or not."""
        await asyncio.sleep(max(0.0, when - time.time()))

    async def fetch_new(self) -> list[dict[str, Any]]:
        """Return the candidate events not returned before, across all streams of the group."""
        read_started_at = time.time()
        start = self._start_ms
        if self._newest_ms is not None:
            start = max(self._start_ms, self._newest_ms - self._late_arrival_ms)
        events = await self._filter(startTime=start, filterPattern=self._pattern())
        found = [event for event in events if any(term in event.get("message", "") for term in self._terms)]
        if found:
            newest = max(int(event["timestamp"]) for event in found)
            self._newest_ms = max(self._newest_ms or newest, newest)
        self.read_started_at = read_started_at
        return self._only_new(found)

    async def fetch_span(self, stream: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Return every event of `stream` between two timestamps (inclusive) not returned before.

        Lines that carry no id at all (the runtime's unhandled-error line, ``print`` output) are only
        found this way, inside the stretch of the stream where our request ran.
        """
        events = await self._filter(logStreamNames=[stream], startTime=start_ms, endTime=end_ms)
        return self._only_new(events)

    def _pattern(self) -> str:
        if len(self._terms) == 1:
            return f'"{self._terms[0]}"'
        pattern = " ".join(f'?"{term}"' for term in self._terms)
        if len(pattern) > MAX_FILTER_PATTERN_LENGTH:
            # Too many ids for one pattern: search for the correlation id only and filter here.
            return f'"{self._terms[0]}"'
        return pattern

    def _only_new(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return only_new(events, self._returned)

    async def _filter(self, **request: Any) -> list[dict[str, Any]]:
        """Call ``FilterLogEvents`` and follow ``nextToken`` to the end (pages may be empty)."""
        request["logGroupName"] = self.log_group
        if self._page_limit is not None:
            request["limit"] = self._page_limit
        events: list[dict[str, Any]] = []
        while True:
            self.calls += 1
            try:
                if self._client is None:
                    self._client = await self._open_client.enter_async_context(await self._client_factory())
                response = await self._client.filter_log_events(**request)
            except Exception as err:
                if isinstance(err, ClientError) and error_code(err) == "ResourceNotFoundException":
                    return events  # The group does not exist until the function first logs.
                if needs_fresh_client(err):
                    await self._open_client.aclose()  # the next call opens a fresh client
                    self._client = None
                raise
            events.extend(response.get("events", []))
            token = response.get("nextToken")
            if not token or token == request.get("nextToken"):
                return events
            request["nextToken"] = token


def error_code(err: ClientError) -> str:
    """Return the AWS error code of `err` (``Unknown`` if it has none)."""
    return str(err.response.get("Error", {}).get("Code", "Unknown"))


def needs_fresh_client(err: Exception) -> bool:
    """Whether `err` is the client's trouble (credentials, connection), to be retried with a new client."""
    if isinstance(err, ClientError):
        return error_code(err) in EXPIRED_CREDENTIALS_ERROR_CODES
    return isinstance(err, CLIENT_FAILURES)


def check_term(term: str, caller: str) -> None:
    """Refuse a term that cannot be quoted in a filter pattern (`caller` names who was asked)."""
    if '"' in term or "\\" in term or not term.strip():
        raise ValueError(f"{caller}: {term!r} cannot be used in a filter pattern")
    if len(f'?"{term}"') > MAX_FILTER_PATTERN_LENGTH:
        raise ValueError(
            f"{caller}: a term of {len(term)} characters ({term[:40]!r}...) does not fit in a filter pattern "
            f"(at most {MAX_FILTER_PATTERN_LENGTH} characters)"
        )


def only_new(events: list[dict[str, Any]], returned: set[str]) -> list[dict[str, Any]]:
    """Return the events whose ``eventId`` is not in `returned`, and add their ids to it."""
    new = []
    for event in events:
        event_id = str(event.get("eventId"))
        if event_id not in returned:
            returned.add(event_id)
            new.append(event)
    return new
