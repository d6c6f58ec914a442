"""Present the runs: a markdown table, the issue's targets checked, and the files under benchmarks/results/."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

HEADER = (
    "| N | mode | wrong outcomes | failed reads | lost / dup / foreign lines | FilterLogEvents calls "
    "| throttled: enforcer / budget | calls / invocation | latency p50 / p95 / max (s) | worst loop lag (s) "
    "| MB downloaded / logged | CPU s (per 1000) | RSS growth MB (per 1000) | wall s |"
)
RULE = "|" + "|".join(["---"] * (HEADER.count("|") - 1)) + "|"

# The targets at the largest size.
TARGET_P95_SECONDS = 15.0
TARGET_CALL_RATIO = 50.0
# Issue 9's, under its conditions (``--conditions volume``).
TARGET_LOOP_LAG_SECONDS = 1.0
TARGET_DOWNLOAD_RATIO = 2.0
TARGET_CALLS_PER_INVOCATION = 0.2
TARGET_RSS_MB_PER_1000 = 150.0


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _megabytes(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.1f}"


def _label(result: dict[str, Any]) -> str:
    """Name a run in the lines under the table: N, mode, and K when several triggerers shared it."""
    triggerers = len(result.get("triggerers") or [None])
    return f"N={result['n']} {result['mode']}" + (f" K={triggerers}" if triggerers > 1 else "")


def row(result: dict[str, Any]) -> str:
    """Return one run as a table row."""
    latency = " / ".join(_seconds(result[key]) for key in ("latency_p50", "latency_p95", "latency_max"))
    lines = f"{result['lost_lines']} / {result['duplicated_lines']} / {result['foreign_lines']}"
    throttled = f"{result['throttled']} / {_count(result.get('budget_throttled'))}"
    transfer = f"{_megabytes(result.get('bytes_downloaded'))} / {_megabytes(result.get('bytes_logged'))}"
    triggerers = len(result.get("triggerers") or [None])
    cells = [
        str(result["n"]),
        result["mode"] + (f" (K = {triggerers})" if triggerers > 1 else ""),
        str(result["wrong_outcomes"]),
        str(result["failed_reads"]),
        lines,
        str(result["filter_calls"]),
        throttled,
        f"{result['calls_per_invocation']:.2f}",
        latency,
        _seconds(result.get("loop_lag_max")),
        transfer,
        f"{result['cpu_seconds']:.1f} ({result['cpu_seconds_per_1000']:.0f})",
        f"{result['rss_growth_mb']:.1f} ({result['rss_growth_mb_per_1000']:.0f})",
        f"{result['wall_seconds']:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def table(results: list[dict[str, Any]]) -> str:
    return "\n".join([HEADER, RULE, *(row(result) for result in results)])


def targets(results: list[dict[str, Any]]) -> list[str]:
    """Check the issue's targets for the shared poller at the largest size that ran it."""
    shared = [result for result in results if result["mode"] == "shared"]
    if not shared:
        return ["- not checked: the `shared` mode did not run."]
    best = max(shared, key=lambda result: result["n"])
    n = best["n"]
    checks = [
        (f"zero wrong outcomes at N={n}", best["wrong_outcomes"] == 0, str(best["wrong_outcomes"])),
        (f"zero failed reads (timeout/error) at N={n}", best["failed_reads"] == 0, str(best["failed_reads"])),
        (
            f"zero lost or duplicated lines at N={n}",
            best["lost_lines"] + best["duplicated_lines"] + best["foreign_lines"] == 0,
            f"{best['lost_lines']} / {best['duplicated_lines']} / {best['foreign_lines']}",
        ),
        (
            f"p95 detection latency under {TARGET_P95_SECONDS:g} s at N={n}",
            best["latency_p95"] is not None and best["latency_p95"] < TARGET_P95_SECONDS,
            _seconds(best["latency_p95"]),
        ),
    ]
    if best.get("conditions") == "volume":
        downloaded, logged = best.get("bytes_downloaded"), best.get("bytes_logged")
        checks += [
            (
                f"worst event-loop lag at most {TARGET_LOOP_LAG_SECONDS:g} s at N={n}",
                best["loop_lag_max"] is not None and best["loop_lag_max"] <= TARGET_LOOP_LAG_SECONDS,
                _seconds(best["loop_lag_max"]),
            ),
            (
                f"bytes downloaded at most {TARGET_DOWNLOAD_RATIO:g}x bytes logged at N={n}",
                bool(downloaded is not None and logged and downloaded <= TARGET_DOWNLOAD_RATIO * logged),
                "-" if downloaded is None or not logged else f"{downloaded / logged:.1f}x",
            ),
            (
                f"FilterLogEvents calls at most N / 5 at N={n}",
                best["filter_calls"] <= TARGET_CALLS_PER_INVOCATION * n,
                f"{best['filter_calls']} (N / 5 = {TARGET_CALLS_PER_INVOCATION * n:g})",
            ),
            (
                f"RSS growth at most {TARGET_RSS_MB_PER_1000:g} MB per 1000 triggers at N={n}",
                best["rss_growth_mb_per_1000"] <= TARGET_RSS_MB_PER_1000,
                f"{best['rss_growth_mb_per_1000']:.0f}",
            ),
        ]
    for baseline in ("per_trigger", "per_trigger_1s"):
        other = next((r for r in results if r["mode"] == baseline and r["n"] == n), None)
        if other is not None and best["filter_calls"]:
            ratio = other["filter_calls"] / best["filter_calls"]
            checks.append(
                (
                    f"at least {TARGET_CALL_RATIO:g}x fewer calls than {baseline} at N={n}",
                    ratio >= TARGET_CALL_RATIO,
                    f"{ratio:.1f}x",
                )
            )
    return [f"- [{'x' if ok else ' '}] {label}: {value}" for label, ok, value in checks]


def markdown(results: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    """Return the whole report."""
    writers = sorted({result["writer"] for result in results})
    code = f"commit {settings['commit']}, package sources {settings['package']}"
    lags = ", ".join(f"{_label(r)}: {r['writer_lag_p95']:.2f} s" for r in results)
    return "\n".join(
        [
            f"Run {settings['started']} on {settings['machine']} ({settings['cpus']} CPUs), "
            f"conditions {settings.get('conditions', 'today')}, "
            f"quotas {settings.get('quotas') or 'of the conditions'}, "
            f"{'quick' if settings['quick'] else 'full'} plan, seed {settings['seed']}, writer {', '.join(writers)}; "
            f"{code}.",
            "",
            table(results),
            "",
            "Targets (shared poller):",
            *targets(results),
            "",
            "Detection latency p95 by outcome, in seconds (each includes the 3 s settle wait and a read after it; "
            "a trigger stopped at the cap counts with its decisive line's distance to the cap, a lower bound: "
            + (", ".join(f"{_label(r)}: {r.get('latencies_at_cap', 0)}" for r in results) or "none")
            + "):",
            *(
                f"- {_label(r)}: "
                + ", ".join(f"{name} {_seconds(v['p95'])}" for name, v in r["latency_by_outcome"].items())
                for r in results
            ),
            "",
            *_crashes(results),
            "Quota and event loop: " + "; ".join(_quota_and_loop(r) for r in results) + ".",
            "",
            *_per_triggerer(results),
            *_fullness(results),
            *_emulator(results),
            f"Log writer lag p95 (visible later than planned): {lags}.",
            "",
            "CPU seconds of the AWS side (moto, quota proxy, writer; not counted above): "
            + ", ".join(f"{_label(r)}: {r['aws_side_cpu_seconds']:.0f}" for r in results)
            + ".",
            "",
        ]
    )


def _quota_and_loop(r: dict[str, Any]) -> str:
    """Say who used the quota, what the budget saw of it, and how late the event loop ran."""
    return (
        f"{_label(r)}: other tenants {r.get('tenant_calls', 0)} calls "
        f"({r.get('tenant_throttled', 0)} throttled); the triggers' calls by the budget "
        f"{_count(r.get('budget_calls'))} vs at the enforcer {r['filter_calls']}"
        f"{_by_kind(r.get('budget_calls_by_kind'))}; GetLogEvents (busy streams) {r.get('get_events_calls', 0)} calls "
        f"({r.get('get_events_throttled', 0)} throttled at the enforcer, "
        f"{_count(r.get('stream_budget_throttled'))} seen by its budget); "
        f"loop lag p99 {_seconds(r.get('loop_lag_p99'))} s, worst {_seconds(r.get('loop_lag_max'))} s "
        f"at t0 + {_seconds(r.get('loop_lag_max_at'))} s, {_count(r.get('loop_lags_over_1s'))} wake-ups over 1 s late"
    )


def _per_triggerer(results: list[dict[str, Any]]) -> list[str]:
    """Each triggerer's own figures, for runs of several: calls as its budgets and as the proxy counted them,
    latency of its own invocations, bytes read per byte they logged, CPU, memory and loop lag."""
    out = []
    for r in results:
        for index, own in enumerate(r.get("triggerers") or []):
            if len(r["triggerers"]) < 2:
                break
            calls, throttled = own.get("calls") or {}, own.get("throttled") or {}
            ratio = (
                own["bytes_read"] / own["bytes_logged"] if own.get("bytes_read") and own.get("bytes_logged") else None
            )
            out.append(
                f"- {_label(r)}, triggerer {index} ({own['triggers']} triggers): FilterLogEvents "
                f"{_count(calls.get('FilterLogEvents'))} calls ({_count(throttled.get('FilterLogEvents'))} throttled; "
                f"its budget counted {_count(own.get('budget_calls'))}), GetLogEvents "
                f"{_count(calls.get('GetLogEvents'))} ({_count(throttled.get('GetLogEvents'))} throttled), "
                f"latency p50 / p95 {_seconds(own.get('latency_p50'))} / {_seconds(own.get('latency_p95'))} s, "
                f"budget rates mean (lowest) FilterLogEvents {_rate(own, 'filter')}, GetLogEvents {_rate(own, 'get')}, "
                f"read {_megabytes(own.get('bytes_read'))} MB = {'-' if ratio is None else f'{ratio:.2f}'}x its "
                f"invocations' logs, CPU {own['cpu_seconds']:.1f} s, RSS growth {own['rss_growth_mb']:.1f} MB, "
                f"worst loop lag {_seconds(own.get('loop_lag_max'))} s"
            )
    return ["Per triggerer:", *out, ""] if out else []


def _rate(own: dict[str, Any], api: str) -> str:
    mean, lowest = own.get(f"{api}_rate_mean"), own.get(f"{api}_rate_min")
    return "-" if mean is None or lowest is None else f"{mean:.2f} ({lowest:.2f})/s"


def _fullness(results: list[dict[str, Any]]) -> list[str]:
    """How often each quota ran full: seconds in which every call it allows was made (by anyone)."""
    out = []
    for r in results:
        parts = [
            f"{api} full in {q['seconds_full']} of {q['seconds_used']} s"
            for api, q in sorted((r.get("calls_by_api") or {}).items())
            if "seconds_full" in q
        ]
        if parts:
            out.append(f"- {_label(r)}: " + "; ".join(parts))
    return ["The quotas (tenants' calls and the triggers'), second by second:", *out, ""] if out else []


def _emulator(results: list[dict[str, Any]]) -> list[str]:
    """The rig's own lag: how long moto took to answer each read API, so its strain is not read as ours."""
    out = []
    for r in results:
        parts = [
            f"{api} p50 / p95 / max {t['p50']:.3f} / {t['p95']:.3f} / {t['max']:.3f} s ({t['answers']} answers)"
            for api, t in sorted((r.get("emulator_seconds") or {}).items())
        ]
        if parts:
            out.append(f"- {_label(r)}: " + "; ".join(parts))
    return ["The emulator's own time per answer (moto behind the quota proxy):", *out, ""] if out else []


def _by_kind(calls_by_kind: dict[str, int] | None) -> str:
    """Say what the budget's calls were for (window, pattern, catch-up, behind, stretch), if it counted."""
    if not calls_by_kind:
        return ""
    return " (" + ", ".join(f"{kind} {count}" for kind, count in sorted(calls_by_kind.items())) + ")"


def _crashes(results: list[dict[str, Any]]) -> list[str]:
    """Name the exceptions that ended triggers without an event (they count as wrong outcomes)."""
    out = []
    for result in results:
        if result["crashed"]:
            last_lines = {text.strip().splitlines()[-1] for text in result["crashed"].values()}
            out.append(f"- {_label(result)}: {len(result['crashed'])} crashed: {'; '.join(sorted(last_lines))}")
    return ["Triggers that raised instead of yielding an event:", *out, ""] if out else []


def settings_of(args: Any, cpus: int) -> dict[str, Any]:
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": platform.machine(),
        "cpus": cpus,
        "quick": args.quick,
        "seed": args.seed,
        "conditions": args.conditions,
        "quotas": getattr(args, "quotas", None),
        "triggerers": getattr(args, "triggerers", [1]),
        "sizes": args.sizes,
        "modes": args.modes,
    }


def save(results: list[dict[str, Any]], settings: dict[str, Any], folder: Path) -> None:
    """Write ``latest.json`` and ``latest.md`` into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latest.json").write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")
    (folder / "latest.md").write_text(markdown(results, settings))
