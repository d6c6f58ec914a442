"""CloudWatch Logs group names: the syntax rule, which group Lambda creates itself, and what a
``DescribeLogGroups`` answer says of one group. Pure: no I/O."""

from __future__ import annotations

import re
from typing import Any

from airflow_lambda_deferrable.exceptions import LambdaInvokeInputError
from airflow_lambda_deferrable.limits import MAX_LOG_GROUP_NAME_CHARS

# CreateLogGroup's `logGroupName`: "Length Constraints: Minimum length of 1. Maximum length of 512.
# Pattern: [\.\-_/#A-Za-z0-9]+" (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/
# API_CreateLogGroup.html; botocore's logs service model, shape LogGroupName, says the same).
LOG_GROUP_NAME_PATTERN = re.compile(r"[\.\-_/#A-Za-z0-9]+")
# The longest name CloudWatch Logs takes (the same source).
# Most groups of a DescribeLogGroups answer named in an error (an answer holds up to 50).
MAX_NAMES_SHOWN = 5


def check_log_group_name(name: Any) -> str:
    """Return `name` if CloudWatch Logs could hold a group of that name, else raise `LambdaInvokeInputError`
    saying what is wrong with it."""
    if not isinstance(name, str) or not name:
        raise LambdaInvokeInputError(
            f"log_group must be a CloudWatch Logs group name, got {name!r} (leave it unset for the function's own)"
        )
    if len(name) > MAX_LOG_GROUP_NAME_CHARS:
        raise LambdaInvokeInputError(
            f"log_group is {len(name)} characters long, over CloudWatch Logs' {MAX_LOG_GROUP_NAME_CHARS}: "
            f"{name[:40]!r}..."
        )
    if not LOG_GROUP_NAME_PATTERN.fullmatch(name):
        bad = sorted({char for char in name if not LOG_GROUP_NAME_PATTERN.fullmatch(char)})
        raise LambdaInvokeInputError(
            f"log_group {name!r} is not a CloudWatch Logs group name: it holds {', '.join(map(repr, bad))}; "
            "a name is letters, digits and . - _ / #"
        )
    return name


def default_log_group(function_name: str) -> str:
    """Return the group Lambda writes a function's lines to when its LoggingConfig names none."""
    return f"/aws/lambda/{function_name}"


def named_in(answer: dict[str, Any], name: str) -> bool:
    """Whether a ``DescribeLogGroups`` answer (asked with ``logGroupNamePrefix=name``) holds the group `name`
    itself, not only groups whose names start with it.

    CloudWatch sorts the groups it answers by name, and `name` is a prefix of every other name asked for, so
    the group comes first when it exists: one page answers.
    """
    return any(group.get("logGroupName") == name for group in answer.get("logGroups") or [])


def describe_answer(answer: dict[str, Any]) -> str:
    """Say what a ``DescribeLogGroups`` answer held, for an error message."""
    names = [str(group.get("logGroupName")) for group in answer.get("logGroups") or []]
    if not names:
        return "no group of that name or prefix"
    shown = ", ".join(names[:MAX_NAMES_SHOWN]) + (", ..." if len(names) > MAX_NAMES_SHOWN else "")
    return f"{len(names)} group(s) whose names start so ({shown}), none of that exact name"


def timeout_note(log_group: str, *, exists: bool | None, lines_read: int, unchecked_because: str = "") -> str:
    """Return what a timeout's reason adds: whether the group exists, and how many lines of the invocation
    (lines carrying its request id or correlation id, or inside its START..END) were read there.

    :param exists: what ``DescribeLogGroups`` said; ``None`` when it could not be asked (`unchecked_because`).
    """
    if exists is None:
        state = f"could not be checked ({unchecked_because})"
    else:
        state = f"{'exists' if exists else 'does not exist'} (DescribeLogGroups)"
    read = f"{lines_read} line(s) of this invocation were" if lines_read else "no line of this invocation was"
    return f"; log group {log_group} {state}, and {read} read there"
