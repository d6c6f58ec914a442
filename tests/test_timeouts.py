"""A test that hangs fails within its timeout, with its stack, and the run goes on (pytest-timeout)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import SLOW_TEST_TIMEOUT

ROOT = Path(__file__).resolve().parents[1]

HANGING = textwrap.dedent(
    """
    import asyncio

    import pytest


    @pytest.mark.asyncio
    @pytest.mark.timeout(2)
    async def test_waits_for_news_that_never_comes():
        await asyncio.Event().wait()  # the event loop idles, as in the hang CI once met


    def test_after_it():
        assert True
    """
)


def test_a_hanging_async_test_fails_within_its_timeout_and_the_run_goes_on(tmp_path):
    (tmp_path / "test_hang.py").write_text(HANGING)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), str(tmp_path / "test_hang.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout[-3000:]
    assert "Timeout (>2.0s) from pytest-timeout" in run.stdout, run.stdout[-3000:]
    assert "1 failed, 1 passed" in run.stdout, run.stdout[-3000:]
    assert "test_waits_for_news_that_never_comes" in run.stdout


def test_slow_tests_get_the_long_timeout_and_the_others_the_configured_one(request):
    assert float(request.config.getini("timeout")) == 180
    slow = [item for item in request.session.items if item.get_closest_marker("slow")]
    for item in slow:
        assert item.get_closest_marker("timeout").args[0] >= SLOW_TEST_TIMEOUT
    assert request.node.get_closest_marker("timeout") is None


@pytest.mark.slow
def test_a_slow_test_carries_the_slow_timeout(request):
    assert request.node.get_closest_marker("timeout").args == (SLOW_TEST_TIMEOUT,)
