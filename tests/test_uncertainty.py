"""Figures pooled over value-model seeds (Rubin's rules), the claims' verdict rule, and the
paired AUC comparison clustered by user."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kuairec_utils.models.compare import auc_influence, compare_auc, compare_over_seeds
from kuairec_utils.models.training import auc_by_head, roc_auc
from kuairec_utils.uncertainty import FAILS, HOLDS, UNDECIDED, pool, verdict


def test_rubins_rules_by_hand() -> None:
    pooled = pool([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])
    u, b, k = 0.25, 1.0, 3
    total = u + (1 + 1 / k) * b
    df = (k - 1) * (1 + u / ((1 + 1 / k) * b)) ** 2
    assert pooled.mean == 2.0 and pooled.sd_seeds == pytest.approx(1.0)
    assert pooled.se_within == pytest.approx(0.5) and pooled.se == pytest.approx(math.sqrt(total))
    assert pooled.df == pytest.approx(df)
    from scipy import stats

    half = stats.t.ppf(0.975, df) * math.sqrt(total)
    assert pooled.ci95 == pytest.approx((2.0 - half, 2.0 + half))
    record = pooled.record()
    assert record["per_seed"] == [1.0, 2.0, 3.0] and record["ci95"][0] < 1.0


def test_the_combined_interval_holds_what_one_run_cannot_show() -> None:
    """Seeds that scatter far beyond their own intervals widen the combined one; seeds that agree
    leave the within-run interval (normal, infinite degrees of freedom)."""
    scattered = pool([0.57, 0.12, 0.72], [0.02, 0.02, 0.02])
    assert all(not (lo <= 0.12 <= hi) for lo, hi in [(0.57 - 0.04, 0.57 + 0.04)])
    assert scattered.ci95[0] < 0.12 and scattered.ci95[1] > 0.72
    agreeing = pool([0.3, 0.3, 0.3], [0.02, 0.02, 0.02])
    assert math.isinf(agreeing.df) and agreeing.ci95 == pytest.approx(
        (0.3 - 0.0392, 0.3 + 0.0392), abs=1e-4
    )
    one = pool([0.3], [0.02])
    assert one.sd_seeds is None and one.ci95 == pytest.approx(
        (0.3 - 0.0392, 0.3 + 0.0392), abs=1e-4
    )
    no_within = pool([1.0, 2.0, 4.0])
    assert no_within.se_within is None and no_within.df == 2


def test_pool_refuses_what_it_cannot_combine() -> None:
    with pytest.raises(ValueError, match="finite"):
        pool([1.0, float("nan")])
    with pytest.raises(ValueError, match="every seed"):
        pool([1.0, 2.0], [0.1, None])
    with pytest.raises(ValueError, match="no interval"):
        pool([1.0])
    with pytest.raises(ValueError, match="2 estimates but 1"):
        pool([1.0, 2.0], [0.1])


def test_the_verdict_rule() -> None:
    assert verdict([0.001, 0.003], "above") == HOLDS
    assert verdict([-0.003, -0.001], "above") == FAILS
    assert verdict([-0.001, 0.003], "above") == UNDECIDED
    assert verdict([-2.0, -0.5], "below") == HOLDS and verdict([0.1, 0.5], "below") == FAILS
    # equality within a tolerance: covered and narrow; covered but wide; excluded
    assert verdict([0.20, 0.24], "equal", 0.22, tolerance=0.05) == HOLDS
    assert verdict([0.10, 0.40], "equal", 0.22, tolerance=0.05) == UNDECIDED
    assert verdict([0.25, 0.30], "equal", 0.22, tolerance=0.05) == FAILS
    with pytest.raises(ValueError, match="tolerance"):
        verdict([0.2, 0.3], "equal", 0.22)
    with pytest.raises(ValueError, match="claim must be"):
        verdict([0.2, 0.3], "near")


def clustered_data(seed: int = 0, users: int = 300):
    rng = np.random.default_rng(seed)
    n_per = rng.integers(5, 40, users)
    user = np.repeat(np.arange(users), n_per)
    latent = rng.normal(size=(len(user), 4)) + rng.normal(size=users)[user][:, None]
    y = (latent + rng.normal(size=latent.shape) > 0.5).astype(float)
    p_a = np.round(latent + 0.8 * rng.normal(size=latent.shape), 1)  # with ties
    p_b = latent + 0.9 * rng.normal(size=latent.shape)
    return y, p_a, p_b, user


def test_the_influence_auc_is_the_mann_whitney_auc() -> None:
    y, p_a, _, _ = clustered_data()
    for j in range(4):
        theta, influence = auc_influence(y[:, j], p_a[:, j])
        assert theta == pytest.approx(roc_auc(y[:, j], p_a[:, j]), abs=1e-12)
        assert abs(influence.sum()) < 1e-10  # influences are centred
    with pytest.raises(ValueError, match="both classes"):
        auc_influence(np.ones(5), np.arange(5.0))


def test_the_clustered_standard_error_matches_a_bootstrap_over_users() -> None:
    y, p_a, p_b, user = clustered_data()
    c = compare_auc(y, p_a, p_b, user)
    assert c.auc_a == pytest.approx(auc_by_head(y, p_a)["mean"], abs=1e-12)
    assert c.difference == pytest.approx(c.auc_a - c.auc_b)
    rng = np.random.default_rng(1)
    rows = [np.flatnonzero(user == g) for g in range(user.max() + 1)]
    draws = []
    for _ in range(300):
        idx = np.concatenate([rows[g] for g in rng.integers(0, len(rows), len(rows))])
        draws.append(auc_by_head(y[idx], p_a[idx])["mean"] - auc_by_head(y[idx], p_b[idx])["mean"])
    assert c.se == pytest.approx(np.std(draws, ddof=1), rel=0.15)
    # pairing: the difference is far more precise than either AUC alone
    assert c.se < 0.7 * min(c.se_a, c.se_b)
    # ignoring the users (each row its own cluster) would understate a model's own AUC's error
    assert compare_auc(y, p_a, p_b, np.arange(len(user))).se_a < 0.8 * c.se_a


def test_comparisons_over_seeds_pool_and_judge_each_model() -> None:
    y, p_a, p_b, user = clustered_data()
    rng = np.random.default_rng(3)
    noise = {s: 0.05 * rng.normal(size=p_a.shape) for s in (1, 2, 3)}
    predictions = {
        "better": {s: p_a + noise[s] for s in (1, 2, 3)},
        "reference": {s: p_b + noise[s] for s in (1, 2, 3)},
        "same": {s: p_b + noise[s] + 1e-3 * rng.normal(size=p_b.shape) for s in (1, 2, 3)},
    }
    headline, details = compare_over_seeds(y, predictions, user, "reference")
    assert set(headline) == {"better", "same"} and set(details["better"]) == {"1", "2", "3"}
    assert headline["better"]["verdict"] == HOLDS
    assert headline["same"]["verdict"] == UNDECIDED
    per_seed = [details["better"][s]["difference"] for s in ("1", "2", "3")]
    assert headline["better"]["difference"]["mean"] == pytest.approx(np.mean(per_seed))
    with pytest.raises(ValueError, match="no predictions of the reference"):
        compare_over_seeds(y, predictions, user, "edge_mlp")
