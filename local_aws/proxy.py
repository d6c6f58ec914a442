"""The stack's one endpoint: an HTTP server that forwards every request to moto, unless an interceptor answers.

Requests go to moto unchanged (method, path, query, headers, body); only hop-by-hop headers are dropped and the
body is re-framed with a ``Content-Length``. The interceptor sees each request first and may answer it itself
(Lambda ``Invoke``) or forward it and look at moto's answer (``CreateFunction``).
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from local_aws.http_body import read_request_body
from local_aws.quiet_server import QuietThreadingServer

log = logging.getLogger(__name__)

# Headers that describe one connection, not the message (RFC 9110 section 7.6.1), plus Expect: the body is
# already read in full, so moto never needs to send 100 Continue.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect"}
)


@dataclass
class HttpRequest:
    """A request as the front server received it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """Return the first value of a header (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    @property
    def path(self) -> str:
        """Return the decoded path, without the query."""
        return urllib.parse.unquote(urllib.parse.urlsplit(self.target).path)

    @property
    def query(self) -> dict[str, str]:
        """Return the query parameters (the first value of each)."""
        pairs = urllib.parse.parse_qsl(urllib.parse.urlsplit(self.target).query, keep_blank_values=True)
        result: dict[str, str] = {}
        for key, value in pairs:
            result.setdefault(key, value)
        return result

    def json(self) -> dict[str, Any]:
        """Return the body as a JSON object (empty if there is no body)."""
        if not self.body:
            return {}
        loaded = json.loads(self.body)
        if not isinstance(loaded, dict):
            raise ValueError(f"Expected a JSON object in the body of {self.method} {self.path}")
        return loaded


@dataclass
class HttpResponse:
    """A response to send back to the client."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """Return the first value of a header (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    @property
    def ok(self) -> bool:
        """Return whether the status is 2xx."""
        return 200 <= self.status < 300

    @classmethod
    def json_document(cls, status: int, document: Any, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
        """Build a JSON response."""
        return cls(status, [("Content-Type", "application/json"), *(headers or [])], json.dumps(document).encode())


Forward = Callable[[HttpRequest], HttpResponse]
Interceptor = Callable[[HttpRequest, Forward], HttpResponse]


class UpstreamForwarder:
    """Send a request to moto and return its whole response."""

    def __init__(self, upstream_url: str, *, timeout: float = 120.0) -> None:
        parts = urllib.parse.urlsplit(upstream_url)
        if not parts.hostname or not parts.port:
            raise ValueError(f"Upstream URL {upstream_url!r} needs a host and a port")
        self._host = parts.hostname
        self._port = parts.port
        self._timeout = timeout

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Forward ``request`` unchanged (except hop-by-hop headers) and read moto's answer."""
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            connection.putrequest(request.method, request.target, skip_host=True, skip_accept_encoding=True)
            for name, value in request.headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    connection.putheader(name, value)
            if request.body or request.method in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(request.body)))
            connection.endheaders(request.body or None)
            response = connection.getresponse()
            body = response.read()
            headers = [(name, value) for name, value in response.getheaders() if name.lower() not in _HOP_BY_HOP]
            return HttpResponse(response.status, headers, body)
        finally:
            connection.close()


class FrontServer:
    """Listen on ``host:port`` (port 0 picks a free one) and answer through ``interceptor`` or ``forward``."""

    def __init__(self, host: str, port: int, forward: Forward, interceptor: Interceptor | None = None) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.forward = forward
        self._server.interceptor = interceptor
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws-front", daemon=True)

    @property
    def port(self) -> int:
        """Return the port actually listened on."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start answering."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


class _Server(QuietThreadingServer):
    allow_reuse_address = True
    forward: Forward
    interceptor: Interceptor | None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm adds ~40 ms per answer.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        log.debug(format, *args)

    def _handle(self) -> None:
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=read_request_body(self.headers, self.rfile),
        )
        try:
            if self.server.interceptor is not None:
                response = self.server.interceptor(request, self.server.forward)
            else:
                response = self.server.forward(request)
        except Exception as err:  # answer the client with the cause instead of dropping the connection
            log.exception("local_aws could not answer %s %s", request.method, request.path)
            response = HttpResponse.json_document(
                500,
                {"message": f"local_aws could not answer {request.method} {request.path}: {err}"},
                [("x-amzn-ErrorType", "ServiceException")],
            )
        self._send(response, head=request.method == "HEAD")

    def _send(self, response: HttpResponse, *, head: bool) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() == "content-length" and not head:
                continue
            if name.lower() in ("server", "date"):
                continue
            self.send_header(name, value)
        if not head:
            self.send_header("Content-Length", str(len(response.body)))
        elif response.header("Content-Length") is None:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if not head and response.body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle  # noqa: N815
