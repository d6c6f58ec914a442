"""Write a plan's lines into moto's CloudWatch Logs at their visible times, and note when each really landed.

Two ways in, both straight to moto (never through the quota proxy):

* ``boto3``: ``PutLogEvents`` over HTTP, as a log shipper would;
* ``direct``: the same call on moto's in-process backend, with no HTTP. moto over HTTP manages about
  350 ``PutLogEvents`` a second on a 2-core machine, while 1000 concurrent invocations print about 700
  lines a second, one stream each: the HTTP writer would fall minutes behind and take the CPU the
  triggers are measured on. Events are stored and served exactly the same way.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
from botocore.config import Config
from moto.core import DEFAULT_ACCOUNT_ID
from moto.logs.models import logs_backends

from benchmarks.plan import Line

REGION = "us-east-1"


class Sink(Protocol):
    """Where lines go."""

    def create(self, group: str, streams: list[str]) -> None: ...

    def put(self, group: str, stream: str, events: list[dict[str, Any]]) -> None: ...


class Boto3Sink:
    """``PutLogEvents`` over HTTP with boto3."""

    name = "boto3"

    def __init__(self, endpoint: str) -> None:
        self._client = boto3.client(
            "logs",
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=4),
        )

    def create(self, group: str, streams: list[str]) -> None:
        self._client.create_log_group(logGroupName=group)
        for stream in streams:
            self._client.create_log_stream(logGroupName=group, logStreamName=stream)

    def put(self, group: str, stream: str, events: list[dict[str, Any]]) -> None:
        self._client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


class DirectSink:
    """moto's backend for ``PutLogEvents``, in this process (moto must run here)."""

    name = "direct"

    def __init__(self) -> None:
        self._backend = logs_backends[DEFAULT_ACCOUNT_ID][REGION]

    def create(self, group: str, streams: list[str]) -> None:
        self._backend.create_log_group(group, {})
        for stream in streams:
            self._backend.create_log_stream(group, stream)

    def put(self, group: str, stream: str, events: list[dict[str, Any]]) -> None:
        self._backend.put_log_events(group, stream, events)


@dataclass
class WriteReport:
    """When lines really became visible (epoch seconds), and how far behind the plan the writer ran."""

    decisive_visible: dict[int, float] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)
    puts: int = 0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.lags) or [0.0]
        return {
            "decisive_visible": self.decisive_visible,
            "lines": len(self.lags),
            "puts": self.puts,
            "lag_p50": ordered[len(ordered) // 2],
            "lag_p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
            "lag_max": ordered[-1],
        }


def write(lines: list[Line], sink: Sink, group: str, t0_ms: int) -> WriteReport:
    """Put every line at ``t0 + visible_ms`` (all due lines of a stream in one call); block until done."""
    pending = sorted(lines, key=lambda line: line.visible_ms)  # stable: a stream's lines stay in print order
    report = WriteReport()
    position = 0
    while position < len(pending):
        now_ms = time.time() * 1000
        wait_ms = t0_ms + pending[position].visible_ms - now_ms
        if wait_ms > 0:
            time.sleep(min(wait_ms / 1000, 0.2))
            continue
        due: dict[str, list[Line]] = defaultdict(list)
        while position < len(pending) and t0_ms + pending[position].visible_ms <= now_ms:
            due[pending[position].stream].append(pending[position])
            position += 1
        for stream, batch in due.items():
            sink.put(group, stream, [{"timestamp": t0_ms + line.at_ms, "message": line.message} for line in batch])
            landed = time.time()
            report.puts += 1
            for line in batch:
                report.lags.append(landed - (t0_ms + line.visible_ms) / 1000)
                if line.decisive and line.invocation is not None:
                    report.decisive_visible[line.invocation] = landed
    return report
