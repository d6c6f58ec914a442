"""Every setting: numbers finite, within their documented ranges, integers where they count; the settings
object the operator hands the trigger survives serialization whole, also from an earlier version's kwargs."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from airflow_lambda_deferrable.settings import (
    DEFAULT_QUEUE_ALLOWANCE_SECONDS,
    OPERATOR_BOUNDS,
    TRIGGER_BOUNDS,
    Bound,
    FollowSettings,
    deadline_for,
    problem_with,
)

SECONDS = Bound(0.0, 300.0, False, "why")
COUNT = Bound(1, 100, True, "why")


@pytest.mark.parametrize("value", [0, 0.0, 150, 299.5, 300])
def test_numbers_within_the_range_pass(value):
    assert problem_with("settle_seconds", value, SECONDS) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (math.nan, "settle_seconds must be a number from 0 to 300 (why), got nan"),
        (math.inf, "settle_seconds must be a number from 0 to 300 (why), got inf"),
        (-math.inf, "settle_seconds must be a number from 0 to 300 (why), got -inf"),
        (-0.001, "settle_seconds must be a number from 0 to 300 (why), got -0.001"),
        (300.001, "settle_seconds must be a number from 0 to 300 (why), got 300.001"),
        (10**400, f"settle_seconds must be a number from 0 to 300 (why), got {10**400!r}"),
        (True, "settle_seconds must be a number, got True (bool)"),
        ("5", "settle_seconds must be a number, got '5' (str)"),
        (None, "settle_seconds must be a number, got None (NoneType)"),
    ],
)
def test_numbers_out_of_range_or_not_numbers_are_named(value, problem):
    assert problem_with("settle_seconds", value, SECONDS) == problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (10.0, "max_lines must be an integer, got 10.0 (float)"),
        (math.nan, "max_lines must be an integer, got nan (float)"),
        (0, "max_lines must be an integer from 1 to 100 (why), got 0"),
        (101, "max_lines must be an integer from 1 to 100 (why), got 101"),
        (False, "max_lines must be an integer, got False (bool)"),
    ],
)
def test_counts_must_be_integers_in_range(value, problem):
    assert problem_with("max_lines", value, COUNT) == problem


def test_the_documented_ranges():
    ranges = {name: (bound.low, bound.high, bound.integer) for name, bound in OPERATOR_BOUNDS.items()}
    assert ranges == {
        "poll_interval": (1.0, 300.0, False),
        "settle_seconds": (0.0, 300.0, False),
        "queue_allowance_seconds": (0.0, 21_600.0, False),
        "ingestion_allowance_seconds": (0.0, 3_600.0, False),
        "max_wait_seconds": (1.0, 366 * 86_400.0, False),
        "max_lines": (1, 100_000, True),
        "max_bytes": (1_024, 64 * 1024 * 1024, True),
        "min_defer_seconds": (0.0, 300.0, False),
    }
    # The trigger takes what the operator gives it; only its poll interval may go lower (tests).
    assert TRIGGER_BOUNDS["ingestion_allowance_seconds"] == OPERATOR_BOUNDS["ingestion_allowance_seconds"]
    assert TRIGGER_BOUNDS["poll_interval"].low < OPERATOR_BOUNDS["poll_interval"].low
    assert all(bound.reason for bound in (*OPERATOR_BOUNDS.values(), *TRIGGER_BOUNDS.values()))


def every_field_changed() -> FollowSettings:
    """Settings in which no field has its default value, so that a field dropped anywhere shows."""
    return FollowSettings(
        function_name="fn",
        log_group="/aws/lambda/fn",
        correlation_id="corr-1",
        request_id="req-1",
        invoked_at=1_800_000_000.0,
        deadline=1_800_000_600.0,
        qualifier="live",
        invocation_type="RequestResponse",
        known_result={"failed": False},
        result={"value": [1, 2]},
        tenant_id="tenant-a",
        durable_execution_arn="arn:aws:lambda:us-east-1:123456789012:function:f:1/durable-execution/n/id",
        durable_execution_name="n",
        stop_execution_on_kill=False,
        claim_lines_without_ids=False,
        allow_hidden_success=True,
        fail_fast=True,
        hidden_platform_level="WARN",
        function_timeout=60.0,
        end_marker="done",
        correlation_id_key="cid",
        poll_interval=7.0,
        settle_seconds=4.0,
        queue_allowance_seconds=60.0,
        ingestion_allowance_seconds=90.0,
        clock_skew_seconds=30.0,
        fire_after=1_800_000_006.0,
        handed_over_at=1_800_000_001.0,
        max_lines=50,
        max_bytes=4096,
        end_from_trigger=True,
        do_xcom_push=False,
        logs_link={"log_group": "/aws/lambda/f", "invoked_at": 1_800_000_000.0},
        aws_conn_id="aws_other",
        region_name="eu-west-1",
        verify=False,
        botocore_config={"read_timeout": 10},
    )


def test_the_serialized_kwargs_hold_every_field():
    settings = every_field_changed()
    defaults = {field.name: field.default for field in dataclasses.fields(FollowSettings)}
    assert all(getattr(settings, name) != default for name, default in defaults.items())
    kwargs = settings.as_kwargs()
    assert set(kwargs) == set(defaults)
    assert FollowSettings.from_kwargs(kwargs, who="test") == settings


def test_kwargs_serialized_before_the_queue_allowance_was_carried_get_the_default():
    kwargs = every_field_changed().as_kwargs()
    del kwargs["queue_allowance_seconds"]
    settings = FollowSettings.from_kwargs(kwargs, who="test")
    assert settings.queue_allowance_seconds == DEFAULT_QUEUE_ALLOWANCE_SECONDS


def test_the_trigger_takes_the_operators_queue_allowance_range():
    assert TRIGGER_BOUNDS["queue_allowance_seconds"] == OPERATOR_BOUNDS["queue_allowance_seconds"]
    with pytest.raises(ValueError, match="queue_allowance_seconds must be a number from 0 to 21600"):
        dataclasses.replace(every_field_changed(), queue_allowance_seconds=-1.0)


def test_kwargs_of_earlier_versions_are_read_under_their_new_names():
    kwargs = every_field_changed().as_kwargs()
    kwargs["late_arrival_seconds"] = kwargs.pop("ingestion_allowance_seconds")
    assert FollowSettings.from_kwargs(kwargs, who="test") == every_field_changed()


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"no_such_setting": 1}, "test: unknown setting 'no_such_setting'"),
        (
            {"late_arrival_seconds": 5},
            "test: 'ingestion_allowance_seconds' given twice (once as 'late_arrival_seconds')",
        ),
    ],
)
def test_unknown_or_doubled_kwargs_are_refused_by_name(kwargs, problem):
    given = every_field_changed().as_kwargs() | kwargs
    with pytest.raises(TypeError, match=re.escape(problem)):
        FollowSettings.from_kwargs(given, who="test")


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"function_name": ""}, "function_name must be a non-empty string"),
        ({"invocation_type": "DryRun"}, "invocation_type must be one of Event, RequestResponse"),
        ({"known_result": "failed"}, "known_result must be a dict or None"),
        ({"poll_interval": math.nan}, "poll_interval must be a number from 0.1 to 300"),
    ],
)
def test_bad_settings_are_refused_by_name(changes, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        dataclasses.replace(every_field_changed(), **changes)


@pytest.mark.parametrize(
    ("responded_at", "max_wait_seconds", "deadline"),
    [
        (None, None, 1000 + 300 + 60 + 120),  # Event: queue, then the function's timeout, then ingestion
        (1050.0, None, 1050 + 120),  # RequestResponse: it has ended; only ingestion remains
        (None, 30.0, 1030),  # the user's bound counts from invoking
        (1050.0, 30.0, 1030),
    ],
)
def test_one_deadline_rule(responded_at, max_wait_seconds, deadline):
    assert (
        deadline_for(
            invoked_at=1000.0,
            function_timeout=60,
            queue_allowance_seconds=300.0,
            ingestion_allowance_seconds=120.0,
            max_wait_seconds=max_wait_seconds,
            responded_at=responded_at,
        )
        == deadline
    )


# Lambda Managed Instances: an asynchronous request may run 5,400 s (AWS docs "configuration-timeout").
MANAGED_INSTANCES_ASYNC_TIMEOUT = 5_400


def test_an_event_on_managed_instances_is_followed_for_its_whole_90_minutes():
    """The default deadline is queue allowance + the function's own Timeout + ingestion, uncapped."""
    deadline = deadline_for(
        invoked_at=1000.0,
        function_timeout=MANAGED_INSTANCES_ASYNC_TIMEOUT,
        queue_allowance_seconds=300.0,
        ingestion_allowance_seconds=120.0,
        max_wait_seconds=None,
        responded_at=None,
    )
    assert deadline == 1000 + 300 + MANAGED_INSTANCES_ASYNC_TIMEOUT + 120
    settings = dataclasses.replace(every_field_changed(), invoked_at=1000.0, deadline=deadline)
    assert FollowSettings.from_kwargs(settings.as_kwargs(), who="test").deadline == deadline


def test_max_wait_seconds_may_cover_a_managed_instances_timeout_and_its_allowances():
    wait = MANAGED_INSTANCES_ASYNC_TIMEOUT + OPERATOR_BOUNDS["queue_allowance_seconds"].high + 3_600.0
    assert problem_with("max_wait_seconds", wait, OPERATOR_BOUNDS["max_wait_seconds"]) is None
