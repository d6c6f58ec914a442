"""What the reads of one log group share: who they serve, which streams are followed, busy or sampled, and
what CloudWatch refused. One object, held by the poller and handed to each kind of read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from airflow_lambda_deferrable.cloudwatch.busy_streams import StreamMarks
from airflow_lambda_deferrable.cloudwatch.pages import PageReader
from airflow_lambda_deferrable.cloudwatch.read_planner import ReadPlanner
from airflow_lambda_deferrable.cloudwatch.routing import StreamFollowing
from airflow_lambda_deferrable.cloudwatch.subscription import Subscription
from airflow_lambda_deferrable.runtime.clock import ForwardWall
from airflow_lambda_deferrable.runtime.loop_turns import LoopTurns


@dataclass(eq=False)
class GroupState:
    """The state of one log group's reads."""

    log_group: str
    pages: PageReader
    window_clock: ForwardWall
    planner: ReadPlanner = field(default_factory=ReadPlanner)
    turns: LoopTurns = field(default_factory=LoopTurns)  # its own: routing does not queue behind the triggers
    subscriptions: list[Subscription] = field(default_factory=list)
    by_term: dict[str, set[Subscription]] = field(default_factory=dict)
    following: StreamFollowing[Subscription] = field(default_factory=StreamFollowing)
    # Followed streams whose stretches a subscriber left to the reads that follow them (`fetch_span`): read up
    # to now before following ends (`WindowReads.stop_following`), since nobody reads those stretches again.
    left_to_following: set[str] = field(default_factory=set)
    request_lines_refused: bool = False  # CloudWatch refused `REQUEST_LINES_PATTERN`: read lookbacks whole
    stream_reads_refused: bool = False  # GetLogEvents was denied: busy streams are read with FilterLogEvents
    busy_streams: StreamMarks = field(default_factory=StreamMarks)  # streams read alone (`busy_streams`)
    sample_due: bool = False  # the last full read was by request lines: sample running requests after it
    sampled: StreamMarks = field(default_factory=StreamMarks)  # (stream, request start) sampled for good
    sample_tries: Counter[tuple[str, int]] = field(default_factory=Counter)
    # Subscribers that take their events in as they come and have `MAX_EVENTS_WAITING` waiting: routing waits
    # for them to take those (`Router.make_room`).
    full: set[Subscription] = field(default_factory=set)
