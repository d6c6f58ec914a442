"""Example durable Lambda function: a few checkpointed steps around a durable wait, with correlated log lines.

Lambda runs the handler again from the beginning after the wait (a replay, a new invocation with its own
request id); the SDK returns the checkpointed result of every step that already ran instead of running it
again. So the steps' lines appear once, while the lines written outside steps ("Replay started") appear in
every invocation, each carrying the ``correlation_id`` of the payload.

Payload keys (all optional):

- ``correlation_id``: copied onto every log line.
- ``wait_seconds``: how long the durable wait lasts (default 5; at least 1). Nothing runs, nothing is billed
  while it lasts: the invocation ends and Lambda invokes the function again when it is over.
- ``to_fail``: fail after the wait (default false), with ``RequestedFailure``.
"""

from __future__ import annotations

import os
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import Duration
from aws_lambda_powertools import Logger

Event = dict[str, Any]

DEFAULT_WAIT_SECONDS = 5
# The longest wait the example accepts: a day, far below the execution timeout Lambda allows (a year).
MAX_WAIT_SECONDS = 86_400

logger = Logger(
    service=os.environ.get("POWERTOOLS_SERVICE_NAME", "airflow"),
    log_record_order=["correlation_id", "level", "message", "location"],
)


class RequestedFailure(Exception):
    """The payload asked the execution to fail (``to_fail``)."""


def parse_event(event: Any) -> tuple[int, bool]:
    """Return ``(wait_seconds, to_fail)`` from the payload, or raise ValueError saying what is wrong."""
    if not isinstance(event, dict):
        raise ValueError(f"the payload must be a JSON object, got {type(event).__name__}")
    wait_seconds = event.get("wait_seconds", DEFAULT_WAIT_SECONDS)
    if isinstance(wait_seconds, bool) or not isinstance(wait_seconds, int):
        raise ValueError(f"payload['wait_seconds'] must be an integer, got {wait_seconds!r}")
    if not 1 <= wait_seconds <= MAX_WAIT_SECONDS:
        raise ValueError(f"payload['wait_seconds'] must be between 1 and {MAX_WAIT_SECONDS}, got {wait_seconds}")
    to_fail = event.get("to_fail", False)
    if not isinstance(to_fail, bool):
        raise ValueError(f"payload['to_fail'] must be true or false, got {to_fail!r}")
    return wait_seconds, to_fail


@durable_step
def prepare(step_context: StepContext, wait_seconds: int) -> dict[str, Any]:
    """Say what the execution will do; checkpointed, so it runs once whatever the replays."""
    logger.info("Preparing: waiting %d s next", wait_seconds)
    return {"wait_seconds": wait_seconds}


@durable_step
def finish(step_context: StepContext, prepared: dict[str, Any]) -> dict[str, Any]:
    """Build the result once the wait is over."""
    logger.info("Finishing after a wait of %d s", prepared["wait_seconds"])
    return {"waited_seconds": prepared["wait_seconds"]}


@durable_execution
def _durable_handler(event: Event, context: DurableContext) -> dict[str, Any]:
    logger.set_correlation_id(event.get("correlation_id") if isinstance(event, dict) else None)
    logger.info("Replay started")  # outside any step: written by every invocation of the execution
    try:
        wait_seconds, to_fail = parse_event(event)
    except ValueError as err:
        logger.error("Invalid payload: %s", err)
        raise
    prepared = context.step(prepare(wait_seconds), name="prepare")
    context.wait(Duration(seconds=wait_seconds), name="pause")
    if to_fail:
        logger.error("Failing on request (to_fail) after the wait")
        raise RequestedFailure(f"to_fail was set: failing after a wait of {wait_seconds} s")
    result = context.step(finish(prepared), name="finish")
    logger.info("Execution ended")
    return {**result, "correlation_id": logger.get_correlation_id()}


# Powertools adds the invocation's own fields (request id, cold start) to every line of each replay.
lambda_handler = logger.inject_lambda_context(_durable_handler)
