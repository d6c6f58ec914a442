"""How a filtered read of the group is made: by ids, or by request lines and the live subscribers' ids."""

from __future__ import annotations

import time

import pytest

from airflow_lambda_deferrable.cloudwatch.filter_patterns import (
    REQUEST_LINES_CYCLE_CALLS,
    plan_filtered_read,
    term_groups,
)
from airflow_lambda_deferrable.settings import FollowSettings
from airflow_lambda_deferrable.sources.log_lines import ids_read_live

# Enough request ids for two OR-patterns (25 of them fit in one).
MANY = [f"00000000-0000-4000-8000-{index:012d}" for index in range(40)]


def test_ids_that_fit_in_one_pattern_are_read_by_it_whatever_the_subscribers_need():
    read = plan_filtered_read(MANY[:3], [], request_lines_refused=False)
    assert not read.by_request_lines and read.id_groups == [MANY[:3]]
    assert read.calls == 1


def test_more_ids_are_read_by_request_lines_and_only_the_live_subscribers_ids():
    read = plan_filtered_read(MANY, MANY[:2], request_lines_refused=False)
    assert read.by_request_lines and read.id_groups == [MANY[:2]]
    assert read.calls == REQUEST_LINES_CYCLE_CALLS + 1
    nobody_live = plan_filtered_read(MANY, [], request_lines_refused=False)
    assert nobody_live.by_request_lines and nobody_live.id_groups == []


def test_when_every_subscriber_is_live_or_request_lines_are_refused_the_ids_are_read():
    for read in (
        plan_filtered_read(MANY, MANY, request_lines_refused=False),
        plan_filtered_read(MANY, [], request_lines_refused=True),
    ):
        assert not read.by_request_lines and read.id_groups == term_groups(sorted(MANY))
        assert len(read.id_groups) == 2


def settings(**overrides) -> FollowSettings:
    kwargs = {
        "function_name": "fn",
        "log_group": "/aws/lambda/fn",
        "correlation_id": "corr-1",
        "request_id": MANY[0],
        "invoked_at": time.time(),
        "deadline": time.time() + 60,
    }
    return FollowSettings(**(kwargs | overrides))


@pytest.mark.parametrize(
    "overrides, live",
    [
        ({}, False),  # its request lines find it, and it waits for its end
        ({"request_id": None}, True),  # no request id: only its correlation id finds its request
        ({"fail_fast": True}, True),  # decides on an ERROR line before its request ends
        ({"allow_hidden_success": True}, True),  # its logging config may hide START and REPORT
        ({"hidden_platform_level": "WARN"}, True),  # START and END hidden: only the end marker shows a success
        ({"durable_execution_arn": "arn:aws:lambda:eu-west-1:123456789012:function:fn:1/durable-execution/x/y"}, True),
    ],
)
def test_which_invocations_need_their_lines_with_ids_as_they_come(overrides, live):
    assert ids_read_live(settings(**overrides)) is live
