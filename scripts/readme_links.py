"""README.md stays a first look: under 150 lines, and every relative link in it resolves.

A relative link must name a file or folder of the repository, and its `#anchor` a heading of that page (or of
the README itself, for a bare `#anchor`). Anchors are made as GitHub makes them, where the README and the
docs/ pages it links to are read: the heading's text, lowercase, with punctuation removed (`-` and `_` kept)
and each space turned into a hyphen; a repeated heading gets `-1`, `-2`, ... MkDocs (the docs site) makes the
same ones, but for runs of spaces and hyphens, which it folds into one hyphen. A link to a file that is not
Markdown may only carry a line anchor (`#L10`, `#L10-L20`). Links with a scheme (`https:`, `mailto:`) are
not followed here; an absolute path (`/docs/...`) is refused, since it resolves nowhere but on GitHub.

Checked by tests/test_docs.py, and by every docs build: mkdocs.yml names this file as a hook, so
`./scripts/docs` fails on a broken README link as it does on a broken link between pages.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_LINES = 150  # the README must stay under this many lines

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$")
_HTML_ID = re.compile(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_LINE_ANCHOR = re.compile(r"L\d+(?:-L\d+)?")


def _prose_lines(text: str) -> list[str]:
    """The lines of `text` outside fenced code blocks (a bash comment there is no heading)."""
    lines: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        lines.append(line)
    return lines


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lowercase, punctuation removed, each space a hyphen."""
    text = _CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading reads as its text
    text = re.sub(r"<[^>]+>", "", text).replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a Markdown page offers: its headings' slugs (repeats numbered) and its HTML ids."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in _prose_lines(page.read_text(encoding="utf-8")):
        found.update(_HTML_ID.findall(line))
        heading = _HEADING.match(line)
        if heading is None:
            continue
        base = slug(heading.group(1) or "")
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    """The link targets of a Markdown page, inline and reference-style, outside code."""
    targets: list[str] = []
    for line in _prose_lines(page.read_text(encoding="utf-8")):
        reference = _REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
            continue
        targets.extend(_INLINE_LINK.findall(_CODE_SPAN.sub("", line)))
    return targets


def broken_links(page: Path, root: Path | None = None) -> list[str]:
    """Each relative link of `page` that does not resolve inside `root` (the repository), with why."""
    root = ROOT if root is None else root
    problems: list[str] = []
    for target in links(page):
        if _SCHEME.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        path_part = unquote(path_part)
        if path_part.startswith("/"):
            problems.append(f"{target}: an absolute path; link relative to {page.name}")
            continue
        resolved = (page.parent / path_part).resolve() if path_part else page.resolve()
        if not resolved.is_relative_to(root.resolve()):
            problems.append(f"{target}: outside the repository")
            continue
        if not resolved.exists():
            problems.append(f"{target}: no such file or folder")
            continue
        if not anchor:
            continue
        if resolved.suffix.lower() == ".md" and resolved.is_file():
            if anchor not in anchors(resolved):
                problems.append(f"{target}: no heading with the anchor #{anchor} in {resolved.relative_to(root)}")
        elif not _LINE_ANCHOR.fullmatch(anchor):
            problems.append(f"{target}: #{anchor} in a file that is not Markdown (only #L<n> lines resolve)")
    return problems


def readme_problems(readme: Path | None = None, root: Path | None = None) -> list[str]:
    """What keeps `readme` (README.md) from being a first look: too many lines, or links that do not resolve."""
    readme = README if readme is None else readme
    problems = []
    lines = len(readme.read_text(encoding="utf-8").splitlines())
    if lines >= MAX_LINES:
        problems.append(f"{readme.name} has {lines} lines; keep it under {MAX_LINES} and move the rest to docs/")
    problems.extend(f"{readme.name}: {problem}" for problem in broken_links(readme, root))
    return problems


def on_pre_build(config: Any) -> None:
    """mkdocs hook: refuse to build the site while README.md is too long or has a broken link."""
    from mkdocs.exceptions import PluginError

    problems = readme_problems()
    if problems:
        raise PluginError("\n".join(problems))


def main() -> int:
    problems = readme_problems()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
