"""When the poller of one log group reads, and how far back: its rules as plain code, the time passed in.

Pure: no I/O, no clock of its own. `LogGroupPoller` (the async shell in `shared_poller`) asks `next_step`
what to do now, `plan_full_read` where a full read starts, `read_unfiltered` how to make it, and tells
the planner what happened (`full_read_done`, `cycle_succeeded`, `cycle_failed`). Times are seconds of the
poller's monotonic clock (`clock.monotonic`: a step of the wall clock neither stalls nor hurries the reads),
timestamps CloudWatch's epoch milliseconds, so tests drive every rule with made-up times and no sleeping.

* **Cadence.** A full read starts an interval after the last one began, or sooner when a subscriber asked
  (`want_read_at`: its settle window or deadline ends), but never sooner than `MIN_READ_GAP_SHARE` of an
  interval after the last: with many settle windows ending, reads stay spaced. Between full reads, stream
  stretches asked for are read on their own, but not sooner than `LIGHT_READ_GAP_SHARE` of an interval
  after the last cycle began: requests ending one after another share calls. After a failed cycle,
  nothing is read until a jittered, exponentially growing, capped backoff has passed.
* **Lookback.** Everything ingested before the window of the last whole full read began to be read (after
  its searches and reads of streams left behind) has been read; a line ingested
  since carries a timestamp at most the longest ingestion delay seen recently (in this read and the
  last `DELAY_MEMORY_READS` begun within `DELAY_MEMORY_SECONDS`: one late batch widens the lookback for a
  while, not for ever, and long reads do not make that while longer). So a full
  read starts there, by that delay plus `LOOKBACK_MARGIN_MS` (at least `MIN_LOOKBACK_MS`) before that
  window began, however long that read took: a slow read does not make the next one longer. Once every
  `SWEEP_EVERY_INTERVALS` intervals (and `MIN_READS_BETWEEN_SWEEPS` reads) it reaches back the whole
  ingestion allowance from the newest event, so a line later than any before is still found (and widens
  the lookback). When the poller follows streams (`routing.StreamFollowing`: their late lines are read
  from where each stream is complete), the delays of followed streams do not count, and a sweep is a
  search for the ids of the subscribers that follow no stream instead (`FullRead.by_search`): reading
  the whole allowance of a busy group unfiltered would cost dozens of pages.
  Only the usual lookback (`MIN_LOOKBACK_MS`) is read whole: further back, a read brings only the lines
  that open or close a request (`FullRead.unfiltered_from_ms`), which is all a stream nobody follows yet
  needs (the poller then reads that stream on its own), while a followed stream's late lines are read
  from where it is complete.
  Subscribers new to the poller are covered from their start when the allowance reaches it; older ones
  (a restarted trigger) are caught up by a search for their ids. A delay counts once, when its event is
  first read (`is_news`), not each time the overlapping windows bring it again.
* **Patterns or window.** A read of the whole window costs its pages; OR-patterns of the ids cost one
  read per pattern group. The window's event rate, measured on each unfiltered read, picks the cheaper,
  and the window is read whole only while it fits in `MAX_WINDOW_PAGES`: each line comes again with every
  read whose window still holds it, with its stream's name and an event id, while a filtered read brings
  a line without ids once, with its request's stretch (at volume, unfiltered reads of two pages were a
  tenth of the bytes downloaded).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from airflow_lambda_deferrable.limits import EVENTS_PER_PAGE
from airflow_lambda_deferrable.runtime.backoff import backoff_ceiling
from airflow_lambda_deferrable.tuning import (
    DELAY_MEMORY_READS,
    DELAY_MEMORY_SECONDS,
    INGESTION_HORIZON_MARGIN_MS,
    LIGHT_READ_GAP_SHARE,
    LOOKBACK_MARGIN_MS,
    MAX_WINDOW_PAGES,
    MIN_CYCLE_SECONDS,
    MIN_LOOKBACK_MS,
    MIN_READ_GAP_SHARE,
    MIN_READS_BETWEEN_SWEEPS,
    SWEEP_EVERY_INTERVALS,
)


@dataclass(frozen=True)
class Reach:
    """What the planner needs of one subscriber: where its invocation starts, how late its lines may be
    ingested, and whether it is new to the poller (no full read has served it yet)."""

    start_ms: int
    ingestion_allowance_ms: int
    new: bool


@dataclass(frozen=True)
class Step:
    """What the poller does now: a full read, stream stretches only, or sleep until `sleep_until` (or until
    something wakes it)."""

    full: bool = False
    sleep_until: float | None = None


@dataclass(frozen=True)
class FullRead:
    """Where a full read starts (ms), whether it is a sweep of the whole allowance, and whether that sweep
    is a search by id for the subscribers that follow no stream (the window then starts as usual; each
    subscriber is searched from `ReadPlanner.sweep_start_ms`).

    `unfiltered_from_ms`: read without a pattern from there only; before it (late batches beyond the
    usual delays) only the lines that open or close a request are read (`None`: all of it unfiltered)."""

    start_ms: int
    sweep: bool
    by_search: bool = False
    unfiltered_from_ms: int | None = None

    @property
    def whole_from_ms(self) -> int:
        """Where the read brings every line (what a search by id need not reach)."""
        return self.unfiltered_from_ms or self.start_ms


class ReadPlanner:
    """The cadence, lookback and backoff of one log group's reads."""

    def __init__(self, *, draw: Callable[[float, float], float] = random.uniform) -> None:
        """:param draw: picks a backoff in a range (``random.uniform``; tests pass a fixed rule)."""
        self._draw = draw
        self.newest_ms: int | None = None
        # When the last whole full read began (ms): what was ingested before then has been read, from where
        # that read started (`read_from_ms`).
        self.read_through_ms: int | None = None
        self.read_from_ms: int | None = None
        self._delay_this_read: int | None = None
        self._delays_of_reads: deque[tuple[float, int | None]] = deque(maxlen=DELAY_MEMORY_READS)  # (began, delay)
        self._any_delay_seen = False  # before any, the lookback is the whole allowance
        self.last_read_ms = 0  # how long the last whole full read took
        self.events_per_ms: float | None = None
        self.last_full_at = -math.inf
        self.last_cycle_at = -math.inf
        self.last_sweep_at = -math.inf
        self.reads_since_sweep = MIN_READS_BETWEEN_SWEEPS  # the first read may be one
        self.failures = 0
        self.hold_until = -math.inf
        self._wanted: list[float] = []  # when subscribers want full reads to start, earliest first

    def want_read_at(self, when: float) -> bool:
        """Note a subscriber's wish for a full read at `when`; return whether it is now the earliest one."""
        heapq.heappush(self._wanted, when)
        return self._wanted[0] == when

    def next_full_read_at(self, interval: float) -> float:
        """When the next full read is due (ignoring a backoff)."""
        due = self.last_full_at + interval
        if self._wanted:
            due = min(due, self._wanted[0])
        return max(due, self.last_full_at + interval * MIN_READ_GAP_SHARE)

    def next_step(self, now: float, *, interval: float, stretches_asked: bool) -> Step:
        """Decide what to do at `now`: a full read when one is due and no backoff holds, stream stretches
        when some are asked for, no backoff holds and the last cycle began `LIGHT_READ_GAP_SHARE` of an
        interval ago, else sleep until the next full read (or until those stretches may be read)."""
        next_full = max(self.next_full_read_at(interval), self.hold_until)
        if now >= next_full:
            return Step(full=True)
        if now < self.hold_until or not stretches_asked:
            return Step(sleep_until=next_full)
        light_at = self.last_cycle_at + interval * LIGHT_READ_GAP_SHARE
        if now < light_at:
            return Step(sleep_until=min(next_full, light_at))
        return Step()

    def plan_full_read(
        self, now: float, reaches: Sequence[Reach], *, interval: float, following: bool = False
    ) -> FullRead:
        """Start a full read at `now` for these subscribers: the wishes it serves are dropped.

        :param following: the poller follows streams, so a sweep is a search by id (`FullRead.by_search`).
        """
        while self._wanted and self._wanted[0] <= now:
            heapq.heappop(self._wanted)
        sweep = (
            now - self.last_sweep_at >= SWEEP_EVERY_INTERVALS * interval
            and self.reads_since_sweep >= MIN_READS_BETWEEN_SWEEPS
        )
        by_search = sweep and following and self.read_through_ms is not None
        start = self.window_start(reaches, sweep=sweep and not by_search)
        # A sweep that reads the whole allowance (no stream followed) reads it whole: it is what finds any line
        # later than the lookback, a durable execution's replay lines that carry only its correlation id too.
        usual = None if self.read_through_ms is None or sweep else self.read_through_ms - MIN_LOOKBACK_MS
        unfiltered_from = usual if usual is not None and usual > start else None
        return FullRead(start_ms=start, sweep=sweep, by_search=by_search, unfiltered_from_ms=unfiltered_from)

    def sweep_start_ms(self, reach: Reach) -> int:
        """Where a sweep reaches back for one subscriber: its whole allowance before the newest event, never
        before its start."""
        newest = self.newest_ms or self.read_through_ms or reach.start_ms
        return max(reach.start_ms, newest - reach.ingestion_allowance_ms)

    def window_start(self, reaches: Sequence[Reach], *, sweep: bool) -> int:
        """Back from the last whole read's start by the recent lookback (on a sweep, from the newest event by
        the allowance), and back to the start of newcomers the allowance reaches (older ones are caught up
        by id), never before anyone's start."""
        earliest = min(reach.start_ms for reach in reaches)
        if self.read_through_ms is None:
            return earliest
        allowance_ms = max(reach.ingestion_allowance_ms for reach in reaches)
        if sweep:
            start = (self.newest_ms or self.read_through_ms) - allowance_ms
        else:
            start = self.read_through_ms - self.recent_lookback_ms(allowance_ms)
        newcomers = [
            reach.start_ms
            for reach in reaches
            if reach.new and reach.start_ms >= (self.newest_ms or self.read_through_ms) - allowance_ms
        ]
        return max(earliest, min([start, *newcomers]))

    def recent_lookback_ms(self, allowance_ms: int) -> int:
        """How long before the last whole read began a line ingested since may be stamped, judging by the
        ingestion delays seen so far."""
        if self.longest_delay_ms is None:
            return allowance_ms
        return int(min(allowance_ms, max(MIN_LOOKBACK_MS, self.longest_delay_ms + LOOKBACK_MARGIN_MS)))

    def needs_catch_up(self, reach: Reach, window_start_ms: int) -> bool:
        """Whether a subscriber's new ids must be searched from its start: the window does not reach it."""
        return reach.start_ms < window_start_ms

    def read_unfiltered(self, *, start_ms: int, now_ms: int, pattern_groups: int) -> bool:
        """Whether to read the window without a pattern: its pages (at the rate measured) cost no more
        calls than one read per pattern group, and no more than `MAX_WINDOW_PAGES`. Before any measure, only
        when there are several groups."""
        if self.events_per_ms is None:
            return pattern_groups > 1
        pages = max(1, math.ceil(self.events_per_ms * max(now_ms - start_ms, 1) / EVENTS_PER_PAGE))
        return pages <= min(pattern_groups, MAX_WINDOW_PAGES)

    def note_window_rate(self, events: int, *, start_ms: int, end_ms: int) -> None:
        """Remember how many events an unfiltered read found per millisecond of window."""
        self.events_per_ms = events / max(end_ms - start_ms, 1)

    def note_window_needs_more_pages(self, pages: int, *, start_ms: int, end_ms: int) -> None:
        """Remember that an unfiltered read of this window stopped after `pages` pages, more to come: its rate
        is at least that of one page more in the usual lookback (`MIN_LOOKBACK_MS`), or in the window if
        shorter, so that no usual window is read unfiltered again (after a sweep's long window stopped, the
        next short one would be, and stop too)."""
        self.events_per_ms = (pages + 1) * EVENTS_PER_PAGE / max(min(end_ms - start_ms, MIN_LOOKBACK_MS), 1)

    def is_news(self, timestamp_ms: int, ingested_ms: int) -> bool:
        """Whether the last whole full read could not have brought this event: it was ingested after that
        read began (less `INGESTION_HORIZON_MARGIN_MS`), or stamped before where that read started.

        Only such an event's ingestion delay says how far back the next read must reach. An event the
        windows bring again (they overlap by the lookback) counted when it was first read: counting it at
        every read kept the lookback as wide as the oldest late batch still inside it, for ever."""
        if self.read_through_ms is None or self.read_from_ms is None:
            return True
        return ingested_ms >= self.read_through_ms - INGESTION_HORIZON_MARGIN_MS or timestamp_ms < self.read_from_ms

    def note_delays(self, delays_ms: Iterable[int]) -> None:
        """Remember the longest ingestion delay (``ingestionTime - timestamp``) seen in this read."""
        for delay in delays_ms:
            self._delay_this_read = max(self._delay_this_read or 0, delay)
            self._any_delay_seen = True

    @property
    def longest_delay_ms(self) -> int | None:
        """The longest ingestion delay seen in the read under way and the last `DELAY_MEMORY_READS` whole
        reads that began within `DELAY_MEMORY_SECONDS` of the last."""
        if not self._any_delay_seen:
            return None
        latest = self._delays_of_reads[-1][0] if self._delays_of_reads else 0.0
        recent = [delay for began, delay in self._delays_of_reads if began >= latest - DELAY_MEMORY_SECONDS]
        return max(delay or 0 for delay in (self._delay_this_read, *recent))

    def full_read_done(
        self,
        plan: FullRead,
        *,
        began: float,
        ended: float,
        newest_ms: int,
        window_began: float | None = None,
        read_through_ms: int | None = None,
    ) -> None:
        """A full read (catch-ups and window) completed: the window moves on from the newest event routed.

        :param window_began: when its read of the window began (after the searches and the reads of streams
            left behind): what was ingested before then has been read. Default: when the full read began.
        :param read_through_ms: that moment in CloudWatch's time (epoch ms), which the poller takes from the
            wall clock (`clock.ForwardWall`) while it paces by the monotonic one. Default: `window_began` (or
            `began`) read as epoch seconds."""
        self.newest_ms = max(newest_ms, self.newest_ms or 0) or None
        if read_through_ms is None:
            read_through_ms = int((began if window_began is None else window_began) * 1000)
        self.read_through_ms = read_through_ms
        # From the plan's start even when only request lines were read before `unfiltered_from_ms`: the other
        # lines there are never read by the group again (the next unfiltered window starts later), so whether
        # their delays would be news does not arise.
        self.read_from_ms = plan.start_ms
        self._delays_of_reads.append((began, self._delay_this_read))
        self._delay_this_read = None
        self.last_read_ms = int((ended - began) * 1000)
        self.reads_since_sweep += 1
        if plan.sweep:
            self.last_sweep_at = began
            self.reads_since_sweep = 0

    def cycle_succeeded(self, step: Step, *, began: float) -> None:
        if step.full:
            self.last_full_at = began
        self.last_cycle_at = began
        self.failures = 0

    def cycle_failed(self, now: float, *, interval: float) -> float:
        """Back off after a failed cycle; return until when nothing is read."""
        self.failures += 1
        self.hold_until = now + self._draw(MIN_CYCLE_SECONDS, backoff_ceiling(self.failures, interval))
        return self.hold_until
