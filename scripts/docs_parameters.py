"""Write the tables of docs/parameters.md from the code, or check that the committed page still matches it.

The page keeps its prose by hand; only the blocks between ``<!-- generated: NAME -->`` and
``<!-- end: NAME -->`` come from here, so a default, a range or a parameter's docstring changed in the code
without the page fails the docs build (this module is also mkdocs.yml's hook). What each table reads:

- ``operator``: the operator's keyword parameters, in order, with their defaults, from the source of
  ``provider/operator.py`` (parsed, not imported: the docs build needs no Airflow), its docstring's
  ``:param`` lines and its ``template_fields``; ranges and their reasons from ``settings.OPERATOR_BOUNDS``.
- ``trigger``: the fields of ``settings.FollowSettings`` (the trigger's kwargs), their defaults, the
  ``:param`` lines of its docstring (else the operator's for the same name) and ``settings.TRIGGER_BOUNDS``.
- ``config``: the ``[lambda_deferrable]`` options that ``get_provider_info()`` declares to Airflow.

Usage: ``python scripts/docs_parameters.py --check`` (exit 1 and a diff when the page is stale) or
``--write`` (rewrite the blocks).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import inspect
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "parameters.md"
OPERATOR_SOURCE = ROOT / "airflow_lambda_deferrable" / "provider" / "operator.py"
OPERATOR_CLASS = "LambdaInvokeDeferrableOperator"
WRITE_COMMAND = "python scripts/docs_parameters.py --write"
# The connection kwargs every Amazon provider operator takes (from `AwsBaseOperator`, not our signature).
CONNECTION_FIELDS = ("aws_conn_id", "region_name", "verify", "botocore_config")
BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z]+) -->\n)(?P<body>.*?)(<!-- end: (?P=name) -->)", re.DOTALL)


def _package_modules() -> tuple[Any, Any]:
    """Import `settings` and `get_provider_info` from this checkout (neither imports Airflow)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from airflow_lambda_deferrable import settings
    from airflow_lambda_deferrable.provider import get_provider_info

    return settings, get_provider_info


# The default of a parameter that has none.
REQUIRED = object()


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One keyword parameter as the source declares it: its default (`REQUIRED` if none) and its doc."""

    name: str
    default: Any
    doc: str


def param_docs(docstring: str) -> dict[str, str]:
    """Return the text of each ``:param name:`` entry of a docstring, its continuation lines joined."""
    docs: dict[str, str] = {}
    current: str | None = None
    for line in docstring.splitlines():
        match = re.match(r":param (\w+):\s*(.*)", line)
        if match:
            current = match.group(1)
            docs[current] = match.group(2)
        elif current and line.startswith((" ", "\t")) and line.strip():
            docs[current] += " " + line.strip()
        else:
            current = None
    return docs


def operator_class(source: str) -> ast.ClassDef:
    """Return the operator's class as parsed from its module's source."""
    (cls,) = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == OPERATOR_CLASS]
    return cls


def operator_parameters(cls: ast.ClassDef, names: Mapping[str, Any]) -> tuple[list[Parameter], set[str]]:
    """Return the operator's keyword parameters and its templated fields.

    :param names: what a default written as a bare name (``DEFAULT_POLL_INTERVAL``) stands for.
    :raises ValueError: a parameter without a ``:param`` line, a ``:param`` line for no parameter, or a
        default this reader cannot evaluate.
    """
    docs = param_docs(ast.get_docstring(cls) or "")
    (init,) = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    params = []
    for arg, default in zip(init.args.kwonlyargs, init.args.kw_defaults, strict=True):
        value = REQUIRED if default is None else _evaluate(default, names, arg.arg)
        params.append(Parameter(arg.arg, value, docs.get(arg.arg, "")))
    problems = [f"{p.name} has no :param line in {OPERATOR_CLASS}'s docstring" for p in params if not p.doc]
    problems += [f":param {name} names no parameter of __init__" for name in docs.keys() - {p.name for p in params}]
    if problems:
        raise ValueError("; ".join(problems))
    return params, _template_fields(cls)


def _evaluate(node: ast.expr, names: Mapping[str, Any], parameter: str) -> Any:
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise ValueError(f"default of {parameter}: {node.id} is not a name of settings.py")
        return names[node.id]
    try:
        return ast.literal_eval(node)
    except ValueError as err:
        raise ValueError(f"default of {parameter}: {ast.unparse(node)} is not a literal or a setting") from err


def _template_fields(cls: ast.ClassDef) -> set[str]:
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "template_fields":
            call = node.value
            if isinstance(call, ast.Call):
                return {ast.literal_eval(arg) for arg in call.args}
    raise ValueError(f"{OPERATOR_CLASS} has no template_fields = aws_template_fields(...)")


def number(value: float) -> str:
    """Write a number as the code means it, without float noise: 300.0 is 300, 0.1 stays 0.1."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def unit(name: str) -> str:
    return " s" if name.endswith("_seconds") or name in ("poll_interval", "function_timeout") else ""


def in_words(name: str, value: float) -> str:
    """Return a reading of a large number (256 KiB, 6 h, 366 days), or nothing."""
    if name.endswith("bytes"):
        for size, label in ((1024 * 1024, "MiB"), (1024, "KiB")):
            if value >= size and value % size == 0:
                return f" ({number(value / size)} {label})"
    if unit(name) and value >= 3600:
        days, hours = value / 86_400, value / 3_600
        return f" ({number(days)} days)" if days.is_integer() else f" ({number(hours)} h)" if hours.is_integer() else ""
    return ""


def default_text(name: str, value: Any) -> str:
    if value is REQUIRED:
        return "required"
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return f"`{value!r}`".replace("'", '"')
    if isinstance(value, int | float):
        return f"`{number(value)}`{unit(name)}{in_words(name, value)}"
    return f"`{value!r}`"


def range_text(name: str, bound: Any | None) -> str:
    if bound is None:
        return ""
    kind = "integer " if bound.integer else ""
    low, high = number(bound.low), number(bound.high)
    return f"{kind}{low} to {high}{unit(name)}{in_words(name, bound.high)}: {bound.reason}"


def markdown(doc: str) -> str:
    """Turn a docstring's reST (``x``) into Markdown, safe inside a table cell."""
    return re.sub(r"``(.+?)``", r"`\1`", doc).replace("|", "\\|")


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def operator_table(settings: Any, cls: ast.ClassDef) -> str:
    params, templated = operator_parameters(cls, vars(settings))
    rows = [
        (
            f"`{p.name}`",
            default_text(p.name, p.default) + (" (templated)" if p.name in templated else ""),
            range_text(p.name, settings.OPERATOR_BOUNDS.get(p.name)),
            markdown(p.doc),
        )
        for p in params
    ]
    return table(("parameter", "default", "range", "meaning"), rows)


def trigger_table(settings: Any, operator: ast.ClassDef) -> str:
    own = param_docs(inspect.cleandoc(settings.FollowSettings.__doc__ or ""))
    operator_docs = param_docs(ast.get_docstring(operator) or "")
    rows, undocumented = [], []
    for field in dataclasses.fields(settings.FollowSettings):
        if field.name in CONNECTION_FIELDS:
            doc = "the connection, as the operator had it"
        else:
            doc = own.get(field.name) or operator_docs.get(field.name, "")
        if not doc:
            undocumented.append(field.name)
        default = REQUIRED if field.default is dataclasses.MISSING else field.default
        bound = settings.TRIGGER_BOUNDS.get(field.name)
        name = field.name
        rows.append((f"`{name}`", default_text(name, default), range_text(name, bound), markdown(doc)))
    if undocumented:
        raise ValueError(f"FollowSettings fields without a :param line here or in the operator: {undocumented}")
    return table(("kwarg", "default", "range", "meaning"), rows)


def config_table(get_provider_info: Callable[[], dict[str, Any]]) -> str:
    (section, spec), *others = get_provider_info()["config"].items()
    if others:
        raise ValueError("more than one config section: give each a table")
    rows = [
        (
            f"`[{section}] {option}`",
            f"`AIRFLOW__{section.upper()}__{option.upper()}`",
            f"`{info['default']}` ({info['type']})",
            markdown(info["description"]),
        )
        for option, info in spec["options"].items()
    ]
    return table(("option", "environment variable", "default", "meaning"), rows)


def generated_blocks() -> dict[str, str]:
    """Return each generated block's text, as the code says it today."""
    settings, get_provider_info = _package_modules()
    operator = operator_class(OPERATOR_SOURCE.read_text())
    return {
        "operator": operator_table(settings, operator),
        "trigger": trigger_table(settings, operator),
        "config": config_table(get_provider_info.get_provider_info),
    }


def render(page: str, blocks: Mapping[str, str]) -> str:
    """Return `page` with every generated block replaced; a block missing on either side is an error."""
    found = [match.group("name") for match in BLOCK.finditer(page)]
    if sorted(found) != sorted(blocks):
        raise ValueError(f"{PAGE.name} has the blocks {found}, the generator makes {sorted(blocks)}")
    return BLOCK.sub(lambda m: m.group(1) + blocks[m.group("name")] + m.group(4), page)


def stale_diff(page_path: Path = PAGE) -> str:
    """Return a unified diff from the committed page to what the code says, or "" when they agree."""
    page = page_path.read_text()
    wanted = render(page, generated_blocks())
    if wanted == page:
        return ""
    diff = difflib.unified_diff(
        page.splitlines(keepends=True),
        wanted.splitlines(keepends=True),
        fromfile=f"{page_path.name} (committed)",
        tofile=f"{page_path.name} (from the code)",
    )
    return "".join(diff)


def on_pre_build(config: Any) -> None:
    """mkdocs hook: refuse to build a site whose parameters page disagrees with the code."""
    from mkdocs.exceptions import PluginError

    try:
        diff = stale_diff()
    except ValueError as err:
        raise PluginError(f"docs/parameters.md cannot be generated: {err}") from err
    if diff:
        raise PluginError(
            f"docs/parameters.md disagrees with the code (settings.py, provider/operator.py): run "
            f"`{WRITE_COMMAND}` and commit the page.\n{diff}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="exit 1 with a diff if the page is stale")
    action.add_argument("--write", action="store_true", help="rewrite the generated blocks of the page")
    args = parser.parse_args(argv)
    if args.write:
        PAGE.write_text(render(PAGE.read_text(), generated_blocks()))
        print(f"wrote {PAGE.relative_to(ROOT)}")
        return 0
    diff = stale_diff()
    if diff:
        print(f"{PAGE.relative_to(ROOT)} disagrees with the code; run `{WRITE_COMMAND}`:\n{diff}", file=sys.stderr)
        return 1
    print(f"{PAGE.relative_to(ROOT)} agrees with the code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
