"""The operator's public module path, listed in the provider's metadata; the code is in `provider/operator.py`."""

from airflow_lambda_deferrable.provider.operator import LambdaInvokeDeferrableOperator

__all__ = ["LambdaInvokeDeferrableOperator"]
