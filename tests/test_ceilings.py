"""The AUC ceilings of a model trained on the training days (evaluation only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kuairec_utils.evaluation.ceilings import (
    information_ceiling,
    learnable_latents,
    tag_taste,
    user_mean_selectivity,
)
from kuairec_utils.evaluation.truth import simulated_world
from kuairec_utils.heads import HEADS


@pytest.fixture(scope="module")
def truth(tiny_sim: Path) -> pd.DataFrame:
    return pd.read_parquet(tiny_sim / "ground_truth" / "big_matrix_truth.parquet")


def test_learnable_latents_add_up_to_the_utility_and_keep_only_tags_for_cold_videos(
    tiny_sim: Path, truth: pd.DataFrame
) -> None:
    meta = json.loads((tiny_sim / "ground_truth" / "truth.json").read_text())
    truth = truth[~truth["is_duplicate"]]
    first_session = truth.groupby("user_id")["session_id"].transform("min")
    first = truth[(truth["session_id"] == first_session) & (truth["position"] == 0)]
    users, videos = first["user_id"].to_numpy(), first["video_id"].to_numpy()
    all_videos = truth["video_id"].unique()
    exact, warm = learnable_latents(tiny_sim, users, videos, all_videos)
    assert exact.shape == (len(first), 3) and warm.all()
    # a user's first video: no habit, no fatigue, so the utility is the sum of the latents
    intercept = meta["constants"]["utility_intercept"]
    assert np.allclose(intercept + exact.sum(axis=1), first["utility"].to_numpy(), atol=1e-5)

    rows = truth.sample(2000, random_state=0)
    users, videos = rows["user_id"].to_numpy(), rows["video_id"].to_numpy()
    half = np.sort(all_videos)[::2]  # every other video counts as warm
    exact, _ = learnable_latents(tiny_sim, users, videos, all_videos)
    got, warm = learnable_latents(tiny_sim, users, videos, half)
    assert np.array_equal(warm, np.isin(videos, half)) and 0 < warm.mean() < 1
    assert np.array_equal(got[warm], exact[warm])
    assert np.array_equal(got[:, 0], exact[:, 0])  # every user is learnable
    assert (got[~warm, 2] == 0).all()  # a cold video's quality is unknown ...
    known = np.arange(len(rows)) % 3 == 0  # ... unless its daily statistics reveal it
    with_quality, _ = learnable_latents(tiny_sim, users, videos, half, known)
    assert np.array_equal(with_quality[warm | known, 2], exact[warm | known, 2])
    assert (with_quality[~warm & ~known, 2] == 0).all()
    assert np.array_equal(with_quality[:, :2], got[:, :2])
    # a cold video keeps the taste its tags carry: close to the truth, but not equal
    cold_taste, true_taste = got[~warm, 1], exact[~warm, 1]
    assert not np.allclose(cold_taste, true_taste)
    assert np.corrcoef(cold_taste, true_taste)[0, 1] > 0.7
    with pytest.raises(ValueError, match="does not hold"):
        learnable_latents(tiny_sim, users[:3], np.array([-1, -2, -3]), half)


def test_tag_taste_is_a_projection_with_the_simulators_residual_variance(tiny_sim: Path) -> None:
    cfg, world = simulated_world(tiny_sim)
    projected, cov = tag_taste(world)
    taste = world.video_taste.astype(np.float64)
    dim = taste.shape[1]
    assert projected.shape == taste.shape and cov.shape == (dim, dim)
    # the simulator draws (1 - video_category_weight) of a taste's variance as noise
    expected = (1 - cfg.video_category_weight) * cfg.taste_scale**2 / dim
    assert np.diag(cov).mean() == pytest.approx(expected, rel=0.25)
    # least squares: the residual is orthogonal to the fit
    assert abs(np.sum(projected * (taste - projected))) < 1e-6 * np.sum(taste**2)


def test_information_ceiling_is_the_oracle_for_warm_videos_and_integrates_out_cold_taste(
    tiny_sim: Path, truth: pd.DataFrame
) -> None:
    from kuairec_utils.simulate import head_probabilities

    rows = np.sort(np.random.default_rng(0).choice(len(truth), 3000, replace=False))
    oracle = truth[[f"p_{h}" for h in HEADS]].to_numpy()[rows]
    videos = truth["video_id"].to_numpy()
    # every video warm: the oracle itself
    everyone = information_ceiling(tiny_sim, truth, rows, np.unique(videos))
    assert np.allclose(everyone, oracle, atol=1e-12)

    half = np.unique(videos)[::2]
    got = information_ceiling(tiny_sim, truth, rows, half)
    warm = np.isin(videos[rows], half)
    assert 0 < warm.mean() < 1
    assert np.allclose(got[warm], oracle[warm], atol=1e-12)
    assert not np.allclose(got[~warm], oracle[~warm], atol=1e-3)
    # by hand for one cold row: Monte Carlo over the video's own taste
    cfg, world = simulated_world(tiny_sim)
    projected, cov = tag_taste(world)
    cold = np.flatnonzero(~warm)
    i = int(cold[np.abs(got[cold] - oracle[cold]).max(axis=1).argmax()])
    r = rows[i]
    u = int(np.searchsorted(world.user_id, truth["user_id"].iat[r]))
    v = int(np.searchsorted(world.video_id, truth["video_id"].iat[r]))
    user = world.user_taste[u].astype(np.float64)
    own = np.random.default_rng(1).multivariate_normal(np.zeros(len(cov)), cov, size=200_000)
    utility = truth["utility"].iat[r] - user @ (world.video_taste[v] - projected[v]) + own @ user
    n = len(utility)
    by_hand = head_probabilities(
        cfg,
        utility,
        np.full(n, truth["selectivity"].iat[r]),
        np.full(n, float(world.video_duration_ms[v])),
    )[0].mean(axis=0)
    assert np.allclose(got[i], by_hand, atol=3e-3)
    assert not np.allclose(oracle[i], by_hand, atol=3e-2)  # the own taste mattered here

    # the selectivity is the caller's: the user's mean takes the shock out
    c_mean = user_mean_selectivity(truth, rows)
    per_user = pd.Series(c_mean).groupby(truth["user_id"].to_numpy()[rows]).nunique()
    assert (per_user == 1).all()
    no_shock = information_ceiling(tiny_sim, truth, rows, half, c_mean)
    assert not np.allclose(no_shock, got, atol=1e-3)


def test_label_loglik_is_a_distribution_over_label_patterns_with_the_heads_marginals(
    tiny_sim: Path,
) -> None:
    import itertools

    import torch

    from kuairec_utils.evaluation.ceilings import label_loglik
    from kuairec_utils.simulate import head_probabilities

    cfg, _ = simulated_world(tiny_sim)
    rng = np.random.default_rng(0)
    n = 500
    utility, c = rng.normal(0, 1.5, n), rng.normal(-2.4, 0.7, n)
    duration_s = np.exp(rng.normal(np.log(9.4), 0.9, n)).clip(0.5, 300)
    t = [torch.as_tensor(a) for a in (utility, c, duration_s)]
    patterns = np.array(list(itertools.product([0.0, 1.0], repeat=4)))
    lik = np.column_stack(
        [
            np.exp(label_loglik(cfg, *t, torch.as_tensor(np.tile(p, (n, 1)))).numpy())
            for p in patterns
        ]
    )
    lik[lik < 1e-250] = 0.0  # impossible patterns (log floored)
    assert np.allclose(lik.sum(axis=1), 1.0, atol=1e-9)
    heads = head_probabilities(cfg, utility, c, duration_s * 1000.0)[0]
    assert np.allclose(lik @ patterns, heads, atol=1e-9)  # each head's marginal


def test_structural_learner_is_informative_and_close_to_the_oracle(
    tiny_sim: Path, tiny_processed: Path, truth: pd.DataFrame
) -> None:
    from kuairec_utils.evaluation.ceilings import structural_learner
    from kuairec_utils.models.dataset import load_processed
    from kuairec_utils.models.training import auc_by_head

    data = load_processed(tiny_processed)
    train, test = data.splits["train"], data.splits["test"]
    p = structural_learner(
        tiny_sim,
        truth,
        train.raw_row,
        train.y.numpy(),
        test.raw_row,
        truth["selectivity"].to_numpy()[test.raw_row],
    )
    assert p.shape == (len(test), 4) and np.isfinite(p).all()
    assert ((p > 0) & (p < 1)).all()
    oracle = truth[[f"p_{h}" for h in HEADS]].to_numpy()[test.raw_row]
    y = test.y.numpy()
    learnt, best = auc_by_head(y, p)["mean"], auc_by_head(y, oracle)["mean"]
    assert 0.6 < learnt < best + 0.01  # informative, and not better than the oracle
    assert np.corrcoef(p[:, 0], oracle[:, 0])[0, 1] > 0.9
