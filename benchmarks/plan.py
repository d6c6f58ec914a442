"""What the simulated Lambda does in one run: which invocations, when they run, what they print, when it shows.

Everything is decided here, up front and from a seed, so that every mode of a run size faces exactly the
same invocations. Times are offsets in seconds (or milliseconds) from the run's start ``t0``, which is only
fixed when all processes are ready.

Model (one tracked invocation per execution environment, i.e. per log stream, as Lambda does for
concurrent requests):

* invocation ``i`` is invoked at a random time in the first ``spread`` seconds and runs for a random
  duration; a cold environment adds an init delay, a warm one already holds an earlier, untracked request
  (its lines, a plain ``print`` without ids included, sit in the same stream a few seconds before ours);
* its outcome follows `OUTCOME_MIX`; its lines are START, Powertools JSON lines every 1-2 s, the end
  lines of its outcome, END and REPORT;
* a line printed at ``t`` becomes visible at ``t`` plus a random ingestion delay, never before an earlier
  line of the same stream (so streams are ingested in order, but out of order with each other).
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks import lines

SUCCESS_MARKER = "success_marker"
SUCCESS_PLATFORM = "success_platform"
HANDLED_ERROR = "handled_error"
LAMBDA_TIMEOUT = "lambda_timeout"
RUNTIME_EXIT = "runtime_exit"

# Share of each outcome, in percent.
OUTCOME_MIX: tuple[tuple[str, int], ...] = (
    (SUCCESS_MARKER, 60),
    (SUCCESS_PLATFORM, 10),
    (HANDLED_ERROR, 15),
    (LAMBDA_TIMEOUT, 10),
    (RUNTIME_EXIT, 5),
)
EXPECTED_STATUS = {
    SUCCESS_MARKER: "success",
    SUCCESS_PLATFORM: "success",
    HANDLED_ERROR: "failed",
    LAMBDA_TIMEOUT: "failed",
    RUNTIME_EXIT: "failed",
}


@dataclass(frozen=True)
class Shape:
    """The knobs of a plan (seconds)."""

    spread: float = 10.0
    min_duration: float = 10.0
    max_duration: float = 120.0
    min_delay: float = 0.5
    max_delay: float = 3.0
    min_gap: float = 1.0
    max_gap: float = 2.0
    warm_share: float = 0.5


FULL = Shape()
QUICK = Shape(spread=5.0, min_duration=5.0, max_duration=20.0)


@dataclass(frozen=True)
class Line:
    """One log event: printed at ``at_ms``, put into CloudWatch Logs at ``visible_ms`` (before t0 for the
    request that warmed an environment)."""

    stream: str
    at_ms: int
    visible_ms: int
    message: str
    invocation: int | None  # the tracked invocation it belongs to; None for an earlier, untracked request
    decisive: bool = False


@dataclass(frozen=True)
class Invocation:
    """One tracked invocation and the truth about it."""

    index: int
    request_id: str
    correlation_id: str
    stream: str
    outcome: str
    invoked_at: float
    run_start: float
    duration: float

    @property
    def expected_status(self) -> str:
        return EXPECTED_STATUS[self.outcome]

    @property
    def run_end(self) -> float:
        return self.run_start + self.duration


@dataclass
class Plan:
    """The invocations of a run and every line the simulator will write."""

    shape: Shape
    seed: int
    invocations: list[Invocation]
    lines: list[Line] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Plan:
        raw = json.loads(path.read_text())
        return cls(
            shape=Shape(**raw["shape"]),
            seed=raw["seed"],
            invocations=[Invocation(**item) for item in raw["invocations"]],
            lines=[Line(**item) for item in raw["lines"]],
        )


def outcomes_for(n: int, rng: random.Random) -> list[str]:
    """Return `n` outcomes in the proportions of `OUTCOME_MIX` (largest remainder), shuffled."""
    total = sum(share for _, share in OUTCOME_MIX)
    exact = [(name, n * share / total) for name, share in OUTCOME_MIX]
    counts = {name: int(value) for name, value in exact}
    by_remainder = sorted(exact, key=lambda item: item[1] - int(item[1]), reverse=True)
    for name, _ in by_remainder[: n - sum(counts.values())]:
        counts[name] += 1
    for name, _ in OUTCOME_MIX:  # every outcome at least once when there is room (N=10 included)
        if counts[name] == 0 and n >= len(OUTCOME_MIX):
            counts[max(counts, key=lambda other: counts[other])] -= 1
            counts[name] += 1
    chosen = [name for name, _ in OUTCOME_MIX for _ in range(counts[name])]
    rng.shuffle(chosen)
    return chosen


def make_plan(n: int, shape: Shape = FULL, seed: int = 7) -> Plan:
    """Return the plan of `n` invocations (deterministic for a given seed)."""
    rng = random.Random(seed)
    plan = Plan(shape=shape, seed=seed, invocations=[])
    for index, outcome in enumerate(outcomes_for(n, rng)):
        stream = f"2026/11/23/[$LATEST]{rng.getrandbits(128):032x}"
        request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        correlation_id = f"bench-{index:05d}-{rng.getrandbits(32):08x}"
        invoked_at = rng.uniform(0.0, shape.spread)
        warm = rng.random() < shape.warm_share
        init = None if warm else rng.uniform(0.15, 0.8)
        run_start = invoked_at + rng.uniform(0.02, 0.2) + (init or 0.0)
        invocation = Invocation(
            index=index,
            request_id=request_id,
            correlation_id=correlation_id,
            stream=stream,
            outcome=outcome,
            invoked_at=invoked_at,
            run_start=run_start,
            duration=rng.uniform(shape.min_duration, shape.max_duration),
        )
        plan.invocations.append(invocation)
        printed = _earlier_request(run_start, index, rng) if warm else []
        printed += [(at, message, index, decisive) for at, message, decisive in _printed(invocation, init, rng)]
        plan.lines.extend(_ingest(stream, printed, shape, rng))
    return plan


def _earlier_request(run_start: float, index: int, rng: random.Random) -> list[tuple[float, str, int | None, bool]]:
    """Return the lines of the untracked request that warmed the environment before ours."""
    end = run_start - rng.uniform(2.0, 30.0)
    begin = end - rng.uniform(1.0, 5.0)
    request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    correlation_id = f"warm-{index:05d}-{rng.getrandbits(32):08x}"
    texts = [
        lines.start(request_id),
        lines.powertools(correlation_id, request_id, "Function started", cold_start=True),
        "processing batch of 10 rows",
        lines.powertools(correlation_id, request_id, "Function ended"),
        lines.end(request_id),
        lines.report(request_id, end - begin, init_s=0.3),
    ]
    step = (end - begin) / len(texts)
    return [(begin + k * step, text, None, False) for k, text in enumerate(texts)]


def _printed(invocation: Invocation, init: float | None, rng: random.Random) -> list[tuple[float, str, bool]]:
    """Return (time, message, decisive) for every line the invocation prints, in order."""
    rid, cid = invocation.request_id, invocation.correlation_id
    begin, end = invocation.run_start, invocation.run_end
    uses_powertools = invocation.outcome != SUCCESS_PLATFORM
    out: list[tuple[float, str, bool]] = [(begin, lines.start(rid), False)]
    if uses_powertools:
        out.append((begin + 0.001, lines.powertools(cid, rid, "Function started", cold_start=init is not None), False))
    at, k = begin + rng.uniform(1.0, 2.0), 0
    while at < end - 0.05:
        k += 1
        text = lines.powertools(cid, rid, f"iteration {k}") if uses_powertools else f"iteration {k}"
        out.append((at, text, False))
        at += rng.uniform(1.0, 2.0)
    report = lines.report(rid, invocation.duration, init)
    platform_end = [(end, lines.end(rid), False), (end + 0.001, report, invocation.outcome == SUCCESS_PLATFORM)]
    if invocation.outcome == SUCCESS_MARKER:
        out.append((end - 0.003, lines.powertools(cid, rid, "Function ended"), True))
    elif invocation.outcome == HANDLED_ERROR:
        out += [(end - 0.003, lines.logged_exception(cid, rid), True), (end - 0.002, lines.unhandled(), False)]
    elif invocation.outcome == RUNTIME_EXIT:
        out += [(end - 0.003, lines.runtime_exit(rid), True), (end - 0.002, lines.RUNTIME_EXIT_ERROR, False)]
    out += platform_end
    if invocation.outcome == LAMBDA_TIMEOUT:
        # Lambda writes "Task timed out" after REPORT; it may be ingested after it too.
        out.append((end + 0.002, lines.timed_out(rid, invocation.duration), True))
    return out


def _ingest(
    stream: str, printed: list[tuple[float, str, int | None, bool]], shape: Shape, rng: random.Random
) -> list[Line]:
    """Give each printed line a unique, increasing timestamp and a visible time (in order within the stream)."""
    result: list[Line] = []
    last_at = last_visible = -(10**12)
    for at, message, invocation, decisive in printed:
        at_ms = max(round(at * 1000), last_at + 1)
        visible_ms = max(at_ms + round(rng.uniform(shape.min_delay, shape.max_delay) * 1000), last_visible)
        result.append(Line(stream, at_ms, visible_ms, message, invocation, decisive))
        last_at, last_visible = at_ms, visible_ms
    return result
