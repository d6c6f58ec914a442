"""scripts/compose-check's pieces that need no Docker engine: which images it stands in for, and its override."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load_compose_check():
    loader = importlib.machinery.SourceFileLoader("compose_check", str(ROOT / "scripts" / "compose-check"))
    spec = importlib.util.spec_from_loader("compose_check", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


compose_check = _load_compose_check()


def test_stand_ins_cover_the_images_the_files_name() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    dockerfile = (ROOT / "Dockerfile").read_text()
    images = compose_check.registry_images()
    assert images == {
        dockerfile.split("ARG AIRFLOW_IMAGE=", 1)[1].split()[0]: "airflow",
        compose["services"]["postgres"]["image"]: "postgres",
    }
    for folder in images.values():
        assert (compose_check.STAND_INS / folder / "Dockerfile").is_file()
        assert (compose_check.STAND_INS / folder / "entrypoint").stat().st_mode & 0o111


def test_override_only_adds_the_aws_connection_to_the_services_that_call_aws() -> None:
    from tests.test_docker_compose import AWS_SERVICES

    override = compose_check.OVERRIDE
    assert set(override) == {"services"}
    assert set(override["services"]) == AWS_SERVICES
    for service in override["services"].values():
        assert set(service) == {"environment"}
        connection = json.loads(service["environment"]["AIRFLOW_CONN_AWS_DEFAULT"])
        assert connection["extra"]["endpoint_url"] == "http://local-aws:4566"


def test_stand_in_label_changes_with_its_files(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM base\n")
    first = compose_check.folder_hash(tmp_path, "3.3.2")
    assert compose_check.folder_hash(tmp_path, "3.3.2") == first
    assert compose_check.folder_hash(tmp_path, "3.3.3") != first
    (tmp_path / "entrypoint").write_text("#!/bin/sh\n")
    assert compose_check.folder_hash(tmp_path, "3.3.2") != first
