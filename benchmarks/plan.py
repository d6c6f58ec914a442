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

`VOLUME` adds what issue 9 asks for: a share of chatty functions that print ``chatty_lines_per_second``
plain lines (no ids) for their whole run, lines shipped in batches (the lines a stream prints within
``batch_seconds`` become visible together), and a share of batches about ``late_batch_seconds`` late.
With the defaults (no chatter, one line per batch, no late batches) a plan is exactly what it was before
these knobs existed, so older rows stay comparable.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import asdict, dataclass, field, replace
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
    chatty_share: float = 0.0
    chatty_lines_per_second: float = 50.0
    batch_seconds: float = 0.0
    late_batch_share: float = 0.0
    late_batch_seconds: float = 20.0


FULL = Shape()
QUICK = Shape(spread=5.0, min_duration=5.0, max_duration=20.0)
# Issue 9's conditions: 20 s of invokes, 5..240 s runs, 10% chatty at 50 lines/s, ingestion 0.5..5 s late
# in batches of up to 1 s of a stream's lines, 1% of batches about 20 s late.
VOLUME = Shape(
    spread=20.0,
    min_duration=5.0,
    max_duration=240.0,
    max_delay=5.0,
    chatty_share=0.1,
    batch_seconds=1.0,
    late_batch_share=0.01,
)
QUICK_VOLUME = replace(VOLUME, spread=5.0, min_duration=5.0, max_duration=20.0)


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
        """Write the plan as JSON, lines as rows (a volume plan holds most of a million lines)."""
        raw = {
            "shape": asdict(self.shape),
            "seed": self.seed,
            "invocations": [asdict(invocation) for invocation in self.invocations],
            "lines": [
                [line.stream, line.at_ms, line.visible_ms, line.message, line.invocation, line.decisive]
                for line in self.lines
            ],
        }
        path.write_text(json.dumps(raw))

    @classmethod
    def load(cls, path: Path) -> Plan:
        raw = json.loads(path.read_text())
        return cls(
            shape=Shape(**raw["shape"]),
            seed=raw["seed"],
            invocations=[Invocation(**item) for item in raw["invocations"]],
            lines=[Line(*row) for row in raw["lines"]],
        )

    def bytes_logged(self) -> int:
        """Return the UTF-8 size of every tracked invocation's messages (what the triggers must follow)."""
        return sum(len(line.message.encode()) for line in self.lines if line.invocation is not None)


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
    # Chatter has its own generator, so that plans without it draw exactly the numbers they always drew.
    chatter_rng = random.Random(f"{seed}-chatter")
    chatty = set(chatter_rng.sample(range(n), round(n * shape.chatty_share)))
    plan = Plan(shape=shape, seed=seed, invocations=[])
    for index, outcome in enumerate(outcomes_for(n, rng)):
        stream = f"2026/11/23/[$LATEST]{rng.getrandbits(128):032x}"
        request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        # Shaped as the operator's default correlation id (a UUID), from the numbers the plan always drew.
        correlation_id = f"{index:08x}-0000-5000-8000-{rng.getrandbits(32):012x}"
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
        ours = _printed(invocation, init, rng)
        if index in chatty:
            ours = _with_chatter(ours, invocation, shape.chatty_lines_per_second, chatter_rng)
        printed += [(at, message, index, decisive) for at, message, decisive in ours]
        plan.lines.extend(_ingest(stream, printed, shape, rng))
    return plan


def _earlier_request(run_start: float, index: int, rng: random.Random) -> list[tuple[float, str, int | None, bool]]:
    """Return the lines of the untracked request that warmed the environment before ours."""
    end = run_start - rng.uniform(2.0, 30.0)
    begin = end - rng.uniform(1.0, 5.0)
    request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    correlation_id = f"{index:08x}-0000-5000-9000-{rng.getrandbits(32):012x}"
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


def chatter_line(k: int, rng: random.Random) -> str:
    """Return the `k`-th line of a chatty function: a plain ``print`` without ids, about 100 bytes."""
    return (
        f"processed record {k:07d} of shard {rng.randrange(64):02d}: key=order-{rng.getrandbits(40):010x} "
        f"status=ok elapsed_ms={rng.uniform(0.1, 40.0):.2f} retries=0"
    )


def _with_chatter(
    printed: list[tuple[float, str, bool]], invocation: Invocation, per_second: float, rng: random.Random
) -> list[tuple[float, str, bool]]:
    """Add `per_second` plain lines from just after START to just before the outcome's lines."""
    begin, end = invocation.run_start + 0.002, invocation.run_end - 0.05
    count = max(0, int((end - begin) * per_second))
    chatter = [(begin + k / per_second, chatter_line(k, rng), False) for k in range(count)]
    # START first; the others merged by time (stable: at equal times the function's own line comes first).
    return printed[:1] + sorted(printed[1:] + chatter, key=lambda item: item[0])


def _ingest(
    stream: str, printed: list[tuple[float, str, int | None, bool]], shape: Shape, rng: random.Random
) -> list[Line]:
    """Give each printed line a unique, increasing timestamp and a visible time (in order within the stream).

    Lines are shipped in batches: the lines printed within ``batch_seconds`` of a batch's first line
    (one line per batch when it is 0) become visible together, a random delay after the batch's last line;
    ``late_batch_share`` of the batches are about ``late_batch_seconds`` late instead. A batch is never
    visible before the previous one of its stream.
    """
    stamped: list[tuple[int, str, int | None, bool]] = []
    last_at = -(10**12)
    for at, message, invocation, decisive in printed:
        last_at = max(round(at * 1000), last_at + 1)
        stamped.append((last_at, message, invocation, decisive))
    result: list[Line] = []
    last_visible = -(10**12)
    position = 0
    while position < len(stamped):
        batch_end = position + 1
        limit_ms = stamped[position][0] + shape.batch_seconds * 1000
        while batch_end < len(stamped) and stamped[batch_end][0] < limit_ms:
            batch_end += 1
        if shape.late_batch_share and rng.random() < shape.late_batch_share:
            delay = rng.uniform(0.9, 1.1) * shape.late_batch_seconds
        else:
            delay = rng.uniform(shape.min_delay, shape.max_delay)
        last_visible = max(stamped[batch_end - 1][0] + round(delay * 1000), last_visible)
        result.extend(
            Line(stream, at_ms, last_visible, message, invocation, decisive)
            for at_ms, message, invocation, decisive in stamped[position:batch_end]
        )
        position = batch_end
    return result
