"""The case-control selection model of the feed (kuairec_utils.selection)."""

from __future__ import annotations

import numpy as np
import pytest

from kuairec_utils.head_weights.selection import (
    jackknife_selection_weights,
    selection_weights,
    split_halves,
)
from kuairec_utils.names import JACKKNIFE_MIN_FEED

W = np.array([0.22, 0.10, -0.02, -0.66])


def _draw(rng: np.random.Generator, n: int) -> np.ndarray:
    """Four head probabilities that share one index but differ enough to identify w."""
    u, e = rng.normal(size=(n, 1)), rng.normal(size=(n, 4))
    logits = np.array([0.8, 0.6, 0.5, -0.9]) * u + 0.7 * e - np.array([0.5, 1.0, 2.0, 1.0])
    return 1.0 / (1.0 + np.exp(-logits))


def platform_feeds(
    n_sessions: int,
    w: np.ndarray,
    sigma: float,
    seed: int = 0,
    n_others: int = 60,
    k_range: tuple[int, int] = (3, 30),
    pool_min: int = 40,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The platform of the model: each session's feed is the top K (drawn from ``k_range``,
    the upper end excluded) of a pool of 3K (at least ``pool_min``) candidates by ``w . p +
    N(0, sigma^2)``; the others are a fresh sample of the pool's distribution. Returns the
    candidates' probabilities, sessions and feed flags."""
    rng = np.random.default_rng(seed)
    probs, session, feed = [], [], []
    for s in range(n_sessions):
        k = int(rng.integers(*k_range))
        pool = _draw(rng, max(pool_min, 3 * k))
        top = np.argsort(-(pool @ w + sigma * rng.normal(size=len(pool))))[:k]
        probs += [pool[top], _draw(rng, n_others)]
        session.append(np.full(k + n_others, s))
        feed.append(np.r_[np.ones(k, dtype=bool), np.zeros(n_others, dtype=bool)])
    return np.concatenate(probs), np.concatenate(session), np.concatenate(feed)


def test_recovers_the_weights_of_a_noisy_top_k_platform() -> None:
    probs, session, feed = platform_feeds(1500, W, sigma=0.08, seed=1)
    est = selection_weights(probs, session, feed)
    assert est.converged
    assert est.iterations < 40  # Newton's method, not a crawl
    assert np.abs(est.w).sum() == pytest.approx(1.0)
    assert np.abs(est.w - W).max() < 0.03
    assert 0.04 < est.noise_sd < 0.12  # the scale of the platform's noise (0.08)
    # another truth gives another estimate: the fit reads the feeds, not a default
    other = np.array([0.5, 0.2, 0.0, -0.3])
    est_other = selection_weights(*platform_feeds(1500, other, sigma=0.08, seed=2))
    assert np.abs(est_other.w - other).max() < 0.05


def test_intervals_cover_the_weights_as_often_as_they_claim() -> None:
    """Over replicate platforms, the clustered standard errors match the estimates' spread and
    the 95% intervals cover w (a run of users with three sessions each)."""
    estimates = [
        selection_weights(*fields, cluster=fields[1] // 3)
        for fields in (platform_feeds(300, W, sigma=0.08, seed=100 + r) for r in range(20))
    ]
    w = np.array([e.w for e in estimates])
    se = np.array([e.w_se for e in estimates])
    spread = w.std(axis=0, ddof=1)
    assert (se.mean(axis=0) > 0.6 * spread).all() and (se.mean(axis=0) < 1.8 * spread).all()
    lo, hi = (
        np.stack([e.intervals()[:, 0] for e in estimates]),
        np.stack([e.intervals()[:, 1] for e in estimates]),
    )
    covered = ((lo <= W) & (W <= hi)).mean(axis=0)
    assert (covered >= 0.8).all(), covered
    # the same fit; the errors depend on the clusters
    fields = platform_feeds(300, W, sigma=0.08, seed=100)
    alone = selection_weights(*fields)
    assert not np.allclose(alone.w_se, estimates[0].w_se)
    np.testing.assert_allclose(alone.w, estimates[0].w, atol=1e-12)


def test_sessions_without_others_or_without_a_feed_are_left_out() -> None:
    probs, session, feed = platform_feeds(300, W, sigma=0.08, seed=3)
    base = selection_weights(probs, session, feed)
    # a session of feed videos only, and one of others only: no information, same estimate
    rng = np.random.default_rng(4)
    extra = _draw(rng, 10)
    est = selection_weights(
        np.r_[probs, extra],
        np.r_[session, np.full(5, 10_000), np.full(5, 10_001)],
        np.r_[feed, np.ones(5, dtype=bool), np.zeros(5, dtype=bool)],
    )
    assert est.n_sessions == base.n_sessions == 300
    np.testing.assert_allclose(est.w, base.w, atol=1e-9)


def test_bad_input_is_named() -> None:
    probs, session, feed = platform_feeds(20, W, sigma=0.08)
    probs[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        selection_weights(probs, session, feed)
    with pytest.raises(ValueError, match="no session"):
        selection_weights(probs[:5], np.zeros(5), np.ones(5, dtype=bool))
    probs[3, 1] = 0.5
    with pytest.raises(ValueError, match="one length"):
        selection_weights(probs, session[:-1], feed)
    with pytest.raises(ValueError, match="start"):
        selection_weights(probs, session, feed, start=np.array([1.0, np.inf, 0.0, 0.0]))


def long_feeds(
    n_sessions: int, w: np.ndarray, sigma: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``platform_feeds`` with feeds of 20-59 videos from pools of at least 100 and 100 others
    per session: the regime of 05's selection model."""
    return platform_feeds(n_sessions, w, sigma, seed, n_others=100, k_range=(20, 60), pool_min=100)


def test_split_halves_deal_each_sessions_feed_and_others_evenly() -> None:
    session = np.repeat([0, 1, 2], [7, 12, 5])
    in_feed = np.r_[np.arange(7) < 3, np.arange(12) < 8, np.arange(5) < 1]
    half_a = split_halves(session, in_feed, seed=3)
    for s in range(3):
        for flag in (True, False):
            rows = (session == s) & (in_feed == flag)
            assert half_a[rows].sum() == (rows.sum() + 1) // 2  # A first, then alternately
    # which rows go where is random, by the seed
    assert not np.array_equal(half_a, split_halves(session, in_feed, seed=4))
    assert np.array_equal(half_a, split_halves(session, in_feed, seed=3))


def test_jackknife_removes_the_per_session_parameters_bias() -> None:
    """The fitted thresholds and intercepts of long feeds still bias the noise sd down (0.074
    for a true 0.08 here); the split-panel jackknife takes the bias out and keeps w."""
    for seed in (0, 1):
        probs, session, feed = long_feeds(600, W, sigma=0.08, seed=seed)
        cluster = session // 3
        est = jackknife_selection_weights(probs, session, feed, cluster=cluster, seed=seed)
        full = est.uncorrected
        assert full is not None and full.converged and est.converged
        assert np.array_equal(full.beta, selection_weights(probs, session, feed, cluster).beta)
        assert abs(est.noise_sd - 0.08) < abs(full.noise_sd - 0.08)
        assert full.noise_sd < 0.078 < est.noise_sd < 0.09
        assert np.abs(est.w - W).max() < 0.02 and np.abs(est.w).sum() == pytest.approx(1.0)
        assert np.all(est.w_se > 0) and np.array_equal(est.cov_beta, full.cov_beta)


def test_jackknife_refuses_short_feeds_and_bad_splits() -> None:
    probs, session, feed = platform_feeds(60, W, sigma=0.08, seed=5)  # feeds of 3-29 videos
    with pytest.raises(ValueError, match=f"at least {JACKKNIFE_MIN_FEED} videos"):
        jackknife_selection_weights(probs, session, feed)
    with pytest.raises(ValueError, match="n_splits"):
        jackknife_selection_weights(*long_feeds(5, W, 0.08, seed=0), n_splits=0)


def test_params_refuse_a_feed_minimum_the_jackknife_cannot_split() -> None:
    from kuairec_utils import params

    section = params.load_params()["head_weights"] | {"selection_bias_correction": "jackknife"}
    with pytest.raises(params.ParamError, match="selection_min_feed"):
        params.check_head_weights(section | {"selection_min_feed": JACKKNIFE_MIN_FEED - 1})


def test_averaged_splits_add_their_own_noise_to_the_covariance() -> None:
    probs, session, feed = long_feeds(200, W, sigma=0.08, seed=7)
    one = jackknife_selection_weights(probs, session, feed, seed=1)
    three = jackknife_selection_weights(probs, session, feed, seed=1, n_splits=3)
    assert np.array_equal(one.cov_beta, one.uncorrected.cov_beta)  # one split: no spread to see
    extra = three.cov_beta - three.uncorrected.cov_beta
    assert np.all(np.linalg.eigvalsh(extra) >= -1e-12) and np.trace(extra) > 0
    assert not np.array_equal(one.beta, three.beta)  # the first split is one of the three
    assert np.abs(three.w - W).max() < 0.03


def test_the_jackknife_halves_in_several_processes_give_the_same_estimate() -> None:
    probs, session, feed = long_feeds(120, W, sigma=0.08, seed=3)
    cluster = session // 3
    one = jackknife_selection_weights(probs, session, feed, cluster=cluster, seed=2, n_splits=2)
    two = jackknife_selection_weights(
        probs, session, feed, cluster=cluster, seed=2, n_splits=2, n_jobs=2
    )
    assert np.array_equal(one.beta, two.beta) and np.array_equal(one.cov_beta, two.cov_beta)
    assert one.iterations == two.iterations and one.converged == two.converged
    with pytest.raises(ValueError, match="n_jobs must be a positive integer, got 0"):
        jackknife_selection_weights(probs, session, feed, n_jobs=0)
