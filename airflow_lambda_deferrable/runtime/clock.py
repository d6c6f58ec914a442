"""The two clocks, read through functions that tests replace, and the rules for a step of the wall clock.

The wall clock (`wall`, epoch seconds) is what deadlines and CloudWatch's timestamps are written in, but it
can be stepped (NTP, a resumed VM, someone's ``date``); the monotonic clock (`monotonic`) never is, but means
nothing across processes. So:

* a trigger reads the wall clock once, as it starts (`Timeline`): its deadline, settle windows and
  ``fire_after`` are compared with that reading advanced by the monotonic clock, so a step later neither
  ends it early nor extends it; a restart reads the wall clock anew;
* a poller paces its reads (cadence, backoff, pauses, request budget) by the monotonic clock alone, and reads
  the wall clock only to ask CloudWatch for windows of its time, through a `ForwardWall`.

Tests replace `wall` and `monotonic` (``monkeypatch.setattr(clock, "wall", ...)``), as Airflow's tests
replace ``timezone.utcnow``; callers look them up at each reading (``clock.wall()``). `time.time` itself
is left alone: botocore signs requests with it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from airflow_lambda_deferrable.tuning import INGESTION_HORIZON_MARGIN_MS, STEP_BACK_PACE


def wall() -> float:
    """Return the wall clock (epoch seconds)."""
    return time.time()


def monotonic() -> float:
    """Return the monotonic clock (seconds from an arbitrary start; never stepped)."""
    return time.monotonic()


def ingestion_horizon_ms(began: float | None = None) -> int:
    """Return the moment (epoch ms) before which every event CloudWatch ingested is in a read that began at
    `began` (epoch seconds; default: the wall clock now), less `INGESTION_HORIZON_MARGIN_MS`. Not a
    `ForwardWall`'s reading: the lead it keeps after a step back would count events not ingested yet as read,
    and a reader that trusts a horizon drops what comes again before it (`cloudwatch.delivered`). A page's
    answer gives CloudWatch's own (`pages.answer_horizon_ms`)."""
    return int((wall() if began is None else began) * 1000) - INGESTION_HORIZON_MARGIN_MS


@dataclass(frozen=True)
class Timeline:
    """Epoch seconds that advance with the monotonic clock: the wall clock read once, at `start`.

    A time `t` on it is reached once the monotonic clock has run ``t - (wall clock at the start)`` seconds
    past the start: a deadline becomes a monotonic one there, whatever the wall clock does after."""

    offset: float  # the wall clock less the monotonic clock, at the start

    @classmethod
    def start(cls) -> Timeline:
        return cls(offset=wall() - monotonic())

    def now(self) -> float:
        return monotonic() + self.offset

    def to_monotonic(self, when: float) -> float:
        """The monotonic reading at which this timeline says `when`."""
        return when - self.offset

    def from_monotonic(self, reading: float) -> float:
        """What this timeline said when the monotonic clock read `reading`."""
        return reading + self.offset


class ForwardWall:
    """The wall clock for the windows of CloudWatch time a poller reads: it follows a step forward, but after a
    step back it goes on from its last reading at `STEP_BACK_PACE` of the monotonic clock's pace until the wall
    clock catches up.

    CloudWatch stamps lines with AWS's clock, which our step did not move: whichever reading was wrong, the
    windows neither go back nor keep a lead for good (lines a lead skips come with the sweeps)."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None  # (reading, monotonic clock then)

    def now(self) -> float:
        """Return the wall clock, never earlier than the last reading plus `STEP_BACK_PACE` of the monotonic
        time since."""
        reading, moment = wall(), monotonic()
        if self._last is not None:
            reading = max(reading, self._last[0] + STEP_BACK_PACE * (moment - self._last[1]))
        self._last = (reading, moment)
        return reading

    def now_ms(self) -> int:
        return int(self.now() * 1000)
