"""The claims of reads on the seconds of one stream (`ClaimedSeconds`), in 16 B per second and kind. Pure: no
I/O.

A claim says that every event of a second (or every one that carries an id) ingested before a horizon has been
given to the subscriber (`delivered`). It must outlive the keys it lets go: an event of that second that a
read brings again is known by it alone. So it is kept as two sorted arrays of machine integers rather than
as an object per second, which cost about 530 B.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator

NEVER = -(2**63)  # the horizon of no claim
LATEST = 2**63 - 1  # the largest value an entry can hold


class ClaimedSeconds:
    """One kind of claim on one stream: per second (slice of timestamp), the latest horizon claimed."""

    __slots__ = ("_seconds", "_horizons")

    def __init__(self) -> None:
        self._seconds = array("q")  # ascending
        self._horizons = array("q")

    def __len__(self) -> int:
        return len(self._seconds)

    def __iter__(self) -> Iterator[int]:
        """The seconds claimed, ascending."""
        return iter(self._seconds)

    def horizon(self, second: int) -> int:
        """The latest horizon claimed for `second`, or `NEVER`."""
        at = bisect_left(self._seconds, second)
        if at < len(self._seconds) and self._seconds[at] == second:
            return self._horizons[at]
        return NEVER

    def claim(self, second: int, horizon_ms: int) -> None:
        """Claim `second` up to `horizon_ms` (a horizon only ever moves later)."""
        # Checked before either array changes: the two must stay in step.
        for name, value in (("second", second), ("horizon_ms", horizon_ms)):
            if type(value) is not int or not NEVER <= value <= LATEST:
                raise ValueError(f"ClaimedSeconds.claim: {name} {value!r} is not a 64-bit integer")
        seconds = self._seconds
        if not seconds or seconds[-1] < second:  # the usual case: reads move forward in time
            seconds.append(second)
            self._horizons.append(horizon_ms)
            return
        at = bisect_left(seconds, second)
        if seconds[at] == second:
            self._horizons[at] = max(self._horizons[at], horizon_ms)
        else:
            seconds.insert(at, second)
            self._horizons.insert(at, horizon_ms)

    def claim_held(self, first: int, last: int, horizon_ms: int) -> None:
        """Move to `horizon_ms` the horizons of the seconds from `first` to `last` that are already claimed."""
        horizons = self._horizons
        for at in range(bisect_left(self._seconds, first), bisect_right(self._seconds, last)):
            if horizons[at] < horizon_ms:
                horizons[at] = horizon_ms
