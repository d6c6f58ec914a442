"""How long to hold off after failures in a row, one rule for every reader: doubling, capped."""

from __future__ import annotations

from airflow_lambda_deferrable.tuning import MAX_BACKOFF_DOUBLINGS, MAX_BACKOFF_SECONDS


def backoff_ceiling(failures: int, unit: float) -> float:
    """The longest wait after `failures` failures in a row: `unit` times 2 ** failures, at most
    `MAX_BACKOFF_SECONDS`. Callers draw a jittered wait under it, so that readers that failed together do
    not all ask again at once."""
    return min(MAX_BACKOFF_SECONDS, unit * 2.0 ** min(failures, MAX_BACKOFF_DOUBLINGS))
