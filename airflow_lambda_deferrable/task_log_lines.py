"""How a function's line reads in the task log: the same shape while deferred (live) and after resuming.

Pure. ``[lambda]`` marks the lines the resumed task logs (the record that survives a triggerer's lost
log); ``[lambda live]`` the lines the trigger logs as it reads them, which Airflow shows in the task log
while the task is deferred. A reader who sees a line twice sees which part each copy belongs to.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

RESUMED_LABEL = "[lambda]"
LIVE_LABEL = "[lambda live]"


def task_log_line(*, timestamp_ms: int, level: str | None, message: str, detail: str | None) -> tuple[int, str]:
    """Return the Python logging level and the text (time, Lambda's level, message, traceback) of a line."""
    python_level = logging.getLevelName(str(level or "INFO"))
    when = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    text = message if not detail else f"{message}\n{detail}"
    return (python_level if isinstance(python_level, int) else logging.INFO), f"{when} {level} {text}"
