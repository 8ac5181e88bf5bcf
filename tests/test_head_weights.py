"""The head-weight estimator on synthetic feeds with a known w."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kuairec_utils.head_weights.moments import (
    FeedProblem,
    bootstrap_weights,
    estimate_weights,
    objective,
    percentile_intervals,
    simulated_feed_mask,
    to_l1_sphere,
)
from kuairec_utils.head_weights.rank_logit import rank_logit_weights

W_TRUE = np.array([0.22, 0.10, -0.02, -0.66])


def synthetic(n_sessions: int = 2000, n_cand: int = 25, noise: float = 0.0, seed: int = 0):
    """Feeds that are the top K of w_true . p (+ ranking noise); embeddings carry p."""
    rng = np.random.default_rng(seed)
    probs = rng.beta(2, 3, size=(n_sessions, n_cand, 4))
    mix = rng.normal(size=(4, 6))
    embeddings = np.concatenate(
        [probs @ mix, rng.normal(scale=0.05, size=(n_sessions, n_cand, 2))], axis=2
    )
    valid = np.ones((n_sessions, n_cand), dtype=bool)
    valid[:, -5:] = rng.random((n_sessions, 5)) < 0.5  # ragged candidate sets
    k = rng.integers(2, 9, size=n_sessions)
    score = probs @ W_TRUE + noise * rng.normal(size=(n_sessions, n_cand))
    score[~valid] = -np.inf
    rank = np.argsort(np.argsort(-score, axis=1), axis=1)
    observed = rank < k[:, None]
    mu_obs = (observed[:, :, None] * embeddings).sum(axis=1) / k[:, None]
    users = rng.integers(0, n_sessions // 10, size=n_sessions)
    return FeedProblem.from_arrays(probs, embeddings, valid, k, mu_obs), users


def test_exact_top_k_recovers_w_within_0_01() -> None:
    problem, _ = synthetic()
    assert objective(problem, W_TRUE) == pytest.approx(0.0, abs=1e-10)
    estimate = estimate_weights(problem)
    assert np.abs(estimate.w - W_TRUE).max() < 0.01, estimate.w
    assert np.abs(estimate.w).sum() == pytest.approx(1.0)


def test_objective_is_invariant_to_positive_scaling() -> None:
    problem, _ = synthetic(n_sessions=300)
    w = np.array([0.3, -0.2, 0.1, -0.4])
    assert (
        objective(problem, w) == objective(problem, 7.5 * w) == objective(problem, to_l1_sphere(w))
    )
    assert objective(problem, -w) != objective(problem, w)
    with pytest.raises(ValueError, match="not all zero"):
        to_l1_sphere([0, 0, 0, 0])


def test_feeds_longer_than_the_candidate_set_are_handled() -> None:
    problem, _ = synthetic(n_sessions=50, n_cand=6)
    k = np.full(50, 10)  # more than the (up to) 6 candidates
    valid = problem.valid
    again = FeedProblem.from_items(
        problem.probs, problem.items, problem.item_embeddings, valid, k, problem.mu_obs
    )
    assert (again.k == valid.sum(axis=1)).all()
    mask = simulated_feed_mask(again, W_TRUE)
    assert (mask == valid).all()  # every real candidate is in the feed, no padding
    assert np.isfinite(objective(again, W_TRUE))


def test_float32_probs_are_not_copied_and_other_dtypes_are_converted() -> None:
    problem, _ = synthetic(n_sessions=40)
    probs32 = problem.probs.astype(np.float32)
    args = (problem.items, problem.item_embeddings, problem.valid, problem.k, problem.mu_obs)
    kept = FeedProblem.from_items(probs32, *args)
    assert kept.probs is probs32  # no second copy of the largest array (GBs at full scale)
    converted = FeedProblem.from_items(probs32.astype(np.float64), *args)
    assert converted.probs.dtype == np.float32 and np.array_equal(converted.probs, probs32)
    assert objective(kept, W_TRUE) == objective(converted, W_TRUE)


def test_clean_int64_items_are_not_copied_and_padding_is_ignored() -> None:
    problem, _ = synthetic(n_sessions=40, n_cand=8)
    valid = problem.valid
    assert (~valid).any()  # some sessions have fewer candidates than the width
    items = np.where(valid, problem.items, 0).astype(np.int64)
    probs = problem.probs.astype(np.float32)
    rest = (problem.item_embeddings, valid, problem.k, problem.mu_obs)
    kept = FeedProblem.from_items(probs, items, *rest)
    assert kept.items is items  # no second copy (0.9 GB at full scale)
    padded_items = np.where(valid, items, 999).astype(np.int32)  # garbage where not valid
    padded_probs = np.where(valid[:, :, None], probs, 7.5).astype(np.float32)
    other = FeedProblem.from_items(padded_probs, padded_items, *rest)
    assert other.items is not padded_items and np.array_equal(other.items, items)
    assert objective(other, W_TRUE) == objective(kept, W_TRUE)
    assert np.array_equal(rank_logit_weights(other).beta, rank_logit_weights(kept).beta)
    for block in kept.blocks:  # the rank logit reads the blocks' head-major copy
        dense = block.probs64()
        assert dense.dtype == np.float64 and dense.flags.c_contiguous
        assert (dense[~block.valid] == 0).all()


def test_with_ranking_noise_the_bootstrap_interval_covers_w() -> None:
    problem, users = synthetic(n_sessions=1500, noise=0.03, seed=1)
    estimate = estimate_weights(problem)
    draws = bootstrap_weights(problem, users, estimate.w, n_boot=30, seed=2)
    intervals = percentile_intervals(draws)
    for j, (lo, hi) in enumerate(intervals.values()):
        assert lo - 0.01 <= W_TRUE[j] <= hi + 0.01, (intervals, estimate.w)
    assert np.abs(estimate.w - W_TRUE).max() < 0.05


def test_candidates_are_the_feed_plus_available_others_by_shows() -> None:
    from kuairec_utils.head_weights.feeds import sample_candidates

    shows = np.zeros((2, 50))
    shows[0, :40] = 1.0
    shows[0, 10] = 1000.0  # the most shown video is almost always drawn
    shows[1, 20:] = 1.0  # day 1: only videos 20.. are available
    feeds = [np.array([3, 4]), np.array([25])] * 100
    days = np.array([0, 1] * 100)
    cands = sample_candidates(days, feeds, shows, n_others=10, seed=1)
    assert all(
        (c[: len(f)] == f).all() and len(set(c)) == len(c)
        for c, f in zip(cands, feeds, strict=True)
    )
    assert all(len(c) == len(f) + 10 for c, f in zip(cands, feeds, strict=True))
    assert all(
        (shows[d][c[len(f) :]] > 0).all() for d, c, f in zip(days, cands, feeds, strict=True)
    )
    assert np.mean([10 in c for c in cands[::2]]) > 0.95
    again = sample_candidates(days, feeds, shows, n_others=10, seed=1)
    assert all((a == b).all() for a, b in zip(cands, again, strict=True))
    few = sample_candidates(np.array([1]), [np.array([25])], shows, n_others=100)
    assert len(few[0]) == 30  # all 29 other available videos, no more


def test_blocked_feed_means_equal_the_dense_mask_computation() -> None:
    from kuairec_utils.head_weights import moments as weights

    problem, _ = synthetic(n_sessions=900, seed=5)
    old = weights.BLOCK_SESSIONS
    try:
        weights.BLOCK_SESSIONS = 128  # several blocks of different widths
        small = FeedProblem.from_items(
            problem.probs,
            problem.items,
            problem.item_embeddings,
            problem.valid,
            problem.k,
            problem.mu_obs,
        )
    finally:
        weights.BLOCK_SESSIONS = old
    assert len(small.blocks) == 8
    w = np.array([0.1, -0.3, 0.2, -0.4])
    mask = simulated_feed_mask(small, w)
    assert (mask.sum(axis=1) == small.k).all() and not (mask & ~small.valid).any()
    dense = np.einsum("sc,scr->sr", mask, small.item_embeddings[small.items]) / small.k[:, None]
    assert np.allclose(weights.simulated_feed_means(small, w), dense)


def test_candidates_can_exclude_what_the_user_was_shown_before() -> None:
    from kuairec_utils.head_weights.feeds import sample_candidates

    shows = np.ones((1, 30))
    feeds = [np.arange(0, 10), np.arange(10, 12), np.arange(12, 14)]
    users = np.array([0, 0, 1])
    cands = sample_candidates(np.zeros(3, int), feeds, shows, n_others=100, user=users)
    assert len(cands[1]) == 2 + 18  # not the user's 10 earlier videos
    assert not set(cands[1][2:]) & set(range(10))
    assert len(cands[2]) == 2 + 28  # another user: everything else


def test_rank_logit_recovers_w_and_the_noise_scale_from_gumbel_ranked_feeds() -> None:
    from kuairec_utils.head_weights.rank_logit import bootstrap_rank_logit, rank_logit_weights

    rng = np.random.default_rng(8)
    s, c, sigma = 3000, 30, 0.05
    probs = rng.beta(2, 3, size=(s, c, 4))
    k = rng.integers(2, 9, size=s)
    noisy = probs @ W_TRUE + sigma * rng.gumbel(size=(s, c))
    order = np.argsort(-noisy, axis=1)  # shown first: the highest noisy score
    probs = np.take_along_axis(probs, order[:, :, None], axis=1)  # observed feed in slots 0..k-1
    valid = np.ones((s, c), dtype=bool)
    emb = probs[:, :, :2]
    problem = FeedProblem.from_arrays(probs, emb, valid, k, emb[:, :2].mean(axis=1))
    fit = rank_logit_weights(problem)
    assert np.abs(fit.w - W_TRUE).max() < 0.03, fit.w
    assert fit.noise_scale == pytest.approx(sigma, rel=0.15)
    draws = bootstrap_rank_logit(problem, np.arange(s) // 10, fit.beta, n_boot=20, seed=1)
    lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
    assert ((lo - 0.005 <= W_TRUE) & (W_TRUE <= hi + 0.005)).all(), (lo, hi)


def test_top_k_mask_matches_a_stable_argsort_with_ties() -> None:
    from kuairec_utils.head_weights.moments import top_k_feed_mask

    rng = np.random.default_rng(3)
    probs = rng.integers(0, 3, size=(500, 12, 4)).astype(np.float32) / 2  # many exact ties
    valid = rng.random((500, 12)) < 0.8
    valid[:, 0] = True
    k = rng.integers(1, 14, size=500)
    w = np.array([0.4, -0.1, 0.2, -0.3])
    mask = top_k_feed_mask(probs, valid, k, w)
    score = np.where(valid, probs @ w.astype(np.float32), -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")
    reference = np.zeros_like(mask)
    take = np.arange(12)[None, :] < np.minimum(k, valid.sum(axis=1))[:, None]
    np.put_along_axis(reference, order, take, axis=1)
    assert np.array_equal(mask, reference)
    assert (mask.sum(axis=1) == np.minimum(k, valid.sum(axis=1))).all()


def test_feed_sums_kernel_equals_the_mask_and_sums_it_replaces_bit_for_bit() -> None:
    from kuairec_utils.head_weights import moments as weights

    rng = np.random.default_rng(11)
    s, c = 700, 14
    probs = rng.integers(0, 3, size=(s, c, 4)).astype(np.float32) / 2  # many exact ties
    valid = rng.random((s, c)) < 0.8
    valid[:, 0] = True
    k = rng.integers(1, 16, size=s)
    emb = rng.normal(size=(40, 5))
    items = rng.integers(0, 40, size=(s, c))
    mu_obs = rng.normal(size=(s, 5))
    old = weights.BLOCK_SESSIONS
    try:
        weights.BLOCK_SESSIONS = 64  # blocks of different widths
        problem = FeedProblem.from_items(probs, items, emb, valid, k, mu_obs)
    finally:
        weights.BLOCK_SESSIONS = old
    for w in (np.array([0.4, -0.1, 0.2, -0.3]), np.array([1.0, 0, 0, 0]), W_TRUE):
        means = np.empty((s, 5))
        for block in problem.blocks:  # numpy: score head by head, mask, float32 sums in order
            score = block.pad.copy()
            for j, wj in enumerate(to_l1_sphere(w).astype(np.float32)):
                score += wj * block.heads[j]
            assert np.array_equal(score, weights._block_scores(block, to_l1_sphere(w)))
            mask = weights.top_k_mask(score, block.k)
            sums = np.zeros((len(block.k), 5), dtype=np.float32)
            for row, slot in zip(*np.nonzero(mask), strict=True):
                sums[row] += problem.item_embeddings32[block.items[row, slot]]
            means[block.sessions] = sums.astype(np.float64) / block.k[:, None]
        assert np.array_equal(weights.simulated_feed_means(problem, w), means)
        losses = ((mu_obs - means) ** 2).sum(axis=1)
        assert np.array_equal(weights.session_losses(problem, w), losses)


def test_several_processes_give_the_same_estimate_and_bootstrap() -> None:
    problem, users = synthetic(n_sessions=600, noise=0.02, seed=4)
    one = estimate_weights(problem, n_screen=24, max_evaluations=40, seed=1)
    two = estimate_weights(problem, n_screen=24, max_evaluations=40, seed=1, n_jobs=2)
    assert np.array_equal(one.w, two.w) and one.objective == two.objective
    shared = set(one.evaluated) & set(two.evaluated)
    assert len(shared) >= 24  # the screen at least
    assert all(one.evaluated[key] == two.evaluated[key] for key in shared)
    draws = [
        bootstrap_weights(problem, users, one.w, n_boot=8, n_grid=30, max_evaluations=0, n_jobs=j)
        for j in (1, 2)
    ]
    assert np.array_equal(draws[0], draws[1])


def test_ranking_agreement_measures_how_alike_two_weight_vectors_rank() -> None:
    from kuairec_utils.evaluation.head_weights import ranking_agreement

    rng = np.random.default_rng(3)
    probs = rng.random((40, 12, 4))
    valid = np.ones((40, 12), dtype=bool)
    valid[0, 5:] = False  # a session with fewer candidates
    k = np.full(40, 4)
    k[1] = 30  # a feed longer than the candidates
    w = np.array([0.3, 0.2, -0.1, -0.4])
    same = ranking_agreement(probs, valid, k, w, 7 * w)  # positive scaling changes nothing
    assert same == {"spearman": 1.0, "top_k_overlap": 1.0}
    flipped = ranking_agreement(probs, valid, k, w, -w)
    assert np.isclose(flipped["spearman"], -1.0)
    assert flipped["top_k_overlap"] < 0.2  # only the session whose feed is every candidate
    other = ranking_agreement(probs, valid, k, w, np.array([1.0, 0, 0, 0]))
    assert -1 < other["spearman"] < 1 and 0 < other["top_k_overlap"] < 1
    # by hand: one session, scores 3 > 2 > 1 > 0 under a, 0 < 1 < 3 < 2 under b
    probs1 = np.zeros((1, 4, 4))
    probs1[0, :, 0] = [3, 2, 1, 0]
    probs1[0, :, 1] = [0, 1, 3, 2]
    one = ranking_agreement(
        probs1, np.ones((1, 4), bool), np.array([2]), [1, 0, 0, 0], [0, 1, 0, 0]
    )
    assert one["top_k_overlap"] == 0.0  # top-2 {0, 1} against {2, 3}
    assert np.isclose(one["spearman"], np.corrcoef([4, 3, 2, 1], [1, 2, 4, 3])[0, 1])
    part = ranking_agreement(probs, valid, k, w, -w, sessions=[1])  # K >= candidates: all kept
    assert part["top_k_overlap"] == 1.0


def test_downstream_interactions_keep_every_row_of_a_seeded_sample_of_users() -> None:
    from kuairec_utils.head_weights.feeds import downstream_interactions

    frame = pd.DataFrame({"user_id": np.repeat(np.arange(50), 4), "x": np.arange(200)})
    assert downstream_interactions(frame, 50, seed=1) is frame  # all kept: the same rows
    part = downstream_interactions(frame, 10, seed=1)
    assert part["user_id"].nunique() == 10 and len(part) == 40  # whole users
    assert part.equals(downstream_interactions(frame, 10, seed=1))  # seeded
    assert not part.equals(downstream_interactions(frame, 10, seed=2))
    assert (np.diff(part.index) > 0).all()  # in the interactions' order
    with pytest.raises(ValueError, match="max_users"):
        downstream_interactions(frame, 0, seed=1)
