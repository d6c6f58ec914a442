"""The request budget: its pace, its halving on throttling, and the configured rate it starts from."""

from __future__ import annotations

import time

import pytest

from airflow_lambda_deferrable.runtime import rate_limit
from airflow_lambda_deferrable.runtime.rate_limit import RequestBudget


@pytest.mark.asyncio
async def test_budget_spaces_calls_at_its_rate():
    budget = RequestBudget(max_rate=20)
    started = time.monotonic()
    for _ in range(11):
        await budget.acquire()
    assert time.monotonic() - started >= 0.45  # 10 waits of 1/20 s after the first token


def test_a_burst_of_throttling_halves_the_rate_once_and_time_brings_it_back():
    now = [0.0]
    budget = RequestBudget(max_rate=2.0, clock=lambda: now[0])
    for at in (0.0, 0.3, 1.5):  # one burst: calls in flight together, a page asked again
        now[0] = at
        budget.throttled()
    assert budget.throttled_calls == 3 and budget.rate == 1.0 and budget.halvings == 1
    now[0] = 1.5 + rate_limit.THROTTLE_BURST_SECONDS  # a later burst halves it again
    budget.throttled()
    assert budget.rate == 0.5 and budget.halvings == 2
    now[0] += 0.5  # recovery is counted in time, whatever the rate of calls
    budget.succeeded()
    assert budget.rate == pytest.approx(0.5 + 0.5 * rate_limit.RATE_RECOVERY_PER_SECOND)
    assert budget.rate < 2.0
    now[0] += 60.0
    budget.succeeded()
    assert budget.rate == 2.0
    for _ in range(20):  # burst after burst: down to the floor, never to zero
        now[0] += rate_limit.THROTTLE_BURST_SECONDS
        budget.throttled()
    assert budget.rate == rate_limit.MIN_REQUESTS_PER_SECOND


@pytest.mark.parametrize("setting", ["0", "-1", "nan", "inf", "1000", "0.01", "fast"])
def test_a_bad_max_rate_falls_back_to_the_default_with_a_warning(setting, caplog):
    rate_limit.checked_max_rate.cache_clear()
    with caplog.at_level("WARNING", logger=rate_limit.__name__):
        assert rate_limit.checked_max_rate(setting) == rate_limit.DEFAULT_MAX_REQUESTS_PER_SECOND
    assert f"max_requests_per_second = {setting!r} is not a number from 0.1 to 100.0" in caplog.text


def test_a_good_max_rate_is_used_as_given(caplog):
    rate_limit.checked_max_rate.cache_clear()
    with caplog.at_level("WARNING", logger=rate_limit.__name__):
        assert rate_limit.checked_max_rate("0.5") == 0.5
        assert rate_limit.checked_max_rate(None) == rate_limit.DEFAULT_MAX_REQUESTS_PER_SECOND
    assert caplog.text == ""
