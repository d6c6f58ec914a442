"""A throwaway PostgreSQL cluster for tests: Debian's binaries, a temporary directory, a free port on 127.0.0.1.

Registered as a pytest plugin by tests/conftest.py; tests ask for the `postgres_url` fixture. Skipped with the
reason when PostgreSQL is not installed (`apt-get install postgresql`; .ci/run installs it).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

DATABASE = "airflow"
USER = "postgres"


def find_binaries() -> Path | None:
    """Return the newest `/usr/lib/postgresql/<version>/bin` holding initdb and pg_ctl, or None."""
    found = [Path(path).parent for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [path for path in found if (path / "pg_ctl").exists()]
    return max(found, key=lambda path: int(path.parent.name), default=None) if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_cluster_owner(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as the `postgres` system user."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
    return ["runuser", "-u", USER, "--", *command]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Start a fresh PostgreSQL cluster with an empty database; yield its SQLAlchemy URL (psycopg2)."""
    pytest.importorskip("psycopg2", reason="psycopg2-binary is not installed (pip install -e '.[test]')")
    binaries = find_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql")
    # Not under pytest's tmp_path: that is private to root, and the postgres user must reach the cluster.
    root = Path(tempfile.mkdtemp(prefix="test-postgres-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, USER)
        shutil.chown(sockets, USER)
    port = _free_port()
    try:
        run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
        subprocess.run(
            _as_cluster_owner(
                [str(binaries / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"]
            ),
            **run,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off"
        subprocess.run(
            _as_cluster_owner(
                [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]
            ),
            **run,
        )
        try:
            subprocess.run(
                [str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE], **run
            )
            yield f"postgresql+psycopg2://{USER}@127.0.0.1:{port}/{DATABASE}"
        finally:
            subprocess.run(
                _as_cluster_owner([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=60,
            )
    except subprocess.CalledProcessError as err:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        raise RuntimeError(f"{err.cmd[0]} failed ({err.returncode}): {err.stderr}{log}") from err
    finally:
        shutil.rmtree(root, ignore_errors=True)
