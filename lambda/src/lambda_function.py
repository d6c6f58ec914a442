"""Example Lambda function whose log lines let Airflow follow one invocation through CloudWatch Logs.

Every line is one JSON object from Powertools' Logger and carries the ``correlation_id`` the operator put
into the event. "Function started" is written before the handler runs and "Function ended" only after it
returned, so the end line is the function's own word that it finished; a failure is logged at ERROR
with its traceback, and then raised so that Lambda records the invocation as failed too.

Event keys (all optional):

- ``correlation_id``: set by the operator; copied onto every log line.
- ``n``: how many iterations to run (default 10), each logging "iteration i of n".
- ``sleep_seconds``: how long each iteration sleeps (default 1.0).
- ``to_fail``: fail after the loop (default false).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.middleware_factory import lambda_handler_decorator
from aws_lambda_powertools.utilities.typing import LambdaContext

Event = dict[str, Any]
Handler = Callable[[Event, LambdaContext], dict[str, Any]]

DEFAULT_ITERATIONS = 10
DEFAULT_SLEEP_SECONDS = 1.0
# The longest run the example accepts: far beyond any Lambda timeout (at most 900 s), so a timeout
# can be provoked on purpose, while a typo such as n=10**9 is still refused.
MAX_ITERATIONS = 10_000

logger = Logger(
    service=os.environ.get("POWERTOOLS_SERVICE_NAME", "airflow"),
    log_record_order=["correlation_id", "level", "message", "location"],
)


class RequestedFailure(Exception):
    """The event asked the function to fail; the cause chained under the error the caller sees."""


def _int_field(event: Event, key: str, default: int) -> int:
    """Return ``event[key]`` as an int, refusing bools, floats and strings rather than guessing."""
    value = event.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"event[{key!r}] must be an integer, got {type(value).__name__}: {value!r}")
    return value


def _bool_field(event: Event, key: str, default: bool) -> bool:
    """Return ``event[key]`` as a bool; the string "false" is truthy in Python, so only real bools pass."""
    value = event.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"event[{key!r}] must be true or false, got {type(value).__name__}: {value!r}")
    return value


def _seconds_field(event: Event, key: str, default: float) -> float:
    """Return ``event[key]`` as a non-negative number of seconds."""
    value = event.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"event[{key!r}] must be a number of seconds, got {type(value).__name__}: {value!r}")
    if value < 0:
        raise ValueError(f"event[{key!r}] must not be negative, got {value!r}")
    return float(value)


def parse_event(event: Any) -> tuple[int, float, bool]:
    """Return ``(n, sleep_seconds, to_fail)`` from the event, or raise ValueError saying what is wrong."""
    if not isinstance(event, dict):
        raise ValueError(f"the event must be a JSON object, got {type(event).__name__}")
    iterations = _int_field(event, "n", DEFAULT_ITERATIONS)
    if not 0 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"event['n'] must be between 0 and {MAX_ITERATIONS}, got {iterations}")
    sleep_seconds = _seconds_field(event, "sleep_seconds", DEFAULT_SLEEP_SECONDS)
    to_fail = _bool_field(event, "to_fail", False)
    return iterations, sleep_seconds, to_fail


@lambda_handler_decorator
def log_start_and_end(handler: Handler, event: Event, context: LambdaContext) -> dict[str, Any]:
    """Log "Function started" before the handler and "Function ended" only once it has returned."""
    logger.info("Function started")
    response = handler(event, context)
    logger.info("Function ended")
    return response


@logger.inject_lambda_context(correlation_id_path="correlation_id")
@log_start_and_end
def lambda_handler(event: Event, context: LambdaContext) -> dict[str, Any]:
    """Loop ``n`` times, then succeed, or fail on request with the cause logged at ERROR."""
    try:
        iterations, sleep_seconds, to_fail = parse_event(event)
    except ValueError as err:
        # Say it in a correlated line too: the runtime's own "[ERROR]" line carries no correlation id.
        logger.error("Invalid event: %s", err)
        raise
    logger.info("Looping n=%d times, %.3g s each, to_fail=%s", iterations, sleep_seconds, to_fail)
    try:
        for index in range(1, iterations + 1):
            logger.info("iteration %d of %d", index, iterations)
            time.sleep(sleep_seconds)
        if to_fail:
            raise RequestedFailure(f"to_fail was set: failing after {iterations} iterations")
    except RequestedFailure as err:
        logger.exception("Function invocation failed")
        raise RuntimeError("Unable to finish loop") from err
    return {"iterations": iterations, "correlation_id": logger.get_correlation_id()}
