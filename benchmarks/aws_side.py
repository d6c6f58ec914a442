"""The AWS side of a run, in its own process: moto, the quota proxy in front of it, and the log writer.

Kept out of the triggers' process so that the CPU and memory measured there are the triggers' alone.

Protocol with `benchmarks.scale` (files in ``--workdir``): reads ``plan.json``; writes ``aws.json``
(``{"moto": url, "proxy": url, "proxies": [one url per triggerer]}``) once serving; waits for ``go.json``
(``{"t0_ms": ...}``); writes ``simulator.json`` when every line is written; serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from moto.server import ThreadedMotoServer

from benchmarks import moto_patch
from benchmarks.lines import LOG_GROUP
from benchmarks.plan import Plan
from benchmarks.quota_proxy import QuotaProxy
from benchmarks.quotas import PROFILES
from benchmarks.runfiles import raise_open_files_limit, wait_for_file, write_json
from benchmarks.writer import Boto3Sink, DirectSink, Sink, write


async def serve(
    workdir: Path, writer: str, other_tenants_rate: float, seed: int, quotas: str | None, listeners: int
) -> None:
    plan = Plan.load(workdir / "plan.json")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    sink: Sink = Boto3Sink(moto_url) if writer == "boto3" else DirectSink()
    sink.create(LOG_GROUP, sorted({line.stream for line in plan.lines}))
    profile = PROFILES[quotas] if quotas else None
    proxy = QuotaProxy(moto_url, profile=profile, other_tenants_rate=other_tenants_rate, seed=seed)
    proxy_urls = await proxy.start(listeners=listeners)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    write_json(
        workdir / "aws.json", {"moto": moto_url, "proxy": proxy_urls[0], "proxies": proxy_urls, "writer": writer}
    )

    go = await wait_for_file(workdir / "go.json", stop=stop)
    if go is not None:
        report = await asyncio.to_thread(write, plan.lines, sink, LOG_GROUP, int(go["t0_ms"]))
        write_json(workdir / "simulator.json", {**report.summary(), "writer": writer})
        await stop.wait()
    await proxy.close()
    moto.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--writer", choices=("boto3", "direct"), default="direct")
    parser.add_argument("--other-tenants-rate", type=float, default=0.0, help="quota calls per second of others")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quotas", choices=sorted(PROFILES), help="a Region's quotas (`quotas.PROFILES`)")
    parser.add_argument("--listeners", type=int, default=1, help="the proxy's ports: one per triggerer")
    parser.add_argument("--cloudwatch-pages", action="store_true", help="sort and page FilterLogEvents as AWS")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    raise_open_files_limit()
    moto_patch.install(cloudwatch_pages=args.cloudwatch_pages)
    asyncio.run(serve(args.workdir, args.writer, args.other_tenants_rate, args.seed, args.quotas, args.listeners))


if __name__ == "__main__":
    main()
