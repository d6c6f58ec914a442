"""Every setting in one place: its default, its bounds, and the frozen object the operator hands the trigger.

Pure: no network, no Airflow. A setting has one name in the operator, the trigger, the docs and the
serialized kwargs (`FollowSettings.as_kwargs` is derived from the fields, so a new field cannot be left
out of what a restarted triggerer gets back). A number must be finite and within its range (``bool`` is
not a number); a count must be an integer. The numbers are not template fields, so the parse-time check
sees their final values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DAY_SECONDS = 86_400.0
# Epoch seconds before the year 3000: anything later is a unit mistake (milliseconds) or tampering.
MAX_EPOCH_SECONDS = 32_503_680_000.0

DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_SETTLE_SECONDS = 3.0
DEFAULT_INGESTION_ALLOWANCE_SECONDS = 120.0
DEFAULT_CLOCK_SKEW_SECONDS = 60.0
DEFAULT_END_MARKER = "Function ended"
DEFAULT_CORRELATION_ID_KEY = "correlation_id"
# Most lines, and bytes of lines, the trigger event carries (one database row).
DEFAULT_MAX_LINES = 500
DEFAULT_MAX_BYTES = 256 * 1024
# An asynchronous invocation normally leaves Lambda's queue within seconds; allow minutes.
DEFAULT_QUEUE_ALLOWANCE_SECONDS = 300.0
# A trigger firing within about `[workers] min_heartbeat_interval` (5 s by default) of deferring can make
# LocalExecutor fail the resumed task (Airflow 3.3); deferred tasks resume no earlier than this.
DEFAULT_MIN_DEFER_SECONDS = 6.0
# `[lambda_deferrable] max_requests_per_second`: FilterLogEvents calls per second of one triggerer process.
DEFAULT_MAX_REQUESTS_PER_SECOND = 2.0
# GetDurableExecution calls per second of one triggerer process and connection (their own quota).
DEFAULT_MAX_STATUS_READS_PER_SECOND = 5.0


@dataclass(frozen=True)
class Bound:
    """An inclusive range for one setting, whether it counts something, and why the range is what it is."""

    low: float
    high: float
    integer: bool
    reason: str


# The operator's settings: what a DAG author may ask for.
OPERATOR_BOUNDS: dict[str, Bound] = {
    "poll_interval": Bound(1.0, 300.0, False, "with the shared poller one task's interval paces its log group's reads"),
    "settle_seconds": Bound(0.0, 300.0, False, "late lines come within seconds; longer only delays every verdict"),
    "queue_allowance_seconds": Bound(0.0, 21_600.0, False, "Lambda keeps an event at most 6 hours"),
    "ingestion_allowance_seconds": Bound(0.0, 3_600.0, False, "CloudWatch Logs ingests lines within seconds"),
    "max_wait_seconds": Bound(1.0, 366 * DAY_SECONDS, False, "a deferred task waits at most a year"),
    "max_lines": Bound(1, 100_000, True, "kept lines go into the trigger event, one database row"),
    "max_bytes": Bound(1_024, 64 * 1024 * 1024, True, "the trigger event is one database row"),
    "min_defer_seconds": Bound(0.0, 300.0, False, "only needs to outlast the executor's heartbeat"),
}

# The trigger's numbers. Its poll interval may go lower than the operator's, for tests: the operator is
# the public way in, and it holds the 1 s floor.
# The SystemLogLevels that hide Lambda's START, END and REPORT of a successful request (`logging_controls`).
HIDING_LEVELS = ("WARN", "ERROR", "FATAL")
# A function's timeout, or a durable execution's (up to a year, `durable_execution.MAX_EXECUTION_TIMEOUT_SECONDS`).
FUNCTION_TIMEOUT_BOUND = Bound(1.0, 366 * 86_400.0, False, "a function's or durable execution's timeout, seconds")

TRIGGER_BOUNDS: dict[str, Bound] = {
    "invoked_at": Bound(0.0, MAX_EPOCH_SECONDS, False, "epoch seconds"),
    "deadline": Bound(0.0, MAX_EPOCH_SECONDS, False, "epoch seconds"),
    "fire_after": Bound(0.0, MAX_EPOCH_SECONDS, False, "epoch seconds"),
    "handed_over_at": Bound(0.0, MAX_EPOCH_SECONDS, False, "epoch seconds"),
    "poll_interval": Bound(0.1, 300.0, False, "the operator's floor is 1 s; lower is for tests only"),
    "settle_seconds": OPERATOR_BOUNDS["settle_seconds"],
    "queue_allowance_seconds": OPERATOR_BOUNDS["queue_allowance_seconds"],
    "ingestion_allowance_seconds": OPERATOR_BOUNDS["ingestion_allowance_seconds"],
    "clock_skew_seconds": Bound(0.0, 3_600.0, False, "clocks of Airflow and AWS differ by seconds"),
    "max_lines": OPERATOR_BOUNDS["max_lines"],
    "max_bytes": OPERATOR_BOUNDS["max_bytes"],
}

# Kwargs that triggers deferred by earlier versions were serialized with, and the name each has now.
RENAMED_KWARGS = {"late_arrival_seconds": "ingestion_allowance_seconds"}
INVOCATION_TYPES = ("Event", "RequestResponse")


def problem_with(name: str, value: Any, bound: Bound) -> str | None:
    """Return why `value` is not acceptable for the setting `name`, or ``None`` if it is."""
    kind = "an integer" if bound.integer else "a number"
    allowed = (int,) if bound.integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed):
        return f"{name} must be {kind}, got {value!r} ({type(value).__name__})"
    if (isinstance(value, float) and not math.isfinite(value)) or not bound.low <= value <= bound.high:
        return f"{name} must be {kind} from {bound.low:g} to {bound.high:g} ({bound.reason}), got {value!r}"
    return None


def problems_with(values: Mapping[str, Any], bounds: Mapping[str, Bound]) -> list[str]:
    """Return what is wrong with `values` (settings by name, each with a range in `bounds`)."""
    found = (problem_with(name, value, bounds[name]) for name, value in values.items())
    return [problem for problem in found if problem is not None]


@dataclass(frozen=True)
class FollowSettings:
    """One invocation to follow and how: what the operator hands the trigger, serialized whole.

    The invocation:

    :param function_name: the function as it was invoked (name or ARN), for messages.
    :param log_group: the function's CloudWatch Logs group.
    :param correlation_id: the id injected into the payload, logged by the function.
    :param request_id: the request id of the invoke response.
    :param invoked_at: when the invoke call was made (epoch seconds).
    :param deadline: when to give up and report a timeout (epoch seconds); see `deadline_for` for what it
        means across a step of the wall clock.
    :param known_result: for ``RequestResponse``, what the response said (see `outcome.KnownResult`).
    :param result: for ``RequestResponse``, the function's result as `trigger_event.carry_result` made it.
    :param tenant_id: the tenant the invocation ran for (tenant isolation), for messages.
    :param durable_execution_arn: the durable execution the invoke started or found (durable functions):
        its status, not the log, decides the verdict (see `durable_execution`).
    :param durable_execution_name: that execution's name, for messages.
    :param stop_execution_on_kill: stop the durable execution when a user kills the deferred task.

    How to follow it:

    :param claim_lines_without_ids: ``False`` where one environment runs several requests at once (Lambda
        Managed Instances): lines without ids are then left out and counted, never guessed.
    :param allow_hidden_success: the function's logging config hides a success (see `logging_controls`);
        no failure seen by the deadline counts as success.
    :param fail_fast: an ERROR line decides *failed* once settled, without waiting for the request's end.
    :param hidden_platform_level: the function's ``SystemLogLevel`` when it hides Lambda's START, END and
        REPORT of a successful ``Event`` request (above INFO): only the end marker can show a success.
    :param function_timeout: the function's timeout (seconds); with `hidden_platform_level`, once a line of
        the request is seen, its outcome can show no later than this plus the ingestion allowance.
    :param end_marker: the message that means the handler returned; ``None`` to rely on END/REPORT.
    :param poll_interval: seconds between reads of the log group.
    :param settle_seconds: how long to wait after the request's end, or a failure sign, for late lines.
    :param queue_allowance_seconds: how long an ``Event`` may wait in Lambda's queue: a durable execution it
        starts may be not found (`durable_execution.visibility_bound`) for that long after `invoked_at`.
    :param ingestion_allowance_seconds: how late CloudWatch Logs may ingest a line (how far behind the
        newest line an earlier one may still appear).
    :param clock_skew_seconds: how much earlier than `invoked_at` lines are searched for.
    :param fire_after: never fire before this time (epoch seconds); see the operator's ``min_defer_seconds``.
    :param handed_over_at: when the operator handed the invocation to the trigger (epoch seconds; 0 when an
        older version did not say): a synchronous Invoke ends long after `invoked_at`. A trigger that starts
        much later was restarted or taken over (`sources.log_lines.live_from_ms`).
    :param max_lines: at most this many lines go into the event (first and last ones kept).
    :param max_bytes: at most this many bytes of lines go into the event.

    How the task ends:

    :param end_from_trigger: on success, the trigger ends the task itself (``TaskSuccessEvent``) instead of
        resuming it on a worker; failure, timeout and error resume it, for Airflow's retries and callbacks.
    :param do_xcom_push: the task pushes its result (the operator's ``do_xcom_push``); the trigger that ends
        it pushes the same.
    :param logs_link: the CloudWatch link's stored value (`links.LambdaInvocationLogsLink`), whose time range
        the trigger that ends the task closes.

    The connection: ``aws_conn_id``, ``region_name``, ``verify``, ``botocore_config`` as the operator had them.
    """

    function_name: str
    log_group: str
    correlation_id: str
    request_id: str | None
    invoked_at: float
    deadline: float
    qualifier: str | None = None
    invocation_type: str = "Event"
    known_result: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    tenant_id: str | None = None
    durable_execution_arn: str | None = None
    durable_execution_name: str | None = None
    stop_execution_on_kill: bool = True
    claim_lines_without_ids: bool = True
    allow_hidden_success: bool = False
    fail_fast: bool = False
    hidden_platform_level: str | None = None
    function_timeout: float | None = None
    end_marker: str | None = DEFAULT_END_MARKER
    correlation_id_key: str = DEFAULT_CORRELATION_ID_KEY
    poll_interval: float = DEFAULT_POLL_INTERVAL
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    queue_allowance_seconds: float = DEFAULT_QUEUE_ALLOWANCE_SECONDS
    ingestion_allowance_seconds: float = DEFAULT_INGESTION_ALLOWANCE_SECONDS
    clock_skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS
    fire_after: float = 0.0
    handed_over_at: float = 0.0
    max_lines: int = DEFAULT_MAX_LINES
    max_bytes: int = DEFAULT_MAX_BYTES
    end_from_trigger: bool = False
    do_xcom_push: bool = True
    logs_link: dict[str, Any] | None = None
    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None
    verify: bool | str | None = None
    botocore_config: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        problems = problems_with({name: getattr(self, name) for name in TRIGGER_BOUNDS}, TRIGGER_BOUNDS)
        for name in ("function_name", "log_group", "correlation_id", "correlation_id_key"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                problems.append(f"{name} must be a non-empty string, got {value!r}")
        if self.invocation_type not in INVOCATION_TYPES:
            problems.append(
                f"invocation_type must be one of {', '.join(INVOCATION_TYPES)}, got {self.invocation_type!r}"
            )
        if self.hidden_platform_level is not None and self.hidden_platform_level not in HIDING_LEVELS:
            problems.append(
                f"hidden_platform_level must be one of {', '.join(HIDING_LEVELS)} or None, "
                f"got {self.hidden_platform_level!r}"
            )
        if self.function_timeout is not None:
            problems += problems_with(
                {"function_timeout": self.function_timeout}, {"function_timeout": FUNCTION_TIMEOUT_BOUND}
            )
        for name in ("stop_execution_on_kill", "end_from_trigger", "do_xcom_push"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("known_result", "result", "botocore_config", "logs_link"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                problems.append(f"{name} must be a dict or None, got {type(value).__name__}")
        if problems:
            raise ValueError(f"FollowSettings for {self.function_name!r}: " + "; ".join(problems))

    @property
    def start_ms(self) -> int:
        """The earliest timestamp (ms) a line of the invocation can carry, given the clocks' skew."""
        return int((self.invoked_at - self.clock_skew_seconds) * 1000)

    @property
    def ingestion_allowance_ms(self) -> int:
        return int(self.ingestion_allowance_seconds * 1000)

    @property
    def connection_key(self) -> dict[str, Any]:
        """What makes two triggers' AWS clients interchangeable: they may share a poller or a budget."""
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": self.botocore_config,
        }

    @property
    def identity(self) -> dict[str, Any]:
        """Which invocation this is, as the trigger's event names it."""
        return {
            "function_name": self.function_name,
            "qualifier": self.qualifier,
            "log_group": self.log_group,
            "correlation_id": self.correlation_id,
            "request_id": self.request_id,
            "invocation_type": self.invocation_type,
            "tenant_id": self.tenant_id,
            "durable_execution_arn": self.durable_execution_arn,
            "durable_execution_name": self.durable_execution_name,
        }

    def as_kwargs(self) -> dict[str, Any]:
        """Return every field by name: the trigger's serialized kwargs."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], *, who: str) -> FollowSettings:
        """Build from kwargs, current or serialized by an earlier version (`RENAMED_KWARGS`).

        :param who: names the caller in errors (the trigger class).
        :raises TypeError: an unknown kwarg, a missing one, or one given under both its old and new name.
        :raises ValueError: a value out of its bounds or of the wrong kind.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        given: dict[str, Any] = {}
        for name, value in kwargs.items():
            current = RENAMED_KWARGS.get(name, name)
            if current not in known:
                raise TypeError(f"{who}: unknown setting {name!r}")
            if current in given:
                raise TypeError(f"{who}: {current!r} given twice (once as {name!r})")
            given[current] = value
        try:
            return cls(**given)
        except TypeError as err:
            raise TypeError(f"{who}: {err}") from err


def deadline_for(
    *,
    invoked_at: float,
    function_timeout: float,
    queue_allowance_seconds: float,
    ingestion_allowance_seconds: float,
    max_wait_seconds: float | None,
    responded_at: float | None,
) -> float:
    """Return when to stop waiting for an invocation's outcome (epoch seconds).

    The deadline (like ``fire_after`` and ``invoked_at``) is an epoch time, so that it survives a triggerer
    restart. When the trigger (re)starts, it converts the time left (deadline less the wall clock then) into a
    monotonic deadline, and from then on compares only the monotonic clock (`clock.Timeline`): a step of the
    wall clock after the start neither ends the trigger early nor extends it; a restart reads the wall clock
    anew.

    A user's ``max_wait_seconds`` counts from invoking. Otherwise a synchronous invocation has already
    ended when the response came (`responded_at`): only its lines may still be ingested. An asynchronous
    one may first wait in Lambda's queue, then run for the function's timeout, then be ingested.
    """
    if max_wait_seconds is not None:
        return invoked_at + max_wait_seconds
    if responded_at is not None:
        return responded_at + ingestion_allowance_seconds
    return invoked_at + queue_allowance_seconds + function_timeout + ingestion_allowance_seconds
