"""Decide how one Lambda invocation ended, from its log lines. Pure: no network, no Airflow.

Read top to bottom:

1. `InvocationLog` keeps the lines that belong to the invocation. Its identity is the request id that
   Invoke answered (Lambda's asynchronous retries keep it). A line belongs when it carries that request
   id; or carries our correlation id and no request id, inside our request's stretch of stream; or has no
   id at all but sits in that stretch (between our START and END: the runtime's unhandled-error line and
   plain ``print`` output). A line with our correlation id in *another* request (a function that
   re-invokes itself with its own event, a twin deployment, a forged line) is counted as foreign and
   never decides; only a durable execution, whose replays are separate requests tied to it by Lambda's
   durable API (which decides its verdict), learns request ids from the correlation id, for display.

   Lambda's platform lines (START, END, REPORT) are trusted by place, since in the text format a
   ``print`` can imitate them exactly: our request's end counts only where it closes a stretch that our
   START opened in the same stream (a REPORT printed in another stream, or an END read before its START
   was, decides nothing until that START is read). In an ordinary environment Lambda runs one request at
   a time, so another request's START or END inside our closed stretch is the function's own output and
   changes nothing; inside a stretch whose end is not read yet, another request's START caps what is
   claimed (the next request began there) until our END is read. Where one environment runs several
   requests at once (Managed Instances: `claim_lines_without_ids` off), lines without ids are never
   claimed.
2. `decide` turns what was seen into a `Verdict`, or ``None`` to keep watching:

   * a **failure** sign (an ERROR/CRITICAL line, the runtime's unhandled error, Lambda's own status of the
     request when it is not success: ``REPORT ... Status: timeout|error`` in the text format of 2026,
     ``platform.report``/``platform.runtimeDone`` ``status`` in the JSON format, and the older "Task timed
     out after" and "Runtime exited with error" lines) decides *failed*; a timeout names its duration,
     and an error whose status only says ``Runtime.Unknown`` takes its cause from the function's own line;
   * else the **end marker** ("Function ended" by default) decides *success*;
   * else the request's own **END/REPORT** decides *success*, once it closes our stretch (our START read in
     the same stream): a success needs the request's whole stretch read, because the runtime's error line
     has no id and sits only there (a late batch can hold START and that line while END came on time);
   * each only once it has **settled**: `settle_seconds` after the request's end was first seen (or,
     without an END line, after the decisive line), with a read after that (of the whole group, or of the
     request's own stretch of stream where that holds all its lines), because lines can be ingested
     late ("Task timed out" often comes after REPORT, and a line logged before END can still be on its
     way); an ERROR line the function logged waits for the request's end (or the
     deadline), since its later lines still belong in the task log, unless `fail_fast`;
   * nothing decisive by the **deadline** is a *timeout*.

   For a ``RequestResponse`` call the response already told the outcome (`KnownResult`); the log is
   only read to show the lines, so the verdict waits for the request's end and never contradicts the
   response.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from airflow_lambda_deferrable.verdict.log_lines import RANK_LOGGED_ERROR, Failure, LogLine, Marker, is_request_id

Status = Literal["success", "failed", "timeout"]

# The shape of the request ids Lambda gives invocations (and answers from Invoke): a UUID.
_LAMBDA_REQUEST_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class KnownResult:
    """What a ``RequestResponse`` invoke already said: success, or the function's error payload."""

    failed: bool
    error_type: str | None = None
    error_message: str | None = None
    stack_trace: str | None = None


@dataclass(frozen=True)
class Verdict:
    """How the invocation ended, and why, in the function's own words where it gave them."""

    status: Status
    reason: str
    error_type: str | None = None
    error_message: str | None = None
    detail: str | None = None


@dataclass
class _Span:
    """Our request's stretch of one log stream: from its START to its END or REPORT."""

    start: int
    end: int | None = None
    # While the end is not read: the earliest START of another request after ours in the stream. In an
    # ordinary environment that request began after ours ended, so lines from there on are not claimed.
    # Ignored once the end is read (another START before our END can only be printed by the function).
    cap: int | None = None


@dataclass
class InvocationLog:
    """The lines of one invocation, in order, and when the decisive ones were first seen."""

    correlation_id: str
    request_ids: set[str] = field(default_factory=set)
    lines: list[LogLine] = field(default_factory=list)
    failure_seen_at: float | None = None
    end_marker_seen_at: float | None = None
    ended_seen_at: float | None = None
    # When an END or REPORT of ours was first read, closing a stretch or not: a synchronous call's response
    # already decided, so its lines are complete once that has settled (`_decide_known`).
    end_read_at: float | None = None
    started: bool = False
    # False where one environment runs several requests at once (Lambda Managed Instances): lines
    # without ids are then never claimed, only counted.
    claim_lines_without_ids: bool = True
    # True where the function's SystemLogLevel hides START and END, so no stretch of ours can ever be known:
    # a line with our correlation id and no request id is then taken as ours (a function that re-invokes
    # itself with its own event cannot be told apart there; docs/logging-controls.md).
    claim_correlated_without_stretch: bool = False
    # True for a durable execution only: each replay is a request of its own whose id Invoke never answered,
    # tied to the execution by its correlation id (the durable API, not the log, decides its verdict).
    trust_correlated_requests: bool = False
    # Lines carrying our correlation id in another request (or outside our stretch with no request id):
    # counted, never kept, never deciding.
    foreign_lines: int = 0
    # Lines without ids inside our request's stretch of stream that could not be told apart from another
    # request's (left out of the invocation's lines, and reported as a count).
    unattributed_lines: int = 0
    # Memory bound: keep only the earliest and the latest lines, each within this many lines and (about)
    # this many bytes of text; the event carries no more than that of either end. ``None``: keep all.
    keep_lines: int | None = None
    keep_bytes: int | None = None
    # Lines of the invocation dropped from the middle to stay within the bound (counted, never shown).
    dropped_lines: int = 0
    # The first failure line of each kind the verdict names (kept whatever is dropped).
    _first_failures: dict[str, LogLine] = field(default_factory=dict)
    # Sort keys of `lines`: (timestamp, arrival number). Once lines were dropped, the keys of the last
    # kept early line and the first kept late one: a line arriving between them is only counted.
    _keys: list[tuple[int, int]] = field(default_factory=list)
    _gap: tuple[tuple[int, int], tuple[int, int]] | None = None
    _arrivals: int = 0
    _spans: dict[str, _Span] = field(default_factory=dict)
    # Per stream, lines without a request id past the cap of our open stretch (`_Span.cap`): looked at again
    # once our END is read (they are ours if the stretch reaches them), since no read brings them twice.
    _held: dict[str, list[LogLine]] = field(default_factory=dict)
    # A line carrying one of `request_ids` was read, or one request was learnt: no other is learnt.
    _identity_settled: bool = False
    # The latest END or REPORT of ours per stream whose START had not been read: a late batch can hold the
    # START while the end comes on time. It closes the stretch once the START comes.
    _ends_before_start: dict[str, int] = field(default_factory=dict)

    def learn_request_ids(self, lines: Iterable[LogLine]) -> set[str]:
        """Learn request ids from lines that carry our correlation id; return the new ones (only well-formed
        ids: `is_request_id`).

        A durable execution (`trust_correlated_requests`) learns every one: its replays are its requests.
        Otherwise Invoke's request id is the identity: when it has the shape of Lambda's request ids (a UUID),
        nothing is learnt, for a request that carries our correlation id under another id is another
        invocation (the function re-invoked with its own event, whose lines can be read before ours). Lambda's
        Destinations records show an ``Event`` invoke's id as the one the function sees; were it otherwise,
        the task would time out, never take another request's outcome. Without such an id (a stand-in's),
        one request is learnt: the earliest to carry our correlation id, and no other after it.
        """
        batch = [line for line in lines if line.request_id]
        if not self.trust_correlated_requests:
            if self._identity_settled or any(_LAMBDA_REQUEST_ID.fullmatch(rid) for rid in self.request_ids):
                return set()
            if any(line.request_id in self.request_ids for line in batch):
                self._identity_settled = True
                return set()
        candidates = sorted(
            (line.timestamp, line.request_id)
            for line in batch
            if line.correlation_id == self.correlation_id
            and line.request_id not in self.request_ids
            and is_request_id(line.request_id or "")
        )
        new = {request_id for _, request_id in candidates if request_id is not None}
        if not self.trust_correlated_requests and candidates:
            new = {candidates[0][1]} if candidates[0][1] is not None else set()
            self._identity_settled = True
        self.request_ids |= new
        return new

    def note_spans(self, lines: Iterable[LogLine]) -> None:
        """Note our request's stretches of stream that `lines` open or close (and others' lines in them).

        `add` learns request ids and notes stretches for its own batch first; a reader that adds one read's
        lines in several batches calls `learn_request_ids` on all of them, then this on all of them, so
        every batch is judged with what the whole read showed (both are idempotent)."""
        for line in lines:
            self._note_span(line)

    def add(self, lines: Iterable[LogLine], *, seen_at: float) -> list[LogLine]:
        """Keep the lines that belong to the invocation; return them (the others are not ours)."""
        batch = list(lines)
        self.learn_request_ids(batch)
        self.note_spans(batch)
        accepted = self._released()
        for line in batch:
            if self._belongs(line):
                accepted.append(line)
            elif self._past_the_cap(line):
                self._hold(line)
            elif self._foreign(line):
                self.foreign_lines += 1
            elif self._unattributable(line):
                self.unattributed_lines += 1
        for line in accepted:
            if line.marker is Marker.START:
                self.started = True
            if line.failure is not None and self.failure_seen_at is None:
                self.failure_seen_at = seen_at
            if line.marker is Marker.END_MARKER and self.end_marker_seen_at is None:
                self.end_marker_seen_at = seen_at
            if line.ends_invocation and self.end_read_at is None:
                self.end_read_at = seen_at
        if self.ended_seen_at is None and self.closed_spans():
            # The end counts once it closes a stretch our START opened (whichever of the two came last).
            self.ended_seen_at = seen_at
        for line in accepted:
            self._note_failure(line)
        self._keep(accepted)
        return accepted

    def _keep(self, accepted: list[LogLine]) -> None:
        """Put `accepted` in time order (events of one millisecond in the order they arrived) and trim."""
        keyed = []
        for line in accepted:
            key = (line.timestamp, self._arrivals)
            self._arrivals += 1
            if self._gap is not None and self._gap[0] < key < self._gap[1]:
                self.dropped_lines += 1  # between the kept ends: it can be neither the earliest nor the latest
            else:
                keyed.append((key, line))
        if self._gap is None:
            pairs = sorted([*zip(self._keys, self.lines, strict=True), *keyed], key=lambda pair: pair[0])
            self._keys = [key for key, _ in pairs]
            self.lines = [line for _, line in pairs]
        else:
            for key, line in keyed:
                index = bisect.bisect_right(self._keys, key)
                self._keys.insert(index, key)
                self.lines.insert(index, line)
        self._trim()

    @property
    def line_count(self) -> int:
        """Return how many lines of the invocation were seen, dropped ones included."""
        return len(self.lines) + self.dropped_lines

    def failure_lines(self) -> list[LogLine]:
        """Return the first failure line of each kind (by rank, with a traceback, unhandled), in time order."""
        unique = {id(line): line for line in self._first_failures.values()}
        return sorted(unique.values(), key=lambda line: line.timestamp)

    def _note_failure(self, line: LogLine) -> None:
        if line.failure is None:
            return
        keys = [f"rank:{line.failure.rank}"]
        if line.detail:
            keys.append("detail")
            if line.failure.kind == "unhandled":
                keys.append("unhandled detail")
        for key in keys:
            first = self._first_failures.get(key)
            if first is None or line.timestamp < first.timestamp:
                self._first_failures[key] = line

    def _trim(self) -> None:
        """Keep the earliest and the latest lines within `keep_lines` lines and about `keep_bytes` of text at
        each end, plus the first line beyond each (it tells where a shorter selection of that end stops),
        and drop the rest. Any selection of lines from either end within those bounds (the event's) is then
        the same as from all the lines seen; later lines that fall between the kept ends are only counted."""
        if self.keep_lines is None:
            return
        limit_bytes = self.keep_bytes if self.keep_bytes is not None else math.inf
        boundary = len(self.lines) if self._gap is None else bisect.bisect_right(self._keys, self._gap[0])
        head_part, tail_part = self.lines[:boundary], self.lines[boundary:]
        if self._gap is None:
            tail_part = head_part
        head = min(_end_within(head_part, self.keep_lines, limit_bytes) + 1, len(head_part))
        tail = min(_end_within(reversed(tail_part), self.keep_lines, limit_bytes) + 1, len(tail_part))
        if self._gap is None:
            if head + tail >= len(self.lines):
                return
            drop_from, drop_to = head, len(self.lines) - tail
        else:
            drop_from, drop_to = head, boundary + len(tail_part) - tail
            if drop_from == boundary and drop_to == boundary:
                return
        self.dropped_lines += drop_to - drop_from
        del self.lines[drop_from:drop_to]
        del self._keys[drop_from:drop_to]
        self._gap = (self._keys[drop_from - 1], self._keys[drop_from])

    def closed_spans(self) -> list[tuple[str, int, int]]:
        """Return (stream, start, end) of our request's finished stretches, to fetch whole."""
        return [(stream, span.start, span.end) for stream, span in self._spans.items() if span.end is not None]

    def open_spans(self) -> dict[str, int]:
        """Return stream: start of our request's stretches that have not ended (the request runs there)."""
        return {stream: span.start for stream, span in self._spans.items() if span.end is None}

    def best_failure(self) -> Failure | None:
        """Return the failure sign that names the cause best (the first of the highest rank)."""
        failures = [line.failure for line in self.failure_lines() if line.failure is not None]
        return max(failures, key=lambda failure: failure.rank, default=None)

    def _note_span(self, line: LogLine) -> None:
        if line.request_id is None:
            return
        if line.request_id not in self.request_ids:
            # Another request's START after ours while our end is unread: the next request began there.
            span = self._spans.get(line.stream)
            if line.marker is Marker.START and span is not None and line.timestamp > span.start:
                span.cap = line.timestamp if span.cap is None else min(span.cap, line.timestamp)
            return
        if line.marker is Marker.START:
            span = self._spans.setdefault(line.stream, _Span(start=line.timestamp))
            early_end = self._ends_before_start.pop(line.stream, None)
            if early_end is not None and early_end >= span.start:
                span.end = max(span.end or early_end, early_end)
        elif line.ends_invocation and line.stream in self._spans:
            span = self._spans[line.stream]
            span.end = max(span.end or line.timestamp, line.timestamp)
        elif line.ends_invocation:
            self._ends_before_start[line.stream] = max(self._ends_before_start.get(line.stream, 0), line.timestamp)

    def _past_the_cap(self, line: LogLine) -> bool:
        """Return whether `line` (no request id) would be ours but lies past the cap of our open stretch."""
        if line.request_id is not None or (line.correlation_id not in (None, self.correlation_id)):
            return False
        span = self._spans.get(line.stream)
        return (
            self.claim_lines_without_ids
            and span is not None
            and span.end is None
            and span.cap is not None
            and line.timestamp >= span.cap
        )

    def _hold(self, line: LogLine) -> None:
        held = self._held.setdefault(line.stream, [])
        held.append(line)
        if self.keep_lines is not None and len(held) > self.keep_lines:
            # Bounded like the kept lines: the oldest held line goes (counted, as a trimmed line is).
            held.pop(0)
            self.dropped_lines += 1

    def _released(self) -> list[LogLine]:
        """Return the held lines that our stretch, now closed, reaches (the rest were the next request's)."""
        released: list[LogLine] = []
        for stream in [stream for stream in self._held if self._spans[stream].end is not None]:
            span = self._spans[stream]
            for line in self._held.pop(stream):
                if _inside(span, line):
                    released.append(line)
        return released

    def _belongs(self, line: LogLine) -> bool:
        if line.request_id is not None:
            ours = line.request_id in self.request_ids
            return ours and (line.correlation_id is None or line.correlation_id == self.correlation_id)
        if line.correlation_id is not None and line.correlation_id != self.correlation_id:
            return False
        if line.correlation_id is not None and (
            self.trust_correlated_requests or self.claim_correlated_without_stretch
        ):
            return True  # a durable replay's line, or one where no stretch can show whose it is
        span = self._spans.get(line.stream)
        if span is None or not self.claim_lines_without_ids:
            return False
        return _inside(span, line)

    def _foreign(self, line: LogLine) -> bool:
        """Return whether `line` carries our correlation id yet is not ours: another request's, or outside
        any stretch of ours with no request id (a function re-invoking itself with its own event)."""
        return line.correlation_id == self.correlation_id and not self.awaits_its_stretch(line)

    def awaits_its_stretch(self, line: LogLine) -> bool:
        """Return whether `line` has no request id and comes from a stream where no stretch of ours is known
        yet: it may still turn out to be ours, once a read brings our START there (reads can bring a
        stream's later lines first)."""
        return (
            line.request_id is None
            and (line.correlation_id is None or line.correlation_id == self.correlation_id)
            and line.stream not in self._spans
        )

    def _unattributable(self, line: LogLine) -> bool:
        """Return whether `line` has no id and lies in our stretch of its stream, yet is not claimed."""
        if line.request_id is not None or line.correlation_id is not None:
            return False
        span = self._spans.get(line.stream)
        return span is not None and _inside(span, line)


def _end_within(lines: Iterable[LogLine], max_lines: int, max_bytes: float) -> int:
    """Return how many lines from the start of `lines` fit within both bounds (text length as bytes)."""
    count = used = 0
    for line in lines:
        size = len(line.message) + len(line.detail or "")
        if count >= max_lines or used + size > max_bytes:
            break
        count += 1
        used += size
    return count


def _inside(span: _Span, line: LogLine) -> bool:
    if span.end is not None:
        return span.start <= line.timestamp <= span.end
    return span.start <= line.timestamp and (span.cap is None or line.timestamp < span.cap)


def decide(
    log: InvocationLog,
    *,
    now: float,
    checked_at: float,
    deadline: float,
    settle_seconds: float,
    known: KnownResult | None = None,
    allow_hidden_success: bool = False,
    fail_fast: bool = False,
    hidden_platform_level: str | None = None,
    end_marker: str | None = None,
) -> Verdict | None:
    """Return the verdict on the invocation, or ``None`` while it is still undecided.

    :param now: the current time; only the deadline is compared with it.
    :param allow_hidden_success: the function's logging config hides a success (see `logging_controls`)
        and the user chose to count "no failure seen by the deadline" as success. Its END may be hidden
        too, so a failure line is not held back waiting for it.
    :param hidden_platform_level: the function's ``SystemLogLevel`` when it hides Lambda's START, END and
        REPORT of a success (see `logging_controls`): only `end_marker` can show one, and a timeout says so.
    :param fail_fast: decide *failed* as soon as an ERROR line has settled, without waiting for the
        request's end (its later lines, ``print`` output and the runtime's own error line, may then be
        missing from the task log).
    :param checked_at: when the last read of the log that covers every line of the invocation began (a full
        read of the group, or of the request's stretch of stream when that holds them all: `sources.log_lines`);
        a settle window ends only with a read that began after it (lines ingested during a read may be
        missed by it).
    """
    if known is not None:
        return _decide_known(
            log, known, now=now, checked_at=checked_at, deadline=deadline, settle_seconds=settle_seconds
        )

    # Lines can be ingested late, even ones logged before END: every verdict waits `settle_seconds` after
    # the request's end (or, without an END line, after the decisive line) and one read after that.
    decisive_at = log.ended_seen_at
    if decisive_at is None and log.failure_seen_at is not None:
        # An ERROR line the function logged while it runs is not its end: its later lines (and the
        # runtime's error line, found only in its stretch of stream) come before END. Lambda's own failure
        # signs, and the end marker (the handler returned), come at the end.
        ended = log.end_marker_seen_at is not None or _ends_the_request(log.best_failure())
        if ended or fail_fast or allow_hidden_success:
            decisive_at = max(seen for seen in (log.failure_seen_at, log.end_marker_seen_at) if seen is not None)
    elif decisive_at is None:
        decisive_at = log.end_marker_seen_at
    settled = decisive_at is not None and checked_at >= decisive_at + settle_seconds
    if log.failure_seen_at is not None and (settled or now >= deadline):
        return _failed_from_log(log)
    if log.failure_seen_at is None and log.end_marker_seen_at is not None and (settled or now >= deadline):
        return Verdict("success", "the function logged its end marker")
    if log.failure_seen_at is None and log.ended_seen_at is not None and settled:
        return Verdict(
            "success", f"Lambda reported the end of the request and no failure followed within {settle_seconds:g}s"
        )
    if now >= deadline:
        if allow_hidden_success and log.failure_seen_at is None:
            return Verdict(
                "success",
                "no failure was seen by the deadline (the function's logging config hides a success; "
                "allow_hidden_success=True counts that as success)",
            )
        if hidden_platform_level is not None and log.failure_seen_at is None:
            return Verdict("timeout", _hidden_success_reason(log, hidden_platform_level, end_marker))
        return Verdict("timeout", _timeout_reason(log))
    return None


def visible_until(log: InvocationLog, *, function_timeout: float, ingestion_allowance_seconds: float) -> float | None:
    """Return when the outcome of a request seen running can no longer become visible (epoch seconds), or
    ``None`` before any of its lines is seen (it may still wait in Lambda's queue).

    A request ends within the function's timeout of its first line, and its last line is ingested within the
    ingestion allowance after that: where only the end marker can show a success (`hidden_platform_level`),
    waiting longer for it only delays the answer.
    """
    if not log.lines:
        return None
    return log.lines[0].timestamp / 1000 + function_timeout + ingestion_allowance_seconds


def _hidden_success_reason(log: InvocationLog, level: str, end_marker: str | None) -> str:
    seen = f"{log.line_count} line(s) of the invocation were seen" if log.line_count else "no line was seen"
    return (
        f"the end marker {end_marker!r} never came and no failure was seen ({seen}): the function's SystemLogLevel "
        f"{level} hides Lambda's START, END and REPORT of a successful request, so only the end marker can show "
        "a success. Log the end marker at a level ApplicationLogLevel sends (Powertools' Logger logs "
        "'Function ended' with log_event or a handler that logs it), set SystemLogLevel to INFO, invoke with "
        "invocation_type='RequestResponse', or pass allow_hidden_success=True to count no failure by the deadline "
        "as success"
    )


def _ends_the_request(failure: Failure | None) -> bool:
    """Whether a failure sign only comes as the request ends (Lambda's or the runtime's, not a logged ERROR)."""
    return failure is not None and failure.rank > RANK_LOGGED_ERROR


def _decide_known(
    log: InvocationLog, known: KnownResult, *, now: float, checked_at: float, deadline: float, settle_seconds: float
) -> Verdict | None:
    """Wait for the request's end so its lines can be shown, then repeat what the response said."""
    ended = log.ended_seen_at if log.ended_seen_at is not None else log.end_read_at
    complete = ended is not None and checked_at >= ended + settle_seconds
    if not complete and now < deadline:
        return None
    note = "" if complete else " (its log lines may be incomplete: the request's end was not seen in time)"
    if not known.failed:
        return Verdict("success", f"the function returned a result{note}")
    error_type = known.error_type or "Unhandled"
    error_message = known.error_message or ""
    return Verdict(
        "failed",
        f"{error_type}: {error_message}{note}",
        error_type=error_type,
        error_message=error_message,
        detail=known.stack_trace or _logged_traceback(log),
    )


def _failed_from_log(log: InvocationLog) -> Verdict:
    failure = log.best_failure()
    assert failure is not None, "decide() only calls this once a failure line was seen"
    logged = next(
        (line for line in log.failure_lines() if line.failure and line.failure.rank == RANK_LOGGED_ERROR), None
    )
    if failure.kind == "platform_status" and logged is not None and logged.failure is not None:
        # Lambda's status says only that it failed ("Runtime.Unknown" for a Python exception): the
        # function's own error line names the cause.
        cause = logged.failure
        return Verdict(
            "failed",
            f"{cause.error_type}: {cause.error_message} ({failure.error_message}, {failure.error_type})",
            error_type=cause.error_type,
            error_message=cause.error_message,
            detail=_logged_traceback(log),
        )
    reason = f"{failure.error_type}: {failure.error_message}"
    if failure.kind == "lambda_timeout":
        reason = failure.error_message
    if logged is not None and failure.rank > RANK_LOGGED_ERROR:
        reason += f'; the function logged "{logged.message}"'
    return Verdict(
        "failed",
        reason,
        error_type=failure.error_type,
        error_message=failure.error_message,
        detail=_unhandled_traceback(log) or _logged_traceback(log),
    )


def _unhandled_traceback(log: InvocationLog) -> str | None:
    return next(
        (
            line.detail
            for line in log.failure_lines()
            if line.failure and line.failure.kind == "unhandled" and line.detail
        ),
        None,
    )


def _logged_traceback(log: InvocationLog) -> str | None:
    return next((line.detail for line in log.failure_lines() if line.failure and line.detail), None)


def _timeout_reason(log: InvocationLog) -> str:
    if not log.line_count:
        # Lines without any id (print output) can be attributed only inside the request's START..END.
        return (
            "no line carrying the invocation's request id or correlation id appeared before the deadline, "
            "nor Lambda's START/END of it"
        )
    progress = "it started but its end was not seen" if log.started else "its START line was not seen"
    return f"no outcome before the deadline: {log.line_count} line(s) seen, {progress}"
