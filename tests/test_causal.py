"""Selectivity MLE and the causal regressions on synthetic data with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from kuairec_utils.causal.regressions import (
    bootstrap_effects,
    effect_regression,
    fe_coefficient,
    lagged,
)
from kuairec_utils.causal.residuals import engagement_index, feed_residuals, split_candidates
from kuairec_utils.causal.selectivity import (
    selectivity_mle,
    session_thresholds,
    watch_depth_offsets,
)


def synthetic_sessions(n_sessions: int = 1500, seed: int = 0):
    rng = np.random.default_rng(seed)
    length = rng.integers(5, 60, n_sessions)
    session = np.repeat(np.arange(n_sessions), length)
    c = rng.normal(-1.0, 0.8, n_sessions)
    x = rng.normal(size=len(session))
    pos = np.log1p(np.concatenate([np.arange(n) for n in length]))
    skip = rng.random(len(session)) < expit(c[session] - 1.3 * x - 0.2 * pos)
    return session, skip.astype(int), np.column_stack([x, pos]), c, length


def test_selectivity_mle_recovers_thresholds_and_slopes() -> None:
    session, skip, z, c, length = synthetic_sessions()
    fit = selectivity_mle(session, skip, z, prior_sd=5.0)
    assert fit.slopes == pytest.approx([1.3, 0.2], abs=0.06)
    long = length > 40
    assert np.corrcoef(fit.c[long], c[long])[0, 1] > 0.85
    # the standard errors are calibrated: z-scores of the long sessions have sd near 1
    zscores = (fit.c[long] - c[long]) / fit.se[long]
    assert 0.8 < zscores.std() < 1.25
    assert np.all(fit.se > 0) and np.isfinite(fit.c).all()


def test_a_warm_start_reaches_the_same_optimum_in_fewer_steps() -> None:
    session, skip, z, _, _ = synthetic_sessions(n_sessions=400, seed=2)
    cold = selectivity_mle(session, skip, z, prior_sd=3.0)
    near = (cold.c + 0.05, cold.slopes - 0.02)
    warm = selectivity_mle(session, skip, z, prior_sd=3.0, start=near)
    assert warm.iterations < cold.iterations
    assert np.abs(warm.c - cold.c).max() < 1e-6
    assert np.abs(warm.se - cold.se).max() < 1e-6
    with pytest.raises(ValueError, match="start"):
        selectivity_mle(session, skip, z, start=(cold.c[:-1], cold.slopes))


def test_sessions_without_variation_get_finite_thresholds_from_the_weak_prior() -> None:
    session = np.repeat(np.arange(3), 10)
    skip = np.r_[np.zeros(10), np.ones(10), np.r_[np.ones(3), np.zeros(7)]].astype(int)
    x = np.random.default_rng(1).normal(size=30)
    fit = selectivity_mle(session, skip, x[:, None], prior_sd=3.0)
    assert np.isfinite(fit.c).all()
    assert fit.c[0] < fit.c[2] < fit.c[1]  # never skips < sometimes < always skips
    assert fit.se[0] > fit.se[2] and fit.se[1] > fit.se[2]  # no variation: less precise
    with pytest.raises(ValueError, match="0 or 1"):
        selectivity_mle(session, skip * 2, x[:, None])


def panel(effect: float, n_users: int = 300, per_user: int = 20, seed: int = 0) -> pd.DataFrame:
    """Sessions whose selectivity depends on the previous session's residual."""
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(n_users), per_user)
    r = rng.normal(0, 0.03, len(user))
    frame = pd.DataFrame({"user_id": user, "order": np.tile(np.arange(per_user), n_users)})
    frame["residual"] = r
    frame["residual_prev"] = lagged(frame, "residual", "user_id", "order", 1)
    frame["residual_next"] = lagged(frame, "residual", "user_id", "order", -1)
    frame["hour"] = rng.integers(0, 24, len(user))
    user_level = rng.normal(0, 0.5, n_users)[user]
    frame["c"] = (
        user_level + effect * np.nan_to_num(frame["residual_prev"]) + rng.normal(0, 0.2, len(user))
    )
    frame["precision"] = rng.uniform(0.5, 2.0, len(user))
    return frame


def test_regression_recovers_a_known_effect_and_the_placebo_is_null() -> None:
    effects, ses = [], []
    for seed in range(4):  # four independent panels: each within 3 SE, their mean within 2
        frame = panel(-5.0, seed=seed)
        fit = effect_regression(frame, "c", "residual_prev", ["hour"], weights="precision")
        assert abs(fit["effect"] + 5.0) < 3 * fit["se"], fit
        effects.append(fit["effect"])
        ses.append(fit["se"])
        placebo = effect_regression(frame, "c", "residual_next", ["hour"], weights="precision")
        assert abs(placebo["effect"]) < 3 * placebo["se"], placebo
        assert fit["n"] == 300 * 19
    assert abs(np.mean(effects) + 5.0) < 2 * np.mean(ses) / 2


def test_instrumenting_a_noisy_residual_with_a_second_measurement_undoes_attenuation() -> None:
    frame = panel(-5.0, seed=3)
    rng = np.random.default_rng(4)
    for name in ("a", "b"):  # two measurements of the previous residual, independent errors
        frame[f"prev_{name}"] = frame["residual_prev"] + rng.normal(0, 0.03, len(frame))
    naive = effect_regression(frame, "c", "prev_a", ["hour"])
    iv = effect_regression(frame, "c", "prev_a", ["hour"], instrument="prev_b")
    assert naive["effect"] > -3.5  # attenuated by about half
    assert abs(iv["effect"] + 5.0) < 2 * iv["se"], iv


def test_fe_coefficient_is_pyfixests_coefficient() -> None:
    frame = panel(-5.0, seed=6)
    rng = np.random.default_rng(7)
    frame["hour"] = frame["hour"].astype(str)  # a categorical control, as in 06
    frame["weekend"] = rng.integers(0, 2, len(frame))
    frame["user_level"] = frame.groupby("user_id")["c"].transform("mean")  # absorbed by the FE
    for name in ("a", "b"):
        frame[f"prev_{name}"] = frame["residual_prev"] + rng.normal(0, 0.03, len(frame))
    controls = ["C(hour)", "weekend", "user_level"]
    for kwargs in (
        {"treatment": "residual_prev"},
        {"treatment": "residual_prev", "weights": "precision"},
        {"treatment": "residual_next", "weights": "precision"},  # other rows missing
        {"treatment": "prev_a", "instrument": "prev_b", "weights": "precision"},
        {"treatment": "prev_a", "instrument": "prev_b", "cluster": "user_id"},
    ):
        expected = effect_regression(frame, "c", controls=controls, **kwargs)["effect"]
        assert fe_coefficient(frame, "c", controls=controls, **kwargs) == pytest.approx(
            expected, rel=1e-9
        ), kwargs
    assert fe_coefficient(frame, "c", "residual_prev", []) == pytest.approx(
        effect_regression(frame, "c", "residual_prev", [])["effect"], rel=1e-9
    )


def test_statsmodels_gives_the_same_coefficient_and_clustered_se() -> None:
    import statsmodels.formula.api as smf

    frame = panel(-5.0, n_users=60, seed=5).dropna()
    fit = effect_regression(frame, "c", "residual_prev", ["hour"])
    ols = smf.ols("c ~ residual_prev + hour + C(user_id)", data=frame).fit(
        cov_type="cluster", cov_kwds={"groups": frame["user_id"]}
    )
    assert fit["effect"] == pytest.approx(ols.params["residual_prev"], rel=1e-8)
    assert fit["se"] == pytest.approx(ols.bse["residual_prev"], rel=0.05)


def test_feed_residuals_and_split_halves() -> None:
    rng = np.random.default_rng(2)
    s, c = 200, 30
    probs = rng.beta(2, 3, size=(s, c, 4)).astype(np.float32)
    valid = np.ones((s, c), dtype=bool)
    k = np.full(s, 5)
    w = np.array([0.22, 0.10, -0.02, -0.66])
    score = probs @ w
    order = np.argsort(-score, axis=1)
    best = np.take_along_axis(probs, order[:, :, None], axis=1)  # the observed feed is the top K
    res = feed_residuals(best, valid, k, w)
    assert np.allclose(res["residual"], 0.0, atol=1e-6)
    worst = np.take_along_axis(probs, order[:, ::-1, None], axis=1)  # ... or the bottom K
    assert (feed_residuals(worst, valid, k, w)["residual"] < 0).all()
    a, b = split_candidates(valid, k, seed=1)
    assert (a[:, :5] & b[:, :5]).all() and not (a[:, 5:] & b[:, 5:]).any()
    assert ((a | b) == valid).all()
    assert engagement_index(np.array([[0.1, 0.1, 0.1, 0.5]]))[0] == pytest.approx(0.0)


def test_feed_statistics_summarise_the_feed_and_the_other_candidates() -> None:
    from kuairec_utils.causal.residuals import FEED_STATISTICS, feed_statistics

    w = np.array([0.5, 0.0, 0.0, -0.5])  # Score = (p_complete - p_negative) / 2
    probs = np.zeros((2, 5, 4))
    probs[:, :, 0] = [[0.9, 0.7, 0.1, 0.3, 0.0], [0.6, 0.2, 0.4, 0.8, 0.5]]
    valid = np.array([[True, True, True, True, False], [True, True, True, True, True]])
    k = np.array([2, 1])
    stats = feed_statistics(probs, valid, k, w)
    assert list(stats.columns) == list(FEED_STATISTICS)
    assert stats["length"].tolist() == [2.0, 1.0]
    assert np.allclose(stats["feed_mean"], [0.4, 0.3])
    assert np.allclose(stats["feed_min"], [0.35, 0.3]) and np.allclose(
        stats["feed_max"], [0.45, 0.3]
    )
    assert np.allclose(stats["feed_sd"], [0.05, 0.0])
    assert np.allclose(stats["others_mean"], [0.1, (0.1 + 0.2 + 0.4 + 0.25) / 4])
    alone = feed_statistics(probs, valid, np.array([4, 1]), w)  # session 0: no other candidate
    assert np.isnan(alone.loc[0, "others_mean"]) and np.isfinite(alone.loc[1, "others_q90"])


def test_within_projection_recovers_a_within_group_linear_relation() -> None:
    from kuairec_utils.causal.regressions import within_projection

    rng = np.random.default_rng(4)
    n = 4000
    frame = pd.DataFrame(
        {"g": rng.integers(0, 50, n), "x1": rng.normal(size=n), "x2": rng.normal(size=n)}
    )
    level = rng.normal(scale=5.0, size=50)[frame["g"]]  # group constants: the fixed effects
    frame["y"] = level + 2.0 * frame["x1"] - frame["x2"] + 0.1 * rng.normal(size=n)
    fitted, r2 = within_projection(frame, "y", ["x1", "x2"], "g")
    assert r2 > 0.99
    assert np.allclose(fitted, 2.0 * frame["x1"] - frame["x2"], atol=0.02)
    frame["noise"] = rng.normal(size=n)
    assert within_projection(frame, "noise", ["x1", "x2"], "g")[1] < 0.01
    frame.loc[:9, "x2"] = np.nan  # rows with a missing value are left out, fitted NaN
    fitted, r2 = within_projection(frame, "y", ["x1", "x2"], "g")
    assert np.isnan(fitted[:10]).all() and np.isfinite(fitted[10:]).all() and r2 > 0.99


def test_the_bootstrap_over_users_repeats_the_selectivity_step() -> None:
    """Sessions with a known effect of r(s-1) on c_s; c_s is seen only through each session's
    quick skips. The bootstrap over users re-estimates every c_s; its draws scatter around the
    full sample's estimate, which is near the effect."""
    rng = np.random.default_rng(5)
    n_users, per_user = 150, 8
    user = np.repeat(np.arange(n_users), per_user)
    sessions = pd.DataFrame({"user_id": user, "order": np.tile(np.arange(per_user), n_users)})
    sessions["residual"] = rng.normal(0, 0.3, len(user))
    sessions["residual_prev"] = lagged(sessions, "residual", "user_id", "order", 1)
    user_level = rng.normal(-1.0, 0.5, n_users)[user]
    sessions["c"] = user_level - 5.0 * np.nan_to_num(sessions["residual_prev"])
    length = rng.integers(40, 80, len(sessions))
    row_session = np.repeat(np.arange(len(sessions)), length)
    position = np.concatenate([np.arange(n) for n in length])
    x = rng.normal(size=len(row_session))
    p = expit(sessions["c"].to_numpy()[row_session] - 1.3 * x - 0.2 * np.log1p(position))
    rows = pd.DataFrame({"x": x, "position": position, "negative": rng.random(len(x)) < p})
    rows["negative"] = rows["negative"].astype(int)
    fit = session_thresholds(rows, row_session, prior_sd=3.0)
    sessions["c"], sessions["precision"] = fit.c, 1.0 / fit.se**2
    regressions = {"main": {"treatment": "residual_prev", "controls": [], "weights": "precision"}}
    draws = bootstrap_effects(sessions, rows, row_session, fit, 3.0, regressions, 12, seed=7)
    again = bootstrap_effects(sessions, rows, row_session, fit, 3.0, regressions, 12, seed=7)
    np.testing.assert_array_equal(draws["main"], again["main"])  # same seed, same draws
    assert draws["main"].shape == (12,) and np.unique(draws["main"]).size == 12
    full = effect_regression(sessions, "c", "residual_prev", [], weights="precision")
    spread = draws["main"].std(ddof=1)
    assert abs(draws["main"].mean() - full["effect"]) < 2 * spread
    # estimated c_s are noisy and the weak prior pulls them in a little: near the effect
    assert -5.5 < full["effect"] < -4.5


def feeds_with_quality(effect: float = -5.0, n_users: int = 120, per_user: int = 10, seed: int = 3):
    """Sessions whose c_s depends on r(s-1) by ``effect``, and whose feed is better than the
    value model's index says by a_s, which rises with c_s (the platform ranks knowing the
    session). Rows: skips by the threshold model on the true utility; the watch depth of the
    rest rises with the same utility and falls with duration, as on the simulated platform."""
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(n_users), per_user)
    sessions = pd.DataFrame({"user_id": user, "order": np.tile(np.arange(per_user), n_users)})
    sessions["residual"] = rng.normal(0, 0.15, len(user))
    sessions["residual_prev"] = lagged(sessions, "residual", "user_id", "order", 1)
    c_true = rng.normal(-2.0, 0.5, n_users)[user] + effect * np.nan_to_num(
        sessions["residual_prev"].to_numpy()
    )
    quality = 0.7 * (c_true - c_true.mean()) + rng.normal(0, 0.2, len(user))
    length = rng.integers(60, 120, len(sessions))
    row_session = np.repeat(np.arange(len(sessions)), length)
    position = np.concatenate([np.arange(n) for n in length])
    x = rng.normal(0.0, 1.0, len(row_session))
    utility = 1.2 * x + quality[row_session] - 0.2 * np.log1p(position)
    utility += rng.normal(0, 0.3, len(x))
    skip = rng.random(len(x)) < expit(c_true[row_session] - utility)
    duration_ms = np.exp(rng.normal(np.log(9400), 0.5, len(x)))
    log_ratio = (
        -0.2 + 0.3 * utility - 0.45 * np.log(duration_ms / 9400) + rng.normal(0, 0.42, len(x))
    )
    rows = pd.DataFrame(
        {
            "x": x,
            "position": position,
            "negative": skip.astype(int),
            "watch_ratio": np.where(skip, 0.05, np.exp(log_ratio)),
            "video_duration_ms": duration_ms,
        }
    )
    return sessions, rows, row_session, c_true, quality


def test_watch_depth_measures_the_feed_quality_that_the_skips_cannot_tell_from_c() -> None:
    sessions, rows, row_session, c_true, quality = feeds_with_quality()
    fit = session_thresholds(rows, row_session, prior_sd=3.0)
    depth = watch_depth_offsets(rows, row_session, len(sessions), fit.slopes[0])
    # within session, log watch_ratio rises with the index by 0.3 * 1.2 and falls with duration
    assert abs(depth.slopes[0] - 0.36) < 0.03 and abs(depth.slopes[1] + 0.45) < 0.03
    assert abs(depth.residual_sd - 0.43) < 0.03
    assert np.corrcoef(depth.offset, quality)[0, 1] > 0.8
    assert abs(depth.offset.mean()) < 1e-9 and (depth.se > 0).all()

    # the skips alone give c_s - a_s: c_s's slope on the truth is far below one; with the
    # offset it is near one
    def slope(estimate: np.ndarray) -> float:
        return float(np.polyfit(c_true, estimate, 1)[0])

    assert slope(fit.c) < 0.6
    assert 0.85 < slope(fit.c + depth.offset) < 1.15


def test_the_watch_depth_offset_undoes_the_bias_of_the_effect() -> None:
    sessions, rows, row_session, _, _ = feeds_with_quality()
    fit = session_thresholds(rows, row_session, prior_sd=3.0)
    depth = watch_depth_offsets(rows, row_session, len(sessions), fit.slopes[0])
    skips = sessions.assign(c=fit.c, precision=1.0 / fit.se**2)
    watch = sessions.assign(c=fit.c + depth.offset, precision=1.0 / (fit.se**2 + depth.se**2))
    naive = effect_regression(skips, "c", "residual_prev", [], weights="precision")
    corrected = effect_regression(watch, "c", "residual_prev", [], weights="precision")
    assert naive["effect"] > -3.0  # the platform's better feeds for selective sessions hide c_s
    assert abs(corrected["effect"] + 5.0) < 2 * corrected["se"]
    regressions = {"main": {"treatment": "residual_prev", "controls": [], "weights": "precision"}}
    draws = bootstrap_effects(
        watch, rows, row_session, fit, 3.0, regressions, 6, 1, watch_depth=True
    )
    plain = bootstrap_effects(skips, rows, row_session, fit, 3.0, regressions, 6, 1)
    # the replicates repeat both steps: they scatter around the corrected estimate
    assert abs(draws["main"].mean() - corrected["effect"]) < 3 * draws["main"].std(ddof=1)
    assert abs(plain["main"].mean() - naive["effect"]) < 3 * plain["main"].std(ddof=1)


def test_watch_depth_offsets_handle_all_skipped_sessions_and_refuse_a_flat_depth() -> None:
    sessions, rows, row_session, _, _ = feeds_with_quality(n_users=30)
    rows.loc[row_session == 4, "negative"] = 1  # session 4: every video skipped
    depth = watch_depth_offsets(rows, row_session, len(sessions), 1.2)
    assert depth.n_watched[4] == 0 and depth.offset[4] == 0.0
    assert depth.se[4] == pytest.approx(np.std(np.delete(depth.offset, 4)))
    flat = rows.assign(watch_ratio=np.exp(-0.3 * rows["x"]))  # depth falls with the index
    with pytest.raises(ValueError, match="quality_offset"):
        watch_depth_offsets(flat, row_session, len(sessions), 1.2)


def test_split_half_calibration_predicts_the_residual_of_a_noisy_top_k() -> None:
    """diagnostics/residual_measurement.py's split-half simulation, on feeds made as the
    platform makes them (the top K of a pool by score plus normal noise) beside a fresh sample
    of other candidates: each design's predicted residual tracks the true one (the noise's
    part of the feed's score), and the simulation's R^2 is a share."""
    import importlib.util
    from pathlib import Path

    from kuairec_utils.head_weights.moments import top_k_mask

    spec = importlib.util.spec_from_file_location(
        "residual_measurement",
        Path(__file__).parents[1] / "diagnostics" / "residual_measurement.py",
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    n_sessions, n_pool, n_others = 2000, 60, 60
    k = rng.integers(5, 30, n_sessions)
    w, sigma = np.array([0.2, 0.1, 0.0, -0.7]), 0.08
    scale = rng.uniform(0.5, 1.5, n_sessions)[:, None, None]  # sessions differ in spread
    pool = rng.beta(2, 5, (n_sessions, n_pool, 4)) * scale
    pool_score = pool @ w
    feed = top_k_mask(pool_score + sigma * rng.normal(size=pool_score.shape), k)
    best = top_k_mask(pool_score, k)
    true_residual = ((pool_score * feed).sum(axis=1) - (pool_score * best).sum(axis=1)) / k
    probs = np.full((n_sessions, 30 + n_others, 4), np.nan)
    valid = np.zeros(probs.shape[:2], dtype=bool)
    others = rng.beta(2, 5, (n_sessions, n_others, 4)) * scale
    for s in range(n_sessions):  # the feed in slots 0..K-1, then the others
        probs[s, : k[s]] = pool[s][feed[s]]
        probs[s, k[s] : k[s] + n_others] = others[s]
        valid[s, : k[s] + n_others] = True
    predictions, r2 = module.split_calibration(probs, valid, k, w, sigma, draws=2, seed=1)
    assert set(predictions) == set(module.SPLIT_DESIGNS) == set(r2)
    for design, predicted in predictions.items():
        assert np.isfinite(predicted).all() and 0 < r2[design] < 1
        assert np.corrcoef(predicted, true_residual)[0, 1] > 0.6, design
        # near calibrated: the true residual moves by about one unit per predicted unit (the
        # simulated pool, the feed and half the others, is smaller than this platform's)
        assert 0.8 < np.polyfit(predicted, true_residual, 1)[0] < 1.5, design
