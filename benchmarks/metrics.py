"""Turn one run's raw records into the numbers of the report, checked against the simulated truth.

Lines are matched by (stream, timestamp), unique within a stream, and their messages compared. Streams
are ingested in order, so an event must hold every line of its invocation up to the newest one it holds:
a line missing before that is lost; a line after it had simply not been read when the trigger decided
(it may decide at END, before REPORT is visible), which is fine. An event that keeps only the two ends of
a long log (``max_lines``, ``max_bytes``) says how many lines it left out between them: lines missing
there are lost only beyond that count.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from airflow_lambda_deferrable.verdict.log_lines import parse_event
from benchmarks.plan import Plan


def percentile(values: list[float], share: float) -> float | None:
    """Return the nearest-rank percentile (`share` in 0..1), or ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


def expected_lines(plan: Plan, t0_ms: int) -> dict[int, dict[tuple[str, int], str]]:
    """Return, per invocation, its lines as the trigger reports them: (stream, timestamp) -> message."""
    expected: dict[int, dict[tuple[str, int], str]] = defaultdict(dict)
    for line in plan.lines:
        if line.invocation is None:
            continue
        stamp = t0_ms + line.at_ms
        parsed = parse_event(
            {"eventId": "0", "timestamp": stamp, "logStreamName": line.stream, "message": line.message}
        )
        expected[line.invocation][(line.stream, stamp)] = parsed.message
    return expected


def check_lines(
    got: list[list[Any]], expected: dict[tuple[str, int], str], *, omitted: int = 0, omitted_at: int | None = None
) -> dict[str, int]:
    """Count lost, duplicated and foreign (not the invocation's, or altered) lines of one event.

    :param omitted: lines the event says it left out, between its lines ``[:omitted_at]`` and the rest.
    """
    keys = [(str(stream), int(stamp)) for stream, stamp, _ in got]
    counts = Counter(keys)
    duplicated = sum(count - 1 for count in counts.values())
    foreign = sum(1 for (stream, stamp, message) in got if expected.get((str(stream), int(stamp))) != message)
    newest = max((stamp for _, stamp in keys), default=None)
    lost = 0
    if newest is not None:
        missing = [key for key in expected if key[1] <= newest and key not in counts]
        if omitted and omitted_at is not None and 0 < omitted_at < len(keys):
            gap = (keys[omitted_at - 1][1], keys[omitted_at][1])
            in_gap = sum(1 for key in missing if gap[0] < key[1] < gap[1])
            lost = len(missing) - in_gap + max(0, in_gap - omitted)
        else:
            lost = len(missing)
    return {"lost": lost, "duplicated": duplicated, "foreign": foreign}


# What each triggerer reports of its own (`merge_events` keeps them per triggerer, beside the totals).
PER_TRIGGERER = (
    "budget_calls",
    "budget_throttled",
    "stream_budget_calls",
    "stream_budget_throttled",
    "cpu_seconds",
    "loop_lag_max",
    "loop_lags_over_1s",
)


def merge_events(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the events of several triggerer processes as one run's: results, unfinished and crashed
    triggers together; calls, throttling and CPU summed; memory summed over the processes; the worst loop
    lag and the longest wall time. Each process's own figures are kept under ``triggerers``."""
    if len(parts) == 1:
        return {**parts[0], "triggerers": [_own_figures(parts[0])]}
    merged = dict(parts[0])
    merged["results"] = [result for part in parts for result in part["results"]]
    merged["unfinished"] = sorted(index for part in parts for index in part["unfinished"])
    merged["crashed"] = {index: text for part in parts for index, text in part["crashed"].items()}
    for key in ("cpu_seconds", "rss_peak_kb", "rss_baseline_kb", "loop_lags_over_1s", "loop_lags_over_100ms"):
        merged[key] = sum(part.get(key) or 0 for part in parts)
    for key in ("budget_calls", "budget_throttled", "stream_budget_calls", "stream_budget_throttled"):
        values = [part.get(key) for part in parts]
        merged[key] = None if None in values else sum(values)
    by_kind: Counter[str] = Counter()
    for part in parts:
        by_kind.update(part.get("budget_calls_by_kind") or {})
    merged["budget_calls_by_kind"] = dict(by_kind)
    worst = max(parts, key=lambda part: part.get("loop_lag_max") or 0.0)
    merged["loop_lag_max"], merged["loop_lag_max_at"] = worst.get("loop_lag_max"), worst.get("loop_lag_max_at")
    merged["loop_lag_p99"] = max((part.get("loop_lag_p99") or 0.0) for part in parts)
    merged["wall_seconds"] = max(part["wall_seconds"] for part in parts)
    merged["triggerers"] = [_own_figures(part) for part in parts]
    return merged


def _own_figures(part: dict[str, Any]) -> dict[str, Any]:
    growth_mb = max(0, part["rss_peak_kb"] - part["rss_baseline_kb"]) / 1024
    return {key: part.get(key) for key in PER_TRIGGERER} | {
        "triggers": len(part["results"]) + len(part["unfinished"]) + len(part["crashed"]),
        "rss_growth_mb": growth_mb,
        **budget_rates(part.get("budget_rates") or []),
    }


def budget_rates(samples: list[list[Any]]) -> dict[str, float | None]:
    """The mean and lowest of a triggerer's two budget rates (FilterLogEvents, GetLogEvents) over its samples,
    one a second: what its share of the quota came to under throttling."""
    figures: dict[str, float | None] = {}
    for column, api in ((1, "filter"), (2, "get")):
        values = [sample[column] for sample in samples if sample[column] is not None]
        figures[f"{api}_rate_mean"] = sum(values) / len(values) if values else None
        figures[f"{api}_rate_min"] = min(values, default=None)
    return figures


def per_triggerer(
    plan: Plan, latency_of: dict[int, float], own: list[dict[str, Any]], proxy: dict[str, Any]
) -> list[dict[str, Any]]:
    """Add to each triggerer's own figures what others saw of it: the p50 and p95 of its invocations (i goes
    to i mod K), and, from the proxy's port it used, its calls, throttling answers and bytes read, also per
    byte its own invocations logged (a reader that scales with its subscribers keeps that near one run's)."""
    k = len(own)
    listeners = proxy.get("by_listener") or []
    figures = []
    for index, part in enumerate(own):
        latencies = [latency for invocation, latency in latency_of.items() if invocation % k == index]
        logged = sum(
            len(line.message.encode())
            for line in plan.lines
            if line.invocation is not None and line.invocation % k == index
        )
        seen = listeners[index] if index < len(listeners) and len(listeners) == k else {}
        figures.append(
            {
                **part,
                "latency_p50": percentile(latencies, 0.50),
                "latency_p95": percentile(latencies, 0.95),
                "calls": seen.get("calls"),
                "throttled": seen.get("throttled"),
                "bytes_read": seen.get("bytes"),
                "bytes_logged": logged,
            }
        )
    return figures


def summarize(
    plan: Plan, t0_ms: int, events: dict[str, Any], simulator: dict[str, Any], proxy: dict[str, Any]
) -> dict[str, Any]:
    """Return the row of one (size, mode) run."""
    n = len(plan.invocations)
    expected = expected_lines(plan, t0_ms)
    decisive = {int(index): at for index, at in simulator["decisive_visible"].items()}
    by_index = {result["index"]: result for result in events["results"]}
    # A trigger stopped at the cap had not decided by then: its latency is at least the cap's distance from
    # its decisive line, and counts so (else a run where most triggers never decide shows a fine p95).
    stopped_at = t0_ms / 1000 + events["wall_seconds"]
    censored = 0
    wrong: Counter[str] = Counter()
    line_counts: Counter[str] = Counter()
    latencies: list[float] = []
    latency_of: dict[int, float] = {}
    by_outcome: dict[str, list[float]] = defaultdict(list)
    for invocation in plan.invocations:
        result = by_index.get(invocation.index)
        if result is None:
            unfinished = invocation.index in events["unfinished"]
            wrong["unfinished" if unfinished else "crashed"] += 1
            if unfinished and invocation.index in decisive:
                latencies.append(max(0.0, stopped_at - decisive[invocation.index]))
                latency_of[invocation.index] = latencies[-1]
                by_outcome[invocation.outcome].append(latencies[-1])
                censored += 1
            continue
        if result["status"] != invocation.expected_status:
            wrong[f"{invocation.outcome}->{result['status']}"] += 1
        line_counts.update(
            check_lines(
                result["lines"],
                expected[invocation.index],
                omitted=result.get("omitted_lines", 0),
                omitted_at=result.get("omitted_at"),
            )
        )
        if invocation.index in decisive:
            latencies.append(result["fired_at"] - decisive[invocation.index])
            latency_of[invocation.index] = latencies[-1]
            by_outcome[invocation.outcome].append(latencies[-1])
    statuses = Counter(result["status"] for result in events["results"])
    growth_mb = max(0, events["rss_peak_kb"] - events["rss_baseline_kb"]) / 1024
    return {
        "n": n,
        "mode": events["mode"],
        "wrong_outcomes": sum(wrong.values()),
        "wrong_detail": dict(wrong),
        "failed_reads": statuses["timeout"] + statuses["error"] + len(events["unfinished"]) + len(events["crashed"]),
        "crashed": events["crashed"],
        "lost_lines": line_counts["lost"],
        "duplicated_lines": line_counts["duplicated"],
        "foreign_lines": line_counts["foreign"],
        "filter_calls": proxy["filter_calls"],
        "throttled": proxy["throttled"],
        "budget_calls": events.get("budget_calls"),
        "budget_throttled": events.get("budget_throttled"),
        "budget_calls_by_kind": events.get("budget_calls_by_kind") or {},
        "stream_budget_calls": events.get("stream_budget_calls"),
        "stream_budget_throttled": events.get("stream_budget_throttled"),
        "tenant_calls": proxy.get("tenant_calls", 0),
        "tenant_throttled": proxy.get("tenant_throttled", 0),
        "get_events_calls": proxy.get("get_events_calls", 0),
        "get_events_throttled": proxy.get("get_events_throttled", 0),
        "bytes_downloaded": proxy.get("filter_bytes", 0) + proxy.get("get_events_bytes", 0),
        "bytes_logged": plan.bytes_logged(),
        "bytes_reread": (proxy.get("downloads") or {}).get("reread_bytes"),
        "downloads_by_kind": (proxy.get("downloads") or {}).get("by_kind") or {},
        "calls_per_invocation": proxy["filter_calls"] / n,
        "latency_p50": percentile(latencies, 0.50),
        "latency_p95": percentile(latencies, 0.95),
        "latency_max": max(latencies, default=None),
        "latencies_at_cap": censored,
        "latency_by_outcome": {
            outcome: {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "max": max(values)}
            for outcome, values in sorted(by_outcome.items())
        },
        "cpu_seconds": events["cpu_seconds"],
        "cpu_seconds_per_1000": events["cpu_seconds"] / n * 1000,
        "rss_growth_mb": growth_mb,
        "rss_growth_mb_per_1000": growth_mb / n * 1000,
        "wall_seconds": events["wall_seconds"],
        "conditions": events.get("conditions", "today"),
        "loop_lag_max": events.get("loop_lag_max"),
        "loop_lag_max_at": events.get("loop_lag_max_at"),
        "loop_lag_p99": events.get("loop_lag_p99"),
        "loop_lags_over_1s": events.get("loop_lags_over_1s"),
        "triggerers": per_triggerer(plan, latency_of, events.get("triggerers") or [], proxy),
        "emulator_seconds": proxy.get("emulator_seconds") or {},
        "quota_profile": proxy.get("profile"),
        "calls_by_api": proxy.get("by_api") or {},
        "writer": simulator["writer"],
        "writer_lag_p95": simulator["lag_p95"],
        "writer_lag_max": simulator["lag_max"],
        "lines_written": simulator["lines"],
    }
