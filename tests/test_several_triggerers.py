"""Two real triggerers on one PostgreSQL metadata database; one is killed with SIGKILL while fifty tasks are deferred.

Airflow runs triggerers side by side (HA): each claims triggers with row locks, and a triggerer whose heartbeat
is older than the others' health-check threshold counts as dead, so its triggers go to whoever claims next.
Our trigger only reads CloudWatch Logs, so a trigger taken over must reach the same verdict, from the
invocation's start, without invoking anything again. Everything is read from Airflow's records (REST API,
the metadata database, the task and trigger log files) and from CloudWatch Logs.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
import sqlalchemy

from demo.airflow_stack import AirflowStack, free_port
from local_aws.deploy import deploy_template
from local_aws.stack import LocalAwsStack
from tests.conftest import aws_connection
from tests.fault_proxy import FaultProxy
from tests.ha_dags.several_triggerers import DAG_ID, ITEMS, payload
from tests.test_end_to_end import LAMBDA_LINE, watch

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
DAG_FILE = ROOT / "tests" / "ha_dags" / "several_triggerers.py"
FUNCTION_TIMEOUT = 30  # the DAG's timeout items loop about 45 s
# How stale a triggerer's heartbeat may be before the others treat it as dead. In Airflow 3.3 it is not a
# multiple of the heartbeat: `TriggerRunnerSupervisor.load_triggers` calls `Trigger.assign_unassigned` with
# `[triggerer] triggerer_health_check_threshold` (default 30 s), which claims triggers whose triggerer has no
# Job row with `latest_heartbeat` newer than that (airflow/models/trigger.py). The stack heartbeats every
# 2 s (`[triggerer] job_heartbeat_sec`); 15 s leaves a loaded two-core machine room while halving the wait.
HEALTH_CHECK_THRESHOLD = 15
# From the kill until none of the dead triggerer's triggers is still assigned to it: the threshold, plus one
# loop of the survivor (about a second), plus room for a loaded machine.
TAKEOVER_TIMEOUT = HEALTH_CHECK_THRESHOLD + 45
MIN_HELD = 5  # triggers each triggerer must hold before the kill
KILL_AT = 20  # deferred tasks whose triggers are held, the moment of the kill
TRIGGERERS = ("triggerer", "triggerer-2")  # the names the stack knows their processes by
INVOKED = re.compile(r"Invoked example-lambda-function \(Event, qualifier live\): request (\S+),")


def expected(item: int) -> tuple[str, str]:
    """The right final state of mapped task `item`, and the cause its log must give, from its payload."""
    event = payload(item)
    if event.get("to_fail"):
        return "failed", "failed: RuntimeError: Unable to finish loop"
    if event["n"] > FUNCTION_TIMEOUT:
        return "failed", f"failed: Task timed out after {FUNCTION_TIMEOUT}.00 seconds"
    return "success", "succeeded:"


@dataclass
class TwoTriggerers:
    """The running stack, its metadata database, and the Job ids of its two triggerers (by process name)."""

    airflow: AirflowStack
    database: sqlalchemy.Engine
    job_ids: dict[str, int]

    def holders(self, run_id: str) -> dict[int, tuple[int | None, int]]:
        """Every trigger a task of `run_id` waits on: trigger id -> (triggerer job id or None, map index)."""
        query = sqlalchemy.text(
            "SELECT t.id, t.triggerer_id, ti.map_index FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id"
            " WHERE ti.dag_id = :dag_id AND ti.run_id = :run_id AND ti.state = 'deferred'"
        )
        with self.database.connect() as connection:
            rows = connection.execute(query, {"dag_id": DAG_ID, "run_id": run_id}).all()
        return {trigger_id: (triggerer_id, map_index) for trigger_id, triggerer_id, map_index in rows}

    def still_assigned(self, trigger_ids: set[int], job_id: int) -> set[int]:
        """Those of `trigger_ids` whose row still names triggerer `job_id`."""
        query = sqlalchemy.text("SELECT id FROM trigger WHERE triggerer_id = :job_id").bindparams(job_id=job_id)
        with self.database.connect() as connection:
            return set(connection.execute(query).scalars()) & trigger_ids

    def trigger_log(self, run_id: str, map_index: int, job_id: int) -> Path:
        """The file the triggerer `job_id` wrote while running the trigger of mapped task `map_index`."""
        task_log = f"dag_id={DAG_ID}/run_id={run_id}/task_id=invoke/map_index={map_index}/attempt=1.log"
        return self.airflow.home / "logs" / f"{task_log}.trigger.{job_id}.log"

    def fired(self, run_id: str, map_index: int, name: str) -> bool:
        """Whether triggerer `name` logged Airflow's "Trigger fired event" for mapped task `map_index`.

        Airflow writes it in the task's trigger log, or, for some of the triggers that end in the same
        loop (11 of 50 in one run here), in the triggerer's own log: both are looked at."""
        own = self.trigger_log(run_id, map_index, self.job_ids[name])
        if own.exists() and "Trigger fired event" in own.read_text():
            return True
        task = f"{DAG_ID}/{run_id}/invoke/{map_index}/1 (ID "
        lines = (self.airflow.home / f"{name}.log").read_text(errors="replace").splitlines()
        return any("Trigger fired event" in line and task in line for line in lines)


def triggerer_jobs(database: sqlalchemy.Engine) -> list[int]:
    """Ids of the triggerer jobs that have not ended, oldest first."""
    query = "SELECT id FROM job WHERE job_type = 'TriggererJob' AND end_date IS NULL ORDER BY id"
    with database.connect() as connection:
        return list(connection.execute(sqlalchemy.text(query)).scalars())


@pytest.fixture(scope="module")
def metadata_url(postgres_url: str) -> Iterator[str]:
    """A database of its own on the session's PostgreSQL: no Job or trigger rows from other tests."""
    name = f"ha_{secrets.token_hex(4)}"
    server = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    server.dispose()


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAwsStack]:
    # Ten at once (Lambda queues Event invocations beyond a function's concurrency): the fifty functions end
    # at most one every two seconds or so, slower than tasks defer even on a loaded machine, so the tasks
    # waiting on triggers pile up to `KILL_AT` and beyond.
    with LocalAwsStack(port=0, ingestion_delay=1.0, max_concurrency=10) as stack:
        deploy_template(stack.endpoint_url, ROOT / "template.yml", timeout=FUNCTION_TIMEOUT)
        yield stack


@pytest.fixture(scope="module")
def counted(aws: LocalAwsStack) -> Iterator[FaultProxy]:
    """A counting proxy in front of the local AWS stack (Airflow connection `aws_counted`)."""
    with FaultProxy(aws.endpoint_url) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def two_triggerers(aws, counted, metadata_url, tmp_path_factory) -> Iterator[TwoTriggerers]:
    dags = tmp_path_factory.mktemp("dags")
    (dags / DAG_FILE.name).symlink_to(DAG_FILE)  # only this DAG: parsing stays cheap
    env = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,  # row locks: triggerers can share it
        "AIRFLOW_CONN_AWS_COUNTED": aws_connection(counted.url),
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(HEALTH_CHECK_THRESHOLD),
        # Each triggerer serves its logs on a port of its own (both on this host); the worker's too.
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
    }
    database = sqlalchemy.create_engine(metadata_url)
    with AirflowStack(tmp_path_factory.mktemp("airflow-home"), dags, env=env) as airflow:
        (first,) = triggerer_jobs(database)
        airflow.start_component(
            "triggerer", name=TRIGGERERS[1], env={"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
        )
        (second,) = airflow.wait(lambda: set(triggerer_jobs(database)) - {first}, 120, "a second triggerer job")
        yield TwoTriggerers(airflow, database, dict(zip(TRIGGERERS, (first, second), strict=True)))
    database.dispose()


@dataclass
class KillOnceBothHoldTriggers:
    """Called on every poll of the run: once `KILL_AT` tasks wait on triggers and both triggerers hold some,
    SIGKILL the one holding more (the victim), then follow its triggers until none is assigned to it any
    more, failing if that takes longer than `TAKEOVER_TIMEOUT`."""

    stand: TwoTriggerers
    run_id: str
    victim: int = 0  # Job ids, known at the kill
    survivor: int = 0
    survivor_name: str = ""
    most_held: int = 0  # the most triggers of the run held at one poll before the kill
    killed_at: float | None = None
    held_at_kill: dict[int, int] = field(default_factory=dict)  # Job id -> triggers it held
    orphans: dict[int, int] = field(default_factory=dict)  # trigger id -> map index, left by the victim
    taken_over_after: float | None = None
    seen_with_survivor: set[int] = field(default_factory=set)

    def __call__(self, history: dict[str, list[str]]) -> None:
        holders = self.stand.holders(self.run_id)
        if self.killed_at is None:
            held = Counter(triggerer for triggerer, _ in holders.values())
            jobs = self.stand.job_ids
            assigned = sum(held[job] for job in jobs.values())  # not those no triggerer has claimed yet
            self.most_held = max(self.most_held, assigned)
            if assigned < KILL_AT or min(held[jobs[name]] for name in TRIGGERERS) < MIN_HELD:
                return
            victim_name, survivor_name = sorted(TRIGGERERS, key=lambda name: held[jobs[name]], reverse=True)
            self.victim, self.survivor, self.survivor_name = jobs[victim_name], jobs[survivor_name], survivor_name
            self.stand.airflow.kill_component(victim_name, signal.SIGKILL)  # returns once its group is gone
            self.killed_at = time.monotonic()
            # Read after the kill: nothing the victim did can land any more, so each of these tasks waits on
            # a trigger that no running triggerer runs until the survivor claims it.
            holders = self.stand.holders(self.run_id)
            self.orphans = {trigger: item for trigger, (job, item) in holders.items() if job == self.victim}
            self.held_at_kill = {job: held[job] for job in jobs.values()}
            return
        victim, survivor = self.victim, self.survivor
        self.seen_with_survivor |= {trigger for trigger, (job, _) in holders.items() if job == survivor}
        if self.taken_over_after is not None:
            return
        waiting = self.stand.still_assigned(set(self.orphans), victim)
        elapsed = time.monotonic() - self.killed_at
        if not waiting:
            self.taken_over_after = elapsed
        elif elapsed > TAKEOVER_TIMEOUT:
            raise AssertionError(
                f"{len(waiting)} of the {len(self.orphans)} triggers of the killed triggerer (job {victim}) are "
                f"still assigned to it {elapsed:.0f}s after the kill: the surviving triggerer (job {survivor}) "
                f"never took them over. Their tasks: {sorted(self.orphans[trigger] for trigger in waiting)}"
            )


def started_requests(endpoint_url: str) -> Counter[str]:
    """Request ids of the example function's START lines in CloudWatch Logs (text, or JSON platform.start)."""
    logs = boto3.client("logs", region_name="us-east-1", endpoint_url=endpoint_url)
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName="/aws/lambda/example-lambda-function")
    found: Counter[str] = Counter()
    for message in (event["message"] for page in pages for event in page["events"]):
        if message.startswith("START RequestId: "):
            found[message.split()[2]] += 1
        elif '"type":"platform.start"' in message:
            found[json.loads(message)["record"]["requestId"]] += 1
    return found


def test_a_killed_triggerers_deferred_tasks_end_right_in_the_other_and_nothing_runs_twice(
    two_triggerers: TwoTriggerers, aws: LocalAwsStack, counted: FaultProxy
) -> None:
    airflow = two_triggerers.airflow
    invokes_before = counted.count("/invocations")
    started_before = started_requests(aws.endpoint_url)
    started = time.monotonic()
    run_id = airflow.trigger(DAG_ID)
    kill = KillOnceBothHoldTriggers(two_triggerers, run_id)
    history = watch(airflow, DAG_ID, run_id, timeout=600, on_poll=kill)
    elapsed = time.monotonic() - started

    # The kill landed mid-run, and the survivor claimed what the victim left.
    assert kill.killed_at is not None, (
        f"never {KILL_AT} triggers held, {MIN_HELD} by each triggerer (at most {kill.most_held}): {history}"
    )
    assert len(kill.orphans) >= MIN_HELD, (kill.held_at_kill, kill.orphans)
    assert kill.taken_over_after is not None, "the run ended before the takeover was seen"

    # Every task ends in its right state, with its cause in its log.
    final = {int(key.split("[")[1].rstrip("]")): states[-1] for key, states in history.items()}
    assert final == {item: expected(item)[0] for item in range(ITEMS)}, history
    request_ids: Counter[str] = Counter()
    for item in range(ITEMS):
        _, cause = expected(item)
        log = airflow.task_log(DAG_ID, run_id, "invoke", map_index=item)
        assert cause in log, f"invoke[{item}]: {cause!r} not in its log:\n{log[-3000:]}"
        invokes = INVOKED.findall(log)
        assert len(invokes) == 1, f"invoke[{item}] invoked {len(invokes)} times:\n{log[-3000:]}"
        request_ids[invokes[0]] += 1
        lambda_lines = [match.groups() for match in map(LAMBDA_LINE.search, log.splitlines()) if match]
        assert len(lambda_lines) == len(set(lambda_lines)), f"invoke[{item}]: a line was logged twice"
        live = [line.split("[lambda live] ", 1)[1] for line in log.splitlines() if "[lambda live] " in line]
        assert len(live) == len(set(live)), f"invoke[{item}]: a line was shown live twice:\n{log[-3000:]}"
        messages = [message for _, _, message in lambda_lines]
        assert any(message.startswith(f"START RequestId: {invokes[0]}") for message in messages), messages
        iterations = payload(item)["n"]
        if iterations <= FUNCTION_TIMEOUT:
            assert [m for m in messages if m.startswith("iteration ")] == [
                f"iteration {i} of {iterations}" for i in range(1, iterations + 1)
            ], f"invoke[{item}]: {messages}"

    # No function ran twice: fifty Invoke calls, fifty requests started, one per task.
    assert counted.count("/invocations") - invokes_before == ITEMS
    assert len(request_ids) == ITEMS and set(request_ids.values()) == {1}, request_ids
    new_starts = started_requests(aws.endpoint_url) - started_before
    assert new_starts == Counter(dict.fromkeys(request_ids, 1)), new_starts
    tries = {task["map_index"]: task["try_number"] for task in airflow.task_instances(DAG_ID, run_id)}
    assert set(tries.values()) == {1}, tries

    # Each task the victim left was run by the survivor (a trigger log under its job id), which fired its event.
    victim, survivor = kill.victim, kill.survivor
    for item in sorted(kill.orphans.values()):
        by_survivor = two_triggerers.trigger_log(run_id, item, survivor)
        assert by_survivor.exists(), f"invoke[{item}] was never run by the surviving triggerer: {by_survivor}"
        assert two_triggerers.fired(run_id, item, kill.survivor_name), f"invoke[{item}]: the survivor fired nothing"
    print(
        f"{DAG_ID}: {ITEMS} tasks in {elapsed:.0f}s; triggers held at the kill by job {kill.held_at_kill}; "
        f"{len(kill.orphans)} left by the killed job {victim}, none assigned to it {kill.taken_over_after:.1f}s "
        f"after the kill ({len(kill.seen_with_survivor & set(kill.orphans))} of them seen assigned to job "
        f"{survivor} in the trigger table)"
    )
