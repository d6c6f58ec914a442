"""Run one invocation in an execution environment, writing Lambda's platform lines around it.

This is where Lambda's behaviour is decided: cold or warm start, the timeout (kill the environment, END, then
REPORT with ``Status: timeout``; or, in the legacy text form, REPORT then "Task timed out"), a runtime that
dies (``Runtime.ExitError``), the concurrency cap, and the asynchronous queue with its retries.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from local_aws import json_logging, platform_lines
from local_aws.environments import EnvironmentPool, ExecutionEnvironment
from local_aws.functions import FunctionVersion
from local_aws.runtime_api import Dispatch

log = logging.getLogger(__name__)

UNHANDLED = "Unhandled"


class Throttled(RuntimeError):
    """Every concurrency slot is busy; a synchronous invocation is refused, as Lambda answers 429."""


@dataclass(frozen=True)
class InvokeRequest:
    """One invocation, as the Invoke API received it."""

    function: FunctionVersion
    invoked_arn: str
    payload: bytes
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_context: str | None = None
    log_tail: bool = False
    tenant_id: str | None = None


@dataclass(frozen=True)
class InvokeResult:
    """What a synchronous caller gets back."""

    request_id: str
    executed_version: str
    payload: bytes
    function_error: str | None = None
    log_tail: str = ""


class Invoker:
    """Run invocations in pooled environments, at most ``max_concurrency`` at a time.

    :param init_timeout: how long a new environment may take to load the handler (Lambda allows 10 s).
    :param retry_delays: seconds before the first and later retries of a failed asynchronous invocation.
    :param text_generation: Lambda's text log lines as written since 2026 (REPORT ``Status:``) or before.
    :param managed_instances_runtime_done: write ``platform.runtimeDone`` for Managed Instances functions too;
        by default they get only ``platform.start`` and ``platform.report``, as one source reports.
    """

    def __init__(
        self,
        pool: EnvironmentPool,
        *,
        max_concurrency: int = 10,
        init_timeout: float = 10.0,
        retry_delays: tuple[float, ...] = (60.0, 120.0),
        clock: Callable[[], float] = time.time,
        text_generation: platform_lines.TextGeneration = "2026",
        managed_instances_runtime_done: bool = False,
    ) -> None:
        if text_generation not in platform_lines.TEXT_GENERATIONS:
            raise ValueError(
                f"Invoker: text_generation must be one of {platform_lines.TEXT_GENERATIONS}, got {text_generation!r}"
            )
        self._legacy = text_generation == "legacy"
        self._managed_instances_runtime_done = managed_instances_runtime_done
        self._pool = pool
        self._init_timeout = init_timeout
        self._retry_delays = retry_delays or (60.0,)
        self._clock = clock
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._events = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="local-aws-event")
        self._lock = threading.Lock()
        self._timers: set[threading.Timer] = set()
        self._closing = False

    def invoke(self, request: InvokeRequest) -> InvokeResult:
        """Run a synchronous invocation now, or raise ``Throttled`` if every slot is busy."""
        if not self._slots.acquire(blocking=False):
            raise Throttled(f"Rate exceeded: {request.function.name} cannot run request {request.request_id} now")
        try:
            return self._run(request)
        finally:
            self._slots.release()

    def submit_event(self, request: InvokeRequest, retry_attempts: int) -> None:
        """Queue an asynchronous invocation; a failure is retried ``retry_attempts`` times with the same id."""
        self._events.submit(self._run_event, request, retry_attempts, 0)

    def close(self) -> None:
        """Drop queued and scheduled asynchronous invocations (running ones end when their environment closes)."""
        with self._lock:
            self._closing = True
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
        self._events.shutdown(wait=False, cancel_futures=True)

    # -- asynchronous queue --------------------------------------------------------------------------------------

    def _run_event(self, request: InvokeRequest, retries_left: int, attempt: int) -> None:
        while not self._slots.acquire(timeout=0.5):
            if self._closing:
                return
        try:
            if self._closing:
                return
            result = self._run(request)
        except Exception:  # an event has no caller to tell: log the cause, as Lambda's own logs would
            log.exception("Asynchronous invocation %s of %s failed to run", request.request_id, request.function.name)
            return
        finally:
            self._slots.release()
        if result.function_error and retries_left > 0:
            self._schedule_retry(request, retries_left - 1, attempt + 1)

    def _schedule_retry(self, request: InvokeRequest, retries_left: int, attempt: int) -> None:
        delay = self._retry_delays[min(attempt - 1, len(self._retry_delays) - 1)]
        log.info("Retrying asynchronous invocation %s in %.1f s (attempt %d)", request.request_id, delay, attempt + 1)

        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
                if self._closing:
                    return
            self._events.submit(self._run_event, request, retries_left, attempt)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._lock:
            if self._closing:
                return
            self._timers.add(timer)
        timer.start()

    # -- one invocation ------------------------------------------------------------------------------------------

    def _run(self, request: InvokeRequest) -> InvokeResult:
        function = request.function
        environment, cold = self._pool.acquire(function, request.tenant_id)
        if request.log_tail:
            environment.start_tail()
        keep = False
        try:
            if cold and not environment.wait_ready(self._init_timeout):
                payload = self._init_failed(environment, request)
                return self._result(environment, request, payload, UNHANDLED)
            payload, function_error, keep = self._run_warm(environment, request, cold)
            return self._result(environment, request, payload, function_error)
        finally:
            if keep:
                self._pool.release(environment)
            else:
                self._pool.discard(environment)

    def _run_warm(
        self, environment: ExecutionEnvironment, request: InvokeRequest, cold: bool
    ) -> tuple[bytes, str | None, bool]:
        """Dispatch to a ready runtime; return the payload, the function error and whether to keep the environment."""
        function = request.function
        rid = request.request_id
        started = self._clock()
        self._start(environment, rid, started, request.tenant_id)
        deadline = started + function.timeout
        environment.dispatch(
            Dispatch(
                request_id=rid,
                payload=request.payload,
                deadline_ms=int(deadline * 1000),
                invoked_function_arn=request.invoked_arn,
                trace_id=_trace_id(started),
                client_context=request.client_context,
                tenant_id=request.tenant_id,
            )
        )
        outcome = environment.wait_outcome(rid, deadline - self._clock())
        ended = self._clock()
        duration_ms = (ended - started) * 1000
        init_ms = environment.init_duration_ms if cold else None
        if outcome is None:
            log.info("Request %s of %s timed out after %s s", rid, function.name, function.timeout)
            environment.kill()
            environment.finish_invocation()
            environment.drain_logs(until_closed=True)
            seconds = float(function.timeout)
            if self._legacy and function.log_format != "JSON":
                # Lambda named the configured timeout here; REPORT's Duration said how long it really ran.
                self._end(environment, rid, duration_ms, init_ms)
                environment.log_platform(platform_lines.timeout_line(rid, timed_out_at=ended, seconds=seconds))
            else:
                self._end(environment, rid, seconds * 1000, init_ms, status="timeout", error_type="Sandbox.Timedout")
            return platform_lines.timeout_error(rid, seconds), UNHANDLED, False
        if outcome.kind == "exit":
            status = outcome.exit_status if outcome.exit_status is not None else -9
            log.info("Runtime of %s exited (%s) during request %s", function.name, status, rid)
            environment.kill()
            environment.drain_logs(until_closed=True)
            self._exit(environment, rid, status, duration_ms, init_ms)
            return platform_lines.exit_error(rid, status), UNHANDLED, False
        environment.drain_logs()
        if outcome.kind == "error":
            error_type = platform_lines.platform_error_type(outcome.error_type)
            self._end(environment, rid, duration_ms, init_ms, status="error", error_type=error_type)
            return outcome.body, UNHANDLED, True
        self._end(environment, rid, duration_ms, init_ms)
        return outcome.body, None, True

    def _init_failed(self, environment: ExecutionEnvironment, request: InvokeRequest) -> bytes:
        """Write the lines of an invocation whose environment never became ready; return the error payload."""
        rid = request.request_id
        function = request.function
        started = self._clock()
        init_error = environment.init_error
        exit_status = environment.exit_status
        environment.kill()
        environment.drain_logs(until_closed=True)
        self._start(environment, rid, started, request.tenant_id)
        duration_ms = (self._clock() - started) * 1000
        init_ms = (started - environment.started_at) * 1000
        if init_error is not None:
            error_type = platform_lines.platform_error_type(init_error.error_type)
            self._end(environment, rid, duration_ms, init_ms, status="error", error_type=error_type)
            return init_error.body
        if exit_status is not None:
            self._exit(environment, rid, exit_status, duration_ms, init_ms)
            return platform_lines.exit_error(rid, exit_status)
        if self._legacy and function.log_format != "JSON":
            self._end(environment, rid, duration_ms, init_ms)
            environment.log_platform(
                platform_lines.timeout_line(rid, timed_out_at=self._clock(), seconds=self._init_timeout)
            )
        else:
            self._end(
                environment, rid, self._init_timeout * 1000, init_ms, status="timeout", error_type="Sandbox.Timedout"
            )
        return platform_lines.timeout_error(rid, self._init_timeout)

    def _exit(
        self, environment: ExecutionEnvironment, request_id: str, status: int, duration_ms: float, init_ms: float | None
    ) -> None:
        """Write the lines of a runtime that died: the legacy exit lines, or the request's status."""
        if self._legacy and environment.function.log_format != "JSON":
            for line in platform_lines.exit_lines(request_id, status):
                environment.log_platform(line)
            self._end(environment, request_id, duration_ms, init_ms)
        else:
            self._end(environment, request_id, duration_ms, init_ms, status="error", error_type="Runtime.ExitError")

    def _start(self, environment: ExecutionEnvironment, request_id: str, at: float, tenant_id: str | None) -> None:
        """Write START (``platform.start`` in the JSON format, unless the system log level hides it)."""
        function = environment.function
        if function.log_format != "JSON":
            environment.log_platform(platform_lines.start_line(request_id, function.version), at)
        elif json_logging.passes("INFO", function.system_log_level):
            environment.log_platform(
                json_logging.start_event(
                    request_id,
                    version=function.version,
                    function_arn=function.qualified_arn,
                    at=at,
                    tenant_id=tenant_id,
                ),
                at,
            )

    def _end(
        self,
        environment: ExecutionEnvironment,
        request_id: str,
        duration_ms: float,
        init_ms: float | None,
        *,
        status: str = "success",
        error_type: str | None = None,
    ) -> None:
        """Write the end of a request: END and REPORT (with its status when it failed, except in the legacy
        text form), or in the JSON format ``platform.runtimeDone`` and ``platform.report`` as the system log
        level lets through (Managed Instances: ``platform.report`` alone, unless told otherwise)."""
        function = environment.function
        memory = environment.sample_memory()
        if function.log_format == "JSON":
            for event in json_logging.end_events(
                request_id,
                status=status,
                error_type=error_type,
                duration_ms=duration_ms,
                memory_size_mb=function.memory_size,
                max_memory_used_mb=memory,
                init_duration_ms=init_ms,
                at=self._clock(),
                system_level=function.system_log_level,
                tenant_id=environment.tenant_id,
                runtime_done=self._managed_instances_runtime_done or not function.managed_instances,
            ):
                environment.log_platform(event)
            return
        failed = status != "success" and not self._legacy
        environment.log_platform(platform_lines.end_line(request_id))
        environment.log_platform(
            platform_lines.report_line(
                request_id,
                duration_ms=duration_ms,
                memory_size_mb=function.memory_size,
                max_memory_used_mb=memory,
                init_duration_ms=init_ms,
                status=status if failed else None,
                # The seen 2026 timeout REPORT names no error type; errors do.
                error_type=error_type if failed and status != "timeout" else None,
            )
        )

    @staticmethod
    def _result(
        environment: ExecutionEnvironment, request: InvokeRequest, payload: bytes, function_error: str | None
    ) -> InvokeResult:
        tail = environment.take_tail() if request.log_tail else ""
        return InvokeResult(request.request_id, request.function.version, payload, function_error, tail)


def _trace_id(now: float) -> str:
    """Return an X-Ray trace header like Lambda passes to the runtime (not sampled: no daemon here)."""
    return f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
