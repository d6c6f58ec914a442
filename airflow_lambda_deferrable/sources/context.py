"""What a completion source may use of the trigger that runs it: the settings, the trigger's time, its logger
and its clients. Sources depend on this, not on the trigger's class, so they import nothing above them."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from airflow_lambda_deferrable.runtime.clock import Timeline
from airflow_lambda_deferrable.settings import FollowSettings


class SourceContext(Protocol):
    """The trigger as its sources see it (`provider.trigger.LambdaInvocationTrigger` is one)."""

    @property
    def settings(self) -> FollowSettings: ...

    @property
    def timeline(self) -> Timeline: ...

    @property
    def log(self) -> logging.Logger: ...

    async def logs_client(self) -> Any:
        """A CloudWatch Logs client, an async context manager (built off the event loop)."""
        ...

    async def lambda_client(self) -> Any:
        """A Lambda client, an async context manager (built off the event loop)."""
        ...
