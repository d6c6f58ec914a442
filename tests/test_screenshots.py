"""The screenshot script's pure parts: the UI's addresses and what it waits for. Chromium is not started here."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from demo.screenshots import (
    LIVE_MARK,
    find_chromium,
    login_url,
    page_ready,
    run_url,
    shows_live_lines,
    task_state,
    task_url,
)

BASE = "http://127.0.0.1:8080"
RUN_ID = "manual__2026-12-07T06:04:55.150431+00:00"


def test_run_and_task_urls_escape_the_run_id():
    # A manual run id holds ':' and '+': unescaped, '+' would reach the UI's router as a space.
    assert run_url(BASE + "/", "example_lambda_deferrable", RUN_ID) == (
        "http://127.0.0.1:8080/dags/example_lambda_deferrable/runs/manual__2026-12-07T06%3A04%3A55.150431%2B00%3A00"
    )
    assert task_url(BASE, "example_lambda_deferrable", RUN_ID, "sync_with_error") == (
        run_url(BASE, "example_lambda_deferrable", RUN_ID) + "/tasks/sync_with_error"
    )


def test_login_url_carries_where_to_go_next():
    url = urlsplit(login_url(BASE, BASE + "/dags?x=1"))
    assert url.path == "/auth/token/login"
    assert parse_qs(url.query) == {"next": [BASE + "/dags?x=1"]}


def test_task_state_finds_the_task_or_none():
    tasks = [{"task_id": "a", "state": "deferred"}, {"task_id": "b", "state": None}]
    assert task_state(tasks, "a") == "deferred"
    assert task_state(tasks, "b") is None
    assert task_state(tasks, "c") is None


def test_live_lines_count_only_while_deferred():
    log = "\n".join(f"info {LIVE_MARK} iteration {i} of 40" for i in range(3))
    assert shows_live_lines("deferred", log, at_least=3)
    assert not shows_live_lines("deferred", log, at_least=4)
    assert not shows_live_lines("running", log, at_least=1)
    # The resumed task's record says [lambda], not [lambda live]: it does not count.
    assert not shows_live_lines("deferred", "info [lambda] iteration 1 of 40", at_least=1)


def test_page_ready_wants_every_string_in_any_case():
    text = "async_timeout\nDeferred\n12 [2026-12-07] INFO - [lambda live] iteration 3 of 40"
    assert page_ready(text, [LIVE_MARK, "deferred"])
    assert not page_ready(text, [LIVE_MARK, "Failed"])
    assert not page_ready("Sign in\nUsername", ["Dags"])


def test_find_chromium_prefers_what_it_is_given(monkeypatch, tmp_path):
    browser = tmp_path / "my-chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    monkeypatch.delenv("CHROMIUM", raising=False)
    assert find_chromium(str(browser)) == str(browser)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SystemExit, match="Chromium not found"):
        find_chromium()
