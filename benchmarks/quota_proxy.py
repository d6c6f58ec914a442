"""A local stand-in for CloudWatch Logs' request quota: an HTTP proxy in front of moto.

Every request is forwarded to moto, except that ``FilterLogEvents`` is answered with AWS's throttling
error (HTTP 400 ``ThrottlingException``) whenever `rate` calls were already let through in the last
`window` seconds: the 5 requests per second per account and region that AWS documents, shared by every
caller. ``GetLogEvents`` has a quota of its own, `GET_EVENTS_RATE` in the same window. Other operations are
never throttled. ``GET /__stats`` returns the counts.

Other tenants of the account can take a share of that quota: with ``other_tenants_rate`` the proxy itself
makes calls at that mean rate (Poisson arrivals from a seed, never forwarded), each counted against the
quota like the triggers' calls. A tenant's call that finds the window full waits and takes the next free
place before any trigger's call (it would be throttled and retried by its SDK until it got through), so
the tenants take their share whatever the triggers do, and the triggers get what is left. It also
counts the bytes of the ``FilterLogEvents`` and ``GetLogEvents`` answers it forwards: what the triggers
downloaded.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
import uuid
from collections import deque
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from benchmarks.download_ledger import FILTER_TARGET, GET_EVENTS_TARGET, DownloadLedger

# GetLogEvents' own quota: 10 requests per second per account and region (no other tenant takes a share here).
GET_EVENTS_RATE = 10
THROTTLING_BODY = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
# Hop-by-hop and length headers are the proxy's own business.
_SKIPPED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})


class QuotaProxy:
    """Forward to `upstream`, throttling ``FilterLogEvents`` above `rate` calls per `window` seconds."""

    def __init__(
        self, upstream: str, *, rate: int = 5, window: float = 1.0, other_tenants_rate: float = 0.0, seed: int = 7
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.rate = rate
        self.window = window
        self.other_tenants_rate = other_tenants_rate
        self.filter_calls = 0
        self.throttled = 0
        self.other_calls = 0
        self.filter_bytes = 0
        self.get_events_calls = 0
        self.get_events_throttled = 0
        self.get_events_bytes = 0
        self.downloads = DownloadLedger()
        self._get_events_admitted: deque[float] = deque()
        self.tenant_calls = 0
        self.tenant_throttled = 0
        self.tenants_waiting = 0
        self._admitted: deque[float] = deque()
        self._random = random.Random(seed)
        self._session: ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._tenants: asyncio.Task[None] | None = None

    def admit(self, now: float) -> bool:
        """Return whether a ``FilterLogEvents`` call arriving at `now` is within the quota (and count it)."""
        self._make_room(now)
        if len(self._admitted) >= self.rate:
            return False
        self._admitted.append(now)
        return True

    def admit_get_events(self, now: float) -> bool:
        """Return whether a ``GetLogEvents`` call arriving at `now` is within its own quota (and count it)."""
        admitted = self._get_events_admitted
        while admitted and admitted[0] <= now - self.window:
            admitted.popleft()
        if len(admitted) >= GET_EVENTS_RATE:
            return False
        admitted.append(now)
        return True

    def tenant_call(self, now: float) -> None:
        """Count another tenant's call at `now` against the quota: now, or at the next free place (throttled)."""
        self.tenant_calls += 1
        self._make_room(now)
        if len(self._admitted) >= self.rate:
            self.tenant_throttled += 1
            self.tenants_waiting += 1
        else:
            self._admitted.append(now)

    def _make_room(self, now: float) -> None:
        """Forget calls older than the window; give free places to the tenants' waiting calls first."""
        while self._admitted and self._admitted[0] <= now - self.window:
            self._admitted.popleft()
        while self.tenants_waiting and len(self._admitted) < self.rate:
            self.tenants_waiting -= 1
            self._admitted.append(now)

    def next_tenant_gap(self) -> float:
        """Return the seconds until the other tenants' next call (exponential: Poisson arrivals)."""
        return self._random.expovariate(self.other_tenants_rate)

    def stats(self) -> dict[str, Any]:
        return {
            "filter_calls": self.filter_calls,
            "throttled": self.throttled,
            "other_calls": self.other_calls,
            "filter_bytes": self.filter_bytes,
            "get_events_calls": self.get_events_calls,
            "get_events_throttled": self.get_events_throttled,
            "get_events_bytes": self.get_events_bytes,
            "tenant_calls": self.tenant_calls,
            "tenant_throttled": self.tenant_throttled,
            "downloads": self.downloads.stats(),
        }

    async def _other_tenants(self) -> None:
        due = time.monotonic()
        while True:
            due += self.next_tenant_gap()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            self.tenant_call(time.monotonic())

    async def start(self, host: str = "127.0.0.1") -> str:
        """Serve on a free port of `host`; return the proxy's URL."""
        self._session = ClientSession(
            connector=TCPConnector(limit=64), timeout=ClientTimeout(total=120), auto_decompress=False
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/__stats", self._stats)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        site = web.SockSite(self._runner, sock, backlog=2048)
        await site.start()
        if self.other_tenants_rate > 0:
            self._tenants = asyncio.create_task(self._other_tenants())
        return f"http://{host}:{sock.getsockname()[1]}"

    async def close(self) -> None:
        if self._tenants is not None:
            self._tenants.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        target = request.headers.get("X-Amz-Target")
        if target == FILTER_TARGET:
            self.filter_calls += 1
            if not self.admit(time.monotonic()):
                self.throttled += 1
                return _throttling_answer()
        elif target == GET_EVENTS_TARGET:
            self.get_events_calls += 1
            if not self.admit_get_events(time.monotonic()):
                self.get_events_throttled += 1
                return _throttling_answer()
        else:
            self.other_calls += 1
        assert self._session is not None, "start() first"
        headers = {key: value for key, value in request.headers.items() if key.lower() not in _SKIPPED_HEADERS}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=body,
            headers=headers,
            allow_redirects=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        ) as answer:
            payload = await answer.read()
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
        self.url = asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
