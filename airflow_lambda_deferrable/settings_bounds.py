"""The bounds of every numeric setting: checked when a DAG is parsed, and again when a trigger is re-created.

Pure: no network, no Airflow. A number must be finite and within its range (``bool`` is not a number);
a count must be an integer. The numbers are not template fields, so the parse-time check sees their
final values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DAY_SECONDS = 86_400.0
# Epoch seconds before the year 3000: anything later is a unit mistake (milliseconds) or tampering.
MAX_EPOCH_SECONDS = 32_503_680_000.0


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

# The trigger's kwargs. Its poll interval may go lower than the operator's, for tests: the operator is
# the public way in, and it holds the 1 s floor.
TRIGGER_BOUNDS: dict[str, Bound] = {
    "invoked_at": Bound(0.0, MAX_EPOCH_SECONDS, False, "epoch seconds"),
    "deadline": Bound(0.0, MAX_EPOCH_SECONDS, False, "epoch seconds"),
    "fire_after": Bound(0.0, MAX_EPOCH_SECONDS, False, "epoch seconds"),
    "poll_interval": Bound(0.1, 300.0, False, "the operator's floor is 1 s; lower is for tests only"),
    "settle_seconds": OPERATOR_BOUNDS["settle_seconds"],
    "late_arrival_seconds": OPERATOR_BOUNDS["ingestion_allowance_seconds"],
    "clock_skew_seconds": Bound(0.0, 3_600.0, False, "clocks of Airflow and AWS differ by seconds"),
    "max_lines": OPERATOR_BOUNDS["max_lines"],
    "max_bytes": OPERATOR_BOUNDS["max_bytes"],
}


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
