"""Start and stop a real Airflow 3 (api-server, scheduler, dag-processor, triggerer) with LocalExecutor.

Each component is its own process group, started and stopped by PID: `airflow standalone` stopped with
SIGTERM leaves its children running, and the scheduler can ignore SIGTERM for a while.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = {"success", "failed"}


def free_port() -> int:
    """Return a TCP port free on the loopback interface right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AirflowStack:
    """A throwaway Airflow home with its components running; use as a context manager.

    :param home: a fresh directory (SQLite trigger ids can be reused across runs; never share a home).
    :param env: extra environment for every component (connections, variables, ...).
    """

    def __init__(self, home: Path, dags_folder: Path, env: dict[str, str] | None = None, parallelism: int = 4) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            # One key for every component: trigger kwargs the scheduler encrypts (a task started in the
            # triggerer) must be read by the triggerer; without it each process could make a key of its own.
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            # And one for the API server's requests for the logs the triggerer serves.
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> AirflowStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def airflow(self, *args: str, timeout: float = 300) -> str:
        """Run an `airflow` CLI command in this home and return its output."""
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done.stdout

    def start(self, timeout: float = 180) -> None:
        """Migrate the database, start every component and wait until the health endpoint says so."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        for component in COMPONENTS:
            self.start_component(component)
        self.wait(lambda: self._healthy(), timeout, "Airflow components healthy")

    def start_component(self, component: str, env: dict[str, str] | None = None, name: str | None = None) -> None:
        """Start one component in its own process group, logging to <home>/<name>.log.

        :param env: settings for this start of this component only, on top of the stack's.
        :param name: what to call this process (default: the component), so that a second instance of a
            component (a second triggerer) can run beside the first and be killed on its own.
        """
        name = name or component
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        args = [sys.executable, "-m", "airflow", component]
        if component == "api-server":
            args += ["--port", str(self.port), "--host", "127.0.0.1"]
        self.processes[name] = subprocess.Popen(
            args, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill_component(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill one component (by the name it was started with) and everything it started (its process group)."""
        process = self.processes.pop(name, None)
        if process is None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop(self) -> None:
        """Stop every component: SIGTERM, then SIGKILL after a grace period."""
        for component in list(self.processes):
            self.kill_component(component, signal.SIGTERM)

    def rss_mb(self) -> float:
        """Return the resident memory of every component and its children (their process groups), in MB."""
        groups = {process.pid for process in self.processes.values()}
        total_kb = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getpgid(int(entry.name)) not in groups:
                    continue
                status = (entry / "status").read_text()
            except (OSError, ProcessLookupError):
                continue
            total_kb += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        return total_kb / 1024

    def _healthy(self) -> bool:
        try:
            health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            return False
        return all(
            health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler", "triggerer")
        )

    @staticmethod
    def wait(condition: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
        """Poll `condition` until it returns something truthy; raise naming `what` on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for: {what}")

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the REST API (api/v2) and return its JSON."""
        response = requests.request(method, f"{self.url}/api/v2{path}", timeout=30, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def trigger(self, dag_id: str, timeout: float = 120) -> str:
        """Wait for the DAG to be parsed, unpause it, start a run and return its run id."""
        self.wait(lambda: self._dag_known(dag_id), timeout, f"DAG {dag_id} parsed by the dag-processor")
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None})
        return run["dag_run_id"]

    def _dag_known(self, dag_id: str) -> bool:
        try:
            self.api("GET", f"/dags/{dag_id}")
        except RuntimeError:
            return False
        return True

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})[
            "task_instances"
        ]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """Return a task try's log as the API server serves it (task and trigger logs merged)."""
        content = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
            headers={"Accept": "application/json"},
        )["content"]
        if isinstance(content, str):
            return content
        return "\n".join(_log_item_text(item) for item in content)

    def task_history(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        """Return the states a task instance passed through, as Airflow's audit log (events) records them."""
        events = self.api(
            "GET", "/eventLogs", params={"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "limit": 100}
        )["event_logs"]
        return [event["event"] for event in events]


def _log_item_text(item: Any) -> str:
    """Render one structured log record: time, level, message, and an exception's type and message."""
    if not isinstance(item, dict):
        return str(item)
    text = " ".join(str(item.get(key, "")) for key in ("timestamp", "level", "event"))
    for error in item.get("error_detail") or []:
        if isinstance(error, dict):
            text += f"\n{error.get('exc_type', '')}: {error.get('exc_value', '')}"
    return text
