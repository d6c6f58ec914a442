"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_lambda_deferrable import __version__


def get_provider_info() -> dict[str, Any]:
    """Return this provider's name, version, operators, triggers and extra links."""
    return {
        "package-name": "airflow-lambda-deferrable",
        "name": "AWS Lambda (deferrable, log-aware)",
        "description": (
            "Invoke AWS Lambda functions and follow each invocation to its real outcome through CloudWatch Logs."
        ),
        "versions": [__version__],
        "operators": [
            {"integration-name": "AWS Lambda", "python-modules": ["airflow_lambda_deferrable.operators"]},
        ],
        "triggers": [
            {"integration-name": "AWS Lambda", "python-modules": ["airflow_lambda_deferrable.triggers"]},
        ],
        "extra-links": ["airflow_lambda_deferrable.links.LambdaInvocationLogsLink"],
    }
