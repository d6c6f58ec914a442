"""The triggers' public module path. Airflow stores a deferred task's trigger by this path
(`LambdaInvocationTrigger.serialize`), so it stays the same when the code behind it moves."""

from airflow_lambda_deferrable.provider.start_trigger import LambdaStartTrigger
from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger

__all__ = ["LambdaInvocationTrigger", "LambdaStartTrigger"]
