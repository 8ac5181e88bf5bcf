"""Engagement signals at a common selectivity: on synthetic sessions with a planted
selectivity, the corrections remove it and the signals track the planted utility; sessions
and users without variation stay finite; the exact target does not move with c_s; the
evaluation's correlations are the plain ones, its measures catch a c_s that carries the value
model's view, and its paired bootstrap is the difference of the estimates; the cross-fitted c_s
comes from the other half of each session's videos and still moves the rate toward its target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from kuairec_utils.causal.selectivity import session_thresholds, watch_depth_offsets
from kuairec_utils.debias import evaluate as ev
from kuairec_utils.debias.correct import (
    SKIP,
    debiased_rows,
    fitted_shift,
    reference_selectivity,
    session_counts,
    structural_shift,
)
from kuairec_utils.debias.crossfit import (
    cross_fitted_selectivity,
    reproduce_selectivity,
    split_folds,
)
from kuairec_utils.debias.run import debias_run, evaluation_record, true_signal
from kuairec_utils.evaluation.debias_target import SkipTruth, skip_target


def planted(n_users: int = 300, sessions_per_user: int = 12, length: int = 30, seed: int = 0):
    """Users with a selectivity (user level plus session shock) independent of their utility;
    skips with P = sigmoid(c_s - m), the other head (complete) with P = (1 - P(skip)) *
    sigmoid(m) as in the simulator: a head that depends on the selectivity only through the skip.
    Also a value model's index (the utility with noise), positions, durations and the watch
    ratio of the videos not skipped (its log rises with the utility)."""
    rng = np.random.default_rng(seed)
    n_sessions = n_users * sessions_per_user
    session_user = np.repeat(np.arange(n_users), sessions_per_user)
    c = (-1.0 + 1.0 * rng.normal(size=n_users))[session_user] + 0.5 * rng.normal(size=n_sessions)
    taste = 0.7 * rng.normal(size=n_users)
    session = np.repeat(np.arange(n_sessions), length)
    user = session_user[session]
    n = len(session)
    feed_quality = 0.4 * rng.normal(size=n_sessions)  # the session's feed better or worse
    m = taste[user] + feed_quality[session] + 0.8 * rng.normal(size=n)
    skip = rng.random(n) < expit(c[session] - m)
    complete = ~skip & (rng.random(n) < expit(m))
    labels = np.zeros((n, 4))
    labels[:, 0], labels[:, SKIP] = complete, skip
    index = m - feed_quality[session] + 0.3 * rng.normal(size=n)  # misses the feed's quality
    rows = pd.DataFrame(
        {
            "x": index,
            "position": np.tile(np.arange(length), n_sessions),
            "negative": skip.astype(np.int64),
            "watch_ratio": np.where(skip, 0.05, np.exp(0.3 * m + 0.3 * rng.normal(size=n))),
            "video_duration_ms": np.full(n, 9400.0),
        }
    )
    return {
        "session": session,
        "user": user,
        "c": c,
        "m": m,
        "labels": labels,
        "n_users": n_users,
        "index": index,
        "rows": rows,
    }


def planted_truth(d: dict) -> SkipTruth:
    """The planted data's truth: the skip probability at the mean c_s over shown videos (the
    planted skip is the threshold alone), the c_s per video, the utility as the preference."""
    c_rows = d["c"][d["session"]]
    reference = float(c_rows.mean())
    return SkipTruth(expit(reference - d["m"]), c_rows, d["m"], reference)


def user_means(values: np.ndarray, user: np.ndarray, n_users: int) -> np.ndarray:
    return np.bincount(user, weights=values, minlength=n_users) / np.bincount(user)


def skip_signal(rate: np.ndarray) -> np.ndarray:
    """(n, heads) scores with ``rate`` as the skip and zeros elsewhere."""
    out = np.zeros((len(rate), 4))
    out[:, SKIP] = rate
    return out


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
    assert beta["c_s"] == pytest.approx(0.9, abs=0.15)  # the true 1, attenuated by index noise
    assert beta["index"] < 0
    c_user = user_means(d["c"][d["session"]], d["user"], d["n_users"])
    rows = debiased_rows(d["labels"], d["session"], shift)
    fixed = user_means(rows[:, SKIP], d["user"], d["n_users"])
    assert abs(np.corrcoef(fixed, c_user)[0, 1]) < 0.2
    # a noisy selectivity gets a smaller slope: the correction shrinks with its noise
    noisy = d["c"] + 1.5 * np.random.default_rng(2).normal(size=len(d["c"]))
    _, beta_noisy = fitted_shift(d["labels"][:, SKIP], index, position, noisy, d["session"], ref)
    assert beta_noisy["c_s"] < 0.5 * beta["c_s"]


def test_the_exact_target_is_the_simulators_skip_probability_at_the_common_selectivity():
    from kuairec_utils.config import load_params
    from kuairec_utils.simulate import SimConfig, head_probabilities

    cfg = SimConfig.from_params(load_params())
    rng = np.random.default_rng(3)
    d = planted(n_users=60)
    duration = rng.lognormal(np.log(9300), 0.5, size=len(d["m"]))
    c_rows = d["c"][d["session"]]
    target, reference = skip_target(cfg, d["m"], c_rows, duration)
    assert reference == pytest.approx(c_rows.mean())
    expected = head_probabilities(cfg, d["m"], np.full(len(d["m"]), reference), duration)[0]
    np.testing.assert_array_equal(target, expected[:, SKIP])
    # the target does not move with the sessions' selectivities (their mean kept) ...
    shock = rng.normal(size=len(d["c"]))
    moved = c_rows + shock[d["session"]]
    moved += c_rows.mean() - moved.mean()
    np.testing.assert_allclose(skip_target(cfg, d["m"], moved, duration)[0], target, atol=1e-12)
    # ... while the skip probability at each session's own c_s does
    own = head_probabilities(cfg, d["m"], moved, duration)[0][:, SKIP]
    assert np.abs(own - target).max() > 0.1
    # a signal equal to the target correlates 1 with it at both levels
    truth = SkipTruth(target, c_rows, d["m"], reference)
    signals = {"raw": d["labels"], "true": skip_signal(target)}
    evaluation = evaluation_record(
        signals, truth, d["index"], d["user"], d["session"], d["n_users"], 10, np.ones((2, 60))
    )
    for level in ev.LEVELS:
        assert evaluation["measures"][level]["corr_target"]["true"] == pytest.approx(1.0)
        assert evaluation["measures"][level]["corr_target"]["raw"] < 0.95
    with pytest.raises(ValueError, match="one entry per shown video"):
        skip_target(cfg, d["m"], c_rows[:-1], duration)


def test_the_evaluation_correlations_are_the_plain_ones():
    d = planted(n_users=60)
    rng = np.random.default_rng(4)
    columns = {
        "a": d["labels"][:, SKIP],
        "p": d["m"],
        "x": d["index"] + rng.normal(size=len(d["m"])),
    }
    moments = ev.unit_moments(columns, d["user"], d["session"], d["n_users"], min_length=10)
    r = ev.correlation_matrix(ev.covariances(moments["across_users"], np.ones(d["n_users"])))
    mean = {k: user_means(v, d["user"], d["n_users"]) for k, v in columns.items()}
    assert r[0, 0, 1] == pytest.approx(np.corrcoef(mean["a"], mean["p"])[0, 1], abs=1e-10)
    # the partial correlation is the correlation of the residuals on the third variable
    design = np.column_stack([np.ones(d["n_users"]), mean["x"]])
    resid = {k: v - design @ np.linalg.lstsq(design, v, rcond=None)[0] for k, v in mean.items()}
    assert ev.partial_correlation(r, 0, 1, 2)[0] == pytest.approx(
        np.corrcoef(resid["a"], resid["p"])[0, 1], abs=1e-10
    )
    # within user: session means as deviations from the user's mean, pooled
    frame = pd.DataFrame({"u": d["user"], "s": d["session"], "y": columns["a"], "m": d["m"]})
    per = frame.groupby("s").agg(u=("u", "first"), y=("y", "mean"), m=("m", "mean"))
    dev = per[["y", "m"]] - per.groupby("u")[["y", "m"]].transform("mean")
    within = ev.correlation_matrix(ev.covariances(moments["within_user"], np.ones(d["n_users"])))
    assert within[0, 0, 1] == pytest.approx(np.corrcoef(dev["y"], dev["m"])[0, 1], abs=1e-10)
    assert moments["within_user"].count.sum() == len(per)
    # a replicate that draws one user twice weights its sums twice
    twice = np.ones((1, d["n_users"]))
    twice[0, 0] = 2
    again = ev.correlation_matrix(ev.covariances(moments["across_users"], twice))
    assert again[0, 0, 1] != r[0, 0, 1]


def test_a_selectivity_that_carries_the_models_view_is_caught():
    """The failure mode of the old share of gain: an estimated c_s that adds the value model's
    index (a view of the preference) to the true c_s makes the skip rate track the preference
    more than the true c_s does (a share above 1) without telling more than the index. The
    partial correlation given the index does not reward it: it stays below the true c_s's."""
    d = planted()
    n_sessions = len(d["c"])
    index_session = np.bincount(d["session"], weights=d["index"]) / np.bincount(d["session"])
    c_hat = d["c"] + 0.8 * index_session  # the model's view added to the true c_s
    counts = session_counts(d["session"], d["labels"][:, SKIP], n_sessions)
    bogus = structural_shift(counts, c_hat, reference_selectivity(c_hat, counts[:, 0]))
    signals = {
        "raw": d["labels"],
        "bogus": debiased_rows(d["labels"], d["session"], bogus),
        "true": true_signal(d["labels"], d["session"], d["c"][d["session"]]),
    }
    boot = ev.bootstrap_weights(d["n_users"], 50, 0)
    e = evaluation_record(
        signals, planted_truth(d), d["index"], d["user"], d["session"], d["n_users"], 10, boot
    )
    for level in ev.LEVELS:
        corr = e["corr_preference"][level]["negative"]
        share = (corr["bogus"] - corr["raw"]) / (corr["true"] - corr["raw"])
        assert share > 1.0, level  # the old measure: as good as the ceiling, or better
        partial = e["measures"][level]["partial_corr_preference"]
        assert partial["raw"] < partial["bogus"] < partial["true"], level
    across = e["measures"]["across_users"]
    assert (
        across["partial_corr_preference"]["bogus"]
        < across["partial_corr_preference"]["true"] - 0.05
    )
    # the correlation with the target alone is fooled as well (the index is a good view of the
    # utility here): the partial correlation is what tells the two apart
    assert across["corr_target"]["bogus"] > across["corr_target"]["true"]
    # no selectivity is left in either (the target's own is near zero)
    assert max(abs(across["corr_true_c"][s]) for s in ("bogus", "true", "target")) < 0.15
    assert across["corr_true_c"]["raw"] > 0.6


def test_the_paired_bootstrap_is_the_difference_of_the_estimates():
    d = planted(n_users=200)
    signals = {
        "raw": d["labels"],
        "true": true_signal(d["labels"], d["session"], d["c"][d["session"]]),
    }
    boot = ev.bootstrap_weights(d["n_users"], 200, 1)
    e = evaluation_record(
        signals, planted_truth(d), d["index"], d["user"], d["session"], d["n_users"], 10, boot
    )
    for level in ev.LEVELS:
        for measure in ev.MEASURES:
            values = e["measures"][level][measure]
            diff = e["differences"][level][measure]["true"]
            assert diff["estimate"] == pytest.approx(values["true"] - values["raw"], abs=1e-12)
            assert diff["ci95"][0] <= diff["estimate"] <= diff["ci95"][1]
            assert 0 < diff["se"] < 0.2
    # the true c_s helps here: its gain in the correlation with the target is well above zero
    across = e["differences"]["across_users"]["corr_target"]["true"]
    assert across["ci95"][0] > 0.05
    assert e["differences"]["across_users"]["corr_true_c"]["true"]["ci95"][1] < -0.3
    # the draws' sd is the se: a replicate weights users, so a constant draw has se 0
    same = evaluation_record(
        signals,
        planted_truth(d),
        d["index"],
        d["user"],
        d["session"],
        d["n_users"],
        10,
        np.ones((5, d["n_users"])),
    )
    assert same["differences"]["within_user"]["corr_target"]["true"]["se"] == pytest.approx(0)


def test_the_folds_split_each_session_into_disjoint_halves_covering_every_row():
    session = np.repeat(np.arange(50), np.arange(1, 51))  # sessions of 1..50 videos
    fold = split_folds(session, seed=3)
    assert set(np.unique(fold)) <= {0, 1}
    sizes = np.stack([np.bincount(session[fold == k], minlength=50) for k in (0, 1)])
    assert (sizes.sum(axis=0) == np.arange(1, 51)).all()  # every row in exactly one half
    assert (np.abs(sizes[0] - sizes[1]) <= 1).all()  # the halves as equal as can be
    assert not np.array_equal(fold, split_folds(session, seed=4))  # at random, seeded
    np.testing.assert_array_equal(fold, split_folds(session, seed=3))


def test_the_cross_fitted_selectivity_comes_from_the_other_half_and_still_debiases():
    d = planted(n_users=200)
    fit = cross_fitted_selectivity(d["rows"], d["session"], prior_sd=3.0, seed=0)
    # the parts are the (session, half) pairs; each gets the c_s of its session's other half
    assert len(fit.part) == len(d["session"]) and fit.part.max() + 1 == len(fit.part_session)
    np.testing.assert_array_equal(fit.part_session[fit.part], d["session"])
    np.testing.assert_array_equal(fit.part_fold[fit.part], fit.fold)
    np.testing.assert_array_equal(fit.c_rows(), fit.c_fold[1 - fit.fold, d["session"]])
    # the other half's c_s changes with the skips of that half only, not with this half's
    flipped = d["rows"].copy()
    mine = (d["session"] == 0) & (fit.fold == 0)
    flipped.loc[mine, "negative"] = 1 - flipped.loc[mine, "negative"]
    again = cross_fitted_selectivity(flipped, d["session"], prior_sd=3.0, seed=0)
    np.testing.assert_array_equal(again.c_fold[1], fit.c_fold[1])
    assert abs(again.c_fold[0, 0] - fit.c_fold[0, 0]) > 0.5
    # the cross-fitted c_s tracks the planted one, and its correction moves toward the target
    c_rows = d["c"][d["session"]]
    assert np.corrcoef(fit.c_rows(), c_rows)[0, 1] > 0.6
    boot = ev.bootstrap_weights(d["n_users"], 50, 0)
    run = debias_run(
        d["labels"],
        d["index"],
        d["rows"]["position"].to_numpy(),
        d["session"],
        d["user"],
        d["n_users"],
        fit.c_fold.mean(axis=0),
        fit,
        planted_truth(d),
        boot,
        selectivity="cross_fitted",
    )
    corr = run.details["evaluation"]["measures"]["across_users"]["corr_target"]
    assert corr["structural_cross_fitted"] > corr["raw"] + 0.1
    diff = run.record["evaluation"]["across_users"]["corr_target"]["difference"]
    assert diff["ci95"][0] > 0


def test_07_reproduces_the_settings_06_built_its_selectivity_with():
    d = planted(n_users=40)
    rows, session = d["rows"], d["session"]
    fit = session_thresholds(rows, session, 3.0)
    offset = watch_depth_offsets(rows, session, len(d["c"]), fit.slopes[0]).offset
    sessions = pd.DataFrame({"c_skips": fit.c, "c_watch": fit.c + offset, "c": fit.c + offset})
    found = reproduce_selectivity(rows, session, sessions, 3.0)
    assert (found.quality_offset, found.center_index) == ("watch", "no")
    np.testing.assert_array_equal(found.x, rows["x"].to_numpy())
    # 06 with the skips alone and a centred index
    centred = rows["x"] - rows.groupby(session)["x"].transform("mean")
    fit = session_thresholds(rows.assign(x=centred), session, 3.0)
    sessions = pd.DataFrame({"c_skips": fit.c, "c_watch": fit.c + 1.0, "c": fit.c})
    found = reproduce_selectivity(rows, session, sessions, 3.0)
    assert (found.quality_offset, found.center_index) == ("none", "yes")
    with pytest.raises(ValueError, match="set debias.prior_sd to causal.prior_sd"):
        reproduce_selectivity(rows, session, sessions, 0.5)


def test_the_run_writes_the_headline_and_the_details(tmp_path: Path):
    from kuairec_utils.metrics import write_metrics
    from kuairec_utils.report.debias import debias_claim, debias_section

    d = planted(n_users=80)
    fit = cross_fitted_selectivity(d["rows"], d["session"], prior_sd=3.0, seed=0)
    c_hat = session_thresholds(d["rows"], d["session"], 3.0).c
    args = (d["labels"], d["index"], d["rows"]["position"].to_numpy(), d["session"], d["user"])
    boot = ev.bootstrap_weights(d["n_users"], 30, 0)
    run = debias_run(
        *args, d["n_users"], c_hat, fit, planted_truth(d), boot, "fitted", "cross_fitted"
    )
    record, details = run.record, run.details
    assert record["signal"] == "fitted_cross_fitted" and record["selectivity"] == "cross_fitted"
    assert set(record["evaluation"]) == set(ev.LEVELS)
    for level in ev.LEVELS:
        assert set(record["evaluation"][level]) == set(ev.MEASURES)
        for measure, entry in record["evaluation"][level].items():
            assert set(entry) == {"raw", "corrected", "true", "target", "difference"}
            assert (
                entry["corrected"]
                == details["evaluation"]["measures"][level][measure]["fitted_cross_fitted"]
            )
            claimed = measure != "corr_true_c"  # the claim: the two gains above 0
            assert set(entry["difference"]) == {"estimate", "se", "ci95"} | (
                {"verdict"} if claimed else set()
            )
    signals = {"raw", "structural", "fitted", "structural_cross_fitted", "fitted_cross_fitted"}
    assert set(details["evaluation"]["differences"]["within_user"]["corr_target"]) == (
        signals - {"raw"} | {"true"}
    )
    corr = details["evaluation"]["corr_preference"]["across_users"]
    assert set(corr) == {"complete", "long", "rewatch", "negative"}
    assert set(corr["complete"]) == signals | {"true"}
    for share in details["evaluation"]["share_of_gain"]["within_user"].values():
        assert (share["estimate"] is None) == (abs(share["denominator"]) < 0.05)
    assert "share_of_gain_kept" not in json.dumps(record)
    # without the truth: the same estimates, no evaluation
    blind = debias_run(*args, d["n_users"], c_hat, fit, None, boot, "fitted", "cross_fitted")
    assert "evaluation" not in blind.record and "evaluation" not in blind.details
    assert blind.details["reference_c"] == details["reference_c"]
    assert set(blind.signals) == signals
    with pytest.raises(ValueError, match="needs cross_fit"):
        debias_run(*args, d["n_users"], c_hat, None, None, boot, selectivity="cross_fitted")
    in_sample = debias_run(*args, d["n_users"], c_hat, None, planted_truth(d), boot)
    assert in_sample.record["signal"] == "structural" and "cross_fit" not in in_sample.details
    assert set(in_sample.signals) == {"raw", "structural", "fitted", "true"}
    # the results page's section and the claim row read the records
    metrics = tmp_path / "metrics"
    write_metrics(metrics / "debias_m.json", {"model": "m", **record})
    write_metrics(metrics / "details" / "debias_m.json", details)
    text = "\n".join(debias_section(metrics, "m"))
    assert "fitted_cross_fitted" in text and "partial corr" in text
    (row,) = debias_claim(metrics, "m")
    diff = record["evaluation"]["across_users"]["corr_target"]["difference"]
    assert f"{diff['estimate']:+.3f} [{diff['ci95'][0]:.3f}, {diff['ci95'][1]:.3f}]" in row[2]
    assert diff["verdict"] == "holds" and row[3].startswith("target: holds; partial: ")


def test_group_rates_give_each_group_its_users_mean_and_an_interval():
    rates = {"raw": np.array([0.1, 0.2, 0.3, 0.4]), "debiased": np.array([0.2, 0.2, 0.3, 0.3])}
    groups = pd.Series(["a", "a", "b", "b"])
    table = ev.group_rates(rates, groups, ev.bootstrap_weights(4, 200, 0))
    row = table[(table["group"] == "a") & (table["signal"] == "raw")].iloc[0]
    assert row["rate"] == pytest.approx(0.15) and row["users"] == 2
    assert row["ci95_low"] <= 0.15 <= row["ci95_high"]


def test_07_reads_the_first_value_model_seed():
    from kuairec_utils.debias.run import value_model_seed

    assert value_model_seed([20200706, 20200705]) == 20200706
    for bad in ([], [1.5], "20200705", [True]):
        with pytest.raises(ValueError, match="seeds must be"):
            value_model_seed(bad)


def test_params_check_the_choices_of_the_module():
    from kuairec_utils import params
    from kuairec_utils.debias.run import signal_name
    from kuairec_utils.names import CORRECTIONS, SELECTIVITIES

    for correction in CORRECTIONS:  # every choice params accepts names a signal
        for selectivity in SELECTIVITIES:
            assert signal_name(correction, selectivity).startswith(correction)
    section = {"correction": "structural", "min_session_length": 10, "n_boot": 20}
    params.check_debias(section | {"selectivity": "cross_fitted", "prior_sd": 3.0})
    with pytest.raises(params.ParamError, match="debias.selectivity"):
        params.check_debias(section | {"selectivity": "both", "prior_sd": 3.0})
    with pytest.raises(params.ParamError, match="debias.prior_sd"):
        params.check_debias(section | {"selectivity": "in_sample", "prior_sd": 0})
