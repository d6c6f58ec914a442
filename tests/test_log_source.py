"""What every FilterLogEvents call shares: here, decoding its pages without botocore's walk of the shape."""

from __future__ import annotations

from typing import Any

from airflow_lambda_deferrable.cloudwatch.delivered import Delivered
from airflow_lambda_deferrable.cloudwatch.log_source import id_key, parse_pages_as_plain_json
from tests import lambda_lines as lines

GROUP = "/aws/lambda/plain-json-pages"


def test_pages_decoded_as_plain_json_hold_what_botocore_would_give(logs_client):
    stamp = lines.now_ms()
    lines.put(logs_client, GROUP, [lines.start("r-1"), "print ünïcode", lines.end("r-1")], at=stamp)
    lines.put(logs_client, GROUP, ["another stream"], stream="s-2", at=stamp + 1)
    request = {"logGroupName": GROUP, "startTime": stamp - 1, "limit": 2}
    walked = logs_client.filter_log_events(**request)

    parse_pages_as_plain_json(logs_client)
    bodies_seen_by_botocore: list[Any] = []  # a handler registered after ours sees what botocore will parse
    logs_client.meta.events.register(
        "before-parse.cloudwatch-logs.FilterLogEvents",
        lambda response_dict, **_: bodies_seen_by_botocore.append(response_dict["body"]),
    )
    plain = logs_client.filter_log_events(**request)

    assert bodies_seen_by_botocore == [b"{}"]  # nothing left for botocore to walk
    assert plain["events"] == walked["events"] and len(plain["events"]) == 2
    assert "nextToken" in plain and plain["ResponseMetadata"]["HTTPStatusCode"] == 200
    following = logs_client.filter_log_events(**request, nextToken=plain["nextToken"])
    assert [event["message"] for event in following["events"]] == [lines.end("r-1"), "another stream"]


def test_error_answers_are_still_parsed_by_botocore(logs_client):
    parse_pages_as_plain_json(logs_client)
    try:
        logs_client.filter_log_events(logGroupName="/aws/lambda/no-such-group")
    except logs_client.exceptions.ResourceNotFoundException as err:
        assert err.response["Error"]["Code"] == "ResourceNotFoundException"
    else:
        raise AssertionError("a missing group must raise")


def test_returned_events_are_remembered_by_a_compact_key_that_never_merges_two_ids():
    delivered = Delivered()
    cloudwatch = "0" * 20 + "3" * 36  # 56 digits, as CloudWatch's
    events = [{"eventId": one} for one in (cloudwatch, "3" * 36, "01", "1", "moto-7", cloudwatch, "1")]
    assert [event["eventId"] for event in delivered.only_new(events)] == [cloudwatch, "3" * 36, "01", "1", "moto-7"]
    assert delivered.only_new([{"eventId": "01"}, {"eventId": "2"}]) == [{"eventId": "2"}]
    assert isinstance(id_key(cloudwatch), int) and id_key("moto-7") == "moto-7"
