"""The pace of one AWS API's calls in one triggerer process: a token bucket shared fairly by every reader
of an event loop, that slows down when AWS throttles and creeps back afterwards. The log reader and the
durable status reader each keep theirs; neither knows how the other reads."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Callable
from functools import lru_cache

from airflow_lambda_deferrable.runtime import clock
from airflow_lambda_deferrable.settings import DEFAULT_MAX_REQUESTS_PER_SECOND
from airflow_lambda_deferrable.tuning import (
    MAX_REQUESTS_PER_SECOND_BOUNDS,
    MIN_REQUESTS_PER_SECOND,
    RATE_RECOVERY_PER_SECOND,
    THROTTLE_BURST_SECONDS,
)

log = logging.getLogger(__name__)


@lru_cache(maxsize=16)  # warn once per bad value, not once per trigger
def checked_max_rate(setting: str | float | None) -> float:
    """Return the ``max_requests_per_second`` setting as a rate, or the default (with a warning) when it is
    not a finite number within `MAX_REQUESTS_PER_SECOND_BOUNDS`."""
    low, high = MAX_REQUESTS_PER_SECOND_BOUNDS
    if setting is None or setting == "":
        return DEFAULT_MAX_REQUESTS_PER_SECOND
    try:
        rate = float(setting)
    except (TypeError, ValueError):
        rate = math.nan
    if low <= rate <= high:  # False for NaN
        return rate
    log.warning(
        "[lambda_deferrable] max_requests_per_second = %r is not a number from %s to %s; using the default %s",
        setting,
        low,
        high,
        DEFAULT_MAX_REQUESTS_PER_SECOND,
    )
    return DEFAULT_MAX_REQUESTS_PER_SECOND


def _monotonic() -> float:
    return clock.monotonic()  # looked up at each reading: tests replace it


class RequestBudget:
    """A process-wide rate for the calls of one API (``FilterLogEvents``, or ``GetLogEvents``), shared fairly
    by every poller of a loop."""

    def __init__(self, max_rate: float, *, clock: Callable[[], float] | None = None) -> None:
        """:param clock: a monotonic clock (default `clock.monotonic`, read at each call)."""
        self.max_rate = max_rate
        self.rate = max_rate
        self._clock = clock or _monotonic
        self._tokens = 1.0
        self._updated = self._clock()
        self._halved_at = -math.inf
        self._recovered_at = self._updated
        self._turn = asyncio.Lock()  # asyncio locks wake waiters in arrival order: no poller starves
        self.calls = 0
        self.throttled_calls = 0
        self.halvings = 0  # how often throttling cut the rate: the rate itself moves with the clock
        self.calls_by_kind: Counter[str] = Counter()  # what the calls were for (`cloudwatch.pages.PageReader`)

    async def acquire(self) -> None:
        """Wait for this caller's turn and a token."""
        async with self._turn:
            while True:
                now = self._clock()
                self._tokens = min(1.0, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    self.calls += 1
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)

    def throttled(self) -> None:
        """Halve the rate after a throttling answer, once per burst (`THROTTLE_BURST_SECONDS`)."""
        self.throttled_calls += 1
        now = self._clock()
        self._recovered_at = now
        if now - self._halved_at >= THROTTLE_BURST_SECONDS:
            self._halved_at = now
            self.halvings += 1
            self.rate = max(min(MIN_REQUESTS_PER_SECOND, self.max_rate), self.rate / 2)

    def succeeded(self) -> None:
        """Creep back towards the configured rate, by `RATE_RECOVERY_PER_SECOND` since the last answer."""
        now = self._clock()
        self.rate = min(self.max_rate, self.rate + (now - self._recovered_at) * RATE_RECOVERY_PER_SECOND)
        self._recovered_at = now
