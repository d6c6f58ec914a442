"""Worker-slot seconds per Lambda task: the default path (invoke, defer, resume on a worker) against
``end_from_trigger`` (the triggerer ends a success), through a real scheduler, triggerer and LocalExecutor.

Run ``python -m benchmarks.worker_seconds --tasks 200``. The local AWS stack serves the example function
(``Event`` invocations of about ``--iterations`` seconds). Each mode's DAG maps ``--tasks`` invocations;
the modes run one after the other in one Airflow, ``--rounds`` times, so every row is of one sitting. A
worker-slot second is a second of an ``ExecuteTask`` workload, as the LocalExecutor's supervisor logs it
("Workload finished", with its duration) in the scheduler's log: the time a task process held a slot.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = {"resumed": False, "ended_in_triggerer": True}
# One "Workload finished" record of the supervisor (structlog's console format in the scheduler's log).
_WORKLOAD = re.compile(r"Workload finished\b.*?\bduration=(?P<seconds>[0-9.]+)\b.*?\bworkload_id=(?P<id>[0-9a-f-]+)")

DAG_TEMPLATE = """
import json
from datetime import datetime

from airflow.sdk import DAG

from airflow_lambda_deferrable import LambdaInvokeDeferrableOperator

with DAG(dag_id="{dag_id}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_tasks={tasks}):
    LambdaInvokeDeferrableOperator.partial(
        task_id="invoke",
        function_name="example-lambda-function",
        qualifier="live",
        poll_interval=5,
        end_from_trigger={end_from_trigger},
    ).expand(payload=[json.dumps({{"n": {iterations}, "item": index}}) for index in range({tasks})])
"""


def workload_seconds(scheduler_log: str, task_instance_ids: set[str]) -> dict[str, list[float]]:
    """Return the durations of the workloads of each of `task_instance_ids`, as the scheduler's log holds them
    (a deferred task's invoke and its resumption are two workloads of one task instance id)."""
    found: dict[str, list[float]] = {ti_id: [] for ti_id in task_instance_ids}
    for match in _WORKLOAD.finditer(scheduler_log):
        if match["id"] in found:
            found[match["id"]].append(float(match["seconds"]))
    return found


@dataclass(frozen=True)
class Row:
    mode: str
    round: int
    tasks: int
    succeeded: int
    workloads: int
    seconds: list[float]
    wall_seconds: float

    def markdown(self) -> str:
        per_task = sum(self.seconds) / self.tasks
        return (
            f"| {self.mode} | {self.round} | {self.tasks} | {self.succeeded} | {self.workloads / self.tasks:.2f} | "
            f"{per_task:.2f} | {statistics.median(self.seconds):.2f} | {sum(self.seconds):.0f} | "
            f"{self.wall_seconds:.0f} |"
        )


HEADER = (
    "| mode | round | tasks | succeeded | worker runs per task | worker-slot seconds per task | "
    "median run (s) | worker-slot seconds in all | run's wall time (s) |\n|---|---|---|---|---|---|---|---|---|"
)


def all_task_instances(airflow, dag_id: str, run_id: str, page: int = 100) -> list[dict]:
    """Every task instance of the run, page by page (the API answers at most `[api] maximum_page_limit`)."""
    found: list[dict] = []
    while True:
        answer = airflow.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
            params={"limit": page, "offset": len(found)},
        )["task_instances"]
        found += answer
        if len(answer) < page:
            return found


def settled_records(airflow, ids: set[str], timeout: float = 60.0) -> dict[str, list[float]]:
    """Each task instance's workload seconds from the scheduler's log, once every instance has one and a
    second reading finds no more (the executor reports the last workloads after the run has ended)."""
    last: list[dict[str, list[float]]] = []

    def settled() -> dict[str, list[float]] | None:
        found = workload_seconds((airflow.home / "scheduler.log").read_text(), ids)
        complete = all(found.values()) and bool(last) and found == last[-1]
        last.append(found)
        return found if complete else None

    try:
        return airflow.wait(settled, timeout, "every workload's record in the scheduler's log")
    except TimeoutError:
        return last[-1]  # reported below: the instances without a record


def run_mode(airflow, dag_id: str, mode: str, round_number: int, tasks: int, timeout: float) -> Row:
    """Run one mode's DAG to its end; count its workloads and their seconds."""
    started = time.monotonic()
    run_id = airflow.trigger(dag_id)
    deadline = time.monotonic() + timeout
    while airflow.run_state(dag_id, run_id) not in ("success", "failed"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker_seconds: {dag_id} run {run_id} did not end within {timeout:.0f} s")
        time.sleep(2)
    wall = time.monotonic() - started
    instances = all_task_instances(airflow, dag_id, run_id)
    found = settled_records(airflow, {ti["id"] for ti in instances})
    seconds = [duration for durations in found.values() for duration in durations]
    missing = [ti_id for ti_id, durations in found.items() if not durations]
    if missing:
        raise RuntimeError(f"worker_seconds: no workload record of {len(missing)} task instance(s) of {dag_id}")
    succeeded = sum(ti["state"] == "success" for ti in instances)
    return Row(mode, round_number, len(instances), succeeded, len(seconds), seconds, wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200, help="mapped Event invocations per run")
    parser.add_argument("--iterations", type=int, default=3, help="the example function's n (about 1 s each)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each mode, alternating")
    parser.add_argument("--parallelism", type=int, default=4, help="LocalExecutor worker processes")
    parser.add_argument("--home", type=Path, help="Airflow home (default: a fresh temporary directory)")
    args = parser.parse_args(argv)

    from demo.airflow_stack import AirflowStack
    from demo.run import airflow_env
    from local_aws.deploy import deploy_template
    from local_aws.stack import LocalAwsStack

    home = args.home or Path(tempfile.mkdtemp(prefix="worker-seconds-"))
    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for mode, ends in MODES.items():
        dag = DAG_TEMPLATE.format(
            dag_id=f"worker_seconds_{mode}", tasks=args.tasks, iterations=args.iterations, end_from_trigger=ends
        )
        (dags / f"worker_seconds_{mode}.py").write_text(dag)
    env_args = argparse.Namespace(iterations=args.iterations, function_timeout=30, poll_interval=5, durable_wait=60)
    rows: list[Row] = []
    with LocalAwsStack(port=0, ingestion_delay=1.0) as aws:
        deploy_template(aws.endpoint_url, ROOT / "template.yml", timeout=30)
        env = airflow_env(aws.endpoint_url, env_args)
        with AirflowStack(home / "airflow", dags, env=env, parallelism=args.parallelism) as airflow:
            for round_number in range(1, args.rounds + 1):
                for mode in MODES:
                    row = run_mode(airflow, f"worker_seconds_{mode}", mode, round_number, args.tasks, timeout=3600)
                    rows.append(row)
                    print(row.markdown() if len(rows) > 1 else f"{HEADER}\n{row.markdown()}", flush=True)
    print()
    print(HEADER)
    for row in rows:
        print(row.markdown())
    (home / "worker_seconds.json").write_text(json.dumps([row.__dict__ for row in rows], indent=1))
    print(f"\nraw: {home / 'worker_seconds.json'}; Airflow's logs: {home / 'airflow'}")
    return 0 if all(row.succeeded == row.tasks for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
