"""What a function's ``LoggingConfig`` lets the trigger see, decided before anything is invoked. Pure.

Lambda filters logs by level only in the JSON log format (``ApplicationLogLevel``, ``SystemLogLevel``):

* at ``SystemLogLevel`` WARN a successful request leaves no platform event at all (no ``platform.start``,
  no ``platform.report``); a failed one still leaves ``platform.runtimeDone`` with its status (except on
  Managed Instances, reported by one source to write no ``platform.runtimeDone`` at all: there a timeout or
  a crash may leave nothing, so the operator refuses ``allow_hidden_success`` for them);
* at ``ApplicationLogLevel`` above INFO every ``print`` line and INFO line is dropped, the function's
  correlation-id lines included; the request is then followed by its request id alone.

So an ``Event`` invocation of such a function can fail visibly but cannot succeed visibly unless the
function logs its end marker at a level that is still sent. Waiting for a success that can never show,
until the deadline, would be the worst answer: the operator says so at once instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Lambda's level names, least severe first.
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_PYTHON_NAMES = {"WARNING": "WARN", "CRITICAL": "FATAL"}


def lambda_level(name: str) -> str:
    """Return Lambda's name of a level given as Lambda or Python names it; raise ValueError otherwise."""
    upper = str(name).upper()
    upper = _PYTHON_NAMES.get(upper, upper)
    if upper not in LEVELS:
        raise ValueError(f"{name!r} is not a log level (one of {', '.join(LEVELS)})")
    return upper


def _sent(level: str, threshold: str) -> bool:
    return LEVELS.index(level) >= LEVELS.index(threshold)


@dataclass(frozen=True)
class LoggingControls:
    """The parts of a function's ``LoggingConfig`` that change what reaches CloudWatch Logs."""

    log_format: str = "Text"
    application_log_level: str = "INFO"
    system_log_level: str = "INFO"

    @classmethod
    def from_configuration(cls, configuration: dict[str, Any]) -> LoggingControls:
        """Read them from a ``GetFunctionConfiguration`` answer (levels apply in the JSON format only)."""
        config = configuration.get("LoggingConfig") or {}
        log_format = str(config.get("LogFormat") or "Text")
        if log_format != "JSON":
            return cls(log_format=log_format)
        return cls(
            log_format=log_format,
            application_log_level=lambda_level(config.get("ApplicationLogLevel") or "INFO"),
            system_log_level=lambda_level(config.get("SystemLogLevel") or "INFO"),
        )

    @property
    def platform_success_visible(self) -> bool:
        """Whether a successful request leaves Lambda's start and report events."""
        return _sent("INFO", self.system_log_level)

    @property
    def correlation_lines_visible(self) -> bool:
        """Whether INFO lines (the function's correlation-id lines, ``print``) are sent."""
        return _sent("INFO", self.application_log_level)


def hidden_success(
    controls: LoggingControls, *, invocation_type: str, end_marker: str | None, end_marker_level: str
) -> str | None:
    """Return why a success of this invocation could never be seen in its logs, or ``None`` when it can.

    A ``RequestResponse`` call's response says how it ended, so only ``Event`` invocations are at risk.
    """
    if invocation_type != "Event" or controls.platform_success_visible:
        return None
    if end_marker is not None and _sent(end_marker_level, controls.application_log_level):
        return None
    marker = (
        f"its end marker {end_marker!r} is logged at {end_marker_level}, below ApplicationLogLevel "
        f"{controls.application_log_level}"
        if end_marker is not None
        else "no end marker is set"
    )
    return (
        f"the function's LoggingConfig has SystemLogLevel {controls.system_log_level}, so a successful request "
        f"leaves no START/REPORT (platform) event, and {marker}: success could only be guessed at the deadline. "
        "Set SystemLogLevel to INFO, or log the end marker at a level that is sent and pass end_marker_level, "
        "or invoke with invocation_type='RequestResponse', or pass allow_hidden_success=True to treat "
        "'no failure seen by the deadline' as success"
    )
