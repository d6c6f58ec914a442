"""A local AWS endpoint for development and tests: moto for every service, real code for Lambda ``Invoke``.

Not part of the ``airflow_lambda_deferrable`` package; see ``local_aws/README.md``.
"""

from __future__ import annotations

from local_aws.stack import LocalAwsStack

__all__ = ["LocalAwsStack"]
