"""The docs site: its parameters page agrees with the code, and it builds strict (links and anchors checked)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_generator() -> ModuleType:
    """Load scripts/docs_parameters.py by path: scripts/ is no package, and no installed one may shadow it."""
    spec = importlib.util.spec_from_file_location("docs_parameters", ROOT / "scripts" / "docs_parameters.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


def test_the_parameters_page_agrees_with_the_code():
    assert generator.stale_diff() == "", "run: python scripts/docs_parameters.py --write"


def test_a_changed_default_makes_the_page_stale(monkeypatch):
    settings, _ = generator._package_modules()
    monkeypatch.setattr(settings, "DEFAULT_POLL_INTERVAL", 7.0)
    diff = generator.stale_diff()
    assert "-| `poll_interval` | `5` s |" in diff
    assert "+| `poll_interval` | `7` s |" in diff


def test_a_changed_range_makes_the_page_stale(monkeypatch):
    settings, _ = generator._package_modules()
    bounds = dict(settings.OPERATOR_BOUNDS)
    bounds["settle_seconds"] = settings.Bound(0.0, 60.0, False, "a new reason")
    monkeypatch.setattr(settings, "OPERATOR_BOUNDS", bounds)
    assert "+| `settle_seconds` | `3` s | 0 to 60 s: a new reason |" in generator.stale_diff()


OPERATOR = '''
class LambdaInvokeDeferrableOperator:
    """Invoke.

    :param function_name: the function.
    :param gone: a parameter that no longer exists.
    """

    template_fields: Sequence[str] = aws_template_fields("function_name")

    def __init__(self, *, function_name: str, poll_interval: float = DEFAULT_POLL_INTERVAL, **kwargs): ...
'''


def test_a_parameter_without_a_docstring_line_and_a_stale_line_are_refused():
    cls = generator.operator_class(OPERATOR)
    with pytest.raises(ValueError) as raised:
        generator.operator_parameters(cls, {"DEFAULT_POLL_INTERVAL": 5.0})
    assert "poll_interval has no :param line" in str(raised.value)
    assert ":param gone names no parameter" in str(raised.value)


def test_the_build_hook_refuses_a_stale_page(monkeypatch):
    pytest.importorskip("mkdocs")
    from mkdocs.exceptions import PluginError

    settings, _ = generator._package_modules()
    monkeypatch.setattr(settings, "DEFAULT_MAX_LINES", 400)
    with pytest.raises(PluginError, match=r"docs/parameters.md disagrees with the code .*--write"):
        generator.on_pre_build(config=None)


def test_the_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    assert (tmp_path / "site" / "parameters" / "index.html").is_file()
