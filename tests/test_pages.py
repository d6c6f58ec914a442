"""The one door to CloudWatch Logs: how an error answer is classified (a pure table), and how the page reader
acts on it, with a fake client of two methods (no moto, no sleeps)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from airflow_lambda_deferrable.cloudwatch import pages
from airflow_lambda_deferrable.cloudwatch.log_source import Answer, classify
from airflow_lambda_deferrable.cloudwatch.pages import CallFailed, PageReader, PatternRefused, StreamReadRefused
from airflow_lambda_deferrable.runtime.rate_limit import RequestBudget


def answer(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} here"}}, "FilterLogEvents")


# (error, retries left, the reader chose the pattern, a GetLogEvents read) -> what the reader does
CLASSIFIED = [
    (answer("ResourceNotFoundException"), True, False, False, Answer.DONE),
    (answer("ThrottlingException"), True, False, False, Answer.ASK_AGAIN),
    (answer("ThrottlingException"), False, False, False, Answer.FAIL_CYCLE),
    (answer("ServiceUnavailableException"), True, False, True, Answer.ASK_AGAIN),
    (answer("InternalFailure"), False, True, True, Answer.FAIL_CYCLE),
    (answer("ExpiredTokenException"), True, False, False, Answer.FAIL_CYCLE),  # a fresh client, not a retry
    (answer("InvalidParameterException"), True, True, False, Answer.PATTERN_REFUSED),
    (answer("InvalidParameterException"), True, False, False, Answer.TO_SUBSCRIBERS),  # their ids' pattern
    (answer("AccessDeniedException"), True, False, True, Answer.STREAM_READ_REFUSED),
    (answer("AccessDeniedException"), True, False, False, Answer.TO_SUBSCRIBERS),
    (EndpointConnectionError(endpoint_url="http://logs"), True, False, False, Answer.FAIL_CYCLE),
    (NoCredentialsError(), True, False, False, Answer.FAIL_CYCLE),
    (TimeoutError("read timed out"), True, False, False, Answer.FAIL_CYCLE),
    (ValueError("a bug of ours"), True, False, False, Answer.RAISE),
]


@pytest.mark.parametrize(("err", "retries_left", "refusable", "stream_read", "expected"), CLASSIFIED)
def test_an_error_answer_is_classified_by_this_table(err, retries_left, refusable, stream_read, expected):
    assert classify(err, retries_left=retries_left, refusable=refusable, stream_read=stream_read) is expected


class Subscriber:
    def __init__(self) -> None:
        self.errors: list[Exception] = []

    def fail(self, err: Exception) -> None:
        self.errors.append(err)


def client_answering(*answers: Any) -> SimpleNamespace:
    """A client whose calls of either API answer `answers` in turn (an exception is raised)."""
    queue = list(answers)
    asked: list[dict[str, Any]] = []

    async def call(**request: Any) -> dict[str, Any]:
        asked.append(dict(request))
        given = queue.pop(0)
        if isinstance(given, Exception):
            raise given
        return given

    return SimpleNamespace(filter_log_events=call, get_log_events=call, asked=asked)


def event(number: int) -> dict[str, Any]:
    return {"logStreamName": "s", "timestamp": number, "message": f"line {number}", "eventId": str(number)}


@pytest.fixture
def reader(monkeypatch) -> PageReader:
    monkeypatch.setattr(pages, "page_retry_pause", lambda retries: 0.0)
    return PageReader("/aws/lambda/f", RequestBudget(100.0), RequestBudget(100.0))


async def read_all(reader: PageReader, client: Any, concerned=(), **kwargs: Any) -> list[pages.Page]:
    return [page async for page in reader.read(client, concerned, "window", startTime=0, **kwargs)]


@pytest.mark.asyncio
async def test_a_throttled_page_is_asked_again_and_its_budget_counts_every_throttling(reader):
    client = client_answering(
        answer("ThrottlingException"),
        {"events": [event(1)], "nextToken": "t1"},
        answer("ThrottlingException"),
        {"events": [event(2)]},
    )
    read = await read_all(reader, client)
    assert [[one["message"] for one in page] for page in read] == [["line 1"], ["line 2"]]
    assert [page.more for page in read] == [True, False]
    assert [request.get("nextToken") for request in client.asked] == [None, None, "t1", "t1"]
    assert reader.budget.throttled_calls == 2 and reader.stream_budget.throttled_calls == 0
    assert reader.budget.calls_by_kind["window"] == reader.calls == 4


@pytest.mark.asyncio
async def test_a_page_still_throttled_after_its_retries_fails_the_cycle_naming_its_api(reader):
    client = client_answering(*[answer("ThrottlingException")] * 3)
    with pytest.raises(CallFailed, match="^GetLogEvents failed: ClientError") as failed:
        await read_all(reader, client, stream="s", max_retries=2)
    assert failed.value.api == "GetLogEvents" and reader.stream_budget.throttled_calls == 3
    assert reader.budget.throttled_calls == 0


@pytest.mark.asyncio
async def test_an_error_of_the_subscribers_goes_to_them_alone_and_the_pages_stop(reader):
    concerned = [Subscriber(), Subscriber()]
    denied = answer("AccessDeniedException")
    assert await read_all(reader, client_answering(denied), concerned) == []
    assert [subscriber.errors for subscriber in concerned] == [[denied], [denied]]


@pytest.mark.asyncio
async def test_refusals_the_reader_handles_are_raised(reader):
    with pytest.raises(PatternRefused):
        await read_all(reader, client_answering(answer("InvalidParameterException")), refusable=True)
    with pytest.raises(StreamReadRefused):
        await read_all(reader, client_answering(answer("AccessDeniedException")), stream="s")


@pytest.mark.asyncio
async def test_a_missing_group_is_no_events_and_no_error(reader):
    concerned = [Subscriber()]
    assert await read_all(reader, client_answering(answer("ResourceNotFoundException")), concerned) == []
    assert concerned[0].errors == []


@pytest.mark.asyncio
async def test_a_stream_read_ends_only_at_the_token_it_was_given_back(reader):
    client = client_answering(
        {"events": [], "nextForwardToken": "f1"},  # an empty page is not the end
        {"events": [event(1)], "nextForwardToken": "f2"},
        {"events": [], "nextForwardToken": "f2"},  # the same token: the end of the stream
    )
    read = await read_all(reader, client, stream="s")
    assert [page.more for page in read] == [True, True, False]
    assert client.asked[0]["logStreamName"] == "s" and client.asked[0]["startFromHead"] is True
    assert [one["message"] for page in read for one in page] == ["line 1"]


@pytest.mark.asyncio
async def test_a_bug_is_raised_as_it_is(reader):
    with pytest.raises(ValueError, match="a bug of ours"):
        await read_all(reader, client_answering(ValueError("a bug of ours")))


@pytest.mark.asyncio
async def test_a_call_of_no_known_kind_is_refused_before_any_request(reader):
    client = client_answering({"events": [event(1)]})
    with pytest.raises(ValueError, match=r"PageReader.read: unknown kind of call 'windw'"):
        _ = [page async for page in reader.read(client, (), "windw", startTime=0)]
    assert client.asked == [] and reader.calls == 0
