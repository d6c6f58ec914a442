"""CloudWatch Logs group names and what DescribeLogGroups says of one group: pure rules."""

from __future__ import annotations

import pytest

from airflow_lambda_deferrable.cloudwatch.log_groups import (
    MAX_LOG_GROUP_NAME_CHARS,
    check_log_group_name,
    default_log_group,
    describe_answer,
    named_in,
    timeout_note,
)
from airflow_lambda_deferrable.exceptions import LambdaInvokeInputError


@pytest.mark.parametrize(
    "name",
    ["/aws/lambda/fn", "a", "my.group-1_/#x", "x" * MAX_LOG_GROUP_NAME_CHARS, "aws-waf-logs-app"],
)
def test_names_cloudwatch_logs_takes_are_kept(name):
    assert check_log_group_name(name) == name


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("bad group*name", r"log_group 'bad group\*name' is not a CloudWatch Logs group name: it holds ' ', '\*'"),
        ("x" * 1000, "log_group is 1000 characters long, over CloudWatch Logs' 512"),
        ("x" * 513, "log_group is 513 characters long"),
        ("/aws/lambda/fn\n", r"it holds '\\n'"),
        ("/aws/lambda/fn:*", r"it holds '\*', ':'"),
        ("/aws/lambda/fünf", "it holds 'ü'"),
        ("", "log_group must be a CloudWatch Logs group name, got ''"),
        (5, "got 5"),
        (b"/aws/lambda/fn", "got b'/aws/lambda/fn'"),
    ],
)
def test_names_cloudwatch_logs_refuses_are_refused_saying_why(name, match):
    with pytest.raises(LambdaInvokeInputError, match=match):
        check_log_group_name(name)


def test_the_default_group_is_lambdas_own_name_for_the_function():
    assert default_log_group("fn") == "/aws/lambda/fn"


def test_only_the_exact_name_counts_as_the_group():
    answer = {"logGroups": [{"logGroupName": "/app/fn"}, {"logGroupName": "/app/fn-two"}]}
    assert named_in(answer, "/app/fn")
    assert not named_in({"logGroups": [{"logGroupName": "/app/fn-two"}]}, "/app/fn")
    assert not named_in({"logGroups": []}, "/app/fn")
    assert not named_in({}, "/app/fn")


def test_an_answer_is_described_by_what_it_held():
    assert describe_answer({"logGroups": []}) == "no group of that name or prefix"
    assert describe_answer({"logGroups": [{"logGroupName": "/app/fn-two"}]}) == (
        "1 group(s) whose names start so (/app/fn-two), none of that exact name"
    )
    many = {"logGroups": [{"logGroupName": f"/app/fn-{n}"} for n in range(7)]}
    assert describe_answer(many).endswith(
        "(/app/fn-0, /app/fn-1, /app/fn-2, /app/fn-3, /app/fn-4, ...), none of that exact name"
    )


@pytest.mark.parametrize(
    ("exists", "lines_read", "because", "note"),
    [
        (
            False,
            0,
            "",
            "; log group /g does not exist (DescribeLogGroups), and no line of this invocation was read there",
        ),
        (True, 0, "", "; log group /g exists (DescribeLogGroups), and no line of this invocation was read there"),
        (True, 3, "", "; log group /g exists (DescribeLogGroups), and 3 line(s) of this invocation were read there"),
        (
            None,
            1,
            "DescribeLogGroups failed with AccessDeniedException: no",
            "; log group /g could not be checked (DescribeLogGroups failed with AccessDeniedException: no), "
            "and 1 line(s) of this invocation were read there",
        ),
    ],
)
def test_a_timeout_note_says_whether_the_group_exists_and_what_was_read(exists, lines_read, because, note):
    assert timeout_note("/g", exists=exists, lines_read=lines_read, unchecked_because=because) == note
