"""CloudWatch Logs' request quotas per Region, as the benchmark's proxy enforces them, and one API's quota.

The rates are AWS's, per account and Region, not adjustable for the two read APIs ("CloudWatch Logs quotas",
2026; `airflow_lambda_deferrable.limits`): ``FilterLogEvents`` 5 TPS in the strictest Regions (ap-northeast-3,
ap-southeast-3, ca-west-1, eu-central-1, il-central-1), 10 in most, 25 in us-east-1; ``GetLogEvents`` 10 in
the strictest (us-west-2, eu-west-1, eu-central-1, ...), 25 in most; ``DescribeLogStreams`` 25. Other tenants
of the account (consoles, log shippers, other deployments) take the same absolute share in every profile:
1.5 ``FilterLogEvents`` and 3 ``GetLogEvents`` calls a second.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass

from benchmarks.download_ledger import FILTER_TARGET as FILTER
from benchmarks.download_ledger import GET_EVENTS_TARGET as GET_EVENTS

DESCRIBE_STREAMS = "Logs_20140328.DescribeLogStreams"


@dataclass(frozen=True)
class Profile:
    """Calls per second allowed per API (by ``X-Amz-Target``), and the other tenants' calls per second."""

    name: str
    rates: dict[str, float]
    tenants: dict[str, float]


# Each condition's own quotas before profiles existed: FilterLogEvents 5 (tenants per the conditions) and
# GetLogEvents 10, no tenant on it. `--quotas` replaces them with a Region's.
PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            "strictest",
            {FILTER: 5, GET_EVENTS: 10, DESCRIBE_STREAMS: 25},
            {FILTER: 1.5, GET_EVENTS: 3.0},
        ),
        Profile("most", {FILTER: 10, GET_EVENTS: 25, DESCRIBE_STREAMS: 25}, {FILTER: 1.5, GET_EVENTS: 3.0}),
        Profile("us-east-1", {FILTER: 25, GET_EVENTS: 25, DESCRIBE_STREAMS: 25}, {FILTER: 1.5, GET_EVENTS: 3.0}),
    )
}


def conditions_profile(filter_tenants: float) -> Profile:
    """The quotas runs had before profiles: FilterLogEvents 5 (with `filter_tenants`), GetLogEvents 10."""
    return Profile("conditions", {FILTER: 5, GET_EVENTS: 10}, {FILTER: filter_tenants} if filter_tenants else {})


class Quota:
    """One API's quota: at most `rate` calls in any `window` seconds, shared with the other tenants.

    A tenant's call that finds the window full waits and takes the next free place before any trigger's
    call (its SDK would retry it until it got through), so the tenants take their share whatever the
    triggers do, and the triggers get what is left. Times are passed in (seconds, monotonic).
    """

    def __init__(self, rate: float, *, window: float = 1.0, tenants_rate: float = 0.0, seed: int = 7) -> None:
        self.rate = rate
        self.window = window
        self.tenants_rate = tenants_rate
        self.calls = 0
        self.throttled = 0
        self.tenant_calls = 0
        self.tenant_throttled = 0
        self.tenants_waiting = 0
        self._admitted: deque[float] = deque()
        self._random = random.Random(seed)
        # Calls let through in each whole second (monotonic), everyone's: how full the quota ran, and when.
        self.admitted_per_second: Counter[int] = Counter()

    def admit(self, now: float) -> bool:
        """Count a call arriving at `now`; return whether it is within the quota."""
        self.calls += 1
        self._make_room(now)
        if len(self._admitted) >= self.rate:
            self.throttled += 1
            return False
        self._admitted.append(now)
        self.admitted_per_second[int(now)] += 1
        return True

    def tenant_call(self, now: float) -> None:
        """Count another tenant's call at `now`: now, or at the next free place (throttled meanwhile)."""
        self.tenant_calls += 1
        self._make_room(now)
        if len(self._admitted) >= self.rate:
            self.tenant_throttled += 1
            self.tenants_waiting += 1
        else:
            self._admitted.append(now)
            self.admitted_per_second[int(now)] += 1

    def fullness(self) -> dict[str, int]:
        """How many seconds of the run the quota was used to the full, and how many it was used at all."""
        used = [count for count in self.admitted_per_second.values() if count]
        return {"seconds_used": len(used), "seconds_full": sum(count >= self.rate for count in used)}

    def next_tenant_gap(self) -> float:
        """Seconds until the other tenants' next call (exponential: Poisson arrivals from the seed)."""
        return self._random.expovariate(self.tenants_rate)

    def _make_room(self, now: float) -> None:
        """Forget calls older than the window; give free places to the tenants' waiting calls first."""
        while self._admitted and self._admitted[0] <= now - self.window:
            self._admitted.popleft()
        while self.tenants_waiting and len(self._admitted) < self.rate:
            self.tenants_waiting -= 1
            self._admitted.append(now)
            self.admitted_per_second[int(now)] += 1
