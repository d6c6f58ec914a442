"""Check the SAM template offline: cfn-lint finds nothing, and it states the facts Airflow relies on."""

from __future__ import annotations

import ast
import importlib.metadata
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint

from airflow_lambda_deferrable.provider.operator import DEFAULT_QUEUE_ALLOWANCE_SECONDS

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yml"
REGIONS = ["us-east-1", "eu-west-1"]


@dataclass(frozen=True)
class Tag:
    """A CloudFormation short-form function (``!Ref x``, ``!Sub "..."``) kept as written."""

    name: str
    value: Any


class CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that reads ``!Ref``, ``!Sub``, ``!GetAtt`` and friends instead of refusing them."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tag:
    """Keep a tagged node as ``Tag(name, value)``."""
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}", node.start_mark)
    return Tag(suffix, value)


CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load_template(text: str | None = None) -> dict[str, Any]:
    """Parse the template (or the given text) with CloudFormation tags."""
    return yaml.load(text if text is not None else TEMPLATE.read_text(), Loader=CloudFormationLoader)


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Return the resources of one type, by logical id."""
    return {name: res for name, res in template["Resources"].items() if res["Type"] == resource_type}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def function(template: dict[str, Any]) -> dict[str, Any]:
    """Return the properties of the example function (the one the DAGs invoke; it comes first)."""
    functions = resources_of_type(template, "AWS::Serverless::Function")
    assert list(functions) == ["ExampleFunction", "DurableExampleFunction"]
    return functions["ExampleFunction"]["Properties"]


def lint_findings(text: str) -> list[str]:
    """Return cfn-lint's findings (errors, warnings and informational) as readable strings."""
    matches = lint(text, config=ManualArgs(regions=REGIONS))
    return [f"{match.rule.id} line {match.linenumber}: {match.message}" for match in matches]


def test_cfn_lint_finds_nothing() -> None:
    assert lint_findings(TEMPLATE.read_text()) == []


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        pytest.param("Runtime: python3.12", "Runtime: python3.8", "W2531", id="deprecated-runtime"),
        pytest.param("RetentionInDays: 1\n", "RetentionInDays: 7777\n", "E3030", id="bad-retention"),
        pytest.param(
            "MaximumRetryAttempts: 0\n\n  # A durable",
            "MaximumRetryAttempts: 5\n\n  # A durable",
            "E3034",
            id="retries",
        ),
        pytest.param(
            "MaximumEventAgeInSeconds: 300\n      MaximumRetryAttempts: 0\n\n  # A durable",
            "MaximumEventAgeInSeconds: 30\n      MaximumRetryAttempts: 0\n\n  # A durable",
            "E3034",
            id="event-age",
        ),
        pytest.param("MemorySize: 128", "MemorySize: 128\n      Colour: blue", "E3002", id="unknown-property"),
        pytest.param("LogGroup: !Ref ExampleFunctionLogGroup", "LogGroup: !Ref Nowhere", "E3030", id="dangling-ref"),
        pytest.param("Default: latest", "Default: 27", "E2015", id="layer-number-instead-of-release"),
        pytest.param("ExecutionTimeout: 3600", "ExecutionTimeot: 3600", "E3002", id="durable-config-typo"),
    ],
)
def test_cfn_lint_flags_a_broken_copy(old: str, new: str, rule: str) -> None:
    """The lint test above can fail: cfn-lint does catch each of these mistakes in this template."""
    text = TEMPLATE.read_text()
    assert text.count(old) == 1, f"the mutation no longer applies: {old!r}"
    findings = lint_findings(text.replace(old, new))
    assert any(finding.startswith(rule) for finding in findings), findings


def test_is_a_sam_template(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_handler_points_at_an_existing_function(function: dict[str, Any]) -> None:
    module_name, _, handler_name = function["Handler"].rpartition(".")
    source = ROOT / function["CodeUri"] / f"{module_name}.py"
    assert source.is_file(), f"{function['Handler']} needs {source}"
    defined = {node.name for node in ast.parse(source.read_text()).body if isinstance(node, ast.FunctionDef)}
    assert handler_name in defined


def test_runtime_is_a_current_python(function: dict[str, Any]) -> None:
    match = re.fullmatch(r"python3\.(\d+)", function["Runtime"])
    assert match, function["Runtime"]
    assert int(match[1]) >= 12


def test_function_facts_the_example_dags_rely_on(function: dict[str, Any]) -> None:
    assert function["FunctionName"] == "example-lambda-function"
    assert function["Timeout"] == 30
    assert function["MemorySize"] == 128
    assert function["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "airflow"
    # The level comes from LoggingConfig.ApplicationLogLevel (Lambda's level wins over Powertools' own).
    assert "POWERTOOLS_LOG_LEVEL" not in function["Environment"]["Variables"]


def test_alias_and_no_async_retries(template: dict[str, Any], function: dict[str, Any]) -> None:
    assert function["AutoPublishAlias"] == "live"
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    # Lambda drops an event older than this, instead of running it after the task gave up waiting for it.
    assert function["EventInvokeConfig"]["MaximumEventAgeInSeconds"] <= DEFAULT_QUEUE_ALLOWANCE_SECONDS
    # Any explicit invoke config (here: the one for $LATEST) must not bring retries back.
    configs = resources_of_type(template, "AWS::Lambda::EventInvokeConfig")
    assert configs, "expected an explicit invoke config for unqualified ($LATEST) invocations"
    for name, config in configs.items():
        assert config["Properties"]["MaximumRetryAttempts"] == 0, name
        assert config["Properties"]["MaximumEventAgeInSeconds"] <= DEFAULT_QUEUE_ALLOWANCE_SECONDS, name
        assert config["Properties"]["FunctionName"] == Tag("Ref", "ExampleFunction"), name


def test_logs_go_to_a_short_lived_group_in_json_format(template: dict[str, Any], function: dict[str, Any]) -> None:
    logging_config = function["LoggingConfig"]
    # JSON with both levels at INFO: a success leaves platform.start/report, the correlation lines are sent.
    assert (logging_config["LogFormat"], logging_config["ApplicationLogLevel"], logging_config["SystemLogLevel"]) == (
        "JSON",
        "INFO",
        "INFO",
    )
    assert isinstance(logging_config["LogGroup"], Tag) and logging_config["LogGroup"].name == "Ref"
    group = template["Resources"][logging_config["LogGroup"].value]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["LogGroupName"] == f"/aws/lambda/{function['FunctionName']}"
    assert group["Properties"]["RetentionInDays"] <= 7


def test_powertools_layer_is_the_public_ssm_parameter_for_runtime_and_architecture(
    template: dict[str, Any], function: dict[str, Any]
) -> None:
    """The layer's ARN is read at deploy time from the parameter Powertools publishes, not pinned by number."""
    (layer,) = function["Layers"]
    assert isinstance(layer, Tag) and layer.name == "Sub"
    runtime = function["Runtime"]
    (architecture,) = function.get("Architectures", ["x86_64"])
    assert layer.value == (
        f"{{{{resolve:ssm:/aws/service/powertools/python/{architecture}/{runtime}/${{PowertoolsVersion}}}}}}"
    )
    version = template["Parameters"]["PowertoolsVersion"]
    assert re.fullmatch(version["AllowedPattern"], version["Default"])
    # Releases of the major the handler is tested with (lambda/requirements.txt), or "latest".
    for allowed in ("latest", "3.23.0", "3.37.0"):
        assert re.fullmatch(version["AllowedPattern"], allowed), allowed
    for refused in ("4.0.0", "27", "latest/", "3.23"):
        assert not re.fullmatch(version["AllowedPattern"], refused), refused


def test_local_requirements_pin_the_powertools_major_in_use() -> None:
    """lambda/requirements.txt and the installed Powertools (which the handler tests run) agree on 3.x."""
    requirements = (ROOT / "lambda" / "requirements.txt").read_text()
    assert re.search(r"^aws-lambda-powertools>=3[.\d]*,<4$", requirements, re.MULTILINE), requirements
    assert importlib.metadata.version("aws-lambda-powertools").split(".")[0] == "3"


def test_outputs_name_the_function_alias_and_log_group(template: dict[str, Any]) -> None:
    outputs = {name: output["Value"] for name, output in template["Outputs"].items()}
    assert outputs == {
        "FunctionName": Tag("Ref", "ExampleFunction"),
        "FunctionAliasArn": Tag("Ref", "ExampleFunction.Alias"),
        "LogGroupName": Tag("Ref", "ExampleFunctionLogGroup"),
        "DurableFunctionAliasArn": Tag("Ref", "DurableExampleFunction.Alias"),
    }


def test_loader_keeps_tags_instead_of_failing() -> None:
    """The helper itself: plain safe_load refuses these tags, ours keeps them."""
    text = "A: !GetAtt Fn.Arn\nB: !Sub ['x-${y}', {y: 1}]\nC: !If {Cond: [1, 2]}\n"
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load(text)
    assert load_template(text) == {
        "A": Tag("GetAtt", "Fn.Arn"),
        "B": Tag("Sub", ["x-${y}", {"y": 1}]),
        "C": Tag("If", {"Cond": [1, 2]}),
    }


def test_durable_function_is_durable_and_points_at_its_handler(template: dict[str, Any]) -> None:
    durable = resources_of_type(template, "AWS::Serverless::Function")["DurableExampleFunction"]["Properties"]
    assert durable["FunctionName"] == "example-durable-function"
    assert durable["DurableConfig"] == {"ExecutionTimeout": 3600, "RetentionPeriodInDays": 1}
    # Lambda refuses to start an execution of an unqualified durable function: the alias is what callers invoke.
    assert durable["AutoPublishAlias"] == "live"
    module_name, _, handler_name = durable["Handler"].rpartition(".")
    source = ROOT / durable["CodeUri"] / f"{module_name}.py"
    assert handler_name in {
        target.id
        for node in ast.parse(source.read_text()).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
