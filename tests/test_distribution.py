"""The built wheel and sdist: what they hold, the metadata a provider on an index has, and the wheel
installed into a clean virtual environment beside Airflow, where `airflow providers list` shows it."""

from __future__ import annotations

import email
import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.message import Message
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "airflow_lambda_deferrable"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the sdist and, from it, the wheel, as `scripts/build-dist` does (setuptools from the lock);
    return both paths."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = out.glob(f"{PACKAGE}-*.whl")
    (sdist,) = out.glob(f"{PACKAGE}-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def source_files() -> set[str]:
    """Return the package's files in the repository, as paths relative to the root."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PACKAGE).rglob("*")
        if (path.suffix == ".py" or path.name == "py.typed") and "__pycache__" not in path.parts
    }


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(name))


def test_wheel_holds_only_the_provider_package_and_py_typed(dist):
    with zipfile.ZipFile(dist["wheel"]) as archive:
        names = archive.namelist()
    dist_info = {name for name in names if name.split("/")[0].endswith(".dist-info")}
    assert {name.split("/", 1)[1] for name in dist_info} == {
        "METADATA",
        "WHEEL",
        "RECORD",
        "entry_points.txt",
        "top_level.txt",
        "licenses/LICENSE",
    }
    assert set(names) - dist_info == source_files()
    assert f"{PACKAGE}/py.typed" in names


def test_sdist_holds_the_package_and_not_the_tests(dist):
    with tarfile.open(dist["sdist"]) as archive:
        members = [member for member in archive.getmembers() if "/" in member.name]
    names = {member.name.split("/", 1)[1] for member in members}
    files = {member.name.split("/", 1)[1] for member in members if member.isfile()}
    top = {name for name in names if "/" not in name}
    assert top == {
        "PKG-INFO",
        "README.md",
        "LICENSE",
        "MANIFEST.in",
        "pyproject.toml",
        "setup.cfg",
        PACKAGE,
        f"{PACKAGE}.egg-info",
    }
    assert {name for name in files if name.startswith(f"{PACKAGE}/")} == source_files()
    assert not [name for name in names if name.startswith("tests")]


def test_metadata_a_provider_on_an_index_has(dist):
    metadata = wheel_metadata(dist["wheel"])
    assert metadata["Name"] == "airflow-lambda-deferrable"
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    classifiers = set(metadata.get_all("Classifier"))
    assert {"Framework :: Apache Airflow", "Framework :: Apache Airflow :: Provider"} <= classifiers
    assert {c for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert {url.split(",")[0] for url in metadata.get_all("Project-URL")} >= {"Homepage", "Source", "Issues"}
    assert metadata["Description-Content-Type"] == "text/markdown"
    runtime = [req for req in metadata.get_all("Requires-Dist") if "extra ==" not in req]
    assert len(runtime) == len(PYPROJECT["dependencies"])
    assert all(">=" in req for req in runtime), runtime
    with zipfile.ZipFile(dist["wheel"]) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(name).decode()
    assert "[apache_airflow_provider]" in entry_points
    assert f"provider_info = {PACKAGE}.provider.get_provider_info:get_provider_info" in entry_points


def test_license_is_the_apache_2_text(dist):
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in text
    with zipfile.ZipFile(dist["wheel"]) as archive:
        assert archive.read(f"{PACKAGE}-{PYPROJECT['version']}.dist-info/licenses/LICENSE").decode() == text


def test_twine_accepts_both(dist):
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dist["wheel"]), str(dist["sdist"])],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow
def test_wheel_installs_beside_airflow_and_airflow_lists_it(dist, tmp_path):
    """A clean virtual environment with Airflow and the built wheel: Airflow finds the provider.

    The environment gets exactly the versions this one runs (a constraints file from `pip freeze`): pip
    does not resolve again, and takes the files from its cache where this environment's install left them.
    """
    constraints = tmp_path / "constraints.txt"
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"], check=True, capture_output=True, text=True
    ).stdout
    constraints.write_text(
        "".join(line + "\n" for line in frozen.splitlines() if not line.startswith("airflow-lambda-deferrable"))
    )
    from importlib.metadata import version

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [
            venv / "bin" / "python", "-m", "pip", "install", "--progress-bar", "off", "-q",
            "-c", str(constraints), f"apache-airflow=={version('apache-airflow')}", str(dist["wheel"]),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    # Outside the repository, so that only the installed wheel can be imported.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    env |= {"AIRFLOW_HOME": str(tmp_path / "airflow-home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    imported = subprocess.run(
        [venv / "bin" / "python", "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"],
        cwd=tmp_path, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert imported.startswith(str(venv)), imported
    listed = subprocess.run(
        [venv / "bin" / "airflow", "providers", "list", "--output", "json"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-3000:]
    providers = {p["package_name"]: p for p in json.loads(listed.stdout[listed.stdout.index("[") :])}
    assert providers["airflow-lambda-deferrable"]["version"] == PYPROJECT["version"]
    assert "apache-airflow-providers-amazon" in providers
