"""What a function's LoggingConfig lets the trigger see: decided before invoking, over plain data."""

from __future__ import annotations

import pytest

from airflow_lambda_deferrable.verdict.logging_controls import LoggingControls, hidden_success, lambda_level


def controls(**config: str) -> LoggingControls:
    return LoggingControls.from_configuration({"LoggingConfig": config})


def test_levels_apply_in_the_json_format_only():
    assert controls(LogFormat="Text", SystemLogLevel="WARN") == LoggingControls()
    assert LoggingControls.from_configuration({}) == LoggingControls()
    quiet = controls(LogFormat="JSON", ApplicationLogLevel="WARN", SystemLogLevel="WARN")
    assert (quiet.platform_success_visible, quiet.correlation_lines_visible) == (False, False)
    assert controls(LogFormat="JSON").platform_success_visible


@pytest.mark.parametrize(
    ("config", "invocation_type", "end_marker", "marker_level", "hidden"),
    [
        ({"SystemLogLevel": "INFO"}, "Event", None, "INFO", False),
        ({"SystemLogLevel": "WARN"}, "RequestResponse", None, "INFO", False),  # the response says
        ({"SystemLogLevel": "WARN"}, "Event", None, "INFO", True),
        ({"SystemLogLevel": "WARN"}, "Event", "Function ended", "INFO", False),  # marker at INFO is sent
        ({"SystemLogLevel": "WARN", "ApplicationLogLevel": "WARN"}, "Event", "Function ended", "INFO", True),
        ({"SystemLogLevel": "WARN", "ApplicationLogLevel": "WARN"}, "Event", "Function ended", "WARNING", False),
        ({"SystemLogLevel": "DEBUG", "ApplicationLogLevel": "ERROR"}, "Event", None, "INFO", False),
    ],
)
def test_hidden_success(config, invocation_type, end_marker, marker_level, hidden):
    reason = hidden_success(
        controls(LogFormat="JSON", **config),
        invocation_type=invocation_type,
        end_marker=end_marker,
        end_marker_level=lambda_level(marker_level),
    )
    assert (reason is not None) == hidden
    if hidden:
        assert "SystemLogLevel WARN" in reason and "allow_hidden_success=True" in reason


def test_level_names_of_python_and_lambda_are_both_read():
    assert [lambda_level(n) for n in ("warning", "WARN", "critical", "info")] == ["WARN", "WARN", "FATAL", "INFO"]
    with pytest.raises(ValueError, match="'LOUD' is not a log level"):
        lambda_level("LOUD")
