"""Which poller serves a trigger: one per (connection, Region, log group) per event loop, sharing the loop's
request budgets and windows' clock (`subscribe`)."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from airflow_lambda_deferrable.cloudwatch.shared_poller import LogGroupPoller
from airflow_lambda_deferrable.cloudwatch.subscription import Subscription
from airflow_lambda_deferrable.limits import STREAM_READS_PER_FILTER_CALL
from airflow_lambda_deferrable.runtime.clock import ForwardWall, Timeline
from airflow_lambda_deferrable.runtime.rate_limit import RequestBudget
from airflow_lambda_deferrable.settings import DEFAULT_MAX_REQUESTS_PER_SECOND


class Registry:
    """The pollers, the budgets and the windows' wall clock of one event loop."""

    def __init__(self, max_rate: float) -> None:
        self.budget = RequestBudget(max_rate)
        self.stream_budget = RequestBudget(max_rate * STREAM_READS_PER_FILTER_CALL)
        self.window_clock = ForwardWall()
        self.pollers: dict[str, LogGroupPoller] = {}


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Registry] = weakref.WeakKeyDictionary()


def registry(max_rate: float = DEFAULT_MAX_REQUESTS_PER_SECOND) -> Registry:
    """Return the running loop's registry (made on first use with `max_rate`)."""
    loop = asyncio.get_running_loop()
    if loop not in _registries:
        _registries[loop] = Registry(max_rate)
    return _registries[loop]


@asynccontextmanager
async def subscribe(
    *,
    connection_key: dict[str, Any],
    log_group: str,
    client_factory: Callable[[], Any],
    terms: list[str],
    start_ms: int,
    ingestion_allowance_ms: int,
    poll_interval: float,
    max_rate: float = DEFAULT_MAX_REQUESTS_PER_SECOND,
    shared: bool = True,
    roaming: bool = False,
    ids_read_live: bool = True,
    timeline: Timeline | None = None,
) -> AsyncIterator[Subscription]:
    """Join the poller of (connection, log group) for the duration of the block.

    :param connection_key: what makes two triggers' clients interchangeable (connection id, region, ...).
    :param client_factory: makes the poller's client when it starts (an awaitable of an aiobotocore
        client context manager, as ``AwsLogsHook.get_async_conn``).
    :param roaming, ids_read_live, timeline: as `Subscription`'s (``timeline`` defaults to one that starts now).
    :param shared: ``False`` gives this subscriber a poller, a client and a budget of its own (the
        ``[lambda_deferrable] shared_poller = False`` setting: what sharing is measured against).
    """
    loop_registry = registry(max_rate)
    pollers = loop_registry if shared else Registry(max_rate)
    key = json.dumps({**connection_key, "log_group": log_group}, sort_keys=True, default=str)
    poller = _poller_for(pollers, key, log_group, client_factory, loop_registry.window_clock)
    subscription = Subscription(
        poller=poller,
        terms=list(dict.fromkeys(terms)),
        start_ms=start_ms,
        ingestion_allowance_ms=ingestion_allowance_ms,
        poll_interval=poll_interval,
        roaming=roaming,
        ids_read_live=ids_read_live,
        timeline=timeline or Timeline.start(),
    )
    poller.add(subscription)
    try:
        yield subscription
    finally:
        poller.remove(subscription)
        if poller.closing and pollers.pollers.get(key) is poller:
            del pollers.pollers[key]


def _poller_for(
    pollers: Registry, key: str, log_group: str, client_factory: Callable[[], Any], window_clock: ForwardWall
) -> LogGroupPoller:
    """Return the live poller of `key` in `pollers`, or start one (a closing poller takes no newcomer)."""
    poller = pollers.pollers.get(key)
    if poller is None or poller.closing:
        poller = LogGroupPoller(
            log_group=log_group,
            client_factory=client_factory,
            budget=pollers.budget,
            stream_budget=pollers.stream_budget,
            window_clock=window_clock,
        )
        pollers.pollers[key] = poller
    return poller
