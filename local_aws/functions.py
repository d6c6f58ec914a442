"""What the stack knows about each Lambda function: the settings moto drops or cannot run, and where the code is.

moto keeps the function's metadata, but it cannot run code and forgets ``LoggingConfig``; this registry records
what ``CreateFunction``, ``UpdateFunctionCode``/``Configuration``, ``PublishVersion`` and the alias calls said, so
that ``Invoke`` can start the right code with the right settings, whatever name, ARN or qualifier it was given.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
import shutil
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

LATEST = "$LATEST"
DEFAULT_TIMEOUT = 3
DEFAULT_MEMORY_SIZE = 128
DEFAULT_RETRY_ATTEMPTS = 2

# arn:aws:lambda:us-east-1:123456789012:function:name[:qualifier], 123456789012:function:name[:qualifier],
# or name[:qualifier].
_FULL_ARN = re.compile(
    r"^arn:(?P<partition>[\w-]+):lambda:(?P<region>[\w-]+):(?P<account>\d{12}):function:(?P<name>[\w-]+)"
    r"(?::(?P<qualifier>[\w$-]+))?$"
)
_PARTIAL_ARN = re.compile(r"^(?P<account>\d{12}):function:(?P<name>[\w-]+)(?::(?P<qualifier>[\w$-]+))?$")
_NAME = re.compile(r"^(?P<name>[\w-]+)(?::(?P<qualifier>[\w$-]+))?$")

log = logging.getLogger(__name__)

S3Fetcher = Callable[[str, str, str, str | None], bytes]


class FunctionNotFound(LookupError):
    """No such function, version or alias; ``arn`` is what Lambda names in its 404 message."""

    def __init__(self, arn: str) -> None:
        super().__init__(f"Function not found: {arn}")
        self.arn = arn


class InvalidFunctionReference(ValueError):
    """The function name, ARN or qualifier of a request cannot be read."""


@dataclass(frozen=True)
class FunctionReference:
    """A function named the way a caller named it: name, partial or full ARN, with or without qualifier."""

    name: str
    qualifier: str | None = None
    region: str | None = None
    account: str | None = None


@dataclass(frozen=True)
class FunctionVersion:
    """One runnable configuration of a function: ``$LATEST`` as it is now, or a published version."""

    region: str
    name: str
    version: str
    function_arn: str
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    environment: Mapping[str, str]
    code_dir: str
    log_group: str
    log_format: str = "Text"
    # LoggingConfig's level filters; Lambda applies them in the JSON format only (INFO by default there).
    application_log_level: str = "INFO"
    system_log_level: str = "INFO"
    # TenancyConfig.TenantIsolationMode PER_TENANT: every Invoke names a tenant; an environment serves one.
    tenant_isolation: bool = False
    # Lambda Managed Instances: requests one execution environment runs at once (one process each, one
    # log stream for all of them); 1 for ordinary functions.
    per_environment_concurrency: int = 1
    # CreateFunction's CapacityProviderConfig as given (moto drops it; GetFunctionConfiguration returns it).
    capacity_provider_config: Mapping[str, Any] | None = None
    # DurableConfig as given (moto drops it): a function with one is durable, and Invoke starts an execution.
    durable_config: Mapping[str, Any] | None = None
    # Identifies this exact configuration, so that warm environments of an older one are never reused.
    config_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def managed_instances(self) -> bool:
        """Return whether the function runs on Lambda Managed Instances (JSON logs only, several requests at once)."""
        return bool((self.capacity_provider_config or {}).get("LambdaManagedInstancesCapacityProviderConfig"))

    @property
    def qualified_arn(self) -> str:
        """Return the ARN with this version as qualifier, as Lambda reports the executed function."""
        return f"{self.function_arn}:{self.version}"


@dataclass
class _FunctionRecord:
    latest: FunctionVersion
    versions: dict[str, FunctionVersion] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    # MaximumRetryAttempts per qualifier ("" for the unqualified function).
    retry_attempts: dict[str, int] = field(default_factory=dict)


def _per_environment_concurrency(request: Mapping[str, Any]) -> int:
    """Return how many requests an environment of this function runs at once (Managed Instances)."""
    capacity = (request.get("CapacityProviderConfig") or {}).get("LambdaManagedInstancesCapacityProviderConfig")
    if not capacity:
        return 1
    # Lambda's default is 16 per vCPU; a local environment has one.
    return max(1, int(capacity.get("PerExecutionEnvironmentMaxConcurrency") or 16))


def parse_function_reference(text: str) -> FunctionReference:
    """Read a ``FunctionName`` as Lambda accepts it (name, partial ARN, full ARN, each with optional qualifier)."""
    for pattern in (_FULL_ARN, _PARTIAL_ARN, _NAME):
        match = pattern.match(text)
        if match:
            parts = match.groupdict()
            return FunctionReference(
                name=parts["name"],
                qualifier=parts.get("qualifier"),
                region=parts.get("region"),
                account=parts.get("account"),
            )
    raise InvalidFunctionReference(f"Cannot read function name {text!r}: expected a name, partial ARN or full ARN")


class FunctionRegistry:
    """Record Lambda control-plane calls that moto accepted, and resolve invocations to a runnable version.

    :param code_root: directory under which each distinct code package is extracted once.
    :param fetch_s3: reads a code package given as ``S3Bucket``/``S3Key`` (from moto's S3).
    """

    def __init__(self, code_root: Path, fetch_s3: S3Fetcher | None = None) -> None:
        self._code_root = code_root
        self._fetch_s3 = fetch_s3
        self._lock = threading.Lock()
        self._functions: dict[tuple[str, str], _FunctionRecord] = {}
        self._code_dirs: dict[str, str] = {}

    # -- control plane -------------------------------------------------------------------------------------------

    def record_create(
        self, region: str, request: Mapping[str, Any], response: Mapping[str, Any], code_dir: str
    ) -> None:
        """Remember a function moto has just created, with the request's settings and its extracted code."""
        name = str(response.get("FunctionName") or request["FunctionName"])
        logging_config = request.get("LoggingConfig") or {}
        latest = FunctionVersion(
            region=region,
            name=name,
            version=LATEST,
            function_arn=_unqualified(str(response["FunctionArn"])),
            handler=str(request.get("Handler", "")),
            runtime=str(request.get("Runtime", "python3.11")),
            timeout=int(request.get("Timeout") or DEFAULT_TIMEOUT),
            memory_size=int(request.get("MemorySize") or DEFAULT_MEMORY_SIZE),
            environment=dict((request.get("Environment") or {}).get("Variables") or {}),
            code_dir=code_dir,
            log_group=str(logging_config.get("LogGroup") or f"/aws/lambda/{name}"),
            log_format=str(logging_config.get("LogFormat") or "Text"),
            application_log_level=str(logging_config.get("ApplicationLogLevel") or "INFO"),
            system_log_level=str(logging_config.get("SystemLogLevel") or "INFO"),
            tenant_isolation=(request.get("TenancyConfig") or {}).get("TenantIsolationMode") == "PER_TENANT",
            per_environment_concurrency=_per_environment_concurrency(request),
            capacity_provider_config=request.get("CapacityProviderConfig") or None,
            durable_config=request.get("DurableConfig") or None,
        )
        if latest.managed_instances:
            latest = replace(latest, log_format="JSON")  # Managed Instances log in the JSON format only
        record = _FunctionRecord(latest=latest)
        published = str(response.get("Version") or LATEST)
        if published != LATEST:
            record.versions[published] = replace(latest, version=published, config_id=uuid.uuid4().hex)
        with self._lock:
            self._functions[(region, name)] = record

    def record_code_update(self, region: str, reference: str, response: Mapping[str, Any], code_dir: str) -> list[str]:
        """Point ``$LATEST`` at new extracted code; return the config ids whose environments must not be reused."""
        with self._lock:
            record = self._record(region, reference)
            if record is None:
                return []
            retired = record.latest.config_id
            record.latest = replace(record.latest, code_dir=code_dir, config_id=uuid.uuid4().hex)
            self._note_published(record, response)
        return [retired]

    def record_configuration_update(
        self, region: str, reference: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> list[str]:
        """Apply a configuration change to ``$LATEST``; return the config ids whose environments must not be reused."""
        with self._lock:
            record = self._record(region, reference)
            if record is None:
                return []
            latest = record.latest
            changes: dict[str, Any] = {"config_id": uuid.uuid4().hex}
            if "Handler" in request:
                changes["handler"] = str(request["Handler"])
            if "Runtime" in request:
                changes["runtime"] = str(request["Runtime"])
            if "Timeout" in request:
                changes["timeout"] = int(request["Timeout"])
            if "MemorySize" in request:
                changes["memory_size"] = int(request["MemorySize"])
            if "Environment" in request:
                changes["environment"] = dict((request.get("Environment") or {}).get("Variables") or {})
            if "DurableConfig" in request:
                changes["durable_config"] = request.get("DurableConfig") or None
            logging_config = request.get("LoggingConfig")
            if logging_config:
                changes["log_group"] = str(logging_config.get("LogGroup") or latest.log_group)
                changes["log_format"] = str(logging_config.get("LogFormat") or latest.log_format)
                changes["application_log_level"] = str(
                    logging_config.get("ApplicationLogLevel") or latest.application_log_level
                )
                changes["system_log_level"] = str(logging_config.get("SystemLogLevel") or latest.system_log_level)
            record.latest = replace(latest, **changes)
        return [latest.config_id]

    def record_publish(self, region: str, reference: str, response: Mapping[str, Any]) -> None:
        """Snapshot ``$LATEST`` under the version number moto assigned."""
        with self._lock:
            record = self._record(region, reference)
            if record is not None:
                self._note_published(record, response)

    def record_alias(self, region: str, reference: str, alias: str, version: str) -> None:
        """Point an alias at a version (CreateAlias, UpdateAlias)."""
        with self._lock:
            record = self._record(region, reference)
            if record is not None:
                record.aliases[alias] = version

    def delete_alias(self, region: str, reference: str, alias: str) -> None:
        """Forget an alias."""
        with self._lock:
            record = self._record(region, reference)
            if record is not None:
                record.aliases.pop(alias, None)

    def delete(self, region: str, reference: str) -> list[str]:
        """Forget a function (or one of its versions); return the config ids whose environments must go."""
        parsed = parse_function_reference(reference)
        with self._lock:
            record = self._functions.get((region, parsed.name))
            if record is None:
                return []
            if parsed.qualifier and parsed.qualifier != LATEST:
                gone = record.versions.pop(parsed.qualifier, None)
                return [gone.config_id] if gone else []
            del self._functions[(region, parsed.name)]
            return [record.latest.config_id, *(v.config_id for v in record.versions.values())]

    def record_retry_attempts(self, region: str, reference: str, qualifier: str | None, attempts: int | None) -> None:
        """Remember ``MaximumRetryAttempts`` of an event invoke config (``None`` removes it)."""
        parsed = parse_function_reference(reference)
        key = _retry_key(qualifier or parsed.qualifier)
        with self._lock:
            record = self._record(region, parsed.name)
            if record is None:
                return
            if attempts is None:
                record.retry_attempts.pop(key, None)
            else:
                record.retry_attempts[key] = attempts

    def retry_attempts(self, region: str, name: str, qualifier: str | None) -> int:
        """Return how many times Lambda retries a failed asynchronous invocation of this function and qualifier."""
        with self._lock:
            record = self._functions.get((region, name))
            if record is None:
                return DEFAULT_RETRY_ATTEMPTS
            for key in (_retry_key(qualifier), ""):
                if key in record.retry_attempts:
                    return record.retry_attempts[key]
        return DEFAULT_RETRY_ATTEMPTS

    def reset(self) -> list[str]:
        """Forget everything (moto was reset); return every config id in use."""
        with self._lock:
            retired = [
                version.config_id
                for record in self._functions.values()
                for version in (record.latest, *record.versions.values())
            ]
            self._functions.clear()
        return retired

    # -- data plane ----------------------------------------------------------------------------------------------

    def resolve(self, region: str, reference: str, qualifier: str | None = None) -> tuple[FunctionVersion, str]:
        """Return the version an invocation runs and the ARN it was invoked as.

        :param qualifier: the ``Qualifier`` query parameter, if any; it must agree with a qualifier in the name.
        """
        parsed = parse_function_reference(reference)
        if parsed.qualifier and qualifier and parsed.qualifier != qualifier:
            raise InvalidFunctionReference(
                f"The derived qualifier from the function name ({parsed.qualifier}) does not match the specified "
                f"qualifier ({qualifier})"
            )
        wanted = qualifier or parsed.qualifier
        region = parsed.region or region
        with self._lock:
            record = self._functions.get((region, parsed.name))
            if record is None:
                account = parsed.account or "123456789012"
                arn = f"arn:aws:lambda:{region}:{account}:function:{parsed.name}"
                raise FunctionNotFound(f"{arn}:{wanted}" if wanted else arn)
            base_arn = record.latest.function_arn
            if wanted is None or wanted == LATEST:
                version = record.latest
            elif wanted in record.versions:
                version = record.versions[wanted]
            elif wanted in record.aliases and record.aliases[wanted] in record.versions:
                version = record.versions[record.aliases[wanted]]
            elif wanted in record.aliases and record.aliases[wanted] == LATEST:
                version = record.latest
            else:
                raise FunctionNotFound(f"{base_arn}:{wanted}")
        return version, f"{base_arn}:{wanted}" if wanted else base_arn

    def find(self, region: str, reference: str, qualifier: str | None = None) -> FunctionVersion | None:
        """Return the version a control-plane read refers to, or ``None`` if unknown (for response enrichment)."""
        try:
            return self.resolve(region, reference, qualifier)[0]
        except (FunctionNotFound, InvalidFunctionReference):
            return None

    # -- helpers -------------------------------------------------------------------------------------------------

    def _record(self, region: str, reference: str) -> _FunctionRecord | None:
        """Return a function's record, or ``None`` (logged) for a function moto has but this registry never saw."""
        parsed = parse_function_reference(reference)
        record = self._functions.get((parsed.region or region, parsed.name))
        if record is None:
            log.warning("moto changed function %s, which was not created through local_aws: not recorded", reference)
        return record

    @staticmethod
    def _note_published(record: _FunctionRecord, response: Mapping[str, Any]) -> None:
        published = str(response.get("Version") or LATEST)
        if published != LATEST and published not in record.versions:
            record.versions[published] = replace(record.latest, version=published, config_id=uuid.uuid4().hex)

    def extract_code(self, region: str, code: Mapping[str, Any]) -> str:
        """Unzip a code package (``ZipFile`` or ``S3Bucket``/``S3Key``) once per distinct content; return its directory.

        Raises ``ValueError`` naming the cause when the package cannot run locally.
        """
        if code.get("ZipFile"):
            archive = base64.b64decode(code["ZipFile"])
        elif code.get("S3Bucket") and code.get("S3Key"):
            if self._fetch_s3 is None:
                raise ValueError("Code given as S3Bucket/S3Key, but this registry cannot read S3")
            archive = self._fetch_s3(region, str(code["S3Bucket"]), str(code["S3Key"]), code.get("S3ObjectVersion"))
        else:
            raise ValueError("Only ZipFile or S3Bucket/S3Key code packages can run locally (no ImageUri)")
        digest = hashlib.sha256(archive).hexdigest()
        with self._lock:
            known = self._code_dirs.get(digest)
        if known and Path(known).is_dir():
            return known
        self._code_root.mkdir(parents=True, exist_ok=True)
        target = Path(tempfile.mkdtemp(prefix=f"code-{digest[:12]}-", dir=self._code_root))
        try:
            with zipfile.ZipFile(io.BytesIO(archive)) as package:
                package.extractall(target)
        except zipfile.BadZipFile as err:
            shutil.rmtree(target, ignore_errors=True)
            raise ValueError(f"The code package is not a valid zip file: {err}") from err
        with self._lock:
            self._code_dirs[digest] = str(target)
        return str(target)


def _unqualified(arn: str) -> str:
    match = _FULL_ARN.match(arn)
    if match and match.group("qualifier"):
        return arn.rsplit(":", 1)[0]
    return arn


def _retry_key(qualifier: str | None) -> str:
    return "" if qualifier in (None, "", LATEST) else str(qualifier)
