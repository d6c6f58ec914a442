"""The package imports as documented and registers itself with Airflow."""

from __future__ import annotations

from importlib.metadata import entry_points

from airflow_lambda_deferrable.get_provider_info import get_provider_info


def test_public_names_import():
    from airflow_lambda_deferrable import LambdaInvocationTrigger, LambdaInvokeDeferrableOperator

    assert LambdaInvokeDeferrableOperator.__name__ == "LambdaInvokeDeferrableOperator"
    assert LambdaInvocationTrigger.__module__ == "airflow_lambda_deferrable.triggers"


def test_provider_entry_point_lists_the_trigger_module():
    (entry,) = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_lambda")]
    info = entry.load()()
    assert info == get_provider_info()
    modules = [module for trigger in info["triggers"] for module in trigger["python-modules"]]
    assert modules == ["airflow_lambda_deferrable.triggers"]


def test_airflow_providers_manager_sees_the_provider():
    from airflow.providers_manager import ProvidersManager

    assert "airflow-lambda-deferrable" in ProvidersManager().providers
