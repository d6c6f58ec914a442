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


def _load_readme_links() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_links", ROOT / "scripts" / "readme_links.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


readme_links = _load_readme_links()


def test_the_readme_is_a_first_look_under_150_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 150, f"README.md has {len(lines)} lines: move the detail to docs/"


def test_every_relative_link_of_the_readme_resolves():
    assert readme_links.links(ROOT / "README.md"), "the README links into the docs"
    assert readme_links.broken_links(ROOT / "README.md") == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Use Airflow's constraints file, in two steps", "use-airflows-constraints-file-in-two-steps"),
        (
            "Starting a durable function's task in the triggerer (`start_from_trigger`)",
            "starting-a-durable-functions-task-in-the-triggerer-start_from_trigger",
        ),
        ("`SystemLogLevel` above INFO (WARN)", "systemloglevel-above-info-warn"),
        ("Checking it: `scripts/compose-check`", "checking-it-scriptscompose-check"),
        ("A [linked](https://example.org) *heading*", "a-linked-heading"),
    ],
)
def test_an_anchor_is_the_heading_slugged_as_github_and_mkdocs_do(heading, anchor):
    assert readme_links.slug(heading) == anchor


def _tree(tmp_path: Path, readme: str) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        '# Page\n\n## Two words\n\n```bash\n# not a heading\n```\n\n## Two words\n\n<a name="kept"></a>\n'
    )
    (tmp_path / "LICENSE").write_text("text\n")
    (tmp_path / "README.md").write_text(readme)
    return tmp_path / "README.md"


def test_a_broken_link_or_anchor_in_the_readme_is_found(tmp_path):
    readme = _tree(
        tmp_path,
        "# Title\n\n## Here\n\n"
        "[ok](docs/page.md) [ok](docs/page.md#two-words) [ok](docs/page.md#two-words-1) [ok](docs/page.md#kept)\n"
        "[ok](#here) [ok](LICENSE) [ok](LICENSE#L1) [ok](docs/) [ok](https://example.org/missing.md)\n"
        "`[in code](docs/gone.md)`\n\n```markdown\n[in a fence](docs/gone.md)\n```\n\n"
        "[gone](docs/gone.md) [no anchor](docs/page.md#three-words) [fenced](docs/page.md#not-a-heading)\n"
        "[self](#nowhere) [absolute](/docs/page.md) [outside](../elsewhere.md) [text](LICENSE#top)\n"
        "\n[ref]: docs/also-gone.md\n",
    )
    problems = readme_links.broken_links(readme, root=tmp_path)
    assert [problem.split(":")[0] for problem in problems] == [
        "docs/gone.md",
        "docs/page.md#three-words",
        "docs/page.md#not-a-heading",
        "#nowhere",
        "/docs/page.md",
        "../elsewhere.md",
        "LICENSE#top",
        "docs/also-gone.md",
    ]


def test_a_long_readme_is_refused(tmp_path):
    readme = _tree(tmp_path, "# Title\n" + "line\n" * 149)
    assert readme_links.readme_problems(readme, root=tmp_path) == [
        "README.md has 150 lines; keep it under 150 and move the rest to docs/"
    ]
    readme.write_text("# Title\n" + "line\n" * 148)
    assert readme_links.readme_problems(readme, root=tmp_path) == []


def test_the_build_hook_refuses_a_broken_readme_link(monkeypatch, tmp_path):
    pytest.importorskip("mkdocs")
    from mkdocs.exceptions import PluginError

    readme = _tree(tmp_path, "[gone](docs/gone.md)\n")
    monkeypatch.setattr(readme_links, "README", readme)
    monkeypatch.setattr(readme_links, "ROOT", tmp_path)
    with pytest.raises(PluginError, match=r"README.md: docs/gone.md: no such file"):
        readme_links.on_pre_build(config=None)
