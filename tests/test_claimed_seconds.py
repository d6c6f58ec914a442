"""`ClaimedSeconds`: the latest horizon claimed per second of one stream, kept sorted whatever order the
claims come in."""

from __future__ import annotations

import pytest

from airflow_lambda_deferrable.cloudwatch.claimed_seconds import NEVER, ClaimedSeconds


def test_a_second_never_claimed_has_no_horizon():
    claims = ClaimedSeconds()
    assert claims.horizon(7) == NEVER
    claims.claim(8, 100)
    assert (claims.horizon(7), claims.horizon(8), claims.horizon(9)) == (NEVER, 100, NEVER)


def test_claims_in_any_order_keep_the_seconds_sorted_and_each_its_latest_horizon():
    claims = ClaimedSeconds()
    for second, horizon in [(5, 50), (9, 90), (1, 10), (7, 70), (5, 40), (9, 95), (0, 1)]:
        claims.claim(second, horizon)
    assert list(claims) == [0, 1, 5, 7, 9]
    assert [claims.horizon(second) for second in claims] == [1, 10, 50, 70, 95]  # a horizon never moves back


def test_a_claim_over_a_range_moves_only_the_seconds_already_claimed_and_only_later():
    claims = ClaimedSeconds()
    for second, horizon in [(2, 20), (3, 500), (6, 60), (10, 100)]:
        claims.claim(second, horizon)
    claims.claim_held(3, 6, 300)
    assert [(second, claims.horizon(second)) for second in claims] == [(2, 20), (3, 500), (6, 300), (10, 100)]
    claims.claim_held(11, 20, 999)  # claims nothing new
    assert len(claims) == 4


def test_a_claim_that_cannot_be_kept_is_refused_before_anything_changes():
    claims = ClaimedSeconds()
    claims.claim(1, 10)
    for second, horizon in [(2, 1.5), (2, 2**63), (2**63, 5), ("3", 5)]:
        with pytest.raises(ValueError, match="ClaimedSeconds.claim: .* is not a 64-bit integer"):
            claims.claim(second, horizon)
    assert list(claims) == [1]
    claims.claim(2, 20)
    assert (claims.horizon(1), claims.horizon(2)) == (10, 20)
