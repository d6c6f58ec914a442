"""The Lambda Runtime API that one execution environment's runtime talks to.

The runtime interface client (``awslambdaric``) long-polls ``/invocation/next`` for work and posts the result
to ``/invocation/{id}/response`` or ``/error`` (or ``/init/error`` when the handler cannot even be loaded). Each
environment gets its own server on its own port, as each Lambda sandbox has its own endpoint.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Protocol

from local_aws.http_body import read_request_body
from local_aws.quiet_server import QuietThreadingServer

log = logging.getLogger(__name__)

_PREFIX = "/2018-06-01/runtime"
_INVOCATION = re.compile(rf"^{_PREFIX}/invocation/(?P<rid>[^/]+)/(?P<kind>response|error)$")


@dataclass(frozen=True)
class Dispatch:
    """One invocation as handed to the runtime by ``/invocation/next``."""

    request_id: str
    payload: bytes
    deadline_ms: int
    invoked_function_arn: str
    trace_id: str
    client_context: str | None = None
    tenant_id: str | None = None


class RuntimeListener(Protocol):
    """What the Runtime API asks of its execution environment."""

    def next_invocation(self) -> Dispatch | None:
        """Block until there is work; ``None`` means the environment is shutting down."""

    def invocation_response(self, request_id: str, body: bytes) -> bool:
        """Take the handler's result; return False if ``request_id`` is not the current invocation."""

    def invocation_error(self, request_id: str, body: bytes, error_type: str | None) -> bool:
        """Take the handler's error; return False if ``request_id`` is not the current invocation."""

    def init_failed(self, body: bytes, error_type: str | None) -> None:
        """Take the error that stopped the runtime from loading the handler."""


class RuntimeApiServer:
    """Serve the Runtime API on ``127.0.0.1`` and an ephemeral port for one environment."""

    def __init__(self, listener: RuntimeListener, *, name: str) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.listener = listener
        # A short poll interval: stopping an environment waits for the serve loop to notice.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name=name, daemon=True)

    @property
    def address(self) -> str:
        """Return ``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> None:
        """Start answering."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and close the socket (a blocked ``/next`` is released by the listener)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


class _Server(QuietThreadingServer):
    listener: RuntimeListener


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm adds ~40 ms per answer.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        log.debug(format, *args)

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        if self.path != f"{_PREFIX}/invocation/next":
            self._reply(404, {"errorMessage": f"Unknown Runtime API path {self.path}", "errorType": "NotFound"})
            return
        dispatch = self.server.listener.next_invocation()
        if dispatch is None:
            self._reply(500, {"errorMessage": "Execution environment is shutting down", "errorType": "Shutdown"})
            return
        headers = {
            # awslambdaric fails without a Content-Type on /next.
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": dispatch.request_id,
            "Lambda-Runtime-Deadline-Ms": str(dispatch.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": dispatch.invoked_function_arn,
            "Lambda-Runtime-Trace-Id": dispatch.trace_id,
        }
        if dispatch.client_context:
            headers["Lambda-Runtime-Client-Context"] = dispatch.client_context
        if dispatch.tenant_id:
            headers["Lambda-Runtime-Aws-Tenant-Id"] = dispatch.tenant_id
        self._send(200, dispatch.payload, headers)

    def do_POST(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        body = read_request_body(self.headers, self.rfile)
        error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        listener = self.server.listener
        if self.path == f"{_PREFIX}/init/error":
            listener.init_failed(body, error_type)
            self._reply(202, {"status": "OK"})
            return
        match = _INVOCATION.match(self.path)
        if match is None:
            self._reply(404, {"errorMessage": f"Unknown Runtime API path {self.path}", "errorType": "NotFound"})
            return
        request_id = match.group("rid")
        if match.group("kind") == "response":
            accepted = listener.invocation_response(request_id, body)
        else:
            accepted = listener.invocation_error(request_id, body, error_type)
        if accepted:
            self._reply(202, {"status": "OK"})
        else:
            self._reply(400, {"errorMessage": f"Invalid request ID {request_id}", "errorType": "InvalidRequestID"})

    def _reply(self, status: int, document: dict[str, str]) -> None:
        self._send(status, json.dumps(document).encode(), {"Content-Type": "application/json"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            # The runtime process was killed while we answered; nobody is listening any more.
            self.close_connection = True
