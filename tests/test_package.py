"""The package imports as documented and registers itself with Airflow."""

from __future__ import annotations

import ast
from importlib.metadata import entry_points
from pathlib import Path

import airflow_lambda_deferrable
from airflow_lambda_deferrable.provider.get_provider_info import get_provider_info


def test_public_names_import():
    from airflow_lambda_deferrable import LambdaInvocationTrigger, LambdaInvokeDeferrableOperator

    assert LambdaInvokeDeferrableOperator.__name__ == "LambdaInvokeDeferrableOperator"
    assert LambdaInvocationTrigger.__module__ == "airflow_lambda_deferrable.provider.trigger"


def test_provider_entry_point_lists_the_trigger_module():
    (entry,) = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_lambda")]
    info = entry.load()()
    assert info == get_provider_info()
    modules = [module for trigger in info["triggers"] for module in trigger["python-modules"]]
    assert modules == ["airflow_lambda_deferrable.triggers"]


def test_airflow_providers_manager_sees_the_provider():
    from airflow.providers_manager import ProvidersManager

    assert "airflow-lambda-deferrable" in ProvidersManager().providers


# The package's layers, lowest first: a module imports only from its own layer or the layers below it.
LAYERS = ("limits", "tuning", "settings", "exceptions", "runtime", "verdict", "cloudwatch", "sources", "provider")


def _imports_by_layer() -> list[tuple[str, str, str]]:
    root = Path(airflow_lambda_deferrable.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[0] not in LAYERS:
            continue  # the package's public doors (__init__, operators, triggers) sit above every layer
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow_lambda_deferrable."):
                found.append((str(path.relative_to(root)), parts[0], node.module.split(".")[1]))
    return found


def test_every_layer_imports_only_itself_and_the_layers_below():
    imports = _imports_by_layer()
    assert {layer for _, layer, _ in imports} == set(LAYERS) - {
        "limits",
        "tuning",
        "settings",
        "exceptions",
    }  # the walk found them
    upward = [
        (module, imported)
        for module, layer, imported in imports
        if imported not in LAYERS or LAYERS.index(imported) > LAYERS.index(layer)
    ]
    assert upward == []


def test_the_poller_loop_stays_a_small_shell_with_its_numbers_named():
    """The cycle loop decides nothing by itself: its numbers come from `tuning`, its reads from their modules."""
    path = Path(airflow_lambda_deferrable.__file__).parent / "cloudwatch" / "shared_poller.py"
    tree = ast.parse(path.read_text())
    functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    numbers = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float) and node.value not in (0, 1)
    }
    assert len(path.read_text().splitlines()) <= 350
    assert functions and [node.name for node in functions if node.end_lineno - node.lineno >= 40] == []
    assert numbers == set()
