"""A small HTTP proxy in front of moto that answers chosen AWS operations with errors (throttling, ...).

Faults are injected at the HTTP level, so the real aiobotocore/boto3 clients and our real code see
exactly what AWS would send.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class FaultProxy:
    """Forward requests to `upstream`, except that the next N calls of an operation fail as told."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._faults: dict[str, list[tuple[int, str, str, bytes]]] = {}
        self._canned: dict[str, list[tuple[int, dict[str, str], bytes]]] = {}
        self._delays: dict[str, list[float]] = {}
        self.calls: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._received: list[tuple[str, bytes, float]] = []  # (operation, body, time.monotonic())
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._forward()

            def do_POST(self) -> None:  # noqa: N802
                self._forward()

            def do_PUT(self) -> None:  # noqa: N802
                self._forward()

            def do_DELETE(self) -> None:  # noqa: N802
                self._forward()

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                operation = self.headers.get("X-Amz-Target", "").split(".")[-1] or f"{self.command} {self.path}"
                time.sleep(proxy._take_delay(operation))
                canned = proxy._take_canned(operation)
                if canned is not None:
                    status, headers, payload = canned
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                fault = proxy._take_fault(operation, body)
                if fault is not None:
                    status, code, message = fault
                    payload = f'{{"__type":"{code}","message":"{message}","Message":"{message}"}}'.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("x-amzn-ErrorType", code)
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("x-amzn-RequestId", "fault-injected")
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = requests.request(
                    self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=60
                )
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(
        self,
        operation: str,
        times: int,
        code: str = "ThrottlingException",
        status: int = 400,
        message: str = "Rate exceeded",
        body_contains: str = "",
    ) -> None:
        """Answer the next `times` calls of `operation` with an error.

        :param operation: a JSON-protocol operation name ("FilterLogEvents"), or for REST services a piece
            of "METHOD /path" ("/configuration", "POST /2015-03-31/functions/fn/invocations").
        :param body_contains: only requests whose body contains this (e.g. '"logStreamNames"').
        """
        with self._lock:
            self._faults.setdefault(operation, []).extend([(status, code, message, body_contains.encode())] * times)

    def respond_next(self, operation: str, status: int, headers: dict[str, str], body: str) -> None:
        """Answer the next call of `operation` with this response instead of moto's (e.g. a function error)."""
        with self._lock:
            self._canned.setdefault(operation, []).append((status, headers, body.encode()))

    def slow_next(self, operation: str, seconds: float) -> None:
        """Hold the next call of `operation` this long before answering it (a long synchronous Invoke)."""
        with self._lock:
            self._delays.setdefault(operation, []).append(seconds)

    def _take_delay(self, operation: str) -> float:
        with self._lock:
            for name, pending in self._delays.items():
                if pending and name in operation:
                    return pending.pop(0)
            return 0.0

    def _take_canned(self, operation: str) -> tuple[int, dict[str, str], bytes] | None:
        with self._lock:
            for name, pending in self._canned.items():
                if pending and name in operation:
                    self.calls[operation] += 1
                    return pending.pop(0)
            return None

    def _take_fault(self, operation: str, body: bytes) -> tuple[int, str, str] | None:
        with self._lock:
            self.calls[operation] += 1
            self._received.append((operation, body, time.monotonic()))
            for name, pending in self._faults.items():
                if pending and name in operation and pending[0][3] in body:
                    self.failed[name] += 1
                    status, code, message, _ = pending.pop(0)
                    return status, code, message
            return None

    def requests_of(self, operation: str) -> list[tuple[float, dict]]:
        """Return (time.monotonic() on arrival, JSON body) of the requests of `operation` so far, in order."""
        with self._lock:
            return [(at, json.loads(body)) for name, body, at in self._received if name == operation and body]

    def count(self, piece: str) -> int:
        """Return how many requests whose operation or "METHOD /path" contains `piece` were seen."""
        with self._lock:
            return sum(count for operation, count in self.calls.items() if piece in operation)
