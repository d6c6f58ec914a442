"""Run the example Lambda handler with real Powertools and check the JSON lines the trigger relies on."""

from __future__ import annotations

import importlib.util
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HANDLER_FILE = Path(__file__).resolve().parents[1] / "lambda" / "src" / "lambda_function.py"
END_MARKER = "Function ended"  # the operator's default end marker


@dataclass(frozen=True)
class FakeContext:
    """The part of Lambda's context object that Powertools reads."""

    function_name: str = "example-lambda-function"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:example-lambda-function:live"
    aws_request_id: str = "8a1f2b9e-3c4d-4e5f-9a0b-1c2d3e4f5a6b"


@pytest.fixture
def service_name(monkeypatch: pytest.MonkeyPatch) -> str:
    """Give each test its own Powertools service, hence its own stdlib logger.

    Powertools keeps one handler per logger name for the life of the process, bound to whatever
    ``sys.stdout`` was when it was made; a fresh name binds it to this test's captured stdout. It also
    keeps the handler off the stdlib logger named "airflow", which the deployed function uses as its service.
    """
    name = f"example-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", name)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
    return name


@pytest.fixture
def load_handler(service_name: str) -> Iterator[Callable[[], ModuleType]]:
    """Return a loader that imports lambda/src/lambda_function.py afresh, under this test's service name.

    Call it in the test body: the module's Logger binds its handler to ``sys.stdout`` at import, and
    pytest gives each test phase its own captured stdout, so an import during fixture setup would
    write to a stream that is closed by the time the test runs.
    """

    def load() -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"lambda_function_{service_name.replace('-', '_')}", HANDLER_FILE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    yield load
    stdlib_logger = logging.getLogger(service_name)
    for handler in list(stdlib_logger.handlers):
        stdlib_logger.removeHandler(handler)


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Parse what the handler printed: one JSON object per line, nothing else."""
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert lines, "the handler printed no log line"
    return lines


def messages(lines: list[dict[str, Any]]) -> list[str]:
    """Return the message of each line, in order."""
    return [line["message"] for line in lines]


def test_success_logs_every_line_with_the_correlation_id(
    load_handler: Callable[[], ModuleType], capsys: pytest.CaptureFixture[str], service_name: str
) -> None:
    function = load_handler()
    context = FakeContext()
    event = {"correlation_id": "corr-success-1", "n": 3, "sleep_seconds": 0.001}

    result = function.lambda_handler(event, context)

    assert result == {"iterations": 3, "correlation_id": "corr-success-1"}
    lines = log_lines(capsys)
    assert all(line.get("correlation_id") == "corr-success-1" for line in lines), lines
    assert all(line["function_request_id"] == context.aws_request_id for line in lines)
    assert all(line["service"] == service_name for line in lines)
    assert {line["level"] for line in lines} == {"INFO"}
    assert list(lines[0])[:4] == ["correlation_id", "level", "message", "location"]
    texts = messages(lines)
    assert texts[0] == "Function started"
    assert texts[-1] == END_MARKER
    assert [text for text in texts if text.startswith("iteration ")] == [
        "iteration 1 of 3",
        "iteration 2 of 3",
        "iteration 3 of 3",
    ]


def test_requested_failure_logs_the_traceback_and_no_end_marker(
    load_handler: Callable[[], ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    function = load_handler()
    context = FakeContext(aws_request_id="0b0b0b0b-1111-2222-3333-444444444444")
    event = {"correlation_id": "corr-fail-1", "n": 2, "sleep_seconds": 0.001, "to_fail": True}

    with pytest.raises(RuntimeError, match="^Unable to finish loop$") as raised:
        function.lambda_handler(event, context)

    assert isinstance(raised.value.__cause__, function.RequestedFailure)
    lines = log_lines(capsys)
    assert all(line.get("correlation_id") == "corr-fail-1" for line in lines), lines
    assert END_MARKER not in messages(lines)
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert len(errors) == 1, lines
    error = errors[0]
    assert error["message"] == "Function invocation failed"
    assert error["function_request_id"] == context.aws_request_id
    assert error["exception"].startswith("Traceback (most recent call last):")
    assert "to_fail was set" in error["exception"]
    assert error["exception_name"] == "RequestedFailure"
    # The failure comes after the whole loop, as the event asked.
    assert messages(lines).index("iteration 2 of 2") < lines.index(error)


@pytest.mark.parametrize(
    ("event", "complaint"),
    [
        pytest.param({"n": "3"}, "event['n'] must be an integer, got str", id="n-string"),
        pytest.param({"n": 2.5}, "event['n'] must be an integer, got float", id="n-float"),
        pytest.param({"n": True}, "event['n'] must be an integer, got bool", id="n-bool"),
        pytest.param({"n": -1}, "event['n'] must be between 0 and", id="n-negative"),
        pytest.param({"n": 10**9}, "event['n'] must be between 0 and", id="n-huge"),
        pytest.param({"to_fail": "false"}, "event['to_fail'] must be true or false", id="to_fail-string"),
        pytest.param({"sleep_seconds": "1"}, "event['sleep_seconds'] must be a number", id="sleep-string"),
        pytest.param({"sleep_seconds": -0.5}, "event['sleep_seconds'] must not be negative", id="sleep-negative"),
    ],
)
def test_bad_event_is_refused_in_a_correlated_error_line(
    load_handler: Callable[[], ModuleType], capsys: pytest.CaptureFixture[str], event: dict[str, Any], complaint: str
) -> None:
    function = load_handler()
    with pytest.raises(ValueError) as raised:
        function.lambda_handler({"correlation_id": "corr-bad-1", **event}, FakeContext())

    assert complaint in str(raised.value)
    lines = log_lines(capsys)
    assert END_MARKER not in messages(lines)
    assert not any(text.startswith("iteration ") for text in messages(lines))
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert [line["message"] for line in errors] == [f"Invalid event: {raised.value}"]
    assert errors[0]["correlation_id"] == "corr-bad-1"


def test_event_that_is_not_an_object_is_refused(load_handler: Callable[[], ModuleType]) -> None:
    function = load_handler()
    with pytest.raises(ValueError, match="the event must be a JSON object, got list"):
        function.lambda_handler([1, 2], FakeContext())


def test_defaults_are_ten_one_second_iterations(
    load_handler: Callable[[], ModuleType], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    function = load_handler()
    slept: list[float] = []
    monkeypatch.setattr(function.time, "sleep", slept.append)

    result = function.lambda_handler({"correlation_id": "corr-defaults"}, FakeContext())

    assert slept == [1.0] * 10
    assert result == {"iterations": 10, "correlation_id": "corr-defaults"}
    assert messages(log_lines(capsys))[-2:] == ["iteration 10 of 10", END_MARKER]


def test_sleep_seconds_sets_each_iteration(
    load_handler: Callable[[], ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    function = load_handler()
    monkeypatch.setattr(function.time, "sleep", slept.append)

    function.lambda_handler({"n": 2, "sleep_seconds": 0.25}, FakeContext())

    assert slept == [0.25, 0.25]


def test_zero_iterations_still_start_and_end(
    load_handler: Callable[[], ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    function = load_handler()
    function.lambda_handler({"correlation_id": "corr-zero", "n": 0}, FakeContext())

    texts = messages(log_lines(capsys))
    assert texts[0] == "Function started"
    assert texts[-1] == END_MARKER
    assert not any(text.startswith("iteration ") for text in texts)


def test_without_correlation_id_the_key_is_absent(
    load_handler: Callable[[], ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    """A caller that sends no correlation id gets lines without the key (not null), and None back."""
    function = load_handler()
    result = function.lambda_handler({"n": 1, "sleep_seconds": 0}, FakeContext())

    assert result == {"iterations": 1, "correlation_id": None}
    lines = log_lines(capsys)
    assert all("correlation_id" not in line for line in lines), lines
    assert messages(lines)[-1] == END_MARKER
