"""What every ``FilterLogEvents`` call needs to know: which errors to retry, which need a fresh client,
which terms fit in a filter pattern, and which events were already returned. Pure: no network."""

from __future__ import annotations

import json
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

# CloudWatch Logs rejects filter patterns longer than this.
MAX_FILTER_PATTERN_LENGTH = 1024

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


def needs_fresh_client(err: Exception) -> bool:
    """Whether `err` is the client's trouble (credentials, connection), to be retried with a new client."""
    if isinstance(err, ClientError):
        return error_code(err) in EXPIRED_CREDENTIALS_ERROR_CODES
    return isinstance(err, CLIENT_FAILURES)


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


def only_new(events: list[dict[str, Any]], returned: set[int | str]) -> list[dict[str, Any]]:
    """Return the events whose ``eventId`` is not in `returned`, and add their ids (`id_key`) to it."""
    new = []
    for event in events:
        key = id_key(str(event.get("eventId")))
        if key not in returned:
            returned.add(key)
            new.append(event)
    return new


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
