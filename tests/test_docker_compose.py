"""Check docker-compose.yaml and the Dockerfile without Docker: the local Airflow 3 stack is complete and consistent.

The file is validated statically here; ``docker compose config`` (or the standalone ``docker-compose``)
also runs when a compose binary is installed, since it needs no engine. ``scripts/compose-check`` starts
the stack for real (a Docker engine, several minutes; see docs/docker-compose.md).
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# Airflow 3 runs these apart; each long-running service and the `airflow` command it runs.
AIRFLOW_COMPONENTS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
AIRFLOW_SERVICES = {"airflow-init", *AIRFLOW_COMPONENTS}
REQUIRED_SERVICES = {"postgres", *AIRFLOW_SERVICES}
DAGS_MOUNT = "./dags:/opt/airflow/dags"
AWS_CONFIG = "/home/airflow/.aws"
# Only these call AWS: LocalExecutor runs `execute` (the invoke) in the scheduler's container; the
# triggerer reads CloudWatch Logs. No other service gets the host's AWS credentials.
AWS_SERVICES = {"airflow-scheduler", "airflow-triggerer"}
# Secrets every Airflow service needs, each from a host variable that must be set (no public default).
SECRETS = {
    "AIRFLOW__CORE__FERNET_KEY": "AIRFLOW_FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET": "AIRFLOW_JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY": "AIRFLOW_API_SECRET_KEY",
}
COMPOSE_ENV = ROOT / "scripts" / "compose-env"
# Settings that must be equal in every Airflow service for the components to work together.
SHARED_SETTINGS = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CORE__AUTH_MANAGER",
)
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, $VAR; "$$" is compose's escaped dollar.
_VARIABLE = re.compile(r"(?<!\$)\$(?:\{(?P<braced>[A-Za-z_]\w*)(?P<modifier>:?[-?+][^}]*)?\}|(?P<bare>[A-Za-z_]\w*))")


def _words(command: str | list[str] | None) -> list[str]:
    """Return a compose ``command`` as a list of words, whichever form it was written in."""
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def _build_context(service: dict[str, Any]) -> str | None:
    build = service.get("build")
    return build.get("context") if isinstance(build, dict) else build


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _volume_source_and_target(volume: str | dict[str, Any]) -> tuple[str, str]:
    if isinstance(volume, dict):
        return str(volume.get("source", "")), str(volume.get("target", ""))
    source, _, rest = volume.partition(":")
    return source, rest.split(":")[0]


def _is_named_volume(source: str) -> bool:
    return bool(source) and not source.startswith((".", "/", "~", "$"))


def _dependencies(service: dict[str, Any]) -> list[str]:
    depends_on = service.get("depends_on") or []
    return list(depends_on)


def variable_problems(text: str) -> list[str]:
    """Return host variables that the file uses without a default and without a comment that explains them."""
    comment_lines = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    documented = set(re.findall(r"[A-Za-z_]\w*", "\n".join(comment_lines)))
    problems = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for match in _VARIABLE.finditer(line):
            name = match["braced"] or match["bare"]
            has_default = bool(match["modifier"]) and match["modifier"].lstrip(":")[0] == "-"
            if not has_default and name not in documented:
                problems.append(f"${{{name}}} has no default and no comment explaining it")
    return problems


def compose_problems(doc: dict[str, Any], text: str) -> list[str]:
    """Return what is wrong with a parsed compose file (``text`` is its source, for variables and comments)."""
    problems: list[str] = []
    services: dict[str, dict[str, Any]] = doc.get("services") or {}
    declared_volumes = set(doc.get("volumes") or {})

    problems += [f"missing service {name}" for name in sorted(REQUIRED_SERVICES - set(services))]

    for name, airflow_command in AIRFLOW_COMPONENTS.items():
        if name in services:
            words = _words(services[name].get("command"))
            if words != [airflow_command]:
                problems.append(f"{name} runs {words}, expected [{airflow_command!r}]")
            if "healthcheck" not in services[name]:
                problems.append(f"{name} has no healthcheck")
    if "airflow-init" in services and _words(services["airflow-init"].get("command"))[:2] != ["db", "migrate"]:
        problems.append("airflow-init does not run `db migrate`")

    airflow = {name: services[name] for name in sorted(AIRFLOW_SERVICES & set(services))}
    if len({service.get("image") for service in airflow.values()}) > 1:
        problems.append("the Airflow services do not share one image")
    for name, service in airflow.items():
        if _build_context(service) != ".":
            problems.append(f"{name} is not built from ./Dockerfile")
        if not any(str(volume).startswith(DAGS_MOUNT) for volume in service.get("volumes") or []):
            problems.append(f"{name} does not mount {DAGS_MOUNT}")
        if service.get("profiles"):
            problems.append(f"{name} only starts with a profile")
        env = _environment(service)
        if env.get("AIRFLOW__CORE__LOAD_EXAMPLES", "").lower() != "false":
            problems.append(f"{name} loads Airflow's example DAGs")
        for key in ("AWS_PROFILE", "LAMBDA_FUNCTION_NAME", "LAMBDA_QUALIFIER"):
            if key not in env:
                problems.append(f"{name} does not pass {key}")
        mounts_aws = any(_volume_source_and_target(v)[1] == AWS_CONFIG for v in service.get("volumes") or [])
        if name in AWS_SERVICES and not mounts_aws:
            problems.append(f"{name} does not mount the host's AWS configuration")
        if name not in AWS_SERVICES and mounts_aws:
            problems.append(f"{name} mounts the host's AWS configuration but does not call AWS")
        for key, variable in SECRETS.items():
            if not re.fullmatch(rf"\$\{{{variable}:\?[^}}]+\}}", env.get(key, "")):
                problems.append(f"{name}: {key} is not the required variable ${{{variable}:?...}}")
    for key in SHARED_SETTINGS:
        values = {_environment(service).get(key) for service in airflow.values()}
        if len(values) != 1 or None in values:
            problems.append(f"{key} is not set to one value in every Airflow service")

    if "airflow-apiserver" in services:
        url = _environment(services["airflow-apiserver"]).get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "")
        parts = urlsplit(url)
        if parts.hostname != "airflow-apiserver" or parts.port != 8080 or parts.path != "/execution/":
            problems.append(f"execution API URL {url!r} does not point at airflow-apiserver:8080/execution/")

    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source, _ = _volume_source_and_target(volume)
            if _is_named_volume(source) and source not in declared_volumes:
                problems.append(f"{name} uses volume {source!r}, which is not declared")
        for target in _dependencies(service):
            if target not in services:
                problems.append(f"{name} depends on {target!r}, which is not a service")
            elif services[target].get("profiles") and not service.get("profiles"):
                problems.append(f"{name} depends on {target!r}, which only starts with a profile")

    local_aws = services.get("local-aws")
    if local_aws is None:
        problems.append("missing service local-aws")
    else:
        if not local_aws.get("profiles"):
            problems.append("local-aws starts by default; it belongs under a profile")
        if _words(local_aws.get("command"))[:4] != ["python", "-m", "local_aws", "serve"]:
            problems.append("local-aws does not run `python -m local_aws serve`")

    return problems + variable_problems(text)


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    return yaml.safe_load(compose_text)


def test_compose_file_has_no_problems(compose: dict[str, Any], compose_text: str) -> None:
    assert compose_problems(compose, compose_text) == []


def _drop_triggerer(doc: dict[str, Any]) -> None:
    del doc["services"]["airflow-triggerer"]


def _triggerer_runs_scheduler(doc: dict[str, Any]) -> None:
    doc["services"]["airflow-triggerer"]["command"] = "scheduler"


def _scheduler_without_dags(doc: dict[str, Any]) -> None:
    service = doc["services"]["airflow-scheduler"]
    service["volumes"] = [v for v in service["volumes"] if not v.startswith("./dags")]


def _other_image(doc: dict[str, Any]) -> None:
    doc["services"]["airflow-dag-processor"]["image"] = "apache/airflow:3.3.2"


def _undeclared_volume(doc: dict[str, Any]) -> None:
    doc["services"]["postgres"]["volumes"] = ["pgdata:/var/lib/postgresql/data"]


def _unknown_dependency(doc: dict[str, Any]) -> None:
    doc["services"]["airflow-scheduler"]["depends_on"]["airflow-webserver"] = {"condition": "service_started"}


def _depends_on_profiled(doc: dict[str, Any]) -> None:
    doc["services"]["airflow-triggerer"]["depends_on"]["local-aws"] = {"condition": "service_started"}


def _local_aws_by_default(doc: dict[str, Any]) -> None:
    del doc["services"]["local-aws"]["profiles"]


def _split_jwt_secret(doc: dict[str, Any]) -> None:
    # The services share one environment mapping (a YAML anchor): give this one its own copy.
    service = doc["services"]["airflow-apiserver"]
    service["environment"] = {**service["environment"], "AIRFLOW__API_AUTH__JWT_SECRET": "another"}


def _no_healthcheck(doc: dict[str, Any]) -> None:
    del doc["services"]["airflow-triggerer"]["healthcheck"]


def _aws_in_apiserver(doc: dict[str, Any]) -> None:
    service = doc["services"]["airflow-apiserver"]
    service["volumes"] = [*service["volumes"], "${HOME}/.aws:/home/airflow/.aws:ro"]


def _triggerer_without_aws(doc: dict[str, Any]) -> None:
    service = doc["services"]["airflow-triggerer"]
    service["volumes"] = [v for v in service["volumes"] if ".aws" not in v]


def _public_jwt_default(doc: dict[str, Any]) -> None:
    doc["services"]["airflow-scheduler"]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] = "${AIRFLOW_JWT_SECRET:-x}"


def _empty_fernet_key(doc: dict[str, Any]) -> None:
    doc["services"]["airflow-scheduler"]["environment"]["AIRFLOW__CORE__FERNET_KEY"] = ""


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(_drop_triggerer, "missing service airflow-triggerer", id="no-triggerer"),
        pytest.param(_triggerer_runs_scheduler, "airflow-triggerer runs ['scheduler']", id="triggerer-command"),
        pytest.param(_scheduler_without_dags, "airflow-scheduler does not mount ./dags", id="no-dags"),
        pytest.param(_other_image, "do not share one image", id="image"),
        pytest.param(_undeclared_volume, "'pgdata', which is not declared", id="volume"),
        pytest.param(_unknown_dependency, "'airflow-webserver', which is not a service", id="depends-on"),
        pytest.param(_depends_on_profiled, "'local-aws', which only starts with a profile", id="profiled-dep"),
        pytest.param(_local_aws_by_default, "local-aws starts by default", id="profile"),
        pytest.param(_split_jwt_secret, "AIRFLOW__API_AUTH__JWT_SECRET is not set to one value", id="jwt-secret"),
        pytest.param(_no_healthcheck, "airflow-triggerer has no healthcheck", id="healthcheck"),
        pytest.param(_aws_in_apiserver, "airflow-apiserver mounts the host's AWS configuration", id="aws-mount"),
        pytest.param(_triggerer_without_aws, "airflow-triggerer does not mount the host's AWS", id="aws-needed"),
        pytest.param(_public_jwt_default, "AIRFLOW__API_AUTH__JWT_SECRET is not the required", id="jwt-default"),
        pytest.param(_empty_fernet_key, "AIRFLOW__CORE__FERNET_KEY is not the required", id="fernet-empty"),
    ],
)
def test_validator_flags_a_broken_copy(
    compose: dict[str, Any], compose_text: str, mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    """Each check above can fail: a copy with one mistake is reported, for that mistake."""
    broken = copy.deepcopy(compose)
    mutate(broken)
    problems = compose_problems(broken, compose_text)
    assert any(expected in problem for problem in problems), problems


def test_validator_flags_an_unexplained_variable(compose_text: str) -> None:
    broken = compose_text.replace(
        "    LAMBDA_QUALIFIER: ${LAMBDA_QUALIFIER:-live}\n",
        "    LAMBDA_QUALIFIER: ${LAMBDA_QUALIFIER:-live}\n"
        "    REGION: ${SOME_REGION}\n"
        "    ESCAPED: $${NOT_A_VARIABLE}\n",
    )
    assert broken != compose_text
    problems = compose_problems(yaml.safe_load(broken), broken)
    assert problems == ["${SOME_REGION} has no default and no comment explaining it"]


def test_every_host_variable_is_explained_in_the_header(compose_text: str) -> None:
    """Variables are not only defaulted but listed where a reader looks first."""
    header = compose_text.split("\nx-airflow-common", 1)[0]
    used = {match["braced"] or match["bare"] for match in _VARIABLE.finditer(compose_text)}
    assert used, "expected host variables in docker-compose.yaml"
    assert {name for name in used if name not in header} == set()


def test_lambda_defaults_match_the_template(compose: dict[str, Any]) -> None:
    """Out of the box the DAGs invoke the function and alias that template.yml deploys."""
    template = (ROOT / "template.yml").read_text()
    function_name = re.search(r"^\s+FunctionName: ([\w-]+)$", template, re.MULTILINE)
    alias = re.search(r"^\s+AutoPublishAlias: (\w+)$", template, re.MULTILINE)
    assert function_name and alias
    env = compose["services"]["airflow-scheduler"]["environment"]
    assert env["LAMBDA_FUNCTION_NAME"] == f"${{LAMBDA_FUNCTION_NAME:-{function_name[1]}}}"
    assert env["LAMBDA_QUALIFIER"] == f"${{LAMBDA_QUALIFIER:-{alias[1]}}}"


def _compose_binary() -> list[str] | None:
    """Return the compose command available here (the docker plugin or the standalone one), if any."""
    if shutil.which("docker"):
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60, check=False)
        if plugin.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _compose_config(compose_file: Path, env_file: Path) -> subprocess.CompletedProcess[str]:
    """Run `config` with `env_file` as the only .env (not the checkout's own) and no secrets from this shell."""
    binary = _compose_binary()
    if binary is None:
        pytest.skip("no compose binary (docker compose plugin or Debian's docker-compose) on this machine")
    command = [*binary, "-f", str(compose_file), "--project-directory", str(ROOT), "--env-file", str(env_file)]
    env = {key: value for key, value in os.environ.items() if key not in SECRETS.values()}
    env["HOME"] = os.environ.get("HOME", str(ROOT))
    return subprocess.run(
        [*command, "--profile", "local-aws", "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _env_file(path: Path) -> Path:
    """Write a .env with fresh secrets with scripts/compose-env, the way docs/docker-compose.md says."""
    subprocess.run([str(COMPOSE_ENV), str(path)], check=True, capture_output=True, timeout=60)
    return path


def _read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def test_compose_env_writes_each_secret_once_and_keeps_existing_ones(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    env_file = tmp_path / ".env"
    env_file.write_text("AIRFLOW_JWT_SECRET=mine")  # no final newline
    _env_file(env_file)
    written = _read_env(env_file)
    assert set(written) == set(SECRETS.values())
    assert written["AIRFLOW_JWT_SECRET"] == "mine"
    Fernet(written["AIRFLOW_FERNET_KEY"])  # a valid Fernet key
    assert re.fullmatch("[0-9a-f]{64}", written["AIRFLOW_API_SECRET_KEY"])
    assert env_file.stat().st_mode & 0o077 == 0, "the secrets file is readable by others"
    _env_file(env_file)
    assert _read_env(env_file) == written
    other = _read_env(_env_file(tmp_path / "other.env"))
    assert all(other[name] != written[name] for name in ("AIRFLOW_FERNET_KEY", "AIRFLOW_API_SECRET_KEY"))


def test_compose_config_accepts_the_file(tmp_path: Path) -> None:
    result = _compose_config(COMPOSE_FILE, _env_file(tmp_path / ".env"))
    assert result.returncode == 0, result.stderr


def test_compose_config_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    empty = tmp_path / ".env"
    empty.write_text("")
    result = _compose_config(COMPOSE_FILE, empty)
    assert result.returncode != 0
    assert "scripts/compose-env" in result.stdout + result.stderr


def test_compose_config_rejects_a_broken_copy(compose_text: str, tmp_path: Path) -> None:
    broken = compose_text.replace(
        "      airflow-apiserver:\n        condition: service_healthy",
        "      airflow-nowhere:\n        condition: service_healthy",
    )
    assert broken != compose_text
    (tmp_path / "docker-compose.yaml").write_text(broken)
    result = _compose_config(tmp_path / "docker-compose.yaml", _env_file(tmp_path / ".env"))
    assert result.returncode != 0
    assert "airflow-nowhere" in result.stdout + result.stderr


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def test_dockerfile_starts_from_official_airflow_3() -> None:
    instructions = _dockerfile_instructions()
    args = dict(arg.split("=", 1) for kind, arg in instructions if kind == "ARG" and "=" in arg)
    (base,) = [arg for kind, arg in instructions if kind == "FROM"]
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], base)
    assert re.fullmatch(r"apache/airflow:3\.\d+\.\d+-python3\.1[1-3]", base), base


def test_dockerfile_installs_the_project_as_the_airflow_user() -> None:
    instructions = _dockerfile_instructions()
    users = [(index, arg) for index, (kind, arg) in enumerate(instructions) if kind == "USER"]
    installs = [
        (index, arg) for index, (kind, arg) in enumerate(instructions) if kind == "RUN" and "pip install" in arg
    ]
    assert len(installs) == 1, installs
    install_index, install = installs[0]
    current_user = [arg for index, arg in users if index < install_index]
    assert current_user and current_user[-1] == "airflow"
    project = r'(?<!\S)"?\.(\$\{PROJECT_EXTRAS\})?"?(?!\S)'  # . or ".${PROJECT_EXTRAS}"
    assert re.search(r"pip install .*" + project, install), f"the project itself is not installed: {install}"
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in install, "pin Airflow so pip cannot replace the image's own"


def test_dockerfile_copies_what_the_build_needs() -> None:
    """Everything pyproject.toml reads at build time is copied, exists, and is not dockerignored."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= {pattern.rstrip("*") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied: set[str] = set()
    for kind, arg in _dockerfile_instructions():
        if kind == "COPY":
            copied |= {word.rstrip("/") for word in arg.split()[:-1] if not word.startswith("--")}
    assert needed <= copied, f"not copied: {needed - copied}"
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if not line.startswith("#")}
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert source not in ignored


def test_dockerignore_keeps_the_build_context_small() -> None:
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if not line.startswith("#")}
    assert {".git", ".venv", ".pytest_cache", ".ruff_cache"} <= ignored
