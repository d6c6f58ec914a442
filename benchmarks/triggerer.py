"""The measured process: N real `LambdaInvocationTrigger`s in one asyncio loop, as Airflow's triggerer runs them.

Each trigger is created at its invocation's invoke time and its ``run()`` generator is read until its one
event, then closed. The CPU time (``time.process_time``) and resident memory of this process, from just
before the first trigger to the last event, are the triggers' cost: moto, the quota proxy and the log
writer run in another process.

Protocol with `benchmarks.scale` (files in ``--workdir``): reads ``triggers.json``; writes
``triggerer.ready`` once Airflow is imported; waits for ``go.json``; writes one line per event to
``events.jsonl`` as it comes, then ``events.json`` (costs, unfinished and crashed triggers).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import IO, Any

from benchmarks.lines import FUNCTION_NAME, LOG_GROUP
from benchmarks.modes import MODES, Mode
from benchmarks.runfiles import raise_open_files_limit, read_json, rss_kb, wait_for_file, write_json

CONN_ID = "aws_bench"
SETTLE_SECONDS = 3.0  # the operator's default (checked by tests/test_benchmark_harness.py)
# Every throttling answer reaches the trigger: botocore's own retries would hide them.
BOTOCORE_CONFIG = {"retries": {"total_max_attempts": 1}}


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
        "max_lines": 100_000,
        "max_bytes": 100_000_000,
        "aws_conn_id": CONN_ID,
        "botocore_config": BOTOCORE_CONFIG,
    }


async def warm_up() -> None:
    """Build and close one client, so that loading botocore's models is not counted as the triggers' growth."""
    from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

    async with await AwsLogsHook(aws_conn_id=CONN_ID, config=BOTOCORE_CONFIG).get_async_conn():
        pass


async def follow(spec: dict[str, Any], t0: float, mode: Mode, out: IO[str]) -> None:
    """Start the invocation's trigger at its invoke time; write its event and when it came to `out`.

    Written at once and dropped, as the triggerer hands events over: kept, they would count as growth.
    """
    from airflow_lambda_deferrable.triggers import LambdaInvocationTrigger

    await asyncio.sleep(max(0.0, t0 + spec["invoked_at"] - time.time()))
    trigger = LambdaInvocationTrigger(**trigger_kwargs(spec, t0, mode))
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
        "lines": [[line["stream"], line["timestamp"], line["message"]] for line in payload["lines"]],
    }
    out.write(json.dumps(record) + "\n")


async def sample_rss(peak: list[int], every: float = 0.5) -> None:
    while True:
        peak[0] = max(peak[0], rss_kb())
        await asyncio.sleep(every)


async def run_all(specs: list[dict[str, Any]], t0: float, cap_at: float, mode: Mode, out: IO[str]) -> dict[str, Any]:
    """Run every trigger until its event or the global cap; return what did not finish and the peak memory."""
    peak = [rss_kb()]
    sampler = asyncio.create_task(sample_rss(peak))
    tasks = {asyncio.create_task(follow(spec, t0, mode, out)): spec["index"] for spec in specs}
    done, pending = await asyncio.wait(tasks, timeout=max(0.0, cap_at - time.time()))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    sampler.cancel()
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
    }


def trace_poller(path: Path) -> None:
    """Write the shared poller's per-cycle and per-call DEBUG lines to `path` (kept with ``--keep``)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(created).3f %(message)s"))
    poller_log = logging.getLogger("airflow_lambda_deferrable.shared_poller")
    poller_log.setLevel(logging.DEBUG)
    poller_log.addHandler(handler)
    poller_log.propagate = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--mode", choices=sorted(MODES), required=True)
    parser.add_argument("--proxy", required=True, help="URL of the quota proxy")
    args = parser.parse_args()
    mode = MODES[args.mode]
    configure(mode, args.proxy)
    raise_open_files_limit()
    job = read_json(args.workdir / "triggers.json")
    trace_poller(args.workdir / "poller.log")
    import airflow_lambda_deferrable.triggers  # import Airflow before measuring

    asyncio.run(warm_up())
    gc.collect()
    baseline_kb = rss_kb()
    (args.workdir / "triggerer.ready").write_text("ready")
    go = asyncio.run(wait_for_file(args.workdir / "go.json"))
    t0 = go["t0_ms"] / 1000
    time.sleep(max(0.0, t0 - time.time()))  # not a trigger: the measured loop starts at t0
    started, cpu_started = time.time(), time.process_time()
    with open(args.workdir / "events.jsonl", "w") as out:
        outcome = asyncio.run(run_all(job["specs"], t0, t0 + job["cap"], mode, out))
    write_json(
        args.workdir / "events.json",
        {
            **outcome,
            "mode": mode.name,
            "cpu_seconds": time.process_time() - cpu_started,
            "wall_seconds": time.time() - started,
            "rss_baseline_kb": baseline_kb,
            "package_path": airflow_lambda_deferrable.triggers.__file__,
        },
    )


if __name__ == "__main__":
    main()
