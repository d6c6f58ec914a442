"""A local stand-in for CloudWatch Logs' request quotas: an HTTP proxy in front of moto.

Every request is forwarded to moto, except that a call of an API with a quota (`quotas.Profile`: by default
``FilterLogEvents`` 5 and ``GetLogEvents`` 10 per second; with a Region's profile ``DescribeLogStreams`` too)
is answered with AWS's throttling error (HTTP 400 ``ThrottlingException``) whenever that many calls were
already let through in the last `window` seconds, shared by every caller: all the triggerers of a run. Other
operations are never throttled. ``GET /__stats`` returns the counts.

The proxy listens on one port per triggerer (`start(listeners=K)`), all sharing the quotas, so that each
triggerer's calls, throttling answers and downloaded bytes are counted apart. It also times moto's answer to
each forwarded read (``emulator_seconds``): the rig's own lag, reported beside the triggers' figures.

Other tenants of the account take their share of each quota (`quotas.Quota`): the proxy itself makes their
calls at the profile's mean rate (Poisson arrivals from a seed, never forwarded). It also counts the bytes of
the ``FilterLogEvents`` and ``GetLogEvents`` answers it forwards: what the triggers downloaded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from benchmarks.download_ledger import FILTER_TARGET, GET_EVENTS_TARGET, DownloadLedger
from benchmarks.metrics import percentile
from benchmarks.quotas import Profile, Quota, conditions_profile

THROTTLING_BODY = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
# Hop-by-hop and length headers are the proxy's own business.
_SKIPPED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})


class QuotaProxy:
    """Forward to `upstream`, throttling each API of `profile` above its rate per `window` seconds.

    :param other_tenants_rate: without a `profile`, the other tenants' ``FilterLogEvents`` calls per second
        (the quotas runs had before profiles: `quotas.conditions_profile`).
    """

    def __init__(
        self,
        upstream: str,
        *,
        profile: Profile | None = None,
        window: float = 1.0,
        other_tenants_rate: float = 0.0,
        seed: int = 7,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.profile = profile or conditions_profile(other_tenants_rate)
        self.quotas = {
            target: Quota(rate, window=window, tenants_rate=self.profile.tenants.get(target, 0.0), seed=seed + index)
            for index, (target, rate) in enumerate(sorted(self.profile.rates.items()))
        }
        self.other_calls = 0
        self.filter_bytes = 0
        self.get_events_bytes = 0
        self.downloads = DownloadLedger()
        self._session: ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._tenants: list[asyncio.Task[None]] = []
        self._listener_of_port: dict[int, int] = {}
        self.listeners: list[ListenerCounts] = []
        self.emulator_seconds: dict[str, list[float]] = defaultdict(list)

    def admit(self, target: str, now: float) -> bool:
        """Return whether a call of `target` arriving at `now` is within its quota (and count it)."""
        quota = self.quotas.get(target)
        if quota is None:
            self.other_calls += 1
            return True
        return quota.admit(now)

    def _counts(self, target: str) -> Quota:
        return self.quotas.get(target) or Quota(0)

    def stats(self) -> dict[str, Any]:
        filter_quota, get_quota = self._counts(FILTER_TARGET), self._counts(GET_EVENTS_TARGET)
        return {
            "profile": self.profile.name,
            "filter_calls": filter_quota.calls,
            "throttled": filter_quota.throttled,
            "other_calls": self.other_calls,
            "filter_bytes": self.filter_bytes,
            "get_events_calls": get_quota.calls,
            "get_events_throttled": get_quota.throttled,
            "get_events_bytes": self.get_events_bytes,
            "tenant_calls": filter_quota.tenant_calls,
            "tenant_throttled": filter_quota.tenant_throttled,
            "get_events_tenant_calls": get_quota.tenant_calls,
            "by_api": {
                target.rsplit(".", 1)[-1]: {
                    "rate": quota.rate,
                    "calls": quota.calls,
                    "throttled": quota.throttled,
                    "tenant_calls": quota.tenant_calls,
                    "tenant_throttled": quota.tenant_throttled,
                    **quota.fullness(),
                }
                for target, quota in self.quotas.items()
            },
            "downloads": self.downloads.stats(),
            "by_listener": [listener.stats() for listener in self.listeners],
            "emulator_seconds": {
                target.rsplit(".", 1)[-1]: {
                    "answers": len(times),
                    "p50": percentile(times, 0.50),
                    "p95": percentile(times, 0.95),
                    "max": max(times),
                }
                for target, times in sorted(self.emulator_seconds.items())
            },
        }

    @staticmethod
    async def _other_tenants(quota: Quota) -> None:
        due = time.monotonic()
        while True:
            due += quota.next_tenant_gap()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            quota.tenant_call(time.monotonic())

    async def start(self, host: str = "127.0.0.1", listeners: int = 1) -> list[str]:
        """Serve on `listeners` free ports of `host` (one per triggerer); return their URLs."""
        self._session = ClientSession(
            connector=TCPConnector(limit=64), timeout=ClientTimeout(total=120), auto_decompress=False
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/__stats", self._stats)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        urls = []
        for index in range(listeners):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, 0))
            await web.SockSite(self._runner, sock, backlog=2048).start()
            port = sock.getsockname()[1]
            self._listener_of_port[port] = index
            self.listeners.append(ListenerCounts())
            urls.append(f"http://{host}:{port}")
        self._tenants = [
            asyncio.create_task(self._other_tenants(quota)) for quota in self.quotas.values() if quota.tenants_rate > 0
        ]
        return urls

    async def close(self) -> None:
        for tenants in self._tenants:
            tenants.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        target = request.headers.get("X-Amz-Target", "")
        listener = self._listener(request)
        admitted = self.admit(target, time.monotonic())
        listener.count(target, admitted)
        if not admitted:
            return _throttling_answer()
        assert self._session is not None, "start() first"
        headers = {key: value for key, value in request.headers.items() if key.lower() not in _SKIPPED_HEADERS}
        sent = time.monotonic()
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=body,
            headers=headers,
            allow_redirects=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        ) as answer:
            payload = await answer.read()
            if target in self.quotas:
                self.emulator_seconds[target].append(time.monotonic() - sent)
                listener.bytes += len(payload)
            if target == FILTER_TARGET:
                self.filter_bytes += len(payload)
            elif target == GET_EVENTS_TARGET:
                self.get_events_bytes += len(payload)
            if target in (FILTER_TARGET, GET_EVENTS_TARGET) and answer.status == 200:
                self.downloads.note(target, body, payload)
            answer_headers = {
                key: value for key, value in answer.headers.items() if key.lower() not in _SKIPPED_HEADERS
            }
        return web.Response(status=answer.status, body=payload, headers=answer_headers)

    def _listener(self, request: web.Request) -> ListenerCounts:
        """The counts of the port `request` came to (one per triggerer)."""
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        return self.listeners[self._listener_of_port.get(sockname[1] if sockname else -1, 0)]


class ListenerCounts:
    """One listener's (one triggerer's) calls and throttling answers per API, and bytes of read answers."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.bytes = 0

    def count(self, target: str, admitted: bool) -> None:
        api = target.rsplit(".", 1)[-1]
        self.calls[api] += 1
        self.throttled[api] += not admitted

    def stats(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "throttled": dict(self.throttled), "bytes": self.bytes}


def _throttling_answer() -> web.Response:
    return web.Response(
        status=400,
        body=THROTTLING_BODY.encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "x-amzn-RequestId": str(uuid.uuid4()),
            "x-amzn-ErrorType": "ThrottlingException",
        },
    )


class ThreadedQuotaProxy:
    """Run a `QuotaProxy` on its own event loop in a thread, for synchronous callers (tests)."""

    def __init__(self, upstream: str, **options: Any) -> None:
        self.proxy = QuotaProxy(upstream, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="quota-proxy")
        self.url = ""

    def __enter__(self) -> ThreadedQuotaProxy:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(timeout=30)[0]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
