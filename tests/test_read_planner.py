"""The poller's rules (cadence, backoff, lookback, sweeps, patterns or window) driven with made-up times."""

from __future__ import annotations

import pytest

from airflow_lambda_deferrable.cloudwatch.read_planner import (
    DELAY_MEMORY_READS,
    INGESTION_HORIZON_MARGIN_MS,
    LOOKBACK_MARGIN_MS,
    MIN_CYCLE_SECONDS,
    MIN_LOOKBACK_MS,
    MIN_READS_BETWEEN_SWEEPS,
    FullRead,
    Reach,
    ReadPlanner,
    Step,
)
from airflow_lambda_deferrable.tuning import MAX_BACKOFF_SECONDS

T0 = 1_800_000_000.0
ALLOWANCE_MS = 120_000


def planner_after_full_read_at(when: float, *, draw=lambda low, high: high) -> ReadPlanner:
    planner = ReadPlanner(draw=draw)
    planner.cycle_succeeded(Step(full=True), began=when)
    return planner


def planner_after_one_read(newest_ms: int, *, sweep: bool) -> ReadPlanner:
    """A planner whose first full read, at T0, saw events ingested at once up to `newest_ms`."""
    planner = ReadPlanner()
    planner.note_delays([0])
    planner.full_read_done(FullRead(0, sweep=sweep), began=T0, ended=T0, newest_ms=newest_ms)
    return planner


def reach(start_ms: int, *, new: bool = False) -> Reach:
    return Reach(start_ms=start_ms, ingestion_allowance_ms=ALLOWANCE_MS, new=new)


def test_the_first_full_read_is_due_at_once():
    assert ReadPlanner().next_step(T0, interval=5.0, stretches_asked=False) == Step(full=True)


def test_without_a_wish_full_reads_keep_the_interval():
    planner = planner_after_full_read_at(T0)
    assert planner.next_step(T0 + 1.0, interval=5.0, stretches_asked=False) == Step(sleep_until=T0 + 5.0)
    assert planner.next_step(T0 + 5.0, interval=5.0, stretches_asked=False) == Step(full=True)


def test_a_wish_brings_the_next_full_read_forward_but_not_closer_than_half_an_interval():
    planner = planner_after_full_read_at(T0)
    assert planner.want_read_at(T0 + 0.5)  # a settle window ends half a second after the read
    assert planner.next_full_read_at(4.0) == T0 + 2.0
    planner.want_read_at(T0 + 3.0)
    assert not planner.want_read_at(T0 + 3.5)  # not the earliest: nothing to wake for
    assert planner.next_step(T0 + 2.0, interval=4.0, stretches_asked=False) == Step(full=True)
    planner.plan_full_read(T0 + 2.0, [reach(0)], interval=4.0)  # serves the wish for T0 + 0.5
    planner.cycle_succeeded(Step(full=True), began=T0 + 2.0)
    assert planner.next_full_read_at(4.0) == T0 + 4.0  # the wish for T0 + 3.0, at least 2 s after T0 + 2.0


def test_stretches_asked_for_are_read_between_full_reads_half_an_interval_after_the_last_cycle():
    planner = planner_after_full_read_at(T0)
    # Asked for a second after the full read: read together with those asked for by T0 + 2.5.
    assert planner.next_step(T0 + 1.0, interval=5.0, stretches_asked=True) == Step(sleep_until=T0 + 2.5)
    assert planner.next_step(T0 + 2.5, interval=5.0, stretches_asked=True) == Step()
    planner.cycle_succeeded(Step(), began=T0 + 2.5)
    assert planner.next_step(T0 + 3.0, interval=5.0, stretches_asked=True) == Step(sleep_until=T0 + 5.0)
    assert planner.next_step(T0 + 5.0, interval=5.0, stretches_asked=True) == Step(full=True)


def test_after_a_failed_cycle_nothing_is_read_until_the_backoff_has_passed():
    planner = planner_after_full_read_at(T0)
    hold = planner.cycle_failed(T0 + 1.0, interval=2.0)
    assert hold == T0 + 1.0 + 4.0  # the ceiling after one failure: twice the interval
    assert planner.next_step(T0 + 3.0, interval=2.0, stretches_asked=True) == Step(sleep_until=hold)
    assert planner.next_step(hold, interval=2.0, stretches_asked=False) == Step(full=True)


def test_the_backoff_grows_is_capped_and_never_a_busy_loop():
    longest = planner_after_full_read_at(T0)
    holds = [longest.cycle_failed(T0, interval=2.0) - T0 for _ in range(5000)]
    assert holds[:4] == [4.0, 8.0, 16.0, 32.0]
    assert set(holds[5:]) == {MAX_BACKOFF_SECONDS}
    shortest = ReadPlanner(draw=lambda low, high: low)
    assert shortest.cycle_failed(T0, interval=2.0) == T0 + MIN_CYCLE_SECONDS
    # Its moment long past, a wish does not end the backoff.
    shortest.want_read_at(T0 - 100)
    assert shortest.next_step(T0, interval=2.0, stretches_asked=False) == Step(sleep_until=T0 + MIN_CYCLE_SECONDS)


def test_a_success_ends_the_backoff_series():
    planner = planner_after_full_read_at(T0)
    planner.cycle_failed(T0, interval=2.0)
    planner.cycle_failed(T0, interval=2.0)
    planner.cycle_succeeded(Step(), began=T0 + 10)
    assert planner.cycle_failed(T0 + 10, interval=2.0) == T0 + 10 + 4.0


def test_the_first_read_starts_at_the_earliest_subscriber():
    planner = ReadPlanner()
    assert planner.plan_full_read(T0, [reach(5_000), reach(3_000)], interval=5.0) == FullRead(3_000, sweep=True)


def test_full_reads_reach_back_from_the_last_whole_read_and_sweep_every_six_intervals():
    planner = ReadPlanner()
    newest = int(T0 * 1000)
    subscriber = [reach(newest - 600_000)]
    first = planner.plan_full_read(T0, subscriber, interval=1.0)
    assert first.start_ms == newest - 600_000  # nothing read yet: from the subscriber's start
    planner.note_delays([300, 800])
    planner.full_read_done(first, began=T0, ended=T0 + 0.2, newest_ms=newest)
    starts = []
    for second in range(1, 13):
        plan = planner.plan_full_read(T0 + second, subscriber, interval=1.0)
        # A read that takes long does not make the next one reach further back.
        planner.full_read_done(plan, began=T0 + second, ended=T0 + second + 0.9, newest_ms=newest + second * 1000)
        starts.append(plan.start_ms)
    previous_read = [newest + (second - 1) * 1000 for second in range(1, 13)]
    expected = [began - MIN_LOOKBACK_MS for began in previous_read]
    expected[5] = newest + 5_000 - ALLOWANCE_MS  # sweeps: from the newest event, the whole allowance
    expected[11] = newest + 11_000 - ALLOWANCE_MS
    assert starts == expected


def test_a_failed_read_does_not_move_the_window_on():
    planner = ReadPlanner()
    planner.note_delays([0])
    planner.full_read_done(FullRead(0, sweep=True), began=T0, ended=T0 + 1, newest_ms=int(T0 * 1000))
    planner.plan_full_read(T0 + 1, [reach(0)], interval=5.0)  # this read fails: no full_read_done
    assert planner.plan_full_read(T0 + 2, [reach(0)], interval=5.0).start_ms == int(T0 * 1000) - MIN_LOOKBACK_MS


def test_a_late_line_widens_the_lookback_up_to_the_allowance():
    planner = ReadPlanner()
    assert planner.recent_lookback_ms(ALLOWANCE_MS) == ALLOWANCE_MS  # nothing seen yet: all of it
    planner.note_delays([500])
    assert planner.recent_lookback_ms(ALLOWANCE_MS) == MIN_LOOKBACK_MS
    planner.note_delays([40_000])
    assert planner.recent_lookback_ms(ALLOWANCE_MS) == 40_000 + LOOKBACK_MARGIN_MS
    planner.note_delays([200_000])
    assert planner.recent_lookback_ms(ALLOWANCE_MS) == ALLOWANCE_MS


def test_newcomers_within_the_allowance_are_read_from_their_start_older_ones_caught_up_by_id():
    newest = int(T0 * 1000)
    planner = planner_after_one_read(newest, sweep=True)
    old = reach(newest - 300_000)
    recent_newcomer = reach(newest - 60_000, new=True)
    restarted = reach(newest - 600_000, new=True)
    plan = planner.plan_full_read(T0 + 1, [old, recent_newcomer, restarted], interval=5.0)
    assert plan.start_ms == newest - 60_000
    assert planner.needs_catch_up(restarted, plan.start_ms) and planner.needs_catch_up(old, plan.start_ms)
    assert not planner.needs_catch_up(recent_newcomer, plan.start_ms)


@pytest.mark.parametrize(
    ("events", "pattern_groups", "unfiltered"),
    [
        (None, 1, False),  # nothing measured: one pattern call is the cheapest guess
        (None, 2, True),
        (5_000, 1, True),  # one page of window
        (25_000, 2, False),  # three pages of window against two pattern calls
        (15_000, 3, False),  # two pages of window: read filtered though three patterns cost more calls
        (25_000, 3, False),
    ],
)
def test_patterns_or_window_whichever_costs_fewer_calls_and_the_window_only_while_it_fits_one_page(
    events, pattern_groups, unfiltered
):
    planner = ReadPlanner()
    if events is not None:
        planner.note_window_rate(events, start_ms=0, end_ms=10_000)
    assert planner.read_unfiltered(start_ms=0, now_ms=10_000, pattern_groups=pattern_groups) is unfiltered


def test_a_window_read_stopped_after_its_first_page_is_read_filtered_next():
    planner = ReadPlanner()
    planner.note_window_needs_more_pages(1, start_ms=0, end_ms=10_000)
    assert not planner.read_unfiltered(start_ms=0, now_ms=10_000, pattern_groups=5)
    # A sweep's window of two minutes stopped: the usual ten seconds are not read unfiltered either.
    planner.note_window_needs_more_pages(1, start_ms=0, end_ms=120_000)
    assert not planner.read_unfiltered(start_ms=110_000, now_ms=120_000, pattern_groups=5)
    planner.note_window_rate(3_000, start_ms=0, end_ms=10_000)  # a whole read of one page: unfiltered again
    assert planner.read_unfiltered(start_ms=0, now_ms=10_000, pattern_groups=2)


def test_only_a_whole_read_moves_the_window_on():
    planner = ReadPlanner()
    planner.full_read_done(FullRead(0, sweep=False), began=T0, ended=T0 + 1.5, newest_ms=0)
    assert planner.newest_ms is None and planner.last_read_ms == 1500
    planner.full_read_done(FullRead(0, sweep=False), began=T0, ended=T0, newest_ms=5_000)
    planner.full_read_done(FullRead(0, sweep=False), began=T0, ended=T0, newest_ms=4_000)
    assert planner.newest_ms == 5_000


def test_when_reads_take_longer_than_the_sweep_period_not_every_read_is_a_sweep():
    planner = ReadPlanner()
    planner.note_delays([0])
    sweeps = []
    for number in range(9):
        began = T0 + number * 45.0  # each read takes 45 s, longer than six 5 s intervals
        plan = planner.plan_full_read(began, [reach(0)], interval=5.0)
        planner.full_read_done(plan, began=began, ended=began + 45.0, newest_ms=int(began * 1000))
        sweeps.append(plan.sweep)
    assert sweeps == [True, False, False, False, True, False, False, False, True]  # one in four reads


def test_a_late_batch_widens_the_lookback_for_a_few_reads_then_it_shrinks_back():
    planner = ReadPlanner()
    planner.note_delays([500])
    planner.full_read_done(FullRead(0, sweep=False), began=T0, ended=T0, newest_ms=0)
    planner.note_delays([20_000, 800])  # one batch 20 s late
    lookbacks = []
    for number in range(1, DELAY_MEMORY_READS + 3):
        lookbacks.append(planner.recent_lookback_ms(ALLOWANCE_MS))
        planner.full_read_done(FullRead(0, sweep=False), began=T0 + number, ended=T0 + number, newest_ms=0)
        planner.note_delays([700])
    wide = 20_000 + LOOKBACK_MARGIN_MS
    # While under way and for the DELAY_MEMORY_READS whole reads after the one that saw it, then no more.
    assert lookbacks == [wide] * (DELAY_MEMORY_READS + 1) + [MIN_LOOKBACK_MS]
    assert planner.longest_delay_ms == 700


def test_an_idle_spell_keeps_the_lookback_short_rather_than_the_whole_allowance():
    planner = ReadPlanner()
    planner.note_delays([300])
    for number in range(DELAY_MEMORY_READS + 2):  # reads that bring nothing
        planner.full_read_done(FullRead(0, sweep=False), began=T0 + number, ended=T0 + number, newest_ms=0)
    assert planner.recent_lookback_ms(ALLOWANCE_MS) == MIN_LOOKBACK_MS


def test_when_streams_are_followed_a_sweep_is_a_search_by_id_and_the_window_starts_as_usual():
    newest = int(T0 * 1000)
    planner = planner_after_one_read(newest, sweep=False)
    planner.reads_since_sweep = MIN_READS_BETWEEN_SWEEPS
    following = planner.plan_full_read(T0 + 60, [reach(newest - 100_000)], interval=5.0, following=True)
    not_following = planner.plan_full_read(T0 + 60, [reach(newest - 100_000)], interval=5.0)
    assert following == FullRead(newest - MIN_LOOKBACK_MS, sweep=True, by_search=True)
    # Each subscriber is searched as far back as a sweep reaches for it: its allowance, not before its start.
    assert planner.sweep_start_ms(reach(newest - 100_000)) == newest - 100_000
    assert planner.sweep_start_ms(reach(newest - 600_000)) == newest - ALLOWANCE_MS
    assert (
        not not_following.by_search
        and not_following.sweep
        and not_following.start_ms == max(newest - 100_000, newest - ALLOWANCE_MS)
    )


def test_after_long_reads_a_late_batch_stops_widening_the_lookback_once_it_is_a_minute_old():
    planner = ReadPlanner()
    planner.note_delays([20_000])
    planner.full_read_done(FullRead(0, sweep=False), began=T0, ended=T0 + 40, newest_ms=0)
    planner.note_delays([900])
    planner.full_read_done(FullRead(0, sweep=False), began=T0 + 40, ended=T0 + 80, newest_ms=0)
    assert planner.recent_lookback_ms(ALLOWANCE_MS) == 20_000 + LOOKBACK_MARGIN_MS  # 40 s old: still counts
    planner.note_delays([800])
    planner.full_read_done(FullRead(0, sweep=False), began=T0 + 80, ended=T0 + 120, newest_ms=0)
    assert planner.recent_lookback_ms(ALLOWANCE_MS) == MIN_LOOKBACK_MS  # 80 s old: two reads, yet forgotten


def test_a_delay_is_news_only_if_the_last_whole_read_could_not_have_brought_its_event():
    planner = ReadPlanner()
    assert planner.is_news(timestamp_ms=0, ingested_ms=0)  # before any read, everything is
    began_ms, start_ms = int(T0 * 1000), int(T0 * 1000) - 30_000
    planner.full_read_done(FullRead(start_ms, sweep=False), began=T0, ended=T0 + 5, newest_ms=began_ms)
    # Read again by an overlapping window: stamped inside the last read, ingested before it began.
    assert not planner.is_news(timestamp_ms=start_ms + 1_000, ingested_ms=began_ms - INGESTION_HORIZON_MARGIN_MS - 1)
    # Ingested as the last read began (the clocks may differ), or after: that read may have missed it.
    assert planner.is_news(timestamp_ms=start_ms + 1_000, ingested_ms=began_ms - INGESTION_HORIZON_MARGIN_MS)
    assert planner.is_news(timestamp_ms=start_ms + 1_000, ingested_ms=began_ms + 10_000)
    # Stamped before where the last read started: it did not reach it, however early it was ingested.
    assert planner.is_news(timestamp_ms=start_ms - 1, ingested_ms=start_ms)


def test_the_next_window_reaches_back_from_where_the_last_window_read_began_not_the_searches_before_it():
    planner = ReadPlanner()
    planner.note_delays([0])
    planner.full_read_done(FullRead(0, sweep=True), began=T0, ended=T0 + 6, newest_ms=0, window_began=T0 + 4)
    assert planner.read_through_ms == int((T0 + 4) * 1000)
    assert planner.plan_full_read(T0 + 10, [reach(0)], interval=5.0).start_ms == int((T0 + 4) * 1000) - MIN_LOOKBACK_MS


def test_beyond_the_usual_lookback_a_read_brings_request_lines_only_but_a_sweep_of_the_allowance_reads_it_whole():
    planner = ReadPlanner()
    planner.note_delays([40_000])
    planner.full_read_done(FullRead(0, sweep=True), began=T0, ended=T0 + 1, newest_ms=int(T0 * 1000))
    read = planner.plan_full_read(T0 + 5, [reach(0)], interval=5.0)
    assert read.start_ms == int(T0 * 1000) - 40_000 - LOOKBACK_MARGIN_MS
    assert read.unfiltered_from_ms == read.whole_from_ms == int(T0 * 1000) - MIN_LOOKBACK_MS
    planner.reads_since_sweep = MIN_READS_BETWEEN_SWEEPS
    sweep = planner.plan_full_read(T0 + 60, [reach(0)], interval=5.0)  # no stream followed: not a search
    assert sweep.sweep and not sweep.by_search
    assert sweep.unfiltered_from_ms is None and sweep.whole_from_ms == sweep.start_ms
