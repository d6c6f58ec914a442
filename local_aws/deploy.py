"""Deploy the functions of a SAM template into the local stack with plain boto3 calls.

Not CloudFormation: only what the example needs is read (``AWS::Serverless::Function`` with ``Globals`` and
``DurableConfig``, ``AWS::Logs::LogGroup``, ``AWS::Lambda::EventInvokeConfig`` and the SAM ``EventInvokeConfig``
property), and the intrinsic functions ``Ref``, ``Fn::Sub``, ``Fn::GetAtt`` and ``Fn::Join``. Running it twice
updates in place.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
ROLE_NAME = "local-aws-lambda-execution"
# Lambda says ResourceConflictException when something exists already; moto says ConflictException for aliases.
_CONFLICT = frozenset({"ResourceConflictException", "ConflictException"})
_SUB_VARIABLE = re.compile(r"\$\{(?P<name>[^}!][^}]*)\}")


class DeployError(RuntimeError):
    """The template cannot be deployed locally; the message names the resource and the cause."""


@dataclass(frozen=True)
class DeployedFunction:
    """What was deployed for one function."""

    logical_id: str
    function_name: str
    function_arn: str
    version: str | None
    alias: str | None
    log_group: str


# -- reading the template ----------------------------------------------------------------------------------------


class _TemplateLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation short-form tags (``!Sub``, ``!Ref``, ...) as their long form."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}": value}


_TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    """Read a CloudFormation/SAM template, tolerating short-form intrinsic tags."""
    try:
        document = yaml.load(path.read_text(), Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as err:
        raise DeployError(f"Cannot read template {path}: {err}") from err
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise DeployError(f"Template {path} has no Resources section")
    return document


class _Resolver:
    """Evaluate the intrinsic functions the example template uses, against local names."""

    def __init__(self, template: Mapping[str, Any], *, region: str, stack_name: str, parameters: Mapping[str, str]):
        self._template = template
        self._pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self._parameters = dict(parameters)
        for name, spec in (template.get("Parameters") or {}).items():
            if name not in self._parameters and isinstance(spec, dict) and "Default" in spec:
                self._parameters[name] = str(spec["Default"])
        self._region = region
        self._stack_name = stack_name

    def resolve(self, value: Any, where: str) -> Any:
        """Return ``value`` with every intrinsic function evaluated; ``where`` names it in errors."""
        if isinstance(value, list):
            return [self.resolve(item, where) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            if key == "Ref":
                return self._ref(str(argument), where)
            if key == "Fn::Sub":
                return self._sub(argument, where)
            if key == "Fn::GetAtt":
                return self._get_att(argument, where)
            if key == "Fn::Join":
                delimiter, items = argument
                return str(delimiter).join(str(self.resolve(item, where)) for item in items)
            if key.startswith("Fn::"):
                raise DeployError(f"{where}: {key} is not supported by local_aws deploy")
        return {key: self.resolve(item, f"{where}.{key}") for key, item in value.items()}

    def function_name(self, logical_id: str) -> str:
        """Return the physical name of a function resource (its ``FunctionName`` or a generated one)."""
        resource = self._resource(logical_id, where=logical_id)
        explicit = (resource.get("Properties") or {}).get("FunctionName")
        if explicit is not None:
            return str(self.resolve(explicit, f"{logical_id}.FunctionName"))
        return f"{self._stack_name}-{logical_id}"[:64]

    def _ref(self, name: str, where: str) -> str:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._parameters:
            return self._parameters[name]
        resource = self._resource(name, where)
        kind = resource.get("Type")
        properties = resource.get("Properties") or {}
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return self.function_name(name)
        if kind == "AWS::Logs::LogGroup" and "LogGroupName" in properties:
            return str(self.resolve(properties["LogGroupName"], f"{name}.LogGroupName"))
        if kind == "AWS::IAM::Role":
            return ROLE_NAME
        raise DeployError(f"{where}: cannot resolve Ref {name} ({kind}) locally")

    def _get_att(self, argument: Any, where: str) -> str:
        logical_id, attribute = (argument if isinstance(argument, list) else str(argument).split(".", 1))[:2]
        resource = self._resource(str(logical_id), where)
        kind = resource.get("Type")
        if attribute == "Arn" and kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            name = self.function_name(str(logical_id))
            return f"arn:aws:lambda:{self._region}:{ACCOUNT_ID}:function:{name}"
        if attribute == "Arn" and kind == "AWS::Logs::LogGroup":
            group = self._ref(str(logical_id), where)
            return f"arn:aws:logs:{self._region}:{ACCOUNT_ID}:log-group:{group}:*"
        if attribute == "Arn" and kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT_ID}:role/{ROLE_NAME}"
        raise DeployError(f"{where}: cannot resolve GetAtt {logical_id}.{attribute} locally")

    def _sub(self, argument: Any, where: str) -> str:
        if isinstance(argument, list):
            text, variables = str(argument[0]), {k: self.resolve(v, where) for k, v in (argument[1] or {}).items()}
        else:
            text, variables = str(argument), {}

        def replace(match: re.Match[str]) -> str:
            name = match.group("name").strip()
            if name in variables:
                return str(variables[name])
            if "." in name and name not in self._pseudo:
                return self._get_att(name.split(".", 1), where)
            return self._ref(name, where)

        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")

    def _resource(self, logical_id: str, where: str) -> Mapping[str, Any]:
        resource = (self._template.get("Resources") or {}).get(logical_id)
        if not isinstance(resource, dict):
            raise DeployError(f"{where}: no resource or parameter named {logical_id}")
        return resource


# -- deploying ---------------------------------------------------------------------------------------------------


def deploy_template(
    endpoint_url: str,
    template_path: str | Path = "template.yml",
    *,
    region: str = "us-east-1",
    timeout: int | None = None,
    stack_name: str = "local",
    parameters: Mapping[str, str] | None = None,
) -> list[DeployedFunction]:
    """Create or update every function of a SAM template in the stack at ``endpoint_url``.

    :param timeout: overrides every function's ``Timeout`` (seconds), e.g. to make a demo time out sooner.
    :param parameters: template parameter values (defaults come from the template).
    """
    path = Path(template_path)
    template = load_template(path)
    resolver = _Resolver(template, region=region, stack_name=stack_name, parameters=parameters or {})
    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=region)
    config = Config(retries={"max_attempts": 2, "mode": "standard"})
    clients = {
        name: session.client(name, endpoint_url=endpoint_url, config=config) for name in ("iam", "lambda", "logs")
    }
    resources: dict[str, Any] = template["Resources"]

    for logical_id, resource in resources.items():
        if resource.get("Type") == "AWS::Logs::LogGroup":
            _deploy_log_group(
                clients["logs"], logical_id, resolver.resolve(resource.get("Properties") or {}, logical_id)
            )

    role_arn = _ensure_role(clients["iam"])
    globals_ = resolver.resolve(((template.get("Globals") or {}).get("Function")) or {}, "Globals.Function")
    deployed = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = _merge_globals(globals_, resolver.resolve(resource.get("Properties") or {}, logical_id))
        deployed.append(
            _deploy_function(
                clients["lambda"],
                logical_id,
                properties,
                name=resolver.function_name(logical_id),
                code_root=path.parent,
                role_arn=role_arn,
                timeout=timeout,
            )
        )

    for logical_id, resource in resources.items():
        if resource.get("Type") == "AWS::Lambda::EventInvokeConfig":
            properties = resolver.resolve(resource.get("Properties") or {}, logical_id)
            _put_event_invoke_config(
                clients["lambda"], str(properties["FunctionName"]), properties.get("Qualifier"), properties
            )
    return deployed


def _deploy_function(
    client: Any,
    logical_id: str,
    properties: Mapping[str, Any],
    *,
    name: str,
    code_root: Path,
    role_arn: str,
    timeout: int | None,
) -> DeployedFunction:
    code_uri = properties.get("CodeUri")
    if not isinstance(code_uri, str):
        raise DeployError(f"{logical_id}: CodeUri must be a local directory, got {code_uri!r}")
    code_dir = (code_root / code_uri).resolve()
    if not code_dir.is_dir():
        raise DeployError(f"{logical_id}: CodeUri {code_uri} is not a directory under {code_root}")
    if "Handler" not in properties:
        raise DeployError(f"{logical_id}: no Handler")
    archive = zip_directory(code_dir)
    settings: dict[str, Any] = {
        "Handler": str(properties["Handler"]),
        "Runtime": str(properties.get("Runtime", "python3.11")),
        "Timeout": int(timeout if timeout is not None else properties.get("Timeout", 3)),
        "MemorySize": int(properties.get("MemorySize", 128)),
        "Environment": {
            "Variables": {k: str(v) for k, v in ((properties.get("Environment") or {}).get("Variables") or {}).items()}
        },
        "Role": role_arn,
    }
    if properties.get("Description"):
        settings["Description"] = str(properties["Description"])
    logging_config = properties.get("LoggingConfig")
    if logging_config:
        settings["LoggingConfig"] = {k: str(v) for k, v in logging_config.items()}
    durable_config = properties.get("DurableConfig")
    if durable_config:
        settings["DurableConfig"] = {k: int(v) if str(v).isdigit() else v for k, v in durable_config.items()}
    try:
        response = client.create_function(FunctionName=name, Code={"ZipFile": archive}, **settings)
        log.info("Created function %s", name)
    except ClientError as err:
        if err.response["Error"]["Code"] not in _CONFLICT:
            raise DeployError(f"{logical_id}: CreateFunction {name} failed: {err}") from err
        client.update_function_code(FunctionName=name, ZipFile=archive)
        response = client.update_function_configuration(FunctionName=name, **settings)
        log.info("Updated function %s", name)

    alias = properties.get("AutoPublishAlias")
    version = None
    if alias:
        version = str(client.publish_version(FunctionName=name)["Version"])
        try:
            client.create_alias(FunctionName=name, Name=str(alias), FunctionVersion=version)
        except ClientError as err:
            if err.response["Error"]["Code"] not in _CONFLICT:
                raise DeployError(f"{logical_id}: CreateAlias {alias} of {name} failed: {err}") from err
            client.update_alias(FunctionName=name, Name=str(alias), FunctionVersion=version)
        log.info("Published %s version %s as alias %s", name, version, alias)

    event_config = properties.get("EventInvokeConfig")
    if event_config:
        # SAM attaches the config to the alias when there is one, else to $LATEST.
        _put_event_invoke_config(client, name, str(alias) if alias else "$LATEST", event_config)

    log_group = (logging_config or {}).get("LogGroup") or f"/aws/lambda/{name}"
    return DeployedFunction(logical_id, name, str(response["FunctionArn"]), version, alias, str(log_group))


def _put_event_invoke_config(client: Any, name: str, qualifier: str | None, config: Mapping[str, Any]) -> None:
    arguments: dict[str, Any] = {"FunctionName": name}
    if qualifier:
        arguments["Qualifier"] = str(qualifier)
    if "MaximumRetryAttempts" in config:
        arguments["MaximumRetryAttempts"] = int(config["MaximumRetryAttempts"])
    if "MaximumEventAgeInSeconds" in config:
        arguments["MaximumEventAgeInSeconds"] = int(config["MaximumEventAgeInSeconds"])
    client.put_function_event_invoke_config(**arguments)


def _deploy_log_group(client: Any, logical_id: str, properties: Mapping[str, Any]) -> None:
    name = properties.get("LogGroupName")
    if not name:
        raise DeployError(f"{logical_id}: a log group needs a LogGroupName to be deployed locally")
    try:
        client.create_log_group(logGroupName=str(name))
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise DeployError(f"{logical_id}: CreateLogGroup {name} failed: {err}") from err
    if properties.get("RetentionInDays"):
        client.put_retention_policy(logGroupName=str(name), retentionInDays=int(properties["RetentionInDays"]))


def _ensure_role(client: Any) -> str:
    """Return the ARN of an execution role (moto's Lambda checks that the role exists; nothing enforces it)."""
    try:
        return str(client.get_role(RoleName=ROLE_NAME)["Role"]["Arn"])
    except ClientError as err:
        if err.response["Error"]["Code"] != "NoSuchEntity":
            raise
    document = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
    )
    return str(client.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=document)["Role"]["Arn"])


def _merge_globals(globals_: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """Apply SAM ``Globals.Function``: the function's own values win; environment variables are merged."""
    merged = {**globals_, **properties}
    global_vars = (globals_.get("Environment") or {}).get("Variables") or {}
    own_vars = (properties.get("Environment") or {}).get("Variables") or {}
    if global_vars or own_vars:
        merged["Environment"] = {"Variables": {**global_vars, **own_vars}}
    return merged


def zip_directory(directory: Path) -> bytes:
    """Zip a code directory as ``sam build`` would package it (no caches), with stable timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            info = zipfile.ZipInfo(str(path.relative_to(directory)), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
