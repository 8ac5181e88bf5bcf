"""Engagement signals at a common selectivity: on synthetic sessions with a planted
selectivity, the corrections remove it and the signals track the planted utility; sessions
and users without variation stay finite; the evaluation's correlations and shares are the
plain ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from kuairec_utils.debias.correct import (
    SKIP,
    debiased_rows,
    fitted_shift,
    reference_selectivity,
    session_counts,
    structural_shift,
)
from kuairec_utils.debias.evaluate import (
    bootstrap_weights,
    correlations,
    evaluation_table,
    group_rates,
    level_sums,
)


def planted(n_users: int = 300, sessions_per_user: int = 12, length: int = 30, seed: int = 0):
    """Users with a selectivity (user level plus session shock) independent of their utility;
    skips with P = sigmoid(c_s - m), the other head (complete) with P = (1 - P(skip)) *
    sigmoid(m) as in the simulator: a head that depends on the selectivity only through the skip."""
    rng = np.random.default_rng(seed)
    n_sessions = n_users * sessions_per_user
    session_user = np.repeat(np.arange(n_users), sessions_per_user)
    c = (-1.0 + 1.0 * rng.normal(size=n_users))[session_user] + 0.5 * rng.normal(size=n_sessions)
    taste = 0.7 * rng.normal(size=n_users)
    session = np.repeat(np.arange(n_sessions), length)
    user = session_user[session]
    feed_quality = 0.4 * rng.normal(size=n_sessions)  # the session's feed better or worse
    m = taste[user] + feed_quality[session] + 0.8 * rng.normal(size=len(session))
    skip = rng.random(len(session)) < expit(c[session] - m)
    complete = ~skip & (rng.random(len(session)) < expit(m))
    labels = np.zeros((len(session), 4))
    labels[:, 0], labels[:, SKIP] = complete, skip
    return {"session": session, "user": user, "c": c, "m": m, "labels": labels, "n_users": n_users}


def user_means(values: np.ndarray, user: np.ndarray, n_users: int) -> np.ndarray:
    return np.bincount(user, weights=values, minlength=n_users) / np.bincount(user)


def test_the_structural_correction_removes_a_planted_selectivity():
    d = planted()
    counts = session_counts(d["session"], d["labels"][:, SKIP], len(d["c"]))
    ref = reference_selectivity(d["c"], counts[:, 0])
    rows = debiased_rows(d["labels"], d["session"], structural_shift(counts, d["c"], ref))
    c_user = user_means(d["c"][d["session"]], d["user"], d["n_users"])
    m_user = user_means(d["m"], d["user"], d["n_users"])
    raw = user_means(d["labels"][:, SKIP], d["user"], d["n_users"])
    fixed = user_means(rows[:, SKIP], d["user"], d["n_users"])
    # the raw skip rate follows the planted selectivity; the debiased one does not ...
    assert np.corrcoef(raw, c_user)[0, 1] > 0.6
    assert abs(np.corrcoef(fixed, c_user)[0, 1]) < 0.15
    # ... and follows the utility more closely (a skip rate falls with the utility)
    assert np.corrcoef(fixed, m_user)[0, 1] < np.corrcoef(raw, m_user)[0, 1] - 0.3
    # the other head moves with the skip's not-skipping rate, towards the utility as well
    done_raw = user_means(d["labels"][:, 0], d["user"], d["n_users"])
    done = user_means(rows[:, 0], d["user"], d["n_users"])
    assert np.corrcoef(done, m_user)[0, 1] > np.corrcoef(done_raw, m_user)[0, 1] + 0.05
    assert abs(np.corrcoef(done, c_user)[0, 1]) < abs(np.corrcoef(done_raw, c_user)[0, 1])


def test_the_scores_average_to_the_rate_at_the_reference():
    d = planted(n_users=20)
    counts = session_counts(d["session"], d["labels"][:, SKIP], len(d["c"]))
    shift = structural_shift(counts, d["c"], 0.3)
    rows = debiased_rows(d["labels"], d["session"], shift)
    session_mean = np.bincount(d["session"], weights=rows[:, SKIP]) / counts[:, 0]
    np.testing.assert_allclose(session_mean, shift.reference, atol=1e-12)
    assert ((session_mean > 0) & (session_mean < 1)).all()  # a rate, even with no skip
    # a session at the reference does not move
    same = structural_shift(counts, np.full(len(d["c"]), 0.3), 0.3)
    np.testing.assert_allclose(same.reference, same.own)


def test_sessions_with_no_skip_or_only_skips_stay_finite():
    counts = np.array([[5.0, 0.0], [5.0, 5.0], [1.0, 1.0]])
    shift = structural_shift(counts, np.array([4.0, -4.0, 0.0]), 0.0)
    assert np.isfinite(shift.own).all() and np.isfinite(shift.reference).all()
    assert ((shift.reference > 0) & (shift.reference < 1)).all()
    labels = np.zeros((11, 4))
    labels[5:, SKIP] = 1
    rows = debiased_rows(labels, np.r_[np.zeros(5), np.ones(5), 2].astype(int), shift)
    assert np.isfinite(rows).all()
    with pytest.raises(ValueError, match="finite selectivity"):
        reference_selectivity(np.array([0.0, np.nan]), np.array([1.0, 1.0]))


def test_the_fitted_correction_learns_the_slope_on_the_selectivity():
    d = planted(n_users=200)
    index = d["m"] + 0.3 * np.random.default_rng(1).normal(size=len(d["m"]))  # a value model
    position = np.tile(np.arange(30), len(d["c"]))
    counts = session_counts(d["session"], d["labels"][:, SKIP], len(d["c"]))
    ref = reference_selectivity(d["c"], counts[:, 0])
    shift, beta = fitted_shift(d["labels"][:, SKIP], index, position, d["c"], d["session"], ref)
    assert beta["c_s"] == pytest.approx(
        0.9, abs=0.15
    )  # the true slope 1, attenuated by index noise
    assert beta["index"] < 0
    c_user = user_means(d["c"][d["session"]], d["user"], d["n_users"])
    rows = debiased_rows(d["labels"], d["session"], shift)
    fixed = user_means(rows[:, SKIP], d["user"], d["n_users"])
    assert abs(np.corrcoef(fixed, c_user)[0, 1]) < 0.2
    # a noisy selectivity gets a smaller slope: the correction shrinks with its noise
    noisy = d["c"] + 1.5 * np.random.default_rng(2).normal(size=len(d["c"]))
    _, beta_noisy = fitted_shift(d["labels"][:, SKIP], index, position, noisy, d["session"], ref)
    assert beta_noisy["c_s"] < 0.5 * beta["c_s"]


def test_the_evaluation_correlations_are_the_plain_ones():
    d = planted(n_users=60)
    counts = session_counts(d["session"], d["labels"][:, SKIP], len(d["c"]))
    ref = reference_selectivity(d["c"], counts[:, 0])
    true = debiased_rows(d["labels"], d["session"], structural_shift(counts, d["c"], ref))
    signals = {"raw": d["labels"], "structural": 0.5 * (d["labels"] + true), "true": true}
    sums = level_sums(signals, d["m"], d["user"], d["session"], d["n_users"], min_length=10)
    point = correlations(sums["across_users"], np.ones(d["n_users"]))
    raw_u = user_means(d["labels"][:, SKIP], d["user"], d["n_users"])
    m_u = user_means(d["m"], d["user"], d["n_users"])
    assert point["raw"][0, SKIP] == pytest.approx(-np.corrcoef(raw_u, m_u)[0, 1], abs=1e-10)
    # within user: session means as deviations from the user's mean, pooled
    frame = pd.DataFrame({"u": d["user"], "s": d["session"], "y": true[:, SKIP], "m": d["m"]})
    per = frame.groupby("s").agg(u=("u", "first"), y=("y", "mean"), m=("m", "mean"))
    dev = per[["y", "m"]] - per.groupby("u")[["y", "m"]].transform("mean")
    within = correlations(sums["within_user"], np.ones(d["n_users"]))["true"][0, SKIP]
    assert within == pytest.approx(-np.corrcoef(dev["y"], dev["m"])[0, 1], abs=1e-10)
    # a replicate that draws one user twice weights its sums twice
    twice = np.ones((1, d["n_users"]))
    twice[0, 0] = 2
    assert correlations(sums["across_users"], twice)["raw"][0, SKIP] != point["raw"][0, SKIP]
    table, shares = evaluation_table(sums, bootstrap_weights(d["n_users"], 50, 0), ("structural",))
    assert set(table["signal"]) == {"raw", "structural", "true"}
    kept = shares["across_users"]["structural"]["negative"]
    assert 0.2 < kept["estimate"] < 0.9  # the mixture of raw and true lies between them
    assert kept["ci95"][0] < kept["estimate"] < kept["ci95"][1]


def test_group_rates_give_each_group_its_users_mean_and_an_interval():
    rates = {"raw": np.array([0.1, 0.2, 0.3, 0.4]), "debiased": np.array([0.2, 0.2, 0.3, 0.3])}
    groups = pd.Series(["a", "a", "b", "b"])
    table = group_rates(rates, groups, bootstrap_weights(4, 200, 0))
    row = table[(table["group"] == "a") & (table["signal"] == "raw")].iloc[0]
    assert row["rate"] == pytest.approx(0.15) and row["users"] == 2
    assert row["ci95_low"] <= 0.15 <= row["ci95_high"]


def test_params_check_the_corrections_of_the_module():
    from kuairec_utils import params
    from kuairec_utils.debias.correct import CORRECTIONS

    assert params.CORRECTIONS == CORRECTIONS
