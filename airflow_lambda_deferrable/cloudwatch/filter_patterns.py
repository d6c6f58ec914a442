"""The filter patterns a poller reads its log group with, and which of them a filtered read uses.

Pure: no I/O. A read with a pattern costs a call per pattern and brings only the lines it matches; the
poller (`shared_poller`) asks `plan_filtered_read` how to read the group when reading it whole would cost
more calls than a filtered read.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from airflow_lambda_deferrable.cloudwatch.log_source import MAX_FILTER_PATTERN_LENGTH, check_term
from airflow_lambda_deferrable.tuning import REQUEST_LINES_CYCLE_CALLS

# The lines that open or close a request, as one CloudWatch regex pattern (which allows no space, quote or
# parenthesis): the text format's START, END, REPORT and the runtime's exit line ("RequestId: <id>"), the
# JSON format's platform events and application lines ("requestId":"<id>") and the text format's timeout
# line before 2026.
REQUEST_LINES_PATTERN = "%RequestId:.[0-9a-f]{8}-|requestId.:.{1,2}[0-9a-f]{8}-|Task.timed.out%"


@dataclass(frozen=True)
class FilteredRead:
    """How a filtered read of the group is made: with `REQUEST_LINES_PATTERN` or not, and with an OR-pattern
    per group of ids in `id_groups`."""

    by_request_lines: bool
    id_groups: list[list[str]]

    @property
    def calls(self) -> int:
        """What it costs a cycle, in calls (reading by request lines brings stretches to read)."""
        return len(self.id_groups) + (REQUEST_LINES_CYCLE_CALLS if self.by_request_lines else 0)


def plan_filtered_read(
    terms: Collection[str], live_terms: Collection[str], *, request_lines_refused: bool
) -> FilteredRead:
    """Read by the ids (every line that carries one comes as it is read) when they fit in one OR-pattern, or
    when no subscriber can wait for its request's end; else read by request lines, which find every
    request's stretch of stream (its lines come when it ends), and by the ids in `live_terms` (those
    of the subscribers that need their lines with ids as they come).

    :param terms: every id routed.
    :param live_terms: the ids of the subscribers that need their lines with ids as they come.
    :param request_lines_refused: CloudWatch refused `REQUEST_LINES_PATTERN`.
    """
    every_group = term_groups(sorted(terms))
    waiting = set(terms) - set(live_terms)
    if request_lines_refused or len(every_group) <= 1 or not waiting:
        return FilteredRead(by_request_lines=False, id_groups=every_group)
    return FilteredRead(by_request_lines=True, id_groups=term_groups(sorted(set(live_terms))))


def or_pattern(terms: list[str]) -> str:
    """Return the ``?"a" ?"b"`` filter pattern that matches any of `terms`."""
    return " ".join(f'?"{term}"' for term in terms)


def term_groups(terms: list[str]) -> list[list[str]]:
    """Split terms into as few groups as fit in one OR-pattern each (`MAX_FILTER_PATTERN_LENGTH`); a term
    that cannot be in a pattern at all (too long, quoted) raises `check_term`'s ValueError."""
    groups: list[list[str]] = []
    length = 0
    for term in terms:
        check_term(term, "term_groups")
        piece = len(f'?"{term}"')
        if groups and length + 1 + piece <= MAX_FILTER_PATTERN_LENGTH:
            groups[-1].append(term)
            length += 1 + piece
        else:
            groups.append([term])
            length = piece
    return groups


def or_patterns(terms: list[str]) -> list[str]:
    """Group terms into as few ``?"a" ?"b"`` filter patterns as the length limit allows."""
    return [or_pattern(group) for group in term_groups(terms)]
