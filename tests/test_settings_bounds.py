"""Every numeric setting is finite, within its documented range, and an integer where it counts."""

from __future__ import annotations

import math

import pytest

from airflow_lambda_deferrable.settings_bounds import OPERATOR_BOUNDS, TRIGGER_BOUNDS, Bound, problem_with

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
    assert TRIGGER_BOUNDS["late_arrival_seconds"] == OPERATOR_BOUNDS["ingestion_allowance_seconds"]
    assert TRIGGER_BOUNDS["poll_interval"].low < OPERATOR_BOUNDS["poll_interval"].low
    assert all(bound.reason for bound in (*OPERATOR_BOUNDS.values(), *TRIGGER_BOUNDS.values()))
