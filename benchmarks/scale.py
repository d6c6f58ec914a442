"""Scale benchmark: N concurrent simulated Lambda invocations followed by N real triggers on one triggerer.

    .venv/bin/python -m benchmarks.scale                  # N = 10, 100, 1000; every mode
    .venv/bin/python -m benchmarks.scale --quick          # N = 10, 50; short invocations
    .venv/bin/python -m benchmarks.scale --sizes 100 --modes shared,per_trigger
    .venv/bin/python -m benchmarks.scale --conditions volume --sizes 1000 --modes shared   # issue 9's conditions
    .venv/bin/python -m benchmarks.scale --plots docs/images/benchmarks   # then the run's plots (benchmarks.plots)

Each (N, mode) runs in fresh processes, one at a time: the AWS side (moto, the quota proxy, the log
writer; `benchmarks.aws_side`) and the triggerer (`benchmarks.triggerer`, the only process measured).
Every mode of one N faces the same invocations (same seed). Results: a table on stdout and
``benchmarks/results/latest.{json,md}``. See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import requests

from benchmarks import report
from benchmarks.conditions import CONDITIONS, Conditions
from benchmarks.metrics import merge_events, summarize
from benchmarks.modes import MODES
from benchmarks.plan import Plan, make_plan
from benchmarks.quotas import PROFILES
from benchmarks.runfiles import read_json, write_json

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
# The trigger's deadline: the end of the invocation plus this (generous, so slow modes still finish).
DEADLINE_MARGIN = 180.0
# Runs still going this long after the last invocation ended are stopped; unfinished triggers count as wrong.
CAP_MARGIN = 240.0
STARTUP_TIMEOUT = 180.0
# Writer choice when not given: boto3 over HTTP while moto keeps up with the lines, moto's backend beyond.
BOTO3_WRITER_MAX_N = 100


def snapshot_code() -> tuple[Path, str]:
    """Copy the package and the benchmark to a temporary folder; return it and a short hash of the package.

    The children run from the copy (the current folder comes first on ``sys.path``, before the editable
    install), so that editing the package during a long run cannot mix versions between rows.
    """
    folder = Path(tempfile.mkdtemp(prefix="scale-code-"))
    skip = shutil.ignore_patterns("__pycache__", "results")
    for package in ("airflow_lambda_deferrable", "benchmarks"):
        shutil.copytree(ROOT / package, folder / package, ignore=skip)
    digest = hashlib.sha256()
    package = folder / "airflow_lambda_deferrable"
    for path in sorted(package.rglob("*.py")):  # the sub-packages too: most of the code is there
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return folder, digest.hexdigest()[:12]


def git_commit() -> str:
    """Return the checked-out commit, marked "+changes" when the package has uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--", "airflow_lambda_deferrable") else "")


def triggers_job(plan: Plan, triggerer: int = 0, triggerers: int = 1) -> dict[str, Any]:
    """Return what one triggerer needs (ids and times only: the plan's lines would weigh on its memory):
    invocation i goes to triggerer i mod `triggerers`, as Airflow spreads deferred tasks between them."""
    specs = [
        {
            "index": invocation.index,
            "correlation_id": invocation.correlation_id,
            "request_id": invocation.request_id,
            "invoked_at": invocation.invoked_at,
            "deadline": invocation.run_end + DEADLINE_MARGIN,
        }
        for invocation in plan.invocations
        if invocation.index % triggerers == triggerer
    ]
    return {"specs": specs, "cap": max(invocation.run_end for invocation in plan.invocations) + CAP_MARGIN}


def triggerer_folders(workdir: Path, triggerers: int) -> list[Path]:
    """Each triggerer's folder of files (the run's own folder when there is one, as before)."""
    if triggerers == 1:
        return [workdir]
    folders = [workdir / f"triggerer-{index}" for index in range(triggerers)]
    for folder in folders:
        folder.mkdir(exist_ok=True)
    return folders


def wait_for(path: Path, process: subprocess.Popen[bytes], timeout: float) -> Any:
    """Wait for a child's file; fail early if the child died."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before writing {path.name}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} did not appear within {timeout:g}s")
        time.sleep(0.1)
    return read_json(path) if path.suffix == ".json" else path.read_text()


def spawn(
    module: str, args: list[str], code: Path, log: IO[bytes], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], cwd=code, stdout=log, stderr=subprocess.STDOUT, env=env
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a child this run started (by its own handle, never by name)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds_of(process: subprocess.Popen[bytes]) -> float:
    """Return the CPU time (user + system) a running child has used so far, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(
    plan: Plan,
    mode_name: str,
    writer: str,
    workdir: Path,
    code: Path,
    conditions: Conditions,
    *,
    triggerers: int = 1,
    quotas: str | None = None,
) -> dict[str, Any]:
    """Run one (N, mode) on `triggerers` processes against one AWS side and return its row."""
    plan.save(workdir / "plan.json")
    folders = triggerer_folders(workdir, triggerers)
    cap = 0.0
    for index, folder in enumerate(folders):
        job = triggers_job(plan, index, triggerers)
        cap = job["cap"]
        write_json(folder / "triggers.json", job)
    with open(workdir / "aws.log", "wb") as aws_log:
        aws_args = ["--workdir", str(workdir), "--writer", writer, "--seed", str(plan.seed)]
        aws_args += ["--other-tenants-rate", str(conditions.other_tenants_rate)]
        aws_args += ["--cloudwatch-pages"] if conditions.cloudwatch_pages else []
        aws_args += ["--quotas", quotas] if quotas else []
        aws_args += ["--listeners", str(triggerers)]
        aws = spawn("benchmarks.aws_side", aws_args, code, aws_log)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            urls = wait_for(workdir / "aws.json", aws, STARTUP_TIMEOUT)
            env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__LAMBDA_DEFERRABLE__SHARED")}
            env |= MODES[mode_name].environment()
            for folder, proxy_url in zip(folders, urls["proxies"], strict=True):
                with open(folder / "triggerer.log", "wb") as triggerer_log:
                    processes.append(
                        spawn(
                            "benchmarks.triggerer",
                            ["--workdir", str(folder), "--mode", mode_name, "--proxy", proxy_url]
                            + ["--conditions", conditions.name],
                            code,
                            triggerer_log,
                            env,
                        )
                    )
            for folder, process in zip(folders, processes, strict=True):
                wait_for(folder / "triggerer.ready", process, STARTUP_TIMEOUT)
            # The lines of the requests that warmed environments are printed before t0: start far enough
            # ahead that they are put into moto when printed (plus their delay), as Lambda would have
            # done, so their ingestion times are real ones.
            lead = max(0.0, -min(line.visible_ms for line in plan.lines) / 1000)
            t0_ms = int((time.time() + 1.0 + lead) * 1000)
            for folder in {workdir, *folders}:
                write_json(folder / "go.json", {"t0_ms": t0_ms})
            for folder, process in zip(folders, processes, strict=True):
                process.wait(timeout=cap + STARTUP_TIMEOUT)
                if process.returncode != 0:
                    raise RuntimeError(f"a triggerer exited with {process.returncode}; see {folder}/triggerer.log")
            simulator = wait_for(workdir / "simulator.json", aws, STARTUP_TIMEOUT)
            proxy_stats = requests.get(f"{urls['proxy']}/__stats", timeout=30).json()
            write_json(workdir / "proxy.json", proxy_stats)
            aws_cpu = cpu_seconds_of(aws)
        finally:
            for process in processes:
                stop(process)
            stop(aws)
    parts = []
    for folder in folders:
        part = read_json(folder / "events.json")
        with open(folder / "events.jsonl") as lines:
            part["results"] = [json.loads(line) for line in lines]
        parts.append(part)
    events = merge_events(parts)
    return {
        **summarize(plan, t0_ms, events, simulator, proxy_stats),
        "aws_side_cpu_seconds": aws_cpu,
        "package_path": events["package_path"],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 10, 50 and invocations of 5..20 s (a smoke run)")
    parser.add_argument("--sizes", help="comma-separated N (default 10,100,1000; quick: 10,50)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from {', '.join(MODES)}")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--conditions",
        choices=sorted(CONDITIONS),
        default="today",
        help="today: the plan of earlier rows; volume: issue 9's (chatty functions, late batches, 1 MB pages, "
        "other tenants on the quota, the operator's trigger kwargs)",
    )
    parser.add_argument(
        "--writer",
        choices=("auto", "boto3", "direct"),
        default="auto",
        help=f"how lines reach moto (auto: boto3 up to N={BOTO3_WRITER_MAX_N} today, moto's backend beyond "
        "and for volume)",
    )
    parser.add_argument(
        "--triggerers",
        default="1",
        help="comma-separated K: triggerer processes sharing the invocations (i goes to i mod K) and the quotas",
    )
    parser.add_argument(
        "--quotas",
        choices=sorted(PROFILES),
        help="a Region's quotas (FilterLogEvents, GetLogEvents, DescribeLogStreams, with other tenants on each); "
        "default: the conditions' own (FilterLogEvents 5, GetLogEvents 10)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where latest.json and latest.md go")
    parser.add_argument("--keep", action="store_true", help="keep each run's working folder (logs, raw events)")
    parser.add_argument(
        "--plots",
        type=Path,
        help="after the run, draw the plots its results support into this folder (benchmarks.plots; needs "
        "matplotlib, the bench extra)",
    )
    args = parser.parse_args(argv)
    if args.plots and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plots needs matplotlib (the bench extra; ./scripts/bootstrap installs it)")
    args.sizes = [int(size) for size in (args.sizes or ("10,50" if args.quick else "10,100,1000")).split(",")]
    args.modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    args.triggerers = [int(count) for count in args.triggerers.split(",")]
    if any(count < 1 for count in args.triggerers):
        parser.error("--triggerers: each K must be 1 or more")
    unknown = set(args.modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    code, package = snapshot_code()
    settings = report.settings_of(args, os.cpu_count() or 1) | {"commit": git_commit(), "package": package}
    conditions = CONDITIONS[args.conditions]
    results: list[dict[str, Any]] = []
    print(report.HEADER + "\n" + report.RULE, flush=True)
    try:
        for n in args.sizes:
            plan = make_plan(n, conditions.shape_for(args.quick), args.seed)
            writer = args.writer
            if writer == "auto":
                writer = "boto3" if n <= BOTO3_WRITER_MAX_N and conditions.name == "today" else "direct"
            for triggerers, mode_name in ((k, mode) for k in args.triggerers for mode in args.modes):
                workdir = Path(tempfile.mkdtemp(prefix=f"scale-{n}-{mode_name}-k{triggerers}-"))
                try:
                    result = run_one(
                        plan, mode_name, writer, workdir, code, conditions, triggerers=triggerers, quotas=args.quotas
                    )
                except BaseException:
                    print(f"N={n} {mode_name} K={triggerers} failed; its files are in {workdir}", file=sys.stderr)
                    raise
                results.append(result)
                print(report.row(result), flush=True)
                if args.keep:
                    print(f"  (run files in {workdir})", flush=True)
                else:
                    shutil.rmtree(workdir)
                report.save(results, settings, args.results)
    finally:
        shutil.rmtree(code)
    print()
    print(report.markdown(results, settings))
    if args.plots:
        from benchmarks import plots

        plots.draw_all(results, args.plots)


if __name__ == "__main__":
    main()
