"""What every ``FilterLogEvents`` call needs to know: which errors to retry, which need a fresh client,
which terms fit in a filter pattern, and which events were already returned. Pure: no network."""

from __future__ import annotations

import json
from array import array
from bisect import bisect_left
from enum import Enum
from typing import Any

from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from airflow_lambda_deferrable.limits import MAX_FILTER_PATTERN_LENGTH

# Errors that mean "ask again later". Throttling also slows the shared poller's request budget down.
THROTTLING_ERROR_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
RETRYABLE_ERROR_CODES = THROTTLING_ERROR_CODES | {
    "LimitExceededException",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
    "RequestTimeout",
    "RequestTimeoutException",
}
# Answers that mean the client's credentials ran out (temporary ones expired, or a refresh failed):
# a fresh client resolves them again.
EXPIRED_CREDENTIALS_ERROR_CODES = frozenset(
    {"ExpiredTokenException", "ExpiredToken", "RequestExpired", "UnrecognizedClientException"}
)
# Failures of the client rather than of a call: credentials missing or not refreshable, no connection.
CLIENT_FAILURES = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    TokenRetrievalError,
    BotoConnectionError,
    HTTPClientError,
    OSError,
)


def error_code(err: ClientError) -> str:
    """Return the AWS error code of `err` (``Unknown`` if it has none)."""
    return str(err.response.get("Error", {}).get("Code", "Unknown"))


def is_throttling(err: Exception) -> bool:
    """Whether `err` is a throttling answer, which slows its API's budget down."""
    return isinstance(err, ClientError) and error_code(err) in THROTTLING_ERROR_CODES


def needs_fresh_client(err: Exception) -> bool:
    """Whether `err` is the client's trouble (credentials, connection), to be retried with a new client."""
    if isinstance(err, ClientError):
        return error_code(err) in EXPIRED_CREDENTIALS_ERROR_CODES
    return isinstance(err, CLIENT_FAILURES)


class Answer(Enum):
    """What the reader does with an error answer of one call (`classify`)."""

    DONE = "done"  # the group or stream is not there (yet): no events, no error
    ASK_AGAIN = "ask again"  # throttling or a transient error, with retries left: the same page again
    FAIL_CYCLE = "fail cycle"  # still failing after its retries, or the client's trouble: the cycle fails
    PATTERN_REFUSED = "pattern refused"  # a pattern the reader chose: it reads another way
    STREAM_READ_REFUSED = "stream read refused"  # GetLogEvents denied: busy streams go back to FilterLogEvents
    TO_SUBSCRIBERS = "to subscribers"  # any other answer (access denied, a bad id pattern): the subscribers' own
    RAISE = "raise"  # not an answer of AWS nor the client's trouble: a bug, raised as it is


def classify(err: Exception, *, retries_left: bool, refusable: bool, stream_read: bool) -> Answer:
    """Decide what an error of one call means for the reader. Pure, so that its rules read as one table.

    :param retries_left: the page may still be asked again.
    :param refusable: the reader chose the call's filter pattern (`PATTERN_REFUSED` instead of the subscribers').
    :param stream_read: the call was ``GetLogEvents`` (`STREAM_READ_REFUSED` instead of the subscribers').
    """
    if not isinstance(err, ClientError):
        return Answer.FAIL_CYCLE if needs_fresh_client(err) else Answer.RAISE
    code = error_code(err)
    if code == "ResourceNotFoundException":
        return Answer.DONE
    if code in RETRYABLE_ERROR_CODES:
        return Answer.ASK_AGAIN if retries_left else Answer.FAIL_CYCLE
    if needs_fresh_client(err):
        return Answer.FAIL_CYCLE
    if refusable and code == "InvalidParameterException":
        return Answer.PATTERN_REFUSED
    if stream_read and code == "AccessDeniedException":
        return Answer.STREAM_READ_REFUSED
    return Answer.TO_SUBSCRIBERS


def check_term(term: str, caller: str) -> None:
    """Refuse a term that cannot be quoted in a filter pattern (`caller` names who was asked)."""
    if '"' in term or "\\" in term or not term.strip():
        raise ValueError(f"{caller}: {term!r} cannot be used in a filter pattern")
    if len(f'?"{term}"') > MAX_FILTER_PATTERN_LENGTH:
        raise ValueError(
            f"{caller}: a term of {len(term)} characters ({term[:40]!r}...) does not fit in a filter pattern "
            f"(at most {MAX_FILTER_PATTERN_LENGTH} characters)"
        )


def id_key(event_id: str) -> int | str:
    """Return what a set of returned events holds for `event_id`: CloudWatch's ids are 56 digits, which
    as a number take half the memory of the text (a leading 1 keeps ids that differ only in leading zeros
    apart); any other id as it is."""
    return int("1" + event_id) if event_id.isdecimal() and event_id.isascii() else event_id


# `ReturnedKeys` keeps about this many keys in each of its arrays: a key is found by bisection (six steps) and
# added by moving a few hundred bytes, both in C.
KEYS_PER_BUCKET = 64
MAX_BUCKET_KEY = 2**64 - 1  # what an array of unsigned 64-bit numbers holds


class ReturnedKeys:
    """The keys (`id_key`) of the events returned to one subscriber, 8 bytes each.

    A subscriber remembers every event it was given, since overlapping reads bring the same events again (a
    window read after the last, a request's stretch after its lines with ids). In a set a key costs a Python
    int and a slot, about 60 bytes: 18 MB for one request that logs 300,000 lines. Here the keys that fit in
    64 bits (every key the poller gives, `event_keys`) are kept sorted in arrays of 8-byte numbers, by their
    low bits; any other in a set."""

    __slots__ = ("_buckets", "_mask", "_count", "_other")

    def __init__(self) -> None:
        self._buckets: list[array[int]] = [array("Q")]
        self._mask = 0
        self._count = 0
        self._other: set[int | str] | None = None  # made when a first key needs it: most sets never do

    def __len__(self) -> int:
        return self._count + len(self._other or ())

    def __contains__(self, key: object) -> bool:
        if type(key) is not int or not 0 <= key <= MAX_BUCKET_KEY:
            return self._other is not None and key in self._other
        bucket = self._buckets[key & self._mask]
        at = bisect_left(bucket, key)
        return at < len(bucket) and bucket[at] == key

    def add(self, key: int | str) -> None:
        if type(key) is not int or not 0 <= key <= MAX_BUCKET_KEY:
            if self._other is None:
                self._other = set()
            self._other.add(key)
            return
        bucket = self._buckets[key & self._mask]
        at = bisect_left(bucket, key)
        if at < len(bucket) and bucket[at] == key:
            return
        bucket.insert(at, key)
        self._count += 1
        if self._count > KEYS_PER_BUCKET * len(self._buckets):
            self._spread()

    def discard(self, key: int | str) -> None:
        if type(key) is not int or not 0 <= key <= MAX_BUCKET_KEY:
            if self._other is not None:
                self._other.discard(key)
            return
        bucket = self._buckets[key & self._mask]
        at = bisect_left(bucket, key)
        if at < len(bucket) and bucket[at] == key:
            del bucket[at]
            self._count -= 1

    def _spread(self) -> None:
        """Twice as many arrays: each splits in two by the next bit, in order."""
        bit = len(self._buckets)
        low: list[array[int]] = []
        high: list[array[int]] = []
        for bucket in self._buckets:
            low.append(array("Q", [key for key in bucket if not key & bit]))
            high.append(array("Q", [key for key in bucket if key & bit]))
        self._buckets = low + high
        self._mask = len(self._buckets) - 1


def parse_pages_as_plain_json(client: Any) -> None:
    """Have `client` decode ``FilterLogEvents`` and ``GetLogEvents`` answers with `json` alone.

    botocore walks every event of a page through the response's shape after decoding it: for a page of
    1 MB (about 7,000 events) that is about a tenth of a second of CPU, on the event loop with aiobotocore,
    for plain strings and integers that `json` already gives. Its ``before-parse`` event lets a handler
    supply the parsed fields; error answers are left to botocore.
    """
    service = client.meta.service_model.service_id.hyphenize()
    for operation in ("FilterLogEvents", "GetLogEvents"):
        client.meta.events.register(f"before-parse.{service}.{operation}", _plain_json_page)


def _plain_json_page(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    if response_dict.get("status_code") != 200:
        return
    try:
        page = json.loads(response_dict.get("body") or b"")
    except (TypeError, ValueError):
        return
    if not isinstance(page, dict) or not isinstance(page.get("events", []), list):
        return
    customized_response_dict.update(page)
    response_dict["body"] = b"{}"  # botocore then parses an empty answer and adds the response metadata
