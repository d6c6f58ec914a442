"""Assemble the local AWS stack: moto behind one front endpoint, with Lambda functions that really run."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import urllib.request
from pathlib import Path
from types import TracebackType

import boto3
from moto.server import ThreadedMotoServer

from local_aws.cloudwatch_writer import CloudWatchWriter
from local_aws.durable import DurableExecutions
from local_aws.durable_server import DurableServer
from local_aws.environments import EnvironmentPool, ExecutionEnvironment, RuntimeSettings
from local_aws.functions import FunctionRegistry, FunctionVersion
from local_aws.invoker import Invoker
from local_aws.lambda_api import LambdaInterceptor, lambda_error
from local_aws.platform_lines import TextGeneration
from local_aws.proxy import Forward, FrontServer, HttpRequest, HttpResponse, UpstreamForwarder

log = logging.getLogger(__name__)


class LocalAwsStack:
    """moto in server mode behind ``endpoint_url``, except Lambda ``Invoke``, which runs the function's code.

    Use as a context manager (``with LocalAwsStack(port=0) as stack: ... stack.endpoint_url``) or call
    ``start()`` and ``stop()``.

    :param host: address the front endpoint listens on (``0.0.0.0`` in a container).
    :param port: its port; 0 picks a free one (read it from ``endpoint_url``).
    :param ingestion_delay: seconds between a line being printed and it being readable in CloudWatch Logs.
    :param max_concurrency: how many invocations run at once; asynchronous ones wait in a queue beyond that.
    :param region: region assumed for requests that carry none (unsigned requests).
    :param async_retry_delays: seconds before each retry of a failed asynchronous invocation (Lambda: ~60, ~120).
    :param init_timeout: how long a new environment may take to load the handler.
    :param work_dir: where function code is extracted; a temporary directory (removed on stop) if not given.
    :param text_generation: ``"2026"`` (default): Lambda's text lines of today, a failed request's REPORT
        ending in ``Status: timeout|error`` (and ``Error Type``); ``"legacy"``: the lines of before 2026
        ("Task timed out after N seconds" after REPORT, "Runtime exited with error" lines).
    :param durable_visibility_delay: seconds during which ``GetDurableExecution`` answers
        ``ResourceNotFoundException`` for a durable execution an ``Event`` invoke has just started, as Lambda may
        (it starts it when it takes the event from its queue; the read is eventually consistent). 0: at once.
    :param managed_instances_runtime_done: Managed Instances functions write ``platform.start`` and
        ``platform.report`` per request and no ``platform.runtimeDone`` (reported by one source); ``True``
        writes ``platform.runtimeDone`` too, as ordinary JSON-format functions do.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ingestion_delay: float = 1.0,
        max_concurrency: int = 10,
        region: str = "us-east-1",
        async_retry_delays: tuple[float, ...] = (60.0, 120.0),
        init_timeout: float = 10.0,
        work_dir: str | Path | None = None,
        text_generation: TextGeneration = "2026",
        durable_visibility_delay: float = 0.0,
        managed_instances_runtime_done: bool = False,
    ) -> None:
        self._host = host
        self._port = port
        self._ingestion_delay = ingestion_delay
        self._max_concurrency = max_concurrency
        self._region = region
        self._async_retry_delays = async_retry_delays
        self._init_timeout = init_timeout
        self._text_generation = text_generation
        self._durable_visibility_delay = durable_visibility_delay
        self._managed_instances_runtime_done = managed_instances_runtime_done
        self._given_work_dir = Path(work_dir) if work_dir else None
        self._work_dir: Path | None = None
        self._moto: ThreadedMotoServer | None = None
        self._moto_url: str | None = None
        self._writer: CloudWatchWriter | None = None
        self._registry: FunctionRegistry | None = None
        self._pool: EnvironmentPool | None = None
        self._invoker: Invoker | None = None
        self._lambda: LambdaInterceptor | None = None
        self._durable: DurableExecutions | None = None
        self._front: FrontServer | None = None
        self._settings = RuntimeSettings()

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> LocalAwsStack:
        """Start moto, the log writer and the front endpoint."""
        if self._front is not None:
            raise RuntimeError(f"LocalAwsStack is already running at {self.endpoint_url}")
        # moto's web server logs every request at INFO on its own; keep the stack's output readable.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        try:
            self._start_parts()
        except BaseException:
            self.stop()
            raise
        log.info("local_aws listening on %s (moto at %s)", self.endpoint_url, self._moto_url)
        return self

    def _start_parts(self) -> None:
        self._work_dir = self._given_work_dir or Path(tempfile.mkdtemp(prefix="local-aws-"))
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self._moto_url = f"http://{host}:{port}"
        self._configure_moto()
        self._writer = CloudWatchWriter(self._moto_url, delay=self._ingestion_delay)
        self._registry = FunctionRegistry(self._work_dir / "code", fetch_s3=self._fetch_s3)
        self._pool = EnvironmentPool(self._new_environment)
        self._invoker = Invoker(
            self._pool,
            max_concurrency=self._max_concurrency,
            init_timeout=self._init_timeout,
            retry_delays=self._async_retry_delays,
            text_generation=self._text_generation,
            managed_instances_runtime_done=self._managed_instances_runtime_done,
        )
        self._front = FrontServer(self._host, self._port, UpstreamForwarder(self._moto_url), self._intercept)
        # The durable server process starts only when a durable function is first invoked.
        self._durable = DurableExecutions(
            DurableServer(self.endpoint_url, region=self._region, log_path=self._work_dir / "durable-server.log"),
            lambda_error,
            visibility_delay=self._durable_visibility_delay,
        )
        self._lambda = LambdaInterceptor(
            self._registry,
            self._invoker,
            self._pool,
            default_region=self._region,
            on_reset=self._after_reset,
            durable_executions=self._durable,
        )
        self._settings = RuntimeSettings(endpoint_url=self.endpoint_url)
        self._front.start()

    def stop(self) -> None:
        """Stop taking requests, kill every environment, write the queued log lines, then stop moto."""
        if self._front is not None:
            self._front.stop()
        if self._durable is not None:
            self._durable.close()
        if self._invoker is not None:
            self._invoker.close()
        if self._pool is not None:
            self._pool.close()
        if self._writer is not None:
            self._writer.close()
        if self._moto is not None:
            self._moto.stop()
        if self._work_dir is not None and self._given_work_dir is None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
        self._front = self._invoker = self._pool = self._writer = self._moto = None
        self._lambda = self._registry = self._durable = None
        self._work_dir = self._moto_url = None

    def __enter__(self) -> LocalAwsStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- what callers use ----------------------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """Return the URL to give every AWS client (``endpoint_url=``)."""
        if self._front is None:
            raise RuntimeError("LocalAwsStack is not running: call start() or use it as a context manager")
        host = "127.0.0.1" if self._host in ("0.0.0.0", "", "::") else self._host
        return f"http://{host}:{self._front.port}"

    @property
    def moto_url(self) -> str:
        """Return moto's own URL (requests there bypass the Lambda emulation)."""
        if self._moto_url is None:
            raise RuntimeError("LocalAwsStack is not running")
        return self._moto_url

    def flush_logs(self, timeout: float = 30.0) -> bool:
        """Wait until every log line printed so far is in CloudWatch Logs; return False on timeout."""
        return self._writer.flush(timeout) if self._writer is not None else True

    @property
    def durable_server_running(self) -> bool:
        """Return whether AWS's local durable server runs (it starts when a durable function is first invoked)."""
        return self._durable is not None and self._durable.server_running

    def environments(self) -> list[ExecutionEnvironment]:
        """Return the execution environments that exist now (for diagnostics and tests)."""
        return self._pool.environments() if self._pool is not None else []

    # -- internals -----------------------------------------------------------------------------------------------

    def _intercept(self, request: HttpRequest, forward: Forward) -> HttpResponse:
        assert self._lambda is not None
        return self._lambda(request, forward)

    def _new_environment(
        self, function: FunctionVersion, tenant_id: str | None, stream_name: str
    ) -> ExecutionEnvironment:
        assert self._writer is not None
        return ExecutionEnvironment(
            function, writer=self._writer, settings=self._settings, tenant_id=tenant_id, stream_name=stream_name
        )

    def _configure_moto(self) -> None:
        """Tell moto's Lambda not to look for Docker (it would only echo payloads; Invoke never reaches it)."""
        request = urllib.request.Request(
            f"{self.moto_url}/moto-api/config",
            data=json.dumps({"lambda": {"use_docker": False}}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def _after_reset(self) -> None:
        assert self._registry is not None and self._pool is not None and self._writer is not None
        self._registry.reset()
        if self._durable is not None:
            self._durable.reset()
        self._pool.reopen()
        self._writer.forget_resources()
        self._configure_moto()

    def _fetch_s3(self, region: str, bucket: str, key: str, version: str | None) -> bytes:
        s3 = boto3.client(
            "s3",
            region_name=region,
            endpoint_url=self.moto_url,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        extra = {"VersionId": version} if version else {}
        return s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
