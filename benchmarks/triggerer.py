"""The measured process: N real `LambdaInvocationTrigger`s in one asyncio loop, as Airflow's triggerer runs them.

Each trigger is created at its invocation's invoke time and its ``run()`` generator is read until its one
event, then closed. Under today's conditions the harness gives each trigger one attempt per call and
nothing cut from events; under issue 9's (``--conditions volume``) it passes what the operator passes
with its defaults, ``botocore_config=None`` included. A watcher task measures how late the event loop
wakes it (``loop_lag``): how long the triggers' work kept every other trigger, and Airflow's own
triggerer, from running. The CPU time (``time.process_time``) and resident memory of this process, from just
before the first trigger to the last event, are the triggers' cost: moto, the quota proxy and the log
writer run in another process.

Protocol with `benchmarks.scale` (files in ``--workdir``): reads ``triggers.json``; writes
``triggerer.ready`` once Airflow is imported; waits for ``go.json``; writes one line per event to
``events.jsonl`` as it comes, then ``events.json`` (costs, unfinished and crashed triggers).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import logging
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from benchmarks.conditions import CONDITIONS, Conditions
from benchmarks.lines import FUNCTION_NAME, LOG_GROUP
from benchmarks.metrics import percentile
from benchmarks.modes import MODES, Mode
from benchmarks.runfiles import raise_open_files_limit, read_json, rss_kb, wait_for_file, write_json

if TYPE_CHECKING:
    from airflow_lambda_deferrable.provider.operator import LambdaInvokeDeferrableOperator

CONN_ID = "aws_bench"
SETTLE_SECONDS = 3.0  # the operator's default (checked by tests/test_benchmark_harness.py)
# Every throttling answer reaches the trigger: botocore's own retries would hide them.
BOTOCORE_CONFIG = {"retries": {"total_max_attempts": 1}}
# The simulated function's configured timeout (the operator reads it with GetFunctionConfiguration).
FUNCTION_TIMEOUT_SECONDS = 300
# The loop watcher's sleep; its lateness is the loop's lag.
LAG_PROBE_SECONDS = 0.05


def configure(mode: Mode, proxy_url: str) -> None:
    """Set what Airflow reads at import: the mode's setting and the connection to the quota proxy."""
    os.environ.update(mode.environment())
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-bench-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
        {
            "conn_type": "aws",
            "login": "x",
            "password": "x",
            "extra": {"region_name": "us-east-1", "endpoint_url": proxy_url},
        }
    )


def trigger_kwargs(spec: dict[str, Any], t0: float, mode: Mode) -> dict[str, Any]:
    """Return the trigger's arguments for one invocation (times in `spec` are offsets from `t0`)."""
    return {
        "function_name": FUNCTION_NAME,
        "log_group": LOG_GROUP,
        "correlation_id": spec["correlation_id"],
        "request_id": spec["request_id"],
        "invoked_at": t0 + spec["invoked_at"],
        "deadline": t0 + spec["deadline"],
        "poll_interval": mode.poll_interval,
        "settle_seconds": SETTLE_SECONDS,
        # The largest the trigger accepts (settings.TRIGGER_BOUNDS); nothing here comes near them.
        "max_lines": 100_000,
        "max_bytes": 64 * 1024 * 1024,
        "aws_conn_id": CONN_ID,
        "botocore_config": BOTOCORE_CONFIG,
    }


def operator_trigger_kwargs(spec: dict[str, Any], t0: float, mode: Mode) -> dict[str, Any]:
    """Return the kwargs `LambdaInvokeDeferrableOperator.execute` gives the trigger, with the operator's
    defaults, for an ``Event`` invocation of a function with `FUNCTION_TIMEOUT_SECONDS`.

    Mirrors ``execute`` (tests/test_benchmark_harness.py checks that every trigger parameter is given).
    """
    from airflow_lambda_deferrable.settings import FollowSettings, deadline_for

    operator = _operator(mode.poll_interval)
    invoked_at = t0 + spec["invoked_at"]
    deadline = deadline_for(
        invoked_at=invoked_at,
        function_timeout=FUNCTION_TIMEOUT_SECONDS,
        queue_allowance_seconds=operator.queue_allowance_seconds,
        ingestion_allowance_seconds=operator.ingestion_allowance_seconds,
        max_wait_seconds=operator.max_wait_seconds,
        responded_at=None,
    )
    settings = FollowSettings(
        function_name=operator.function_name,
        log_group=LOG_GROUP,
        correlation_id=spec["correlation_id"],
        request_id=spec["request_id"],
        invoked_at=invoked_at,
        deadline=deadline,
        qualifier=operator.qualifier,
        invocation_type=operator.invocation_type,
        fail_fast=operator.fail_fast,
        end_marker=operator.end_marker,
        correlation_id_key=operator.correlation_id_key,
        poll_interval=operator.poll_interval,
        settle_seconds=operator.settle_seconds,
        ingestion_allowance_seconds=operator.ingestion_allowance_seconds,
        fire_after=invoked_at + operator.min_defer_seconds,
        max_lines=operator.max_lines,
        max_bytes=operator.max_bytes,
        aws_conn_id=operator.aws_conn_id,
        region_name=operator.region_name,
        verify=operator.verify,
        botocore_config=operator.botocore_config,
    )
    return settings.as_kwargs()


@functools.lru_cache(maxsize=4)
def _operator(poll_interval: float) -> LambdaInvokeDeferrableOperator:
    """Return the operator with its defaults (built once: Airflow is imported by then)."""
    from airflow_lambda_deferrable.provider.operator import LambdaInvokeDeferrableOperator

    return LambdaInvokeDeferrableOperator(
        task_id="bench", function_name=FUNCTION_NAME, aws_conn_id=CONN_ID, poll_interval=poll_interval
    )


def kwargs_for(spec: dict[str, Any], t0: float, mode: Mode, conditions: Conditions) -> dict[str, Any]:
    if conditions.operator_kwargs:
        return operator_trigger_kwargs(spec, t0, mode)
    return trigger_kwargs(spec, t0, mode)


async def warm_up(conditions: Conditions) -> None:
    """Build and close one client, so that loading botocore's models is not counted as the triggers' growth."""
    from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

    config = None if conditions.operator_kwargs else BOTOCORE_CONFIG
    async with await AwsLogsHook(aws_conn_id=CONN_ID, config=config).get_async_conn():
        pass


async def follow(spec: dict[str, Any], t0: float, mode: Mode, conditions: Conditions, out: IO[str]) -> None:
    """Start the invocation's trigger at its invoke time; write its event and when it came to `out`.

    Written at once and dropped, as the triggerer hands events over: kept, they would count as growth.
    """
    from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger

    await asyncio.sleep(max(0.0, t0 + spec["invoked_at"] - time.time()))
    trigger = LambdaInvocationTrigger(**kwargs_for(spec, t0, mode, conditions))
    events = trigger.run()
    try:
        event = await anext(events)
        fired_at = time.time()
    finally:
        await events.aclose()
    payload = event.payload
    record = {
        "index": spec["index"],
        "status": payload["status"],
        "message": payload["message"],
        "fired_at": fired_at,
        "polls": payload.get("polls"),
        "omitted_lines": payload.get("omitted_lines", 0),
        "omitted_at": payload.get("omitted_at"),
        "lines": [[line["stream"], line["timestamp"], line["message"]] for line in payload["lines"]],
    }
    out.write(json.dumps(record) + "\n")


async def sample_rss(peak: list[int], every: float = 0.5) -> None:
    while True:
        peak[0] = max(peak[0], rss_kb())
        await asyncio.sleep(every)


async def sample_budgets(mode: Mode, rates: list[tuple[float, float | None, float | None]], every: float = 1.0) -> None:
    """Note each second the shared poller's two rates (FilterLogEvents, GetLogEvents): how the budgets of
    several triggerers on one quota move under throttling (`runtime.rate_limit.RequestBudget`)."""
    if not mode.shared_poller:
        return
    from airflow_lambda_deferrable.cloudwatch import registry

    while True:
        pollers = registry.registry()
        rates.append((time.time(), pollers.budget.rate, pollers.stream_budget.rate))
        await asyncio.sleep(every)


async def watch_loop(lags: list[tuple[float, float]], every: float = LAG_PROBE_SECONDS) -> None:
    """Sleep `every` seconds again and again; note (when, how late) each wake-up came."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(every)
        woke = time.monotonic()
        lags.append((time.time(), woke - before - every))


def lag_summary(lags: list[tuple[float, float]], t0: float) -> dict[str, Any]:
    """Return the loop's worst lag (and when, from t0), its p99, and how many wake-ups were over 0.1 s and 1 s."""
    values = [lag for _, lag in lags]
    worst_at, worst = max(lags, key=lambda item: item[1], default=(t0, 0.0))
    return {
        "loop_lag_max": worst,
        "loop_lag_max_at": worst_at - t0,
        "loop_lag_p99": percentile(values, 0.99),
        "loop_lags_over_100ms": sum(lag > 0.1 for lag in values),
        "loop_lags_over_1s": sum(lag > 1.0 for lag in values),
        "loop_lag_samples": len(values),
    }


def budget_counts(mode: Mode) -> dict[str, Any]:
    """Return the shared poller's `RequestBudget` counts (calls made, throttling answers it saw), if any.

    Read by name and forgivingly: the poller is being rewritten, and per-trigger modes have no budget.
    """
    if not mode.shared_poller:
        return {"budget_calls": None, "budget_throttled": None}
    from airflow_lambda_deferrable.cloudwatch import registry

    try:
        budget = registry.registry().budget
    except (AttributeError, TypeError):
        return {"budget_calls": None, "budget_throttled": None}
    stream_budget = getattr(registry.registry(), "stream_budget", None)  # GetLogEvents, since issue 9
    return {
        "budget_calls": getattr(budget, "calls", None),
        "budget_throttled": getattr(budget, "throttled_calls", None),
        "budget_calls_by_kind": dict(getattr(budget, "calls_by_kind", {})),
        "stream_budget_calls": getattr(stream_budget, "calls", None),
        "stream_budget_throttled": getattr(stream_budget, "throttled_calls", None),
    }


async def run_all(
    specs: list[dict[str, Any]], t0: float, cap_at: float, mode: Mode, conditions: Conditions, out: IO[str]
) -> dict[str, Any]:
    """Run every trigger until its event or the global cap; return what did not finish, the peak memory,
    the loop's lag and the budget's counts."""
    peak = [rss_kb()]
    lags: list[tuple[float, float]] = []
    rates: list[tuple[float, float | None, float | None]] = []
    sampler = asyncio.create_task(sample_rss(peak))
    rate_sampler = asyncio.create_task(sample_budgets(mode, rates))
    watcher = asyncio.create_task(watch_loop(lags))
    tasks = {asyncio.create_task(follow(spec, t0, mode, conditions, out)): spec["index"] for spec in specs}
    done, pending = await asyncio.wait(tasks, timeout=max(0.0, cap_at - time.time()))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    sampler.cancel()
    watcher.cancel()
    rate_sampler.cancel()
    peak[0] = max(peak[0], rss_kb())
    crashed = {
        tasks[task]: "".join(traceback.format_exception(task.exception()))[-3000:]
        for task in done
        if task.exception() is not None
    }
    return {
        "unfinished": sorted(tasks[task] for task in pending),
        "crashed": crashed,
        "rss_peak_kb": peak[0],
        **lag_summary(lags, t0),
        **budget_counts(mode),
        "budget_rates": [(round(at - t0, 1), filter_rate, get_rate) for at, filter_rate, get_rate in rates],
    }


def trace_poller(path: Path) -> None:
    """Write the shared poller's per-cycle and per-call DEBUG lines to `path` (kept with ``--keep``)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(created).3f %(message)s"))
    poller_log = logging.getLogger("airflow_lambda_deferrable.cloudwatch.shared_poller")
    poller_log.setLevel(logging.DEBUG)
    poller_log.addHandler(handler)
    poller_log.propagate = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--mode", choices=sorted(MODES), required=True)
    parser.add_argument("--proxy", required=True, help="URL of the quota proxy")
    parser.add_argument("--conditions", choices=sorted(CONDITIONS), default="today")
    args = parser.parse_args()
    mode = MODES[args.mode]
    conditions = CONDITIONS[args.conditions]
    configure(mode, args.proxy)
    raise_open_files_limit()
    job = read_json(args.workdir / "triggers.json")
    trace_poller(args.workdir / "poller.log")
    import airflow_lambda_deferrable.provider.trigger  # import Airflow before measuring

    asyncio.run(warm_up(conditions))
    if conditions.operator_kwargs:
        _operator(mode.poll_interval)  # built once, before measuring
    gc.collect()
    baseline_kb = rss_kb()
    (args.workdir / "triggerer.ready").write_text("ready")
    go = asyncio.run(wait_for_file(args.workdir / "go.json"))
    t0 = go["t0_ms"] / 1000
    time.sleep(max(0.0, t0 - time.time()))  # not a trigger: the measured loop starts at t0
    started, cpu_started = time.time(), time.process_time()
    with open(args.workdir / "events.jsonl", "w") as out:
        outcome = asyncio.run(run_all(job["specs"], t0, t0 + job["cap"], mode, conditions, out))
    write_json(
        args.workdir / "events.json",
        {
            **outcome,
            "mode": mode.name,
            "conditions": conditions.name,
            "cpu_seconds": time.process_time() - cpu_started,
            "wall_seconds": time.time() - started,
            "rss_baseline_kb": baseline_kb,
            "package_path": airflow_lambda_deferrable.provider.trigger.__file__,
        },
    )


if __name__ == "__main__":
    main()
