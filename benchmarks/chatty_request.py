"""How much the triggerer's memory grows for one chatty request: one trigger follows one invocation that logs
``--lines`` Powertools lines between its START and its END, in one stream.

Run ``python -m benchmarks.chatty_request --lines 300000``. moto (with the benchmark's CloudWatch paging,
`benchmarks.moto_patch`) runs in a process of its own and holds the lines before the trigger starts, so the
memory measured here is the trigger's, its poller's and their clients' alone. A warm-up trigger follows a
small request first (imports, the client's models); the baseline is taken after it. Printed: the peak resident
memory over that baseline (``VmHWM`` reset at the baseline, or sampled if it cannot be), the resident memory
left when the trigger has ended, the size of the event, and the worst lag of the trigger's event loop
(`benchmarks.triggerer.watch_loop`: how long the trigger's work kept any other trigger from running).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import multiprocessing
import os
import tempfile
import threading
import time
from typing import Any

from benchmarks.runfiles import rss_kb

CONN_ID = "aws_chatty"
LOG_GROUP = "/aws/lambda/chatty-function"
WARM_UP_GROUP = "/aws/lambda/warm-up-function"
STREAM = "2026/11/23/[$LATEST]00000000000000000000000000000001"
CORRELATION_ID = "corr-chatty-0001"
REQUEST_ID = "5b0c7e0e-8a1d-4c1e-9b7a-3f7d2c9e4a11"
# PutLogEvents takes at most 10,000 events a call.
BATCH_EVENTS = 10_000
# Lines per millisecond of the request: 300,000 lines span 30 seconds, as a busy loop that logs would.
LINES_PER_MS = 10
# How often the sampler reads VmRSS where the kernel cannot reset the peak (``clear_refs``).
SAMPLE_SECONDS = 0.01


def powertools_line(request_id: str, number: int) -> str:
    """A Powertools Logger line of the request, as `tests.lambda_lines.powertools` writes them."""
    record = {
        "correlation_id": CORRELATION_ID,
        "level": "INFO",
        "message": f"processed row {number} of the batch",
        "location": "lambda_handler:20",
        "timestamp": "2026-11-23 10:00:00,000+0000",
        "service": "airflow",
        "cold_start": False,
        "function_name": "chatty-function",
        "function_memory_size": 128,
        "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:chatty-function",
        "function_request_id": request_id,
    }
    return json.dumps(record, separators=(",", ":"))


def request_events(request_id: str, lines: int, t0_ms: int) -> list[dict[str, Any]]:
    """START, `lines` lines carrying the ids, the end marker, END and REPORT, from `t0_ms` on."""
    messages = [
        f"START RequestId: {request_id} Version: $LATEST",
        *(powertools_line(request_id, number) for number in range(lines)),
        powertools_line(request_id, lines).replace(f"processed row {lines} of the batch", "Function ended"),
        f"END RequestId: {request_id}",
        f"REPORT RequestId: {request_id}\tDuration: 30012.55 ms\tBilled Duration: 30013 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 52 MB",
    ]
    return [
        {"timestamp": t0_ms + 1 + number // LINES_PER_MS, "message": message} for number, message in enumerate(messages)
    ]


def serve(lines: int, t0_ms: int, pipe: Any) -> None:
    """The AWS side, in its own process: moto with CloudWatch's paging, the request's lines written, served
    until the pipe says stop."""
    from moto.server import ThreadedMotoServer

    from benchmarks import moto_patch
    from benchmarks.writer import DirectSink

    moto_patch.install(cloudwatch_pages=True)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per call
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    sink = DirectSink()
    for group, count in ((WARM_UP_GROUP, 10), (LOG_GROUP, lines)):
        sink.create(group, [STREAM])
        events = request_events(REQUEST_ID, count, t0_ms)
        for first in range(0, len(events), BATCH_EVENTS):
            sink.put(group, STREAM, events[first : first + BATCH_EVENTS])
    pipe.send(f"http://{host}:{port}")
    pipe.recv()
    server.stop()


def configure(endpoint: str, max_rate: float) -> None:
    """Set what Airflow reads at import: a home of its own, the connection to moto, the read rate."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-chatty-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ["AIRFLOW__LAMBDA_DEFERRABLE__MAX_REQUESTS_PER_SECOND"] = str(max_rate)
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
        {
            "conn_type": "aws",
            "login": "x",
            "password": "x",
            "extra": {"region_name": "us-east-1", "endpoint_url": endpoint},
        }
    )


async def follow(
    log_group: str,
    t0_ms: int,
    max_lines: int,
    max_bytes: int,
    lags: list[tuple[float, float]] | None = None,
    keys: list[int] | None = None,
    sampled_keys: list[int] | None = None,
) -> dict[str, Any]:
    """Run one trigger for the request in `log_group` to its event; return the event's payload. With `lags`,
    a watcher in the same loop notes how late each of its wake-ups came; with `keys` and `sampled_keys`, how
    many event keys the trigger held (`count_keys`)."""
    from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger
    from benchmarks.triggerer import watch_loop

    trigger = LambdaInvocationTrigger(
        function_name="chatty-function",
        log_group=log_group,
        correlation_id=CORRELATION_ID,
        request_id=REQUEST_ID,
        invoked_at=t0_ms / 1000 - 1,
        deadline=time.time() + 900,
        poll_interval=1.0,
        settle_seconds=1.0,
        max_lines=max_lines,
        max_bytes=max_bytes,
        aws_conn_id=CONN_ID,
    )
    watcher = None if lags is None else asyncio.create_task(watch_loop(lags))
    sampled = [] if sampled_keys is None else sampled_keys
    counter = None if keys is None else asyncio.create_task(count_keys(keys, sampled))
    try:
        async for event in trigger.run():
            return event.payload
    finally:
        for task in (watcher, counter):
            if task is not None:
                task.cancel()
    raise RuntimeError("the trigger ended without an event")


async def count_keys(keys: list[int], sampled: list[int]) -> None:
    """Note how many event keys the subscribers of the trigger's poller hold (`Delivered`) each time a cycle of
    the poller ends (`keys`), and every `SAMPLE_SECONDS` (`sampled`: within a read, between two chunks of
    its routing): the dedupe's part of what a trigger holds, which the peak of RSS hides."""
    from airflow.configuration import conf

    from airflow_lambda_deferrable.cloudwatch.registry import registry
    from airflow_lambda_deferrable.runtime.rate_limit import checked_max_rate

    # The loop's registry is made on first use, with the rate of whoever asks first: the trigger's.
    pollers = registry(checked_max_rate(conf.get("lambda_deferrable", "max_requests_per_second", fallback=None)))
    while not pollers.pollers:
        await asyncio.sleep(SAMPLE_SECONDS)
    poller = next(iter(pollers.pollers.values()))

    def held() -> int:
        return sum(len(subscription.delivered) for subscription in poller.group.subscriptions)

    def note() -> bool:
        keys.append(held())
        return False

    async def sample() -> None:
        while True:
            sampled.append(held())
            await asyncio.sleep(SAMPLE_SECONDS)

    sampler = asyncio.create_task(sample())
    try:
        await poller.cycle_done.wait_for(note)
    finally:
        sampler.cancel()


def _reset_peak() -> bool:
    """Reset this process's peak resident memory (``VmHWM``) to its current one; whether the kernel allows it."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _peak_kb() -> int:
    with open("/proc/self/status") as status:
        for row in status:
            if row.startswith("VmHWM:"):
                return int(row.split()[1])
    return 0


class Sampler(threading.Thread):
    """The highest VmRSS seen, read every `SAMPLE_SECONDS` (when the peak cannot be reset)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = rss_kb()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_SECONDS):
            self.peak_kb = max(self.peak_kb, rss_kb())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=300_000, help="lines the request logs")
    parser.add_argument("--max-lines", type=int, default=500, help="the trigger's max_lines (the operator's default)")
    parser.add_argument("--max-bytes", type=int, default=256 * 1024, help="the trigger's max_bytes (default too)")
    parser.add_argument("--rate", type=float, default=50.0, help="max_requests_per_second: moto is not throttled")
    args = parser.parse_args()

    t0_ms = int(time.time() * 1000) - 60_000 - args.lines // LINES_PER_MS
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    aws = context.Process(target=serve, args=(args.lines, t0_ms, theirs), daemon=True)
    aws.start()
    endpoint = ours.recv()
    configure(endpoint, args.rate)
    try:
        asyncio.run(follow(WARM_UP_GROUP, t0_ms, args.max_lines, args.max_bytes))
        gc.collect()
        baseline_kb = rss_kb()
        sampler = None if _reset_peak() else Sampler()
        if sampler is not None:
            sampler.start()
        lags: list[tuple[float, float]] = []
        keys: list[int] = []
        sampled_keys: list[int] = []
        started, started_at = time.monotonic(), time.time()
        payload = asyncio.run(follow(LOG_GROUP, t0_ms, args.max_lines, args.max_bytes, lags, keys, sampled_keys))
        seconds = time.monotonic() - started
        if sampler is None:
            peak_kb = _peak_kb()
        else:
            sampler.stop.set()
            sampler.join()
            peak_kb = sampler.peak_kb
        gc.collect()
        after_kb = rss_kb()
    finally:
        ours.send("stop")
        aws.join(timeout=30)
    from benchmarks.triggerer import lag_summary

    lag = lag_summary(lags, started_at)
    event_bytes = len(json.dumps(payload).encode())
    import airflow_lambda_deferrable

    print(f"package: {os.path.dirname(airflow_lambda_deferrable.__file__)}")
    print(f"lines: {args.lines:,} (max_lines {args.max_lines}, max_bytes {args.max_bytes:,})")
    print(f"status: {payload.get('status')}; lines in the event: {len(payload.get('lines', []))}")
    print(f"event: {event_bytes / 1024:.1f} KiB")
    print(f"followed in {seconds:.1f} s")
    print(f"baseline RSS: {baseline_kb / 1024:.1f} MiB")
    print(f"peak RSS growth: {(peak_kb - baseline_kb) / 1024:.1f} MiB ({'VmHWM' if sampler is None else 'sampled'})")
    print(f"RSS growth after the trigger ended: {(after_kb - baseline_kb) / 1024:.1f} MiB")
    print(
        f"event keys held at the end of a poller's cycle: at most {max(keys, default=0):,}; "
        f"at the last {keys[-1] if keys else 0:,}; sampled every {SAMPLE_SECONDS:g} s: at most "
        f"{max(sampled_keys, default=0):,}"
    )
    print(
        f"worst loop lag: {lag['loop_lag_max']:.3f} s at {lag['loop_lag_max_at']:.1f} s "
        f"(p99 {lag['loop_lag_p99']:.3f} s; over 0.1 s: {lag['loop_lags_over_100ms']}, "
        f"over 1 s: {lag['loop_lags_over_1s']}, of {lag['loop_lag_samples']} wake-ups)"
    )


if __name__ == "__main__":
    main()
