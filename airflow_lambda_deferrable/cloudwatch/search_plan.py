"""Searches by id: whose ids a full read searches for, from when, and in which calls. Pure: the subscribers
and the window's start in, the searches out. `WindowReads` makes them.

* A catch-up searches a subscriber's new ids from the start of its invocation, where the window will not
  reach (ids the window reaches are left to it).
* A sweep searches, as far back as a sweep reaches, for the ids of the subscribers whose lines may be in
  streams nobody follows: those that follow no stream yet (a START ingested later than the lookback) and the
  roaming ones (a durable execution's replays).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from airflow_lambda_deferrable.cloudwatch.filter_patterns import term_groups


class Searcher(Protocol):
    """What a search needs to know of a subscriber (`subscription.Subscription` is one)."""

    start_ms: int
    terms: list[str]
    catch_up: set[str]
    roaming: bool


Who = TypeVar("Who", bound=Searcher)


@dataclass(frozen=True)
class Search(Generic[Who]):
    """Search for `terms` of `who` from `from_ms` (epoch ms)."""

    who: Who
    terms: tuple[str, ...]
    from_ms: int


def catch_ups(served: Iterable[Who], window_start_ms: int) -> list[Search[Who]]:
    """The catch-ups due: subscribers with new ids whose invocation started before the window."""
    return [
        Search(who, tuple(sorted(who.catch_up)), who.start_ms)
        for who in served
        if who.catch_up and who.start_ms < window_start_ms
    ]


def sweeps(
    served: Iterable[Who],
    window_start_ms: int,
    *,
    follows_any: Callable[[Who], bool],
    sweep_start_ms: Callable[[Who], int],
) -> list[Search[Who]]:
    """The sweeps due: subscribers that started before the window and follow no stream, or roam."""
    return [
        Search(who, tuple(sorted(who.terms)), sweep_start_ms(who))
        for who in served
        if (who.roaming or not follows_any(who)) and who.start_ms < window_start_ms
    ]


def search_calls(searches: Collection[Search[Who]]) -> tuple[int, list[tuple[list[str], list[Who]]]]:
    """One read from the earliest start of `searches`, and its calls: per OR-pattern of ids (`term_groups`),
    the ids and the subscribers whose ids it holds (an error of that call is theirs)."""
    if not searches:
        return 0, []
    terms = sorted({term for search in searches for term in search.terms})
    calls = [
        (group, [search.who for search in searches if set(search.terms) & set(group)]) for group in term_groups(terms)
    ]
    return min(search.from_ms for search in searches), calls
