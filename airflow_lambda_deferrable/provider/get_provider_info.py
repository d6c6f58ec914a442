"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_lambda_deferrable import __version__
from airflow_lambda_deferrable.settings import DEFAULT_MAX_REQUESTS_PER_SECOND


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
        "extra-links": [
            "airflow_lambda_deferrable.provider.links.LambdaInvocationLogsLink",
            "airflow_lambda_deferrable.provider.links.LambdaDurableExecutionLink",
        ],
        "config": {
            "lambda_deferrable": {
                "description": "How LambdaInvocationTrigger reads CloudWatch Logs in the triggerer.",
                "options": {
                    "shared_poller": {
                        "description": (
                            "Share one FilterLogEvents poller per (connection, region, log group) among all "
                            "triggers of a triggerer process. False gives every trigger a poller of its own."
                        ),
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "False",
                        "default": "True",
                    },
                    "max_requests_per_second": {
                        "description": (
                            "FilterLogEvents calls per second a triggerer process makes at most (the account's "
                            "quota in a Region is 5 in the strictest Regions, shared with every triggerer and "
                            "every other reader). Halved on throttling, then recovered by 1 a second. A value "
                            "that is not a number from 0.1 to 100 is ignored with a warning, and the default "
                            "is used."
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "1.0",
                        "default": str(DEFAULT_MAX_REQUESTS_PER_SECOND),
                    },
                },
            }
        },
    }
