"""The Lambda part of the front server: run ``Invoke`` locally, and learn from the control-plane calls moto answers.

Everything else about Lambda (GetFunctionConfiguration, ListFunctions, ...) is moto's, forwarded unchanged; the
only change to moto's answers is adding the settings moto drops (``LoggingConfig``, ``DurableConfig``, ...).
The durable-execution API (2025-12-01) and the Invoke of a durable function go to ``local_aws.durable``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from local_aws import durable
from local_aws.durable import DurableExecutions, ExecutionNameConflict
from local_aws.durable_server import DurableServerError
from local_aws.environments import EnvironmentPool
from local_aws.functions import (
    FunctionNotFound,
    FunctionRegistry,
    FunctionVersion,
    InvalidFunctionReference,
    parse_function_reference,
)
from local_aws.invoker import UNHANDLED, Invoker, InvokeRequest, Throttled
from local_aws.proxy import Forward, HttpRequest, HttpResponse

log = logging.getLogger(__name__)

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
LOG_TAIL_BYTES = 4096

_FN = r"/2015-03-31/functions/(?P<fn>[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/2015-03-31/functions/?$"), "create"),
    ("POST", re.compile(rf"^{_FN}/invocations/?$"), "invoke"),
    ("PUT", re.compile(rf"^{_FN}/code/?$"), "update_code"),
    ("PUT", re.compile(rf"^{_FN}/configuration/?$"), "update_configuration"),
    ("GET", re.compile(rf"^{_FN}/configuration/?$"), "get_configuration"),
    ("GET", re.compile(rf"^{_FN}/?$"), "get_function"),
    ("DELETE", re.compile(rf"^{_FN}/?$"), "delete_function"),
    ("POST", re.compile(rf"^{_FN}/versions/?$"), "publish_version"),
    ("POST", re.compile(rf"^{_FN}/aliases/?$"), "create_alias"),
    ("PUT", re.compile(rf"^{_FN}/aliases/(?P<alias>[^/]+)/?$"), "update_alias"),
    ("DELETE", re.compile(rf"^{_FN}/aliases/(?P<alias>[^/]+)/?$"), "delete_alias"),
    ("PUT", re.compile(r"^/2019-09-25/functions/(?P<fn>[^/]+)/event-invoke-config/?$"), "put_event_config"),
    ("POST", re.compile(r"^/2019-09-25/functions/(?P<fn>[^/]+)/event-invoke-config/?$"), "update_event_config"),
    ("DELETE", re.compile(r"^/2019-09-25/functions/(?P<fn>[^/]+)/event-invoke-config/?$"), "delete_event_config"),
]
# The durable server marks each replay it runs with this header (aws-durable-execution-sdk-python-testing).
HANDLER_INVOKE_HEADER = "X-Dex-Handler-Invoke"
UNQUALIFIED_DURABLE = "You cannot invoke a durable function using an unqualified ARN."
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")


class LambdaInterceptor:
    """Answer Lambda requests that need local work; forward everything else to moto.

    :param on_reset: called after moto has been reset through ``POST /moto-api/reset``.
    """

    def __init__(
        self,
        registry: FunctionRegistry,
        invoker: Invoker,
        pool: EnvironmentPool,
        *,
        default_region: str,
        on_reset: Callable[[], None],
        durable_executions: DurableExecutions | None = None,
    ) -> None:
        self._durable = durable_executions
        self._registry = registry
        self._invoker = invoker
        self._pool = pool
        self._default_region = default_region
        self._on_reset = on_reset

    def __call__(self, request: HttpRequest, forward: Forward) -> HttpResponse:
        """Route one request."""
        path = request.path
        if request.method == "POST" and path.rstrip("/") == "/moto-api/reset":
            response = forward(request)
            self._on_reset()
            return response
        scope = _CREDENTIAL_SCOPE.search(request.header("Authorization") or "")
        if scope and scope.group("service") != "lambda":
            return forward(request)
        region = scope.group("region") if scope else self._default_region
        if self._durable is not None and durable.is_durable_api(path):
            return self._durable.handle(request)
        for method, pattern, action in _ROUTES:
            match = pattern.match(path)
            if match and request.method == method:
                handler: Callable[..., HttpResponse] = getattr(self, f"_{action}")
                return handler(request, forward, region, **match.groupdict())
        return forward(request)

    # -- Invoke --------------------------------------------------------------------------------------------------

    def _invoke(self, request: HttpRequest, forward: Forward, region: str, fn: str) -> HttpResponse:
        try:
            function, invoked_arn = self._registry.resolve(region, fn, request.query.get("Qualifier"))
        except FunctionNotFound as err:
            return lambda_error(404, "ResourceNotFoundException", str(err))
        except InvalidFunctionReference as err:
            return lambda_error(400, "InvalidParameterValueException", str(err))
        invocation_type = request.header("X-Amz-Invocation-Type") or "RequestResponse"
        payload = request.body or b"{}"
        try:
            json.loads(payload)
        except ValueError as err:
            return lambda_error(400, "InvalidRequestContentException", f"Could not parse request body into json: {err}")
        try:
            client_context = _decode_client_context(request.header("X-Amz-Client-Context"))
        except ValueError as err:
            return lambda_error(400, "InvalidRequestContentException", str(err))
        tenant_id = request.header("X-Amz-Tenant-Id")
        if function.tenant_isolation and not tenant_id:
            return lambda_error(
                400, "InvalidParameterValueException", f"{function.name} isolates tenants: the request needs a TenantId"
            )
        if tenant_id and not function.tenant_isolation:
            return lambda_error(
                400,
                "InvalidParameterValueException",
                f"{function.name} does not isolate tenants: TenantId is not allowed",
            )
        handler_invoke = (request.header(HANDLER_INVOKE_HEADER) or "").lower() == "true"
        if function.durable_config and not handler_invoke:
            return self._start_durable(request, fn, function, invocation_type, payload, tenant_id)
        if function.durable_config and self._durable is not None:
            payload = self._durable.to_caller(payload)  # the replay's input names the execution by Lambda's ARN
        invocation = InvokeRequest(
            function=function,
            invoked_arn=invoked_arn,
            payload=payload,
            client_context=client_context,
            tenant_id=tenant_id,
            log_tail=(request.header("X-Amz-Log-Type") or "").lower() == "tail" and invocation_type != "Event",
        )
        rid_header = [("x-amzn-RequestId", invocation.request_id)]
        if invocation_type == "DryRun":
            return HttpResponse(204, rid_header)
        if invocation_type == "Event":
            if len(payload) > ASYNC_PAYLOAD_LIMIT:
                return _too_large(len(payload), ASYNC_PAYLOAD_LIMIT)
            qualifier = request.query.get("Qualifier") or parse_function_reference(fn).qualifier
            retries = self._registry.retry_attempts(region, function.name, qualifier)
            self._invoker.submit_event(invocation, retries)
            log.info("Queued asynchronous invocation %s of %s", invocation.request_id, invoked_arn)
            return HttpResponse(202, rid_header)
        if invocation_type != "RequestResponse":
            return lambda_error(
                400, "InvalidParameterValueException", f"Unknown X-Amz-Invocation-Type {invocation_type!r}"
            )
        if len(payload) > SYNC_PAYLOAD_LIMIT:
            return _too_large(len(payload), SYNC_PAYLOAD_LIMIT)
        try:
            result = self._invoker.invoke(invocation)
        except Throttled as err:
            return lambda_error(
                429, "TooManyRequestsException", str(err), Reason="ReservedFunctionConcurrentInvocationLimitExceeded"
            )
        headers = [
            ("Content-Type", "application/json"),
            ("X-Amz-Executed-Version", result.executed_version),
            *rid_header,
        ]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        if invocation.log_tail:
            tail = result.log_tail.encode("utf-8")[-LOG_TAIL_BYTES:]
            headers.append(("X-Amz-Log-Result", base64.b64encode(tail).decode()))
        body = result.payload
        if function.durable_config and self._durable is not None:
            body = self._durable.to_server(body)
        return HttpResponse(200, headers, body)

    def _start_durable(
        self,
        request: HttpRequest,
        fn: str,
        function: FunctionVersion,
        invocation_type: str,
        payload: bytes,
        tenant_id: str | None,
    ) -> HttpResponse:
        """Start (or find, by name) a durable execution; answer at once (Event) or once it has ended."""
        if self._durable is None:
            return lambda_error(400, "InvalidParameterValueException", "This endpoint runs no durable functions")
        if not (request.query.get("Qualifier") or parse_function_reference(fn).qualifier):
            return lambda_error(400, "InvalidParameterValueException", UNQUALIFIED_DURABLE)
        name = request.header("X-Amz-Durable-Execution-Name")
        if name is None:
            name = str(uuid.uuid4())
        elif not durable.valid_execution_name(name):
            return lambda_error(
                400,
                "InvalidParameterValueException",
                f"Invalid DurableExecutionName {name!r}: 1 to 64 letters, digits, hyphens or underscores",
            )
        if invocation_type not in ("Event", "RequestResponse", "DryRun"):
            return lambda_error(
                400, "InvalidParameterValueException", f"Unknown X-Amz-Invocation-Type {invocation_type!r}"
            )
        request_id = str(uuid.uuid4())
        if invocation_type == "DryRun":
            return HttpResponse(204, [("x-amzn-RequestId", request_id)])
        limit = ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
        if len(payload) > limit:
            return _too_large(len(payload), limit)
        try:
            execution, existed = self._durable.start(
                function, name, payload, tenant_id, asynchronous=invocation_type == "Event"
            )
        except ExecutionNameConflict as err:
            return lambda_error(409, "DurableExecutionAlreadyStartedException", str(err))
        except DurableServerError as err:
            return lambda_error(500, "ServiceException", f"local_aws cannot run durable executions: {err}")
        headers = [
            ("X-Amz-Durable-Execution-Arn", execution.arn),
            ("X-Amz-Executed-Version", function.version),
            ("x-amzn-RequestId", request_id),
        ]
        if existed:
            log.info("Durable execution %s exists already: not started again", execution.arn)
        if invocation_type == "Event":
            return HttpResponse(202, headers)
        document = self._durable.wait(execution, min(durable.SYNC_WAIT_SECONDS, execution.timeout_seconds))
        headers.append(("Content-Type", "application/json"))
        if document is None:
            # The execution goes on; the synchronous caller stops waiting, as Lambda's 15 minutes allow.
            error = {
                "errorMessage": f"Durable execution {execution.arn} did not end within the synchronous limit",
                "errorType": "Sandbox.Timedout",
            }
            return HttpResponse(200, [*headers, ("X-Amz-Function-Error", UNHANDLED)], json.dumps(error).encode())
        if document["Status"] == "SUCCEEDED":
            result = document.get("Result")
            return HttpResponse(200, headers, (result if result is not None else "null").encode())
        error_body = json.dumps(durable.error_payload(document)).encode()
        return HttpResponse(200, [*headers, ("X-Amz-Function-Error", UNHANDLED)], error_body)

    # -- control plane: forward, then record what moto accepted --------------------------------------------------

    def _create(self, request: HttpRequest, forward: Forward, region: str) -> HttpResponse:
        body = request.json()
        try:
            code_dir = self._registry.extract_code(region, body.get("Code") or {})
        except ValueError as err:
            return lambda_error(400, "InvalidParameterValueException", f"local_aws cannot run this function: {err}")
        response = forward(request)
        if response.ok:
            document = json.loads(response.body)
            self._registry.record_create(region, body, document, code_dir)
            return self._with_logging_config(response, region, str(document.get("FunctionName", "")), None)
        return response

    def _update_code(self, request: HttpRequest, forward: Forward, region: str, fn: str) -> HttpResponse:
        try:
            code_dir = self._registry.extract_code(region, request.json())
        except ValueError as err:
            return lambda_error(400, "InvalidParameterValueException", f"local_aws cannot run this code: {err}")
        response = forward(request)
        if response.ok:
            document = json.loads(response.body)
            if self._registry.find(region, fn) is None:
                # moto has the function but it was not created through this endpoint (another moto server in the
                # same process shares moto's state): adopt it, with the configuration moto just returned.
                self._registry.record_create(region, document, document, code_dir)
            else:
                self._pool.retire(self._registry.record_code_update(region, fn, document, code_dir))
        return response

    def _update_configuration(self, request: HttpRequest, forward: Forward, region: str, fn: str) -> HttpResponse:
        response = forward(request)
        if response.ok:
            self._pool.retire(self._registry.record_configuration_update(region, fn, request.json(), {}))
            return self._with_logging_config(response, region, fn, None)
        return response

    def _get_configuration(self, request: HttpRequest, forward: Forward, region: str, fn: str) -> HttpResponse:
        return self._with_logging_config(forward(request), region, fn, request.query.get("Qualifier"))

    def _get_function(self, request: HttpRequest, forward: Forward, region: str, fn: str) -> HttpResponse:
        return self._with_logging_config(
            forward(request), region, fn, request.query.get("Qualifier"), key="Configuration"
        )

    def _delete_function(self, request: HttpRequest, forward: Forward, region: str, fn: str) -> HttpResponse:
        response = forward(request)
        if response.ok:
            qualifier = request.query.get("Qualifier")
            self._pool.retire(self._registry.delete(region, f"{fn}:{qualifier}" if qualifier else fn))
        return response

    def _publish_version(self, request: HttpRequest, forward: Forward, region: str, fn: str) -> HttpResponse:
        response = forward(request)
        if response.ok:
            self._registry.record_publish(region, fn, json.loads(response.body))
        return response

    def _create_alias(self, request: HttpRequest, forward: Forward, region: str, fn: str) -> HttpResponse:
        response = forward(request)
        if response.ok:
            body = request.json()
            self._registry.record_alias(region, fn, str(body["Name"]), str(body["FunctionVersion"]))
        return response

    def _update_alias(self, request: HttpRequest, forward: Forward, region: str, fn: str, alias: str) -> HttpResponse:
        response = forward(request)
        version = request.json().get("FunctionVersion") if response.ok else None
        if version:
            self._registry.record_alias(region, fn, alias, str(version))
        return response

    def _delete_alias(self, request: HttpRequest, forward: Forward, region: str, fn: str, alias: str) -> HttpResponse:
        response = forward(request)
        if response.ok:
            self._registry.delete_alias(region, fn, alias)
        return response

    def _put_event_config(self, request: HttpRequest, forward: Forward, region: str, fn: str) -> HttpResponse:
        response = forward(request)
        if response.ok:
            attempts = request.json().get("MaximumRetryAttempts")
            self._record_retries(region, fn, request, None if attempts is None else int(attempts))
        return response

    def _update_event_config(self, request: HttpRequest, forward: Forward, region: str, fn: str) -> HttpResponse:
        response = forward(request)
        attempts = request.json().get("MaximumRetryAttempts") if response.ok else None
        if attempts is not None:
            self._record_retries(region, fn, request, int(attempts))
        return response

    def _delete_event_config(self, request: HttpRequest, forward: Forward, region: str, fn: str) -> HttpResponse:
        response = forward(request)
        if response.ok:
            self._record_retries(region, fn, request, None)
        return response

    # -- helpers -------------------------------------------------------------------------------------------------

    def _record_retries(self, region: str, fn: str, request: HttpRequest, attempts: int | None) -> None:
        self._registry.record_retry_attempts(region, fn, request.query.get("Qualifier"), attempts)

    def _with_logging_config(
        self, response: HttpResponse, region: str, fn: str, qualifier: str | None, *, key: str | None = None
    ) -> HttpResponse:
        """Add what moto drops: ``LoggingConfig`` (Lambda returns it for every function), ``DurableConfig``, ..."""
        if not response.ok:
            return response
        function = self._registry.find(region, fn, qualifier)
        if function is None:
            return response
        document = json.loads(response.body)
        target = document.get(key) if key else document
        if not isinstance(target, dict):
            return response
        if not target.get("LoggingConfig"):
            target["LoggingConfig"] = _logging_config(function)
        if function.tenant_isolation:
            target["TenancyConfig"] = {"TenantIsolationMode": "PER_TENANT"}
        if function.capacity_provider_config:
            target["CapacityProviderConfig"] = dict(function.capacity_provider_config)
        if function.durable_config:
            target["DurableConfig"] = durable.durable_config(function)
        headers = [(name, value) for name, value in response.headers if name.lower() != "content-length"]
        return HttpResponse(response.status, headers, json.dumps(document).encode())


def lambda_error(status: int, error_type: str, message: str, **extra: str) -> HttpResponse:
    """Build an error the way Lambda sends it: the type in ``x-amzn-ErrorType``, ``Message`` and ``Type`` in JSON."""
    return HttpResponse.json_document(
        status,
        {"Message": message, "Type": "User", **extra},
        [("x-amzn-ErrorType", error_type), ("x-amzn-RequestId", str(uuid.uuid4()))],
    )


def _too_large(size: int, limit: int) -> HttpResponse:
    return lambda_error(
        413, "RequestEntityTooLargeException", f"{size} byte payload is too large for this invocation (max {limit})"
    )


def _logging_config(function: FunctionVersion) -> dict[str, Any]:
    """Return ``LoggingConfig`` as Lambda does: the level filters only in the JSON format."""
    config: dict[str, Any] = {"LogFormat": function.log_format, "LogGroup": function.log_group}
    if function.log_format == "JSON":
        config["ApplicationLogLevel"] = function.application_log_level
        config["SystemLogLevel"] = function.system_log_level
    return config


def _decode_client_context(header: str | None) -> str | None:
    if not header:
        return None
    try:
        return base64.b64decode(header, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as err:
        raise ValueError(f"X-Amz-Client-Context is not base64-encoded UTF-8: {err}") from err
