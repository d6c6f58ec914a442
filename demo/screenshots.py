"""Screenshots of Airflow's own UI for the docs, taken from a real run of the example DAG.

Starts what ``./scripts/demo`` starts (the local AWS stack, the example function, a real Airflow 3 with its
API server, which serves the UI), triggers ``example_lambda_deferrable`` once, and drives headless Chromium
over the Chrome DevTools Protocol (through aiohttp, which the project installs already) to take:

- ``task-log-deferred.png``: a task's log while it is deferred, with the function's ``[lambda live]`` lines;
- ``task-log-failed.png``: a failed task's log, ending with the exact cause;
- ``dag-run.png``: the finished run, two tasks successful and three failed.

Every wait is on a real condition (a task's state and log through the REST API, the text the page shows),
each with a timeout. Everything started is stopped at the end, on error too. Run it with
``./scripts/screenshots``; it needs Chromium (Debian's ``chromium`` package). Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from demo.airflow_stack import TERMINAL_RUN_STATES, AirflowStack
from demo.run import EXPECTED, OUR_DAG, airflow_env, step
from local_aws.deploy import deploy_template
from local_aws.stack import LocalAwsStack

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images" / "ui"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# The tasks shown: one deferred while its function runs (the longest: 30 s, until Lambda's timeout), one
# failed by its function.
DEFERRED_TASK = "async_timeout"
FAILED_TASK = "sync_with_error"
LIVE_MARK = "[lambda live]"
MIN_LIVE_LINES = 8
FAILURE_CAUSE = "Unable to finish loop"


# --- The UI's addresses (Airflow 3's React UI; the routes its bundle defines in Airflow 3.3) -------------------


def run_url(base: str, dag_id: str, run_id: str) -> str:
    """Return the UI page of one DAG run (its task instances, with the grid beside them)."""
    return f"{base.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def task_url(base: str, dag_id: str, run_id: str, task_id: str) -> str:
    """Return the UI page of one task instance; its first tab is the task's log."""
    return f"{run_url(base, dag_id, run_id)}/tasks/{quote(task_id, safe='')}"


def login_url(base: str, next_url: str) -> str:
    """Return the simple auth manager's no-credentials login (all users admins), which sets the UI's cookie."""
    return f"{base.rstrip('/')}/auth/token/login?{urlencode({'next': next_url})}"


# --- What is waited for ------------------------------------------------------------------------------------


def task_state(tasks: list[dict[str, Any]], task_id: str) -> str | None:
    """Return the state of `task_id` among a run's task instances (None if not there or not yet set)."""
    return next((task["state"] for task in tasks if task["task_id"] == task_id), None)


def shows_live_lines(state: str | None, log: str, at_least: int = MIN_LIVE_LINES) -> bool:
    """True while the task is deferred and its log holds `at_least` lines the trigger read live."""
    return state == "deferred" and log.count(LIVE_MARK) >= at_least


def page_ready(text: str, wanted: list[str]) -> bool:
    """True when the page's visible text holds every wanted string, in any case (the log loaded, not a spinner
    or a login form)."""
    return all(item.casefold() in text.casefold() for item in wanted)


# --- Chromium, driven over the DevTools Protocol ----------------------------------------------------------------


def find_chromium(explicit: str | None = None) -> str:
    """Return the Chromium executable to use: `explicit`, $CHROMIUM, or the first known name on PATH."""
    for candidate in (explicit, os.environ.get("CHROMIUM"), *CHROMIUM_NAMES):
        if candidate and (found := shutil.which(candidate)):
            return found
    raise SystemExit("Chromium not found: install it (Debian: apt-get install chromium) or pass --chromium")


class Browser:
    """One headless Chromium with one page, driven synchronously over the DevTools Protocol."""

    def __init__(self, executable: str, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.profile = Path(tempfile.mkdtemp(prefix="screenshots-chromium-"))
        self.log = open(self.profile / "chromium.log", "wb")  # noqa: SIM115 - the child owns it
        args = [
            executable,
            "--headless",
            "--no-sandbox",  # run as root in containers; the pages are our own local Airflow
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.loop = asyncio.new_event_loop()
        self.session: aiohttp.ClientSession | None = None
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.next_id = 0

    def __enter__(self) -> Browser:
        try:
            self.loop.run_until_complete(self._connect())
            self.command("Page.enable")
            self.command(
                "Emulation.setDeviceMetricsOverride",
                width=self.width,
                height=self.height,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _connect(self, timeout: float = 30) -> None:
        # With --remote-debugging-port=0 Chromium writes the port it chose into the profile.
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                said = Path(self.log.name).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Chromium did not start its DevTools endpoint; it said: {said}")
            await asyncio.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json(content_type=None)
        page = next(target for target in targets if target["type"] == "page")
        self.socket = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)

    async def _command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.socket is not None
        self.next_id += 1
        await self.socket.send_str(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = await self.socket.receive(timeout=60)
            if message.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"DevTools connection ended during {method}: {message.type}")
            reply = json.loads(message.data)
            if reply.get("id") == self.next_id:  # anything else is an event: not needed here
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        return self.loop.run_until_complete(self._command(method, params))

    def goto(self, url: str) -> None:
        result = self.command("Page.navigate", url=url)
        if result.get("errorText"):
            raise RuntimeError(f"could not open {url}: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for_text(self, wanted: list[str], timeout: float, what: str) -> str:
        """Wait until the page shows every wanted string and its text stopped changing (rendering done)."""
        last = None

        def settled() -> str | None:
            nonlocal last
            text = self.text()
            done = page_ready(text, wanted) and text == last
            last = text
            return text if done else None

        try:
            return AirflowStack.wait(settled, timeout, what, interval=1.0)
        except TimeoutError as error:
            raise TimeoutError(f"{error}; the page showed: {(last or '')[-1500:]!r}") from None

    def screenshot(self, path: Path) -> None:
        data = self.command("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        if self.socket is not None:
            self.loop.run_until_complete(self.socket.close())
        if self.session is not None:
            self.loop.run_until_complete(self.session.close())
        self.loop.close()
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


# --- The run -------------------------------------------------------------------------------------------------

# Run in the page before a log's screenshot: fold each exception's traceback (Airflow's frames) under its
# one-line summary, which holds the cause, then show the log's last lines (the virtualized log scrolls itself).
SHOW_LOG_END = """(() => {
  document.querySelectorAll('details[open] > summary').forEach((summary) => summary.click());
  const log = document.querySelector('[data-testid=virtual-scroll-container]');
  if (log) log.scrollTop = log.scrollHeight;
  return Boolean(log);
})()"""


def take(browser: Browser, url: str, path: Path, wanted: list[str], timeout: float = 60, log_end: bool = False) -> None:
    """Open `url`, wait until it shows `wanted`, show the log's end if asked, and save a screenshot."""
    browser.goto(url)
    browser.wait_for_text(wanted, timeout, f"{url} to show {wanted}")
    if log_end:
        if not browser.evaluate(SHOW_LOG_END):
            raise RuntimeError(f"{url} has no log view (data-testid=virtual-scroll-container)")
        browser.wait_for_text(wanted, timeout, f"{url} to show {wanted} at the log's end")
    browser.screenshot(path)
    step(f"took {path.name} of {url}")


def shoot(airflow: AirflowStack, browser: Browser, folder: Path) -> None:
    """Run the example DAG once and take the three screenshots into `folder`."""
    # The simple auth manager with every user an admin: this address logs in without credentials and
    # sets the UI's cookie. Then wrap long log lines (the UI's own setting, kept in localStorage).
    browser.goto(login_url(airflow.url, airflow.url + "/"))
    browser.wait_for_text(["Dags"], 120, "the UI's home page after login")
    browser.evaluate("localStorage.setItem('log_wrap', 'true')")
    step("logged in to the UI (simple auth manager, every user an admin); log lines wrapped")

    run_id = airflow.trigger(OUR_DAG)
    step(f"triggered {OUR_DAG} ({run_id})")

    def deferred_with_live_lines() -> bool:
        state = task_state(airflow.task_instances(OUR_DAG, run_id), DEFERRED_TASK)
        return state == "deferred" and shows_live_lines(state, airflow.task_log(OUR_DAG, run_id, DEFERRED_TASK))

    airflow.wait(deferred_with_live_lines, 180, f"{DEFERRED_TASK} deferred with {MIN_LIVE_LINES} {LIVE_MARK} lines")
    step(f"{DEFERRED_TASK} is deferred and its log shows {LIVE_MARK} lines")
    take(
        browser,
        task_url(airflow.url, OUR_DAG, run_id, DEFERRED_TASK),
        folder / "task-log-deferred.png",
        [LIVE_MARK, "Deferred"],
        log_end=True,
    )
    state = task_state(airflow.task_instances(OUR_DAG, run_id), DEFERRED_TASK)
    if state != "deferred":
        raise RuntimeError(f"{DEFERRED_TASK} was {state} right after its screenshot, which may not show it deferred")

    airflow.wait(lambda: airflow.run_state(OUR_DAG, run_id) in TERMINAL_RUN_STATES, 600, f"run {run_id} finished")
    states = {task["task_id"]: task["state"] for task in airflow.task_instances(OUR_DAG, run_id)}
    if states != EXPECTED[OUR_DAG]:
        raise RuntimeError(
            f"unexpected outcomes {states} (expected {EXPECTED[OUR_DAG]}); Airflow's logs: {airflow.home}"
        )
    step(f"the run finished as expected: {states}")
    take(
        browser,
        task_url(airflow.url, OUR_DAG, run_id, FAILED_TASK),
        folder / "task-log-failed.png",
        [FAILURE_CAUSE, "Failed"],
        log_end=True,
    )
    take(browser, run_url(airflow.url, OUR_DAG, run_id), folder / "dag-run.png", [*states, "Success", "Failed"])


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go (default: docs/images/ui)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--chromium", help="the Chromium executable (default: $CHROMIUM, else found on PATH)")
    parser.add_argument("--home", type=Path, help="Airflow home (default: a fresh temporary directory)")
    parser.add_argument(
        "--hold", type=float, default=0, help="keep everything up this many seconds at the end, on error too"
    )
    args = parser.parse_args(argv)
    chromium = find_chromium(args.chromium)
    # The demo's settings: ten one-second iterations, a 30 s function timeout (async_timeout runs 40 and is
    # deferred until Lambda stops it), CloudWatch read every 5 s.
    settings = argparse.Namespace(iterations=10, function_timeout=30, poll_interval=5.0, durable_wait=60)
    env = {
        **airflow_env("", settings),
        # As docker-compose.yaml: a trigger that fires within the workers' heartbeat interval of deferring can
        # make the scheduler fail the resumed task (docs/zero-worker-runs.md, the executor race).
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    }
    signal.signal(signal.SIGTERM, _interrupt)  # so that a kill still stops everything below

    started = time.monotonic()
    home = args.home or Path(tempfile.mkdtemp(prefix="airflow-screenshots-"))
    shots = Path(tempfile.mkdtemp(prefix="screenshots-"))
    step("starting the local AWS stack (moto + local Lambda runtime)")
    with LocalAwsStack(port=0, ingestion_delay=1.0) as aws:
        step(f"deploying template.yml into {aws.endpoint_url} (function timeout {settings.function_timeout}s)")
        deploy_template(aws.endpoint_url, ROOT / "template.yml", timeout=settings.function_timeout)
        env.update(airflow_env(aws.endpoint_url, settings))
        step(f"starting Airflow 3 in {home} (api-server, scheduler, dag-processor, triggerer); about 30 s")
        with AirflowStack(home, ROOT / "dags", env=env) as airflow:
            step(f"Airflow is up at {airflow.url}; starting {chromium} headless ({args.width}x{args.height})")
            with Browser(chromium, args.width, args.height) as browser:
                try:
                    shoot(airflow, browser, shots)
                finally:
                    if args.hold:
                        step(f"holding everything for {args.hold:.0f}s: the UI is at {airflow.url}")
                        time.sleep(args.hold)
    # Only a run that took all three replaces what the docs show.
    args.out.mkdir(parents=True, exist_ok=True)
    for shot in sorted(shots.glob("*.png")):
        target = args.out / shot.name
        shutil.move(shot, target)
        step(f"saved {target} ({target.stat().st_size // 1024} KiB)")
    shots.rmdir()
    step(f"done in {time.monotonic() - started:.0f}s; everything it started is stopped (Airflow's logs: {home})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
