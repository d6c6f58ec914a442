"""Tiny Lambda handlers for tests/test_local_aws.py: each shows one way an invocation can end."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

Event = dict[str, Any]


def succeed(event: Event, context: Any) -> dict[str, Any]:
    """Return what the handler saw, so the test can compare it with what the caller got."""
    print(f"hello from {context.aws_request_id}")
    return {
        "request_id": context.aws_request_id,
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_arn": context.invoked_function_arn,
        "log_stream": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "mark": os.environ.get("MARK"),
        "region": os.environ.get("AWS_REGION"),
        "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
        "pid": os.getpid(),
    }


def fail(event: Event, context: Any) -> None:
    """Raise, as the example function does when asked to fail."""
    print(f"about to fail in {context.aws_request_id}")
    raise RuntimeError("Unable to finish loop")


def sleep(event: Event, context: Any) -> dict[str, Any]:
    """Sleep ``event["seconds"]``, printing the process id first (to check a timed-out process is gone)."""
    print(f"pid={os.getpid()} sleeping {event['seconds']}")
    time.sleep(float(event["seconds"]))
    print("woke up")
    return {"slept": event["seconds"]}


def crash(event: Event, context: Any) -> None:
    """End the runtime process the hard way: ``os._exit(3)`` or SIGKILL (what the OOM killer sends)."""
    print(f"crashing by {event['how']}")
    if event["how"] == "exit":
        os._exit(3)
    os.kill(os.getpid(), signal.SIGKILL)


def multiline(event: Event, context: Any) -> str:
    """Print one text with an embedded newline: Lambda stores one event per printed line."""
    print("first line\nsecond line")
    return "ok"


def levels(event: Event, context: Any) -> str:
    """Write a line at each level through the `logging` module, and one with print (no level)."""
    import logging

    logger = logging.getLogger("app")
    print(f"printed by {context.aws_request_id}")
    logger.debug("debug line")
    logger.info("info line")
    logger.warning("warning line")
    if event.get("log_error"):
        logger.error("handled: %s", event["log_error"])  # logged, then the handler returns normally
    if event.get("fail"):
        raise RuntimeError("boom: " + str(event["fail"]))
    return "ok"


def print_nul(event: Event, context: Any) -> str:
    """Print and return text with a NUL character in it (PostgreSQL's JSONB cannot store one)."""
    print("before\x00after")
    return "result\x00end"


def work(event: Event, context: Any) -> dict[str, Any]:
    """Log through `logging` before and after sleeping, print a line without ids, fail when asked."""
    import logging

    logger = logging.getLogger("work")
    item = event.get("item")
    logger.info("work %s begins", item)
    print(f"printed during work {item}")
    time.sleep(float(event.get("seconds", 0)))
    if event.get("fail"):
        raise ValueError(f"work {item} failed")
    logger.info("work %s ends", item)
    return {"item": item, "tenant_id": getattr(context, "tenant_id", None)}


def reinvoke(event: Event, context: Any) -> None:
    """Re-invoke this function with its own event (a fan-out), as a request of its own would, then fail.

    Each child logs a Powertools-shaped "Function ended" line that carries the parent's correlation id and
    the child's own request id, and returns; the parent waits for them, then raises.
    """
    import json

    import boto3

    correlation_id = event.get("correlation_id")
    if event.get("child"):
        line = {"level": "INFO", "message": "Function ended", "correlation_id": correlation_id}
        print(json.dumps(line | {"function_request_id": context.aws_request_id}))
        return None
    client = boto3.client("lambda")
    for _ in range(int(event.get("children", 3))):
        client.invoke(
            FunctionName=context.function_name, InvocationType="Event", Payload=json.dumps(event | {"child": True})
        )
    time.sleep(float(event.get("seconds", 2)))
    raise RuntimeError(f"the parent of correlation id {correlation_id} failed")


def deep_line(event: Event, context: Any) -> str:
    """Print one JSON line nested ``event["depth"]`` levels deep (5,000 by default), then succeed."""
    depth = int(event.get("depth", 5000))
    print('{"level": "ERROR", "message": ' + "[" * depth + "]" * depth + "}")
    return "done"
