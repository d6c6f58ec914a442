"""Invoke AWS Lambda functions from Airflow and know how each invocation really ended.

`LambdaInvokeDeferrableOperator` invokes and defers; `LambdaInvocationTrigger` follows the invocation
through CloudWatch Logs in the triggerer. Both are imported lazily so that Airflow can read this
provider's metadata without importing the operator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["LambdaInvocationTrigger", "LambdaInvokeDeferrableOperator", "__version__"]

if TYPE_CHECKING:
    from airflow_lambda_deferrable.provider.operator import LambdaInvokeDeferrableOperator
    from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger


def __getattr__(name: str) -> Any:
    if name == "LambdaInvokeDeferrableOperator":
        from airflow_lambda_deferrable.provider.operator import LambdaInvokeDeferrableOperator

        return LambdaInvokeDeferrableOperator
    if name == "LambdaInvocationTrigger":
        from airflow_lambda_deferrable.provider.trigger import LambdaInvocationTrigger

        return LambdaInvocationTrigger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
