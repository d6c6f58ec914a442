"""AWS's own local durable-execution server (``dex-local-runner start-server``) as a subprocess of the stack.

The server keeps the executions, their checkpoints and timers, and runs every replay as a Lambda ``Invoke`` of
the stack (marked with the header ``X-Dex-Handler-Invoke: true``). It is started the first time a durable
function needs it, so stacks without durable functions never pay for it.
"""

from __future__ import annotations

import http.client
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from local_aws.proxy import HttpResponse

log = logging.getLogger(__name__)

# The module behind the ``dex-local-runner`` console script of aws-durable-execution-sdk-python-testing.
_CLI_MODULE = "aws_durable_execution_sdk_python_testing.cli"
_START_ATTEMPTS = 3


class DurableServerError(RuntimeError):
    """The durable server could not be started or did not answer."""


class DurableServer:
    """Start, reach and stop one ``dex-local-runner start-server`` process, lazily.

    :param lambda_endpoint: where the server sends its handler invocations (the stack's own endpoint).
    :param region: the region the server signs its invocations in and reports in function ARNs.
    :param log_path: file that receives the server's own output (for diagnostics).
    :param start_timeout: how long the server may take to answer ``GET /health``.
    """

    def __init__(
        self,
        lambda_endpoint: str,
        *,
        region: str,
        log_path: Path,
        invocation_timeout: int = 900,
        start_timeout: float = 60.0,
    ) -> None:
        self._lambda_endpoint = lambda_endpoint
        self._region = region
        self._log_path = log_path
        self._invocation_timeout = invocation_timeout
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def running(self) -> bool:
        """Return whether the server process has been started and is alive."""
        return self._process is not None and self._process.poll() is None

    def ensure_started(self) -> None:
        """Start the server if it is not running, and wait until it answers."""
        with self._lock:
            if self.running:
                return
            self._stop_locked()
            last_error: Exception | None = None
            for _ in range(_START_ATTEMPTS):  # a port picked free may be taken before the server binds it
                try:
                    self._start_locked()
                    return
                except DurableServerError as err:
                    last_error = err
                    self._stop_locked()
            raise DurableServerError(f"The durable server did not start: {last_error}")

    def stop(self) -> None:
        """Stop the server; its executions are forgotten (memory store)."""
        with self._lock:
            self._stop_locked()

    def send(self, method: str, path: str, body: bytes = b"", *, timeout: float = 60.0) -> HttpResponse:
        """Send one request to the running server and return its whole answer.

        :param path: the path and query, already percent-encoded as the server expects.
        """
        port = self._port
        if port is None or not self.running:
            raise DurableServerError("The durable server is not running")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body else {}
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            kept = [
                (name, value)
                for name, value in response.getheaders()
                if name.lower() not in ("connection", "transfer-encoding", "keep-alive", "server", "date")
            ]
            return HttpResponse(response.status, kept, payload)
        finally:
            connection.close()

    # -- internals -----------------------------------------------------------------------------------------------

    def _start_locked(self) -> None:
        if importlib.util.find_spec(_CLI_MODULE.rsplit(".", 1)[0]) is None:
            raise DurableServerError(
                "aws-durable-execution-sdk-python-testing is not installed (pip install -e '.[durable]')"
            )
        port = _free_port()
        command = [
            sys.executable,
            "-m",
            _CLI_MODULE,
            "start-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lambda-endpoint",
            self._lambda_endpoint,
            "--local-runner-endpoint",
            f"http://127.0.0.1:{port}",
            "--local-runner-region",
            self._region,
            "--store-type",
            "memory",
            "--invocation-timeout",
            str(self._invocation_timeout),
            "--log-level",
            "WARNING",
        ]
        environment = {
            **os.environ,
            # The server signs its Invoke calls; the stack does not check signatures.
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": self._region,
        }
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA"):
            environment.pop(name, None)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._log_path, "ab") as output:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=environment
            )
        self._port = port
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DurableServerError(
                    f"it exited with status {self._process.returncode} (its output is in {self._log_path})"
                )
            if self._healthy(port):
                log.info("Durable server listening on 127.0.0.1:%d (pid %d)", port, self._process.pid)
                return
            time.sleep(0.1)
        raise DurableServerError(f"no answer on port {port} within {self._start_timeout:g} s")

    def _stop_locked(self) -> None:
        process, self._process, self._port = self._process, None, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        log.info("Durable server stopped (pid %d)", process.pid)

    @staticmethod
    def _healthy(port: int) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/health")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()


def quote_segment(value: str) -> str:
    """Percent-encode one path segment, slashes included (the server splits the path before decoding)."""
    return urllib.parse.quote(value, safe="")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
