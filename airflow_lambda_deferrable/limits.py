"""Facts of the AWS APIs the reader works within, each with where it comes from. Not ours to tune: a
change here follows a change of the API. Our own tuning numbers are in `tuning`."""

from __future__ import annotations

# FilterLogEvents: a filter pattern is at most 1,024 characters (API reference, `filterPattern`).
MAX_FILTER_PATTERN_LENGTH = 1024
# FilterLogEvents: `logStreamNames` holds at most 100 names (API reference).
MAX_STREAMS_PER_CALL = 100
# FilterLogEvents and GetLogEvents: a page holds at most 10,000 events or 1 MB (1,048,576 bytes), counting
# each event's message in UTF-8 and 26 bytes (API references; the PutLogEvents quota counts events alike).
EVENTS_PER_PAGE = 10_000
PAGE_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
# Log group names: 1 to 512 characters (CreateLogGroup API reference).
MAX_LOG_GROUP_NAME_CHARS = 512
# Requests per second per account and Region, not adjustable ("CloudWatch Logs quotas", 2026): the strictest
# Regions allow FilterLogEvents 5 and GetLogEvents 10. The reader's budget of GetLogEvents calls is its
# FilterLogEvents budget times their ratio there.
FILTER_LOG_EVENTS_TPS_STRICTEST = 5
GET_LOG_EVENTS_TPS_STRICTEST = 10
STREAM_READS_PER_FILTER_CALL = GET_LOG_EVENTS_TPS_STRICTEST / FILTER_LOG_EVENTS_TPS_STRICTEST
