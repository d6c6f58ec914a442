"""Execution environments: one runtime process per environment, kept warm and reused as Lambda does.

An environment is a subprocess running the Lambda Python runtime interface client (``python -m awslambdaric``)
against this environment's own Runtime API server, with the function's code as working directory, the variables
Lambda sets, and its stdout and stderr captured into the environment's own CloudWatch log stream.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from local_aws import json_logging
from local_aws.cloudwatch_writer import CloudWatchWriter
from local_aws.functions import FunctionVersion
from local_aws.log_capture import PipeLineReader
from local_aws.runtime_api import Dispatch, RuntimeApiServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuntimeSettings:
    """How environments are started, the same for every function of a stack.

    :param python: interpreter that runs ``awslambdaric`` (this venv's, so the venv acts as a layer).
    :param library_paths: put on ``PYTHONPATH`` after the function's code, like ``/opt/python`` of a layer.
    :param endpoint_url: given to the function as ``AWS_ENDPOINT_URL`` so its own AWS calls reach the stack.
    """

    python: str = sys.executable
    library_paths: tuple[str, ...] = (sysconfig.get_paths()["purelib"],)
    endpoint_url: str | None = None


@dataclass(frozen=True)
class RuntimeOutcome:
    """How the runtime finished one invocation: a response, an error report, or by exiting."""

    kind: Literal["response", "error", "exit"]
    body: bytes = b""
    error_type: str | None = None
    exit_status: int | None = None


class ExecutionEnvironment:
    """One sandbox: a runtime process, its Runtime API server and its log stream."""

    def __init__(
        self,
        function: FunctionVersion,
        *,
        writer: CloudWatchWriter,
        settings: RuntimeSettings,
        clock: Callable[[], float] = time.time,
        tenant_id: str | None = None,
        stream_name: str | None = None,
    ) -> None:
        self.function = function
        self.tenant_id = tenant_id
        self.id = uuid.uuid4().hex
        self.stream_name = stream_name or new_stream_name(function)
        self._writer = writer
        self._settings = settings
        self._clock = clock
        self._condition = threading.Condition()
        self._ready = False
        self._closed = False
        self._pending: Dispatch | None = None
        self._current: str | None = None
        self._outcomes: dict[str, RuntimeOutcome] = {}
        self._init_error: RuntimeOutcome | None = None
        self._exit_status: int | None = None
        self._tail: list[str] | None = None
        self._peak_memory_kb = 0
        self.started_at = 0.0
        self.init_duration_ms: float | None = None
        self._api = RuntimeApiServer(self, name=f"runtime-api-{self.id[:8]}")
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: PipeLineReader | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the Runtime API and the runtime process (the init phase begins)."""
        self._api.start()
        read_end, write_end = os.pipe()
        self.started_at = self._clock()
        try:
            self._process = subprocess.Popen(
                [self._settings.python, "-m", "awslambdaric", self.function.handler],
                cwd=self.function.code_dir,
                env=self._process_environment(),
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                start_new_session=True,
            )
        except OSError:
            os.close(read_end)
            self._api.stop()
            raise
        finally:
            os.close(write_end)
        self._reader = PipeLineReader(read_end, self._on_output, name=f"env-output-{self.id[:8]}")
        self._reader.start()
        threading.Thread(target=self._watch, name=f"env-watch-{self.id[:8]}", daemon=True).start()
        log.info("Started environment %s for %s:%s", self.id, self.function.name, self.function.version)

    @property
    def pid(self) -> int | None:
        """Return the runtime process id (for tests and diagnostics)."""
        return self._process.pid if self._process else None

    @property
    def alive(self) -> bool:
        """Return whether the runtime process is still running and the environment is usable."""
        with self._condition:
            return not self._closed and self._exit_status is None and self._process is not None

    def kill(self) -> None:
        """SIGKILL the runtime (and anything it started) and wait until it is gone."""
        process = self._process
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.error("Runtime process %s of environment %s did not die after SIGKILL", process.pid, self.id)

    def close(self) -> None:
        """Kill the runtime, deliver its last lines and stop the Runtime API; the environment is unusable after."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self.kill()
        if self._reader is not None:
            self._reader.wait_closed(5)
        self._api.stop()

    # -- what an invocation does ---------------------------------------------------------------------------------

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the runtime asks for its first invocation; False if init failed, it exited, or ``timeout``."""
        with self._condition:
            self._condition.wait_for(
                lambda: self._ready or self._init_error is not None or self._exit_status is not None, timeout
            )
            return self._ready and self._exit_status is None

    @property
    def init_error(self) -> RuntimeOutcome | None:
        """Return what the runtime reported to ``/init/error``, if it did."""
        with self._condition:
            return self._init_error

    @property
    def exit_status(self) -> int | None:
        """Return the runtime process's return code once it has exited (negative: killed by that signal)."""
        with self._condition:
            return self._exit_status

    def dispatch(self, dispatch: Dispatch) -> None:
        """Hand an invocation to the runtime's next ``/invocation/next``."""
        self.sample_memory()
        with self._condition:
            self._pending = dispatch
            self._current = dispatch.request_id
            self._condition.notify_all()

    def wait_outcome(self, request_id: str, timeout: float) -> RuntimeOutcome | None:
        """Wait for the runtime's response or error, or for its exit; ``None`` if ``timeout`` passed first."""
        with self._condition:
            self._condition.wait_for(
                lambda: request_id in self._outcomes or self._exit_status is not None, max(timeout, 0.0)
            )
            outcome = self._outcomes.pop(request_id, None)
            if outcome is None and self._exit_status is not None:
                outcome = RuntimeOutcome("exit", exit_status=self._exit_status)
            self._current = None if outcome is not None else self._current
        if outcome is not None and outcome.kind != "exit":
            self.sample_memory()
        return outcome

    def finish_invocation(self) -> None:
        """Forget the current invocation (after a timeout, before the environment is discarded)."""
        with self._condition:
            self._current = None
            self._pending = None

    def drain_logs(self, *, until_closed: bool = False) -> None:
        """Deliver every line the runtime has written so far (all of them, once it has exited)."""
        if self._reader is None:
            return
        if until_closed:
            self._reader.wait_closed(5)
        else:
            self._reader.drain()

    def log_platform(self, message: str, timestamp: float | None = None) -> None:
        """Write one of Lambda's own lines (START, END, REPORT, ...) into this environment's stream."""
        stamp = None if timestamp is None else int(timestamp * 1000)
        self._emit(message, stamp)

    def start_tail(self) -> None:
        """Start collecting this environment's lines for ``LogType: Tail``."""
        with self._condition:
            self._tail = []

    def take_tail(self) -> str:
        """Stop collecting and return what was collected since ``start_tail``."""
        with self._condition:
            tail, self._tail = self._tail or [], None
        return "".join(tail)

    def sample_memory(self) -> int:
        """Return the peak resident memory of the runtime so far, in MB (what REPORT calls Max Memory Used)."""
        process = self._process
        if process is not None:
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
            except OSError:
                status = ""
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self._peak_memory_kb = max(self._peak_memory_kb, int(line.split()[1]))
        return max(1, round(self._peak_memory_kb / 1024))

    # -- RuntimeListener -----------------------------------------------------------------------------------------

    def next_invocation(self) -> Dispatch | None:
        """Block the runtime's ``/next`` until an invocation is dispatched (the first call ends the init phase)."""
        with self._condition:
            if not self._ready:
                self._ready = True
                self.init_duration_ms = (self._clock() - self.started_at) * 1000
                self._condition.notify_all()
            while self._pending is None and not self._closed:
                self._condition.wait(0.5)
            if self._closed:
                return None
            dispatch, self._pending = self._pending, None
            return dispatch

    def invocation_response(self, request_id: str, body: bytes) -> bool:
        """Record the handler's result."""
        return self._record(request_id, RuntimeOutcome("response", body))

    def invocation_error(self, request_id: str, body: bytes, error_type: str | None) -> bool:
        """Record the handler's error report."""
        return self._record(request_id, RuntimeOutcome("error", body, error_type))

    def init_failed(self, body: bytes, error_type: str | None) -> None:
        """Record why the handler could not be loaded."""
        with self._condition:
            self._init_error = RuntimeOutcome("error", body, error_type)
            self._condition.notify_all()

    # -- internals -----------------------------------------------------------------------------------------------

    def _record(self, request_id: str, outcome: RuntimeOutcome) -> bool:
        with self._condition:
            if request_id != self._current or request_id in self._outcomes:
                return False
            self._outcomes[request_id] = outcome
            self._condition.notify_all()
            return True

    def _watch(self) -> None:
        assert self._process is not None
        status = self._process.wait()
        with self._condition:
            self._exit_status = status
            self._condition.notify_all()
        log.info("Runtime process of environment %s exited with %s", self.id, status)

    def _on_output(self, line: str, printed_at: float) -> None:
        function = self.function
        if function.log_format == "JSON" and not json_logging.passes(
            json_logging.application_line_level(line), function.application_log_level
        ):
            return  # below the function's ApplicationLogLevel: Lambda does not send it
        self._emit(line, int(printed_at * 1000))

    def _emit(self, line: str, timestamp_ms: int | None) -> None:
        message = line + "\n"
        self._writer.write(self.function.region, self.function.log_group, self.stream_name, message, timestamp_ms)
        with self._condition:
            if self._tail is not None:
                self._tail.append(message)

    def _process_environment(self) -> dict[str, str]:
        """Return the variables Lambda gives a Python runtime, with the function's own in between."""
        function = self.function
        interpreter_dir = str(Path(self._settings.python).parent)
        base = {
            "PATH": os.pathsep.join([interpreter_dir, "/usr/local/bin", "/usr/bin", "/bin"]),
            "LANG": "en_US.UTF-8",
            "PYTHONPATH": os.pathsep.join([function.code_dir, *self._settings.library_paths]),
        }
        if self._settings.endpoint_url:
            base["AWS_ENDPOINT_URL"] = self._settings.endpoint_url
        reserved = {
            "_HANDLER": function.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": function.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": function.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.stream_name,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_RUNTIME_API": self._api.address,
            "AWS_REGION": function.region,
            "AWS_DEFAULT_REGION": function.region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "LAMBDA_TASK_ROOT": function.code_dir,
            "LAMBDA_RUNTIME_DIR": self._settings.library_paths[0] if self._settings.library_paths else "",
            "TZ": ":UTC",
        }
        if function.log_format == "JSON":
            # The runtime writes its logging records as JSON and sets the root logger's level from these;
            # Powertools reads the level too (Lambda's names: TRACE, DEBUG, INFO, WARN, ERROR, FATAL).
            reserved["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            reserved["AWS_LAMBDA_LOG_LEVEL"] = function.application_log_level
        return {**base, **function.environment, **reserved}


def new_stream_name(function: FunctionVersion) -> str:
    """Return a new log stream name as Lambda makes them: ``YYYY/MM/DD/[version]<32 hex digits>``."""
    today = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
    return f"{today}/[{function.version}]{uuid.uuid4().hex}"


# Makes an environment for (function, tenant id, log stream name).
EnvironmentFactory = Callable[[FunctionVersion, "str | None", str], ExecutionEnvironment]
_PoolKey = tuple[str, "str | None"]  # (config id, tenant id): an environment serves one tenant


class EnvironmentPool:
    """Keep idle environments per function configuration; start a new one when none is idle."""

    def __init__(self, factory: EnvironmentFactory) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._idle: dict[_PoolKey, list[ExecutionEnvironment]] = {}
        self._all: set[ExecutionEnvironment] = set()
        self._retired: set[str] = set()
        self._closed = False

    def acquire(self, function: FunctionVersion, tenant_id: str | None = None) -> tuple[ExecutionEnvironment, bool]:
        """Return an environment for ``function`` (and tenant) and whether it is new (a cold start).

        A Managed Instances function runs up to ``per_environment_concurrency`` requests at once in one
        environment, one process each, all writing to one log stream: here, up to that many runtime
        processes share a stream.
        """
        dead: list[ExecutionEnvironment] = []
        chosen: ExecutionEnvironment | None = None
        with self._lock:
            if self._closed:
                raise RuntimeError(f"Cannot run {function.name}: the stack is shutting down")
            idle = self._idle.get((function.config_id, tenant_id), [])
            while idle and chosen is None:
                candidate = idle.pop()
                if candidate.alive:
                    chosen = candidate
                else:
                    dead.append(candidate)
                    self._all.discard(candidate)
        for environment in dead:
            environment.close()
        if chosen is not None:
            return chosen, False
        with self._lock:
            environment = self._factory(function, tenant_id, self._stream_for(function, tenant_id))
            self._all.add(environment)
        try:
            environment.start()
        except BaseException:
            self.discard(environment)
            raise
        return environment, True

    def release(self, environment: ExecutionEnvironment) -> None:
        """Give back an environment after an invocation; it stays warm unless it died or its config was replaced."""
        with self._lock:
            keep = not self._closed and environment.alive and environment.function.config_id not in self._retired
            if keep:
                self._idle.setdefault((environment.function.config_id, environment.tenant_id), []).append(environment)
                return
            self._all.discard(environment)
        environment.close()

    def discard(self, environment: ExecutionEnvironment) -> None:
        """Throw an environment away (after a timeout or crash)."""
        with self._lock:
            self._all.discard(environment)
        environment.close()

    def retire(self, config_ids: list[str]) -> None:
        """Stop reusing environments of replaced configurations; close the idle ones now."""
        with self._lock:
            self._retired.update(config_ids)
            keys = [key for key in self._idle if key[0] in config_ids]
            idle = [env for key in keys for env in self._idle.pop(key, [])]
            for environment in idle:
                self._all.discard(environment)
        for environment in idle:
            environment.close()

    def _stream_for(self, function: FunctionVersion, tenant_id: str | None) -> str:
        """Return the log stream of a new environment: its own, or (Managed Instances) a stream that has
        fewer than ``per_environment_concurrency`` live processes (caller holds the lock)."""
        if function.per_environment_concurrency > 1:
            users: dict[str, int] = {}
            for environment in self._all:
                if environment.function.config_id == function.config_id and environment.tenant_id == tenant_id:
                    users[environment.stream_name] = users.get(environment.stream_name, 0) + 1
            for stream, count in sorted(users.items()):
                if count < function.per_environment_concurrency:
                    return stream
        return new_stream_name(function)

    def environments(self) -> list[ExecutionEnvironment]:
        """Return every environment that exists now, busy or idle."""
        with self._lock:
            return list(self._all)

    def close(self) -> None:
        """Close every environment, busy ones included."""
        with self._lock:
            self._closed = True
            everything = list(self._all)
            self._all.clear()
            self._idle.clear()
        for environment in everything:
            environment.close()

    def reopen(self) -> None:
        """Close every environment and accept new work again (after moto was reset)."""
        self.close()
        with self._lock:
            self._closed = False
            self._retired.clear()
