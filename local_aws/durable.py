"""Durable functions: Invoke starts an execution, and the 2025-12-01 API answers, through AWS's local durable server.

The durable server (``local_aws.durable_server``) keeps the executions and runs each replay as an ``Invoke`` of
the stack. What it does not do as Lambda does is done here:

- execution names: validated, unique per account and region, idempotent (the same name with the same payload
  is the same execution; another payload is a conflict);
- ARNs: the server names an execution ``<uuid>/<uuid>``; callers see Lambda's
  ``arn:aws:lambda:<region>:<account>:function:<name>:<version>/durable-execution/<name>/<id>``. Both forms
  are translated wherever they appear: paths, request and response bodies, and the replays' payloads;
- ``FunctionArn`` and ``DurableConfig`` of ``GetDurableExecution`` come from the function the stack knows;
- with a ``visibility_delay``, ``GetDurableExecution`` answers ``ResourceNotFoundException`` for that long after
  an ``Event`` start, as Lambda may (it starts the execution when it takes the event from its queue, and the
  read is eventually consistent). The execution itself runs at once.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from local_aws.durable_server import DurableServer, quote_segment
from local_aws.functions import FunctionVersion, parse_function_reference
from local_aws.proxy import HttpRequest, HttpResponse

log = logging.getLogger(__name__)

API_PREFIX = "/2025-12-01/"
# RetentionPeriodInDays when DurableConfig leaves it out (SAM's and CDK's documented default).
DEFAULT_RETENTION_DAYS = 14
# ExecutionTimeout when DurableConfig leaves it out. SAM and CloudFormation require it; the API does not say
# what Lambda assumes, so the stack allows the longest execution Lambda allows (366 days).
DEFAULT_EXECUTION_TIMEOUT = 31_622_400
# A synchronous Invoke of a durable function waits at most this long (or the execution timeout).
SYNC_WAIT_SECONDS = 900
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"})

_EXECUTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SERVER_ARN = re.compile(rf"{_UUID}/{_UUID}")
_REAL_ARN = re.compile(
    r"arn:[\w-]+:lambda:[\w-]+:\d{12}:function:[\w-]+:(?:\$LATEST(?:\.PUBLISHED)?|\d+)/durable-execution/[\w-]+/[\w-]+"
)
_EXECUTION_ROUTE = re.compile(
    r"^/2025-12-01/durable-executions/(?P<arn>.+?)(?P<action>/checkpoint|/stop|/state|/history)?/?$"
)
_FUNCTION_ROUTE = re.compile(r"^/2025-12-01/functions/(?P<fn>[^/]+)/durable-executions/?$")


class ExecutionNameConflict(RuntimeError):
    """An execution of that name exists with another payload or function (Lambda's 409)."""


@dataclass(frozen=True)
class DurableExecution:
    """One execution as the stack started it."""

    arn: str
    server_arn: str
    name: str
    function: FunctionVersion
    payload: bytes
    # ``time.monotonic()`` before which ``GetDurableExecution`` does not find it.
    visible_at: float = 0.0

    @property
    def timeout_seconds(self) -> int:
        """Return the execution timeout from the function's ``DurableConfig``."""
        return execution_timeout(self.function)


def execution_timeout(function: FunctionVersion) -> int:
    """Return ``DurableConfig.ExecutionTimeout`` of a function, or the stack's default."""
    return int((function.durable_config or {}).get("ExecutionTimeout") or DEFAULT_EXECUTION_TIMEOUT)


def durable_config(function: FunctionVersion) -> dict[str, Any]:
    """Return ``DurableConfig`` as ``GetFunctionConfiguration`` shows it, with the retention default filled in."""
    config = dict(function.durable_config or {})
    config.setdefault("RetentionPeriodInDays", DEFAULT_RETENTION_DAYS)
    return config


def valid_execution_name(name: str) -> bool:
    """Return whether ``name`` is a valid ``DurableExecutionName`` (1-64 of ``[a-zA-Z0-9-_]``)."""
    return bool(_EXECUTION_NAME.match(name))


def is_durable_api(path: str) -> bool:
    """Return whether a (decoded) request path belongs to the durable-execution API."""
    return path.startswith(API_PREFIX) and (
        path.startswith("/2025-12-01/durable-execution") or bool(_FUNCTION_ROUTE.match(path))
    )


class DurableExecutions:
    """Start executions and answer the durable API, translating between the server's ARNs and Lambda's.

    :param error: builds an error answer the way Lambda sends it (status, type, message).
    :param visibility_delay: seconds during which ``GetDurableExecution`` does not find an execution an ``Event``
        invoke has just started.
    """

    def __init__(
        self,
        server: DurableServer,
        error: Callable[[int, str, str], HttpResponse],
        *,
        visibility_delay: float = 0.0,
    ) -> None:
        self._server = server
        self._error = error
        self._visibility_delay = visibility_delay
        self._lock = threading.Lock()
        # Held while an execution is being started, so that one name is never started twice.
        self._start_lock = threading.Lock()
        self._by_arn: dict[str, DurableExecution] = {}
        self._by_server_arn: dict[str, DurableExecution] = {}
        self._by_name: dict[tuple[str, str, str], DurableExecution] = {}

    # -- starting and waiting ------------------------------------------------------------------------------------

    def start(
        self,
        function: FunctionVersion,
        name: str,
        payload: bytes,
        tenant_id: str | None = None,
        *,
        asynchronous: bool = False,
    ) -> tuple[DurableExecution, bool]:
        """Start an execution of ``function``, or return the one of that name; say whether it existed already.

        Raises ``ExecutionNameConflict`` when the name is taken by another payload or function.

        :param asynchronous: an ``Event`` invoke starts it: hidden from ``GetDurableExecution`` for the
            ``visibility_delay``.
        """
        region, account = _region_and_account(function)
        key = (region, account, name)
        with self._start_lock:
            with self._lock:
                existing = self._by_name.get(key)
            if existing is not None:
                same_function = (existing.function.function_arn, existing.function.version) == (
                    function.function_arn,
                    function.version,
                )
                if same_function and existing.payload == payload:
                    return existing, True
                raise ExecutionNameConflict(
                    f"Durable execution {name} has already been started (as {existing.arn}) with "
                    + ("another input" if same_function else f"function {existing.function.qualified_arn}")
                )
            self._server.ensure_started()
            invocation_id = str(uuid.uuid4())
            start = {
                "AccountId": account,
                "FunctionName": function.name,
                "FunctionQualifier": function.version,
                "ExecutionName": name,
                "ExecutionTimeoutSeconds": execution_timeout(function),
                "ExecutionRetentionPeriodDays": int(durable_config(function)["RetentionPeriodInDays"]),
                "InvocationId": invocation_id,
                "Input": payload.decode("utf-8"),
            }
            if tenant_id:
                start["TenantId"] = tenant_id
            answer = self._server.send("POST", "/start-durable-execution", json.dumps(start).encode())
            if not answer.ok:
                raise RuntimeError(f"The durable server refused to start {name}: {answer.status} {answer.body!r}")
            server_arn = str(json.loads(answer.body)["ExecutionArn"])
            # The last segment is the id of the execution's EXECUTION operation (the invocation id given here): the
            # SDK finds the execution's input by it, in the server's ARNs as in Lambda's.
            execution_id = server_arn.rsplit("/", 1)[-1]
            arn = f"{function.qualified_arn}/durable-execution/{name}/{execution_id}"
            visible_at = time.monotonic() + self._visibility_delay if asynchronous else 0.0
            execution = DurableExecution(arn, server_arn, name, function, payload, visible_at)
            with self._lock:
                self._by_arn[arn] = execution
                self._by_server_arn[server_arn] = execution
                self._by_name[key] = execution
        log.info("Started durable execution %s", arn)
        return execution, False

    def wait(self, execution: DurableExecution, timeout: float) -> dict[str, Any] | None:
        """Return ``GetDurableExecution`` of ``execution`` once it has ended, or ``None`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            document = self.describe(execution)
            if document.get("Status") in TERMINAL:
                return document
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    def describe(self, execution: DurableExecution) -> dict[str, Any]:
        """Return ``GetDurableExecution`` of ``execution``, as Lambda answers it."""
        answer = self._server.send("GET", f"/2025-12-01/durable-executions/{quote_segment(execution.server_arn)}")
        if not answer.ok:
            raise RuntimeError(f"The durable server cannot describe {execution.arn}: {answer.status} {answer.body!r}")
        document = json.loads(self.to_caller(answer.body))
        self._complete_description(document, execution)
        return document

    # -- the durable API -----------------------------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request of the durable-execution API."""
        path = request.path
        query = urllib.parse.urlsplit(request.target).query
        suffix = f"?{query}" if query else ""
        match = _EXECUTION_ROUTE.match(path)
        if match and match.group("arn"):
            return self._execution_request(request, match.group("arn"), match.group("action") or "", suffix)
        match = _FUNCTION_ROUTE.match(path)
        if match:
            if not self._server.running:
                return HttpResponse.json_document(200, {"DurableExecutions": []})
            name = parse_function_reference(match.group("fn")).name
            target = f"/2025-12-01/functions/{quote_segment(name)}/durable-executions{suffix}"
            return self._relay(request, target)
        if path.rstrip("/") == "/2025-12-01/durable-executions" and not self._server.running:
            return HttpResponse.json_document(200, {"DurableExecutions": []})
        if not self._server.running:
            return self._error(404, "ResourceNotFoundException", f"No durable execution matches {path}")
        return self._relay(request, urllib.parse.urlsplit(request.target).path + suffix)

    def _execution_request(self, request: HttpRequest, arn: str, action: str, suffix: str) -> HttpResponse:
        with self._lock:
            execution = self._by_arn.get(arn) or self._by_server_arn.get(arn)
        describe = not action and request.method == "GET"
        hidden = execution is not None and describe and time.monotonic() < execution.visible_at
        if execution is None or hidden or not self._server.running:
            return self._error(404, "ResourceNotFoundException", f"Durable execution {arn} does not exist")
        target = f"/2025-12-01/durable-executions/{quote_segment(execution.server_arn)}{action}{suffix}"
        if action == "/stop":
            request = replace(request, body=stop_body_for_server(request.body))
        response = self._relay(request, target)
        if response.ok and not action and request.method == "GET":
            document = json.loads(response.body)
            self._complete_description(document, execution)
            return HttpResponse.json_document(response.status, document, _extra_headers(response))
        return response

    def _relay(self, request: HttpRequest, target: str) -> HttpResponse:
        """Send a request to the server with Lambda's ARNs replaced by its own, and translate its answer back."""
        answer = self._server.send(request.method, target, self.to_server(request.body))
        body = self.to_caller(answer.body)
        if not answer.ok and answer.header("x-amzn-ErrorType") is None:
            return self._server_error(answer.status, body)
        headers = [(name, value) for name, value in answer.headers if name.lower() != "content-length"]
        return HttpResponse(answer.status, headers, body)

    def _server_error(self, status: int, body: bytes) -> HttpResponse:
        """Answer a server error the way Lambda does: botocore reads the type from ``x-amzn-ErrorType``."""
        try:
            document = json.loads(body)
        except ValueError:
            document = {}
        if not isinstance(document, dict):
            document = {}
        error_type = str(document.get("Type") or document.get("__type") or "ServiceException")
        message = str(document.get("message") or document.get("Message") or body.decode("utf-8", "replace"))
        return self._error(status, error_type, message)

    # -- ARN translation -----------------------------------------------------------------------------------------

    def to_caller(self, body: bytes) -> bytes:
        """Replace the server's execution ARNs with Lambda's in ``body``."""
        if not body:
            return body
        with self._lock:
            known = dict(self._by_server_arn)
        if not known:
            return body
        text = body.decode("utf-8", "surrogateescape")
        text = _SERVER_ARN.sub(lambda m: known[m.group()].arn if m.group() in known else m.group(), text)
        return text.encode("utf-8", "surrogateescape")

    def to_server(self, body: bytes) -> bytes:
        """Replace Lambda's execution ARNs with the server's in ``body``."""
        if not body:
            return body
        with self._lock:
            known = dict(self._by_arn)
        if not known:
            return body
        text = body.decode("utf-8", "surrogateescape")
        text = _REAL_ARN.sub(lambda m: known[m.group()].server_arn if m.group() in known else m.group(), text)
        return text.encode("utf-8", "surrogateescape")

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every execution and stop the server (it restarts when a durable function next needs it)."""
        with self._start_lock:
            self._server.stop()
            with self._lock:
                self._by_arn.clear()
                self._by_server_arn.clear()
                self._by_name.clear()

    def close(self) -> None:
        """Stop the server."""
        self._server.stop()

    @property
    def server_running(self) -> bool:
        """Return whether the durable server process runs."""
        return self._server.running

    # -- helpers -------------------------------------------------------------------------------------------------

    @staticmethod
    def _complete_description(document: dict[str, Any], execution: DurableExecution) -> None:
        document["FunctionArn"] = execution.function.qualified_arn
        document["Version"] = execution.function.version
        document["DurableConfig"] = {
            "ExecutionTimeout": execution_timeout(execution.function),
            "RetentionPeriodInDays": int(durable_config(execution.function)["RetentionPeriodInDays"]),
        }


def stop_body_for_server(body: bytes) -> bytes:
    """Return StopDurableExecution's body as the durable server reads it.

    Lambda's API sends the ``Error`` structure as the whole body (botocore's ``payload``); the server looks
    for it under an ``Error`` key and otherwise records its own "Execution stopped by user request".
    """
    try:
        document = json.loads(body) if body else None
    except ValueError:
        return body
    if isinstance(document, dict) and document and "Error" not in document:
        return json.dumps({"Error": document}).encode()
    return body


def error_payload(document: Mapping[str, Any]) -> dict[str, Any]:
    """Return what a synchronous caller of an execution that did not succeed gets, from its ``Error``."""
    error = document.get("Error") or {}
    payload: dict[str, Any] = {
        "errorMessage": error.get("ErrorMessage") or f"Durable execution ended {document.get('Status')}",
        "errorType": error.get("ErrorType") or str(document.get("Status")),
    }
    if error.get("StackTrace"):
        payload["stackTrace"] = error["StackTrace"]
    return payload


def _region_and_account(function: FunctionVersion) -> tuple[str, str]:
    parts = function.function_arn.split(":")
    return function.region, parts[4] if len(parts) > 4 else "123456789012"


def _extra_headers(response: HttpResponse) -> list[tuple[str, str]]:
    return [(n, v) for n, v in response.headers if n.lower() not in ("content-length", "content-type")]
