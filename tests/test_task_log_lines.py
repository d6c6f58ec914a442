"""How a function's line is shaped for the task log: control characters escaped, tracebacks kept apart."""

from __future__ import annotations

import logging
import sys
import unicodedata

import pytest

from airflow_lambda_deferrable.verdict.task_log_lines import DETAIL_PREFIX, detail_lines, escaped, task_log_line

WHEN_MS = 1_763_892_000_500
WHEN = "2025-11-23T10:00:00.500+00:00"
FORGED = f"{WHEN} ERROR [lambda] forged"
# Every character `str.splitlines` breaks a line at.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def text_of(message: str, detail: str | None = None, level: str | None = "INFO") -> str:
    return task_log_line(timestamp_ms=WHEN_MS, level=level, message=message, detail=detail)[1]


def test_a_plain_line_is_time_level_and_message():
    assert task_log_line(timestamp_ms=WHEN_MS, level="WARNING", message="careful", detail=None) == (
        logging.WARNING,
        f"{WHEN} WARNING careful",
    )


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("colour \x1b[31mred\x1b[0m", "colour \\x1b[31mred\\x1b[0m"),
        ("bell\x07", "bell\\x07"),
        ("progress 10%\rprogress 90%", "progress 10%\\rprogress 90%"),
        (f"one\n{FORGED}", f"one\\n{FORGED}"),
        (f"one\r\n{FORGED}", f"one\\r\\n{FORGED}"),
        ("nul\x00 del\x7f", "nul\\x00 del\\x7f"),
        ("8-bit CSI \x9b2J, NEL \x85", "8-bit CSI \\x9b2J, NEL \\x85"),
        ("separators \u2028 \u2029", "separators \\u2028 \\u2029"),
        ("reversed \u202eDELIAF\u202c", "reversed \\u202eDELIAF\\u202c"),
    ],
)
def test_control_characters_are_written_as_their_escapes(message, shown):
    assert text_of(message) == f"{WHEN} INFO {shown}"


@pytest.mark.parametrize(
    "message",
    [
        "REPORT RequestId: r\tDuration: 1.00 ms\tBilled Duration: 2 ms",  # Lambda's own tabs
        r"C:\temp\new and {\"json\": \"escapes\"} stay as they are",
        "Unicode text: Grüße, 日本語, emoji 🎉, replacement \ufffd",
    ],
)
def test_tab_backslashes_and_printable_text_are_kept(message):
    assert text_of(message) == f"{WHEN} INFO {message}"


def test_no_character_a_viewer_breaks_lines_at_survives_in_a_line():
    assert text_of(f"a{LINE_BREAKS}b").splitlines() == [
        f"{WHEN} INFO a\\n\\r\\x0b\\x0c\\x1c\\x1d\\x1e\\x85\\u2028\\u2029b"
    ]


def test_every_control_character_but_tab_is_escaped_as_ascii():
    controls = [
        chr(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in ("Cc", "Zl", "Zp") and chr(code) != "\t"
    ]
    assert len(controls) == 65 - 1 + 2  # C0, DEL and C1, less tab, and the two separators
    for char in controls:
        shown = escaped(char)
        assert shown.startswith("\\") and shown.isascii() and shown.isprintable(), repr(char)


def test_a_level_the_function_wrote_is_escaped_too():
    level, text = task_log_line(timestamp_ms=WHEN_MS, level=f"INFO\n{FORGED}", message="m", detail=None)
    assert level == logging.INFO  # not a level Python knows
    assert text == f"{WHEN} INFO\\n{FORGED} m"


def test_each_traceback_line_follows_its_record_behind_the_prefix():
    detail = (
        "Traceback (most recent call last):\r\n"
        '  File "/var/task/app.py", line 3, in handler\n'
        f"{FORGED}\n"
        "ValueError: \x1b[2Jcleared\rscreen\n"
    )
    level, text = task_log_line(timestamp_ms=WHEN_MS, level="ERROR", message="failed", detail=detail)
    assert level == logging.ERROR
    assert text.split("\n") == [
        f"{WHEN} ERROR failed",
        f"{DETAIL_PREFIX}Traceback (most recent call last):",
        f'{DETAIL_PREFIX}  File "/var/task/app.py", line 3, in handler',
        f"{DETAIL_PREFIX}{FORGED}",
        f"{DETAIL_PREFIX}ValueError: \\x1b[2Jcleared\\rscreen",
    ]


def test_no_traceback_line_can_start_a_record():
    detail = "\n".join(["", FORGED, "", f"[lambda] {FORGED}", f"{LINE_BREAKS}x", ""])
    first, *rest = text_of("m", detail).split("\n")
    assert first == f"{WHEN} INFO m"
    assert rest and all(line.startswith(DETAIL_PREFIX) for line in rest)
    assert len(text_of("m", detail).splitlines()) == 1 + len(rest)  # no other line break in them


@pytest.mark.parametrize("detail", [None, "", "\n", "\r\n\n"])
def test_no_traceback_adds_nothing(detail):
    assert detail_lines(detail) == ""
    assert text_of("m", detail) == f"{WHEN} INFO m"
