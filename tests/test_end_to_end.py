"""A real Airflow 3 (api-server, scheduler, dag-processor, triggerer, LocalExecutor) against the local AWS stack.

Everything is read from Airflow's own records (REST API states and task logs) and from CloudWatch Logs.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from airflow_lambda_deferrable.settings import DEFAULT_MAX_REQUESTS_PER_SECOND
from demo.airflow_stack import TERMINAL_RUN_STATES, AirflowStack
from demo.run import OUR_DAG
from local_aws.deploy import deploy_template
from local_aws.stack import LocalAwsStack
from tests.conftest import aws_connection
from tests.fault_proxy import FaultProxy

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
FUNCTION_TIMEOUT = 15  # above the pool test's ten-second invocations
ITERATIONS = 3
EXPECTED = {
    "sync_with_error": ("failed", "failed: RuntimeError: Unable to finish loop"),
    "async_with_error": ("failed", "failed: RuntimeError: Unable to finish loop"),
    "async_timeout": ("failed", f"failed: Task timed out after {FUNCTION_TIMEOUT}.00 seconds"),
    "sync_without_error": ("success", "succeeded:"),
    "async_without_error": ("success", "succeeded:"),
}
# "Several minutes": long beside the other task, and beside the triggerer's and scheduler's own cadences.
DURABLE_WAIT_SECONDS = 180
LAMBDA_LINE = re.compile(r"\[lambda\] (\S+) (\S+) (.*)")


@pytest.fixture(scope="module")
def aws():
    with LocalAwsStack(port=0, ingestion_delay=1.0) as stack:
        deploy_template(stack.endpoint_url, ROOT / "template.yml", timeout=FUNCTION_TIMEOUT)
        yield stack


@pytest.fixture(scope="module")
def counted(aws):
    """A counting proxy in front of the local AWS stack (Airflow connection `aws_counted`)."""
    with FaultProxy(aws.endpoint_url) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def airflow(aws, counted, tmp_path_factory):
    dags = tmp_path_factory.mktemp("dags")
    for source in [*(ROOT / "dags").glob("*.py"), *(ROOT / "tests" / "e2e_dags").glob("*.py")]:
        (dags / source.name).symlink_to(source)
    env = {
        "AIRFLOW_CONN_AWS_COUNTED": aws_connection(counted.url),
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(aws.endpoint_url),
        "LAMBDA_DEMO_ITERATIONS": str(ITERATIONS),
        "LAMBDA_DEMO_TIMEOUT_ITERATIONS": str(FUNCTION_TIMEOUT + 10),
        "LAMBDA_POLL_INTERVAL": "2",
        "E2E_DURABLE_WAIT_SECONDS": str(DURABLE_WAIT_SECONDS),
    }
    with AirflowStack(tmp_path_factory.mktemp("airflow-home"), dags, env=env) as stack:
        yield stack


def watch(airflow: AirflowStack, dag_id: str, run_id: str, timeout: float, on_poll=None) -> dict[str, list[str]]:
    """Poll task states every half second until the run ends; return each task's sequence of states."""
    history: dict[str, list[str]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in airflow.task_instances(dag_id, run_id):
            key = task["task_id"] if task.get("map_index", -1) < 0 else f"{task['task_id']}[{task['map_index']}]"
            states = history.setdefault(key, [])
            if not states or states[-1] != task["state"]:
                states.append(task["state"])
        if on_poll is not None:
            on_poll(history)
        if airflow.run_state(dag_id, run_id) in TERMINAL_RUN_STATES:
            return history
        time.sleep(0.5)
    raise TimeoutError(f"{dag_id} did not finish in {timeout}s: {history}")


def start_lines(endpoint_url: str) -> list[str]:
    """Lambda's request starts in the example function's group: START lines (text) or platform.start (JSON)."""
    logs = boto3.client("logs", region_name="us-east-1", endpoint_url=endpoint_url)
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName="/aws/lambda/example-lambda-function")
    messages = [event["message"] for page in pages for event in page["events"]]
    return [m for m in messages if m.startswith("START RequestId") or '"type":"platform.start"' in m]


def test_example_dag_survives_a_triggerer_restart(airflow, aws):
    invocations_before = len(start_lines(aws.endpoint_url))
    run_id = airflow.trigger(OUR_DAG)
    restarted = {}

    def kill_triggerer_once_tasks_are_deferred(history: dict[str, list[str]]) -> None:
        deferred = [task for task, states in history.items() if states[-1] == "deferred"]
        if not restarted and len(deferred) >= 3:
            airflow.kill_component("triggerer")
            restarted["deferred_at_kill"] = deferred
            time.sleep(3)
            airflow.start_component("triggerer")

    history = watch(airflow, OUR_DAG, run_id, timeout=300, on_poll=kill_triggerer_once_tasks_are_deferred)

    assert len(restarted.get("deferred_at_kill", [])) >= 3, f"no restart happened: {history}"
    final = {task: states[-1] for task, states in history.items()}
    assert final == {task: state for task, (state, _) in EXPECTED.items()}
    for task, states in history.items():
        assert "deferred" in states, f"{task} never deferred: {states}"

    invoked = Counter()
    for task, (_, cause) in EXPECTED.items():
        log = airflow.task_log(OUR_DAG, run_id, task)
        assert cause in log, f"{task}: {cause!r} not in its log:\n{log[-3000:]}"
        assert "Decided " in log, f"{task}: the triggerer's decision is not in the log"
        request_id = re.search(r"Invoked example-lambda-function \(\w+, qualifier live\): request (\S+),", log)[1]
        invoked[request_id] += 1
        lambda_lines = [match.groups() for match in map(LAMBDA_LINE.search, log.splitlines()) if match]
        assert len(lambda_lines) == len(set(lambda_lines)), f"{task}: a line was logged twice"
        # The live view too, across the restart: the new trigger shows only lines ingested after it started.
        live = [line.split("[lambda live] ", 1)[1] for line in log.splitlines() if "[lambda live] " in line]
        assert len(live) == len(set(live)), f"{task}: a line was shown live twice:\n{log[-3000:]}"
        messages = [message for _, _, message in lambda_lines]
        assert any(message.startswith(f"START RequestId: {request_id}") for message in messages)
        if task != "async_timeout":
            assert [m for m in messages if m.startswith("iteration ")] == [
                f"iteration {i} of {ITERATIONS}" for i in range(1, ITERATIONS + 1)
            ]
    assert all(count == 1 for count in invoked.values()) and len(invoked) == 5
    assert len(start_lines(aws.endpoint_url)) - invocations_before == 5  # no function ran twice

    # The function's result reaches XCom through the real triggerer, restart included (it rides in the event).
    log = airflow.task_log(OUR_DAG, run_id, "sync_without_error")
    correlation_id = re.search(r"correlation id (\S+), log group", log)[1]
    entry = airflow.api(
        "GET", f"/dags/{OUR_DAG}/dagRuns/{run_id}/taskInstances/sync_without_error/xcomEntries/return_value"
    )
    value = json.loads(entry["value"]) if isinstance(entry["value"], str) else entry["value"]
    assert value == {"iterations": ITERATIONS, "correlation_id": correlation_id}


def pool_of_one(airflow: AirflowStack) -> None:
    """Create the pool ``one_slot`` (one slot; deferred tasks do not hold it) unless it exists."""
    names = {pool["name"] for pool in airflow.api("GET", "/pools")["pools"]}
    if "one_slot" not in names:
        airflow.api("POST", "/pools", json={"name": "one_slot", "slots": 1, "include_deferred": False})


def test_no_worker_slot_is_held_while_functions_run(airflow, aws):
    pool_of_one(airflow)
    started = time.monotonic()
    run_id = airflow.trigger("pool_of_one")
    history = watch(airflow, "pool_of_one", run_id, timeout=300)
    elapsed = time.monotonic() - started
    assert {states[-1] for states in history.values()} == {"success"}
    # Each function started while the one before it was still running: the single slot was free again as
    # soon as a task deferred, not when its function ended (which would give five 10 s runs back to back).
    spans = []
    for task in history:
        log = airflow.task_log("pool_of_one", run_id, task)
        lambda_lines = [match.groups() for match in map(LAMBDA_LINE.search, log.splitlines()) if match]
        stamps = {message.split()[0]: datetime.fromisoformat(when) for when, _, message in lambda_lines}
        spans.append((stamps["START"], stamps["REPORT"]))  # REPORT: text or JSON (platform.report)
    spans.sort()
    for (_, previous_end), (next_start, _) in zip(spans, spans[1:], strict=False):
        assert next_start < previous_end, f"an invocation waited for the previous one to end: {spans}"
    busy = (spans[-1][1] - spans[0][0]).total_seconds()
    print(f"pool_of_one: 5 x 10 s invocations through one slot: functions busy {busy:.0f}s, run took {elapsed:.0f}s")


def run_fifty(airflow: AirflowStack, counted: FaultProxy) -> tuple[int, float]:
    """Run the fifty-invocation DAG; return its FilterLogEvents calls and how long the run took (s)."""
    before = counted.count("FilterLogEvents")
    started = time.monotonic()
    run_id = airflow.trigger("fifty_invocations")
    history = watch(airflow, "fifty_invocations", run_id, timeout=600)
    elapsed = time.monotonic() - started
    finals = Counter(states[-1] for states in history.values())
    assert finals == Counter({"success": 50}), history
    return counted.count("FilterLogEvents") - before, elapsed


def test_fifty_deferred_tasks_share_one_poller_in_the_real_triggerer(airflow, counted):
    shared_calls, elapsed = run_fifty(airflow, counted)
    # The whole process waits for one token bucket (capacity one call, refilled at the configured rate)
    # before each call, so over the run it cannot have made more calls than this, however loaded the machine.
    assert shared_calls <= 1 + DEFAULT_MAX_REQUESTS_PER_SECOND * elapsed, (shared_calls, elapsed)

    # The baseline, measured in the same session on the same machine: each trigger polling on its own.
    airflow.kill_component("triggerer")
    airflow.start_component("triggerer", env={"AIRFLOW__LAMBDA_DEFERRABLE__SHARED_POLLER": "False"})
    try:
        per_trigger_calls, _ = run_fifty(airflow, counted)
    finally:
        airflow.kill_component("triggerer")
        airflow.start_component("triggerer")
    print(
        f"fifty_invocations: {shared_calls} FilterLogEvents calls with the shared poller in {elapsed:.0f}s, "
        f"{per_trigger_calls} with per-trigger polling"
    )
    assert shared_calls * 2 <= per_trigger_calls, (shared_calls, per_trigger_calls)


def test_the_functions_lines_show_in_the_task_log_while_it_is_deferred(airflow):
    run_id = airflow.trigger("live_lines")
    seen_while_deferred = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and seen_while_deferred is None:
        (task,) = airflow.task_instances("live_lines", run_id)
        if task["state"] == "deferred":
            log = airflow.task_log("live_lines", run_id, "twelve_seconds")
            (still,) = airflow.task_instances("live_lines", run_id)
            if "[lambda live]" in log and "iteration 1 of 12" in log and still["state"] == "deferred":
                seen_while_deferred = log
        elif task["state"] in ("success", "failed"):
            break
        time.sleep(0.5)
    assert seen_while_deferred is not None, "the function's lines never showed while the task was deferred"
    assert "[lambda] " not in seen_while_deferred  # the resumed part has not been written yet

    history = watch(airflow, "live_lines", run_id, timeout=180)
    assert history["twelve_seconds"][-1] == "success"
    log = airflow.task_log("live_lines", run_id, "twelve_seconds")
    live = [line.split("[lambda live] ", 1)[1] for line in log.splitlines() if "[lambda live] " in line]
    resumed = [line.split("[lambda] ", 1)[1] for line in log.splitlines() if "[lambda] " in line]
    iterations = [f"iteration {i} of 12" for i in range(1, 13)]
    # Each line once in the live part, and once again in the resumed part, which holds them all.
    assert len(live) == len(set(live)), "a line was shown twice live"
    assert [i for i in iterations if any(line.endswith(f"INFO {i}") for line in live)] == iterations
    assert [i for i in iterations if any(line.endswith(f"INFO {i}") for line in resumed)] == iterations


def test_a_durable_execution_waits_minutes_deferred_while_its_slot_runs_another_task(airflow):
    pool_of_one(airflow)
    run_id = airflow.trigger("durable_in_pool_of_one")
    restarted = {}

    def restart_triggerer_once_the_other_task_is_done(history: dict[str, list[str]]) -> None:
        durable, other = history.get("durable_waits", [None]), history.get("plain_meanwhile", [None])
        if not restarted and durable[-1] == "deferred" and other[-1] == "success":
            airflow.kill_component("triggerer")
            restarted["at"] = time.monotonic()
            time.sleep(3)
            airflow.start_component("triggerer")

    history = watch(
        airflow,
        "durable_in_pool_of_one",
        run_id,
        timeout=DURABLE_WAIT_SECONDS + 300,
        on_poll=restart_triggerer_once_the_other_task_is_done,
    )
    assert restarted, f"the triggerer was never restarted mid-execution: {history}"
    log = airflow.task_log("durable_in_pool_of_one", run_id, "durable_waits")
    assert history["durable_waits"][-1] == "success", (history, log[-6000:])
    assert "deferred" in history["durable_waits"]
    assert history["plain_meanwhile"][-1] == "success", history
    tasks = {task["task_id"]: task for task in airflow.task_instances("durable_in_pool_of_one", run_id)}
    waits, meanwhile = tasks["durable_waits"], tasks["plain_meanwhile"]
    # The only slot ran the other task to its end while the durable task was still waiting (holding the slot,
    # it could only have started once the durable task had ended).
    assert meanwhile["end_date"] < waits["end_date"], tasks
    entry = airflow.api(
        "GET", f"/dags/durable_in_pool_of_one/dagRuns/{run_id}/taskInstances/durable_waits/xcomEntries/return_value"
    )
    value = json.loads(entry["value"]) if isinstance(entry["value"], str) else entry["value"]
    assert value["waited_seconds"] == DURABLE_WAIT_SECONDS
    # One invocation before the wait, and a replay after it: two request ids, each starting over.
    assert len(re.findall(r"\[lambda\] .*Replay started", log)) >= 2, log[-3000:]
    assert "SUCCEEDED" in log


def durable_executions(aws: LocalAwsStack, name_prefix: str) -> list[dict]:
    client = boto3.client(
        "lambda",
        region_name="us-east-1",
        endpoint_url=aws.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    found = client.list_durable_executions_by_function(FunctionName="example-durable-function")["DurableExecutions"]
    return [execution for execution in found if execution["DurableExecutionName"].startswith(name_prefix)]


def test_marking_a_deferred_durable_task_failed_stops_its_execution(airflow, aws):
    run_id = airflow.trigger("durable_killed")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        (task,) = airflow.task_instances("durable_killed", run_id)
        # Airflow calls on_kill only for a trigger a triggerer runs: wait until it has read the status once.
        if task["state"] == "deferred" and "of example-durable-function is RUNNING" in airflow.task_log(
            "durable_killed", run_id, "killed_by_user"
        ):
            break
        time.sleep(1)
    else:
        raise AssertionError(f"the trigger never ran for the deferred task: {task}")
    (execution,) = durable_executions(aws, "killed_by_user-")
    assert execution["Status"] == "RUNNING"

    airflow.api(
        "PATCH",
        f"/dags/durable_killed/dagRuns/{run_id}/taskInstances/killed_by_user",
        json={"new_state": "failed"},
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and durable_executions(aws, "killed_by_user-")[0]["Status"] == "RUNNING":
        time.sleep(1)
    (execution,) = durable_executions(aws, "killed_by_user-")
    assert execution["Status"] == "STOPPED", execution


END_DAG = "end_from_trigger"


def xcom_value(airflow: AirflowStack, dag_id: str, run_id: str, task_id: str) -> Any:
    """A task's returned value as Airflow's API serves it."""
    entry = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")
    return json.loads(entry["value"]) if isinstance(entry["value"], str) else entry["value"]


def invoked(log: str) -> tuple[str, str]:
    """The request id and correlation id the task logged when it invoked."""
    found = re.search(
        r"Invoked example-lambda-function \(\w+, qualifier live\): request (\S+), correlation id (\S+),", log
    )
    assert found, log[-3000:]
    return found[1], found[2]


def test_end_from_trigger_ends_a_success_in_the_triggerer_and_resumes_a_failure_on_a_worker(airflow):
    run_id = airflow.trigger(END_DAG)
    history = watch(airflow, END_DAG, run_id, timeout=300)
    final = {task: states[-1] for task, states in history.items()}
    assert final == {
        "ends_in_the_triggerer": "success",
        "returns_in_the_triggerer": "success",
        "fails_and_retries": "failed",
        "downstream": "success",
    }, history

    # Success: one worker run (the invoke), then the trigger ended the task; no worker resumed it.
    results = {}
    for task, iterations in (("ends_in_the_triggerer", 3), ("returns_in_the_triggerer", 2)):
        log = airflow.task_log(END_DAG, run_id, task)
        assert log.count("Filling up the DagBag") == 1, f"{task} ran on a worker again:\n{log[-3000:]}"
        assert "Ending the task here in the triggerer (end_from_trigger)" in log
        assert airflow.task_history(END_DAG, run_id, task).count("running") == 1
        request_id, correlation_id = invoked(log)
        resumed = [line.split("[lambda] ", 1)[1] for line in log.splitlines() if "[lambda] " in line]
        assert [
            i
            for i in range(1, iterations + 1)
            if any(line.endswith(f"INFO iteration {i} of {iterations}") for line in resumed)
        ] == list(range(1, iterations + 1))
        assert any(line.split(" ", 2)[2].startswith(f"START RequestId: {request_id}") for line in resumed)
        assert f"(request {request_id}, correlation id {correlation_id}) succeeded: " in log
        results[task] = (request_id, correlation_id)
    event_request, event_correlation = results["ends_in_the_triggerer"]
    _, result_correlation = results["returns_in_the_triggerer"]
    identity = {"request_id": event_request, "correlation_id": event_correlation}
    result = {"iterations": 2, "correlation_id": result_correlation}
    assert xcom_value(airflow, END_DAG, run_id, "ends_in_the_triggerer") == identity
    assert xcom_value(airflow, END_DAG, run_id, "returns_in_the_triggerer") == result
    # A downstream task pulls what a resumed task would have pushed: dicts, not their JSON text.
    assert xcom_value(airflow, END_DAG, run_id, "downstream") == {"event": identity, "result": result}

    # Failure: each try resumes on a worker (a second run) and raises the exact cause; the retry ran.
    assert airflow.task_instances(END_DAG, run_id) and [
        task["try_number"] for task in airflow.task_instances(END_DAG, run_id) if task["task_id"] == "fails_and_retries"
    ] == [2]
    for try_number in (1, 2):
        log = airflow.task_log(END_DAG, run_id, "fails_and_retries", try_number)
        assert log.count("Filling up the DagBag") == 2, f"try {try_number} did not resume on a worker"
        assert "Ending the task here" not in log
        assert "LambdaInvocationFailed" in log and "failed: RuntimeError: Unable to finish loop" in log


START_DAG = "start_from_trigger"


def test_a_durable_task_started_in_the_triggerer_never_runs_on_a_worker_and_survives_a_restart(airflow, aws):
    run_id = airflow.trigger(START_DAG)
    restarted = {}

    def restart_the_triggerer_once_it_has_invoked(history: dict[str, list[str]]) -> None:
        if restarted or history.get("starts_in_triggerer", [None])[-1] != "deferred":
            return
        if "Invoked example-durable-function" in airflow.task_log(START_DAG, run_id, "starts_in_triggerer"):
            airflow.kill_component("triggerer")  # the new triggerer starts the task over: it invokes again
            restarted["at"] = time.monotonic()
            time.sleep(2)
            airflow.start_component("triggerer")

    history = watch(airflow, START_DAG, run_id, timeout=300, on_poll=restart_the_triggerer_once_it_has_invoked)
    log = airflow.task_log(START_DAG, run_id, "starts_in_triggerer")
    assert restarted, f"the triggerer was never restarted after invoking: {history}\n{log[-3000:]}"
    assert history["starts_in_triggerer"][-1] == "success", (history, log[-6000:])
    assert "running" not in history["starts_in_triggerer"], history
    assert "Filling up the DagBag" not in log, "a worker ran the task"
    assert airflow.task_history(START_DAG, run_id, "starts_in_triggerer").count("running") == 0
    # Invoked twice (before and after the restart), and one execution: a second Invoke with the try's
    # execution name answers the execution the first one started.
    invokes = re.findall(r"Invoked example-durable-function \(Event, qualifier live\): request \S+", log)
    assert len(invokes) >= 2, log[-6000:]
    executions = durable_executions(aws, "starts_in_triggerer")
    assert len(executions) == 1, executions
    value = xcom_value(airflow, START_DAG, run_id, "starts_in_triggerer")
    assert value["waited_seconds"] == 20, value
