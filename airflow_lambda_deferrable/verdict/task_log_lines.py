"""How a function's line reads in the task log: the same shape while deferred (live) and after resuming.

Pure. ``[lambda]`` marks the lines the resumed task logs (the record that survives a triggerer's lost
log); ``[lambda live]`` the lines the trigger logs as it reads them, which Airflow shows in the task log
while the task is deferred. A reader who sees a line twice sees which part each copy belongs to.

A function's text is shown, never obeyed. Its control characters (C0, DEL and C1, which hold the line
breaks, ESC of the ANSI sequences Airflow's UI turns into colours, BEL and the 8-bit CSI), the Unicode line
and paragraph separators and the bidirectional overrides (which reorder what a reader sees) are written as
the escapes the function's own source would use: ``\\n``, ``\\r``, ``\\x1b``, ``\\x07``, ``\\x9b``,
``\\u2028``, ``\\u202e``. That form is plain ASCII that no terminal, log shipper or ANSI converter acts
on, and a developer reads it at once. Tab is kept: Lambda's own REPORT line separates its fields with tabs,
and a tab cannot start a line. Backslashes are kept too: the escapes are for reading, not for decoding
back, and doubling every backslash would garble the Windows paths and JSON that messages hold. So a
function's line never starts a new line of the task log, nor a `[lambda] ERROR` record of its own making.

A traceback (``detail``) keeps its lines, for it is read line by line; each follows the message on a line
of its own that begins with `DETAIL_PREFIX` (and holds only escaped text after it). Every continuation of a
record thus starts the same way, unlike any record (a time, a level, a label), so none can pass for a
`[lambda] ERROR ...` line, and a reader sees where the record ends.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

RESUMED_LABEL = "[lambda]"
LIVE_LABEL = "[lambda live]"
# Starts each line of a traceback: two spaces and a bar, which no record of the task log starts with.
DETAIL_PREFIX = "  | "

# Control characters but tab, the line and paragraph separators, and the bidirectional embeddings,
# overrides and isolates.
_NOT_SHOWN_AS_IS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def task_log_line(*, timestamp_ms: int, level: str | None, message: str, detail: str | None) -> tuple[int, str]:
    """Return the Python logging level and the text (time, Lambda's level, message, traceback) of a line."""
    python_level = logging.getLevelName(str(level or "INFO"))
    when = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    text = f"{when} {escaped(str(level))} {escaped(message)}{detail_lines(detail)}"
    return (python_level if isinstance(python_level, int) else logging.INFO), text


def escaped(text: str) -> str:
    """Return `text` with every character that could break or restyle a line written as its escape."""
    return _NOT_SHOWN_AS_IS.sub(_escape, text)


def detail_lines(detail: str | None) -> str:
    """Return a traceback as the lines that follow its record (each after a newline and `DETAIL_PREFIX`),
    or ``""`` when there is none."""
    if not detail or not detail.strip("\r\n"):
        return ""
    lines = detail.replace("\r\n", "\n").strip("\n").split("\n")
    return "".join(f"\n{DETAIL_PREFIX}{escaped(line)}" for line in lines)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
