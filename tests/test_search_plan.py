"""Whose ids a full read searches for, from when, in which calls (`cloudwatch.search_plan`): pure, with
made-up subscribers and times."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_lambda_deferrable.cloudwatch.search_plan import Search, catch_ups, search_calls, sweeps

WINDOW_START = 100_000


def subscriber(name: str, start_ms: int, *, new: tuple[str, ...] = (), roaming: bool = False) -> SimpleNamespace:
    return SimpleNamespace(name=name, start_ms=start_ms, terms=[f"{name}-id", *new], catch_up=set(new), roaming=roaming)


@pytest.mark.parametrize(
    ("start_ms", "new", "searched"),
    [
        (WINDOW_START - 1, ("r-1",), True),  # began before the window: only a search finds its new id there
        (WINDOW_START, ("r-1",), False),  # the window reaches its start: left to the window
        (WINDOW_START - 60_000, (), False),  # nothing new to search for
    ],
)
def test_a_catch_up_searches_new_ids_from_the_invocations_start_only_before_the_window(start_ms, new, searched):
    one = subscriber("a", start_ms, new=new)
    expected = [Search(one, new, start_ms)] if searched else []
    assert catch_ups([one], WINDOW_START) == expected


@pytest.mark.parametrize(
    ("follows", "roaming", "start_ms", "swept"),
    [
        (False, False, WINDOW_START - 1, True),  # follows no stream yet: its START may be later than the lookback
        (True, False, WINDOW_START - 1, False),  # its stream is followed: the reads bring its lines
        (True, True, WINDOW_START - 1, True),  # roaming: lines may come in streams nobody follows
        (False, True, WINDOW_START, False),  # the window reaches its start
    ],
)
def test_a_sweep_searches_the_ids_of_subscribers_whose_lines_may_be_in_streams_nobody_follows(
    follows, roaming, start_ms, swept
):
    one = subscriber("a", start_ms, roaming=roaming)
    found = sweeps([one], WINDOW_START, follows_any=lambda who: follows, sweep_start_ms=lambda who: 42_000)
    assert found == ([Search(one, ("a-id",), 42_000)] if swept else [])


def test_searches_share_one_read_from_the_earliest_start_and_each_call_names_whom_it_serves():
    a, b = subscriber("a", 0), subscriber("b", 0)
    from_ms, calls = search_calls([Search(a, ("a-id", "shared"), 5_000), Search(b, ("b-id", "shared"), 3_000)])
    assert from_ms == 3_000
    assert calls == [(["a-id", "b-id", "shared"], [a, b])]  # three short ids fit one OR-pattern


def test_ids_that_need_several_patterns_make_several_calls_each_for_its_own_subscribers():
    long_ids = [f"{n:0>300}" for n in range(6)]  # 300 characters each: three fit in a pattern of 1,024
    a, b = subscriber("a", 0), subscriber("b", 0)
    _, calls = search_calls([Search(a, tuple(long_ids[:3]), 0), Search(b, tuple(long_ids[3:]), 0)])
    assert len(calls) == 2
    assert [whom for _, whom in calls] == [[a], [b]]
    assert sorted(term for terms, _ in calls for term in terms) == sorted(long_ids)


def test_no_search_makes_no_call():
    assert search_calls([]) == (0, [])
