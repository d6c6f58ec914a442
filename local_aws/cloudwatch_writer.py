"""Ingest log lines into moto's CloudWatch Logs the way Lambda does: per stream, in time order, a little late.

Real Lambda lines reach CloudWatch after a delay (usually about a second, sometimes much more). Readers must
cope with that, so the stack reproduces it: every line is held for ``delay`` seconds after it was printed, then
written with ``PutLogEvents``. The log group and stream are created on first use, as Lambda does.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

_BATCH_EVENTS = 1000
_BATCH_BYTES = 900_000
_MAX_MESSAGE_BYTES = 256 * 1024 - 26


@dataclass(order=True)
class _Pending:
    due: float
    sequence: int
    region: str = field(compare=False)
    group: str = field(compare=False)
    stream: str = field(compare=False)
    timestamp: int = field(compare=False)
    message: str = field(compare=False)


class CloudWatchWriter:
    """Queue log events and write them to CloudWatch Logs after ``delay`` seconds, from one background thread.

    :param endpoint_url: where CloudWatch Logs is (moto's own URL, not the front proxy).
    :param delay: seconds between a line being printed and it becoming readable.
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        delay: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._delay = max(0.0, delay)
        self._clock = clock
        self._condition = threading.Condition()
        self._queue: list[_Pending] = []
        self._sequence = itertools.count()
        self._last_timestamp: dict[tuple[str, str, str], int] = {}
        self._in_flight = 0
        self._known: set[tuple[str, str, str | None]] = set()
        self._clients: dict[str, Any] = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="local-aws-cloudwatch-writer", daemon=True)
        self._thread.start()

    def write(self, region: str, group: str, stream: str, message: str, timestamp: int | None = None) -> int:
        """Queue one event; return its timestamp (milliseconds, never earlier than the stream's previous event)."""
        now = self._clock()
        stamp = int(now * 1000) if timestamp is None else timestamp
        key = (region, group, stream)
        with self._condition:
            stamp = max(stamp, self._last_timestamp.get(key, 0))
            self._last_timestamp[key] = stamp
            heapq.heappush(
                self._queue, _Pending(now + self._delay, next(self._sequence), region, group, stream, stamp, message)
            )
            self._condition.notify_all()
        return stamp

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every event queued so far is written (the delay still applies); return False on timeout."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(min(remaining, 0.1))
        return True

    def forget_resources(self) -> None:
        """Forget which groups and streams exist (after moto was reset)."""
        with self._condition:
            self._known.clear()
            self._last_timestamp.clear()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued without waiting for the delay, then stop the thread."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._thread.join(timeout)

    # -- background thread ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._condition:
                while True:
                    if self._queue and (self._stopping or self._queue[0].due <= self._clock()):
                        break
                    if self._stopping:
                        return
                    wait = self._queue[0].due - self._clock() if self._queue else None
                    self._condition.wait(wait)
                due: list[_Pending] = []
                now = self._clock()
                while self._queue and (self._stopping or self._queue[0].due <= now):
                    due.append(heapq.heappop(self._queue))
                self._in_flight += len(due)
            try:
                self._put(due)
            except Exception:  # the writer must outlive one bad batch; the cause is logged
                log.exception("Could not write %d log events to CloudWatch Logs at %s", len(due), self._endpoint_url)
            finally:
                with self._condition:
                    self._in_flight -= len(due)
                    self._condition.notify_all()

    def _put(self, events: list[_Pending]) -> None:
        by_stream: dict[tuple[str, str, str], list[_Pending]] = {}
        for event in events:
            by_stream.setdefault((event.region, event.group, event.stream), []).append(event)
        for (region, group, stream), stream_events in by_stream.items():
            stream_events.sort(key=lambda e: (e.timestamp, e.sequence))
            log_events = [{"timestamp": e.timestamp, "message": _truncate(e.message)} for e in stream_events]
            for batch in _batches(log_events):
                self._put_batch(region, group, stream, batch)

    def _put_batch(self, region: str, group: str, stream: str, batch: list[dict[str, Any]]) -> None:
        client = self._client(region)
        self._ensure(client, region, group, stream)
        try:
            client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            # The group or stream was deleted behind our back (or moto was reset): create them again, once.
            self._known.discard((region, group, None))
            self._known.discard((region, group, stream))
            self._ensure(client, region, group, stream)
            client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)

    def _ensure(self, client: Any, region: str, group: str, stream: str) -> None:
        if (region, group, None) not in self._known:
            _create_ignoring_exists(client.create_log_group, logGroupName=group)
            self._known.add((region, group, None))
        if (region, group, stream) not in self._known:
            _create_ignoring_exists(client.create_log_stream, logGroupName=group, logStreamName=stream)
            self._known.add((region, group, stream))

    def _client(self, region: str) -> Any:
        if region not in self._clients:
            self._clients[region] = boto3.client(
                "logs",
                region_name=region,
                endpoint_url=self._endpoint_url,
                aws_access_key_id="local",
                aws_secret_access_key="local",
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._clients[region]


def _create_ignoring_exists(create: Callable[..., Any], **kwargs: str) -> None:
    try:
        create(**kwargs)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise


def _truncate(message: str) -> str:
    """Cut an event to CloudWatch's size limit, as Lambda does with very long lines."""
    encoded = message.encode("utf-8")
    if len(encoded) <= _MAX_MESSAGE_BYTES:
        return message
    return encoded[:_MAX_MESSAGE_BYTES].decode("utf-8", errors="ignore")


def _batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split events into PutLogEvents-sized batches, keeping their order."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for event in events:
        event_size = len(event["message"].encode("utf-8")) + 26
        if current and (len(current) >= _BATCH_EVENTS or size + event_size > _BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(event)
        size += event_size
    if current:
        batches.append(current)
    return batches
