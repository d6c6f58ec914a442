"""The polling modes compared by the benchmark."""

from __future__ import annotations

from dataclasses import dataclass

# The operator's default interval (airflow_lambda_deferrable.provider.trigger.DEFAULT_POLL_INTERVAL, checked by
# tests/test_benchmark_harness.py); not imported here, so that Airflow is imported only after the mode's
# environment is set.
DEFAULT_POLL_INTERVAL = 5.0


@dataclass(frozen=True)
class Mode:
    """How the triggers poll: through the shared per-log-group poller or each on its own, and how often."""

    name: str
    shared_poller: bool
    poll_interval: float

    def environment(self) -> dict[str, str]:
        """Return the Airflow setting that selects the poller (``[lambda_deferrable] shared_poller``)."""
        return {"AIRFLOW__LAMBDA_DEFERRABLE__SHARED_POLLER": str(self.shared_poller)}


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        # The operator's default interval for both; the origin blog's one second for the third.
        Mode("shared", shared_poller=True, poll_interval=DEFAULT_POLL_INTERVAL),
        Mode("per_trigger", shared_poller=False, poll_interval=DEFAULT_POLL_INTERVAL),
        Mode("per_trigger_1s", shared_poller=False, poll_interval=1.0),
    )
}
