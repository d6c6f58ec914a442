"""Teach moto's CloudWatch Logs the OR filter patterns the trigger uses (``?"a" ?"b"``).

moto 5.2.5 ignores such patterns and returns every event of the group, so each per-trigger poll would
page through the whole group: far more calls and CPU than CloudWatch costs, which would flatter the
shared poller. CloudWatch returns the events that contain any of the quoted terms; so does this. Other
patterns keep moto's behaviour. Matchers are cached per pattern, since moto builds one per event.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import moto.logs.models
from moto.logs.utils import EventMessageFilter

_OR_TERMS = re.compile(r'^\s*(?:\?"[^"]*"\s*)+$')
_TERM = re.compile(r'\?"([^"]*)"')


@functools.lru_cache(maxsize=4096)
def matcher(pattern: str) -> Callable[[str], bool]:
    """Return the test CloudWatch applies for `pattern`."""
    if pattern and _OR_TERMS.match(pattern):
        terms = tuple(_TERM.findall(pattern))
        return lambda message: any(term in message for term in terms)
    return EventMessageFilter(pattern).matches


class OrAwareFilter:
    """Drop-in for moto's ``EventMessageFilter``."""

    def __init__(self, pattern: str) -> None:
        self.matches = matcher(pattern or "")


def install() -> None:
    """Make moto's log groups, in this process, use `OrAwareFilter`."""
    moto.logs.models.EventMessageFilter = OrAwareFilter  # type: ignore[misc,assignment]
