"""06 end to end (``causal.run.causal_run``) on a platform made for it: sessions whose feeds are
a noisy top K of their candidates, a planted effect of the previous feed's residual on the
session's selectivity, skips and watch depths from the threshold model. The run must find the
planted effect's sign and a null placebo, and find nothing where nothing was planted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from kuairec_utils.causal.run import causal_run, pool_effects
from kuairec_utils.head_weights.feeds import session_feeds

W = np.array([0.22, 0.10, -0.02, -0.66])
SETTINGS = {"seed": 3, "prior_sd": 3.0, "center_index": "no", "quality_offset": "watch"}


def head_probabilities(m: np.ndarray) -> np.ndarray:
    """Four heads that all rise with the utility m but the skip, which falls: the index
    logit(1 - p_negative) is 1.5 + m."""
    return np.stack(
        [expit(m - 0.5), expit(m - 1.0), expit(m - 2.0), expit(-1.5 - m)], axis=-1
    ).astype(np.float32)


def planted_platform(effect: float, n_users: int = 150, per_user: int = 20, seed: int = 0):
    """Interactions and 05's candidates of a platform whose session selectivity is
    c_s = c_u + effect * r(s-1) + noise, r the feed's mean score minus the deterministic top K's
    (the candidates are the platform's whole pool, scored with the true probabilities)."""
    rng = np.random.default_rng(seed)
    k, others = 15, 40
    n_sessions, width = n_users * per_user, k + others
    m = rng.normal(size=(n_sessions, width))
    probs = head_probabilities(m)
    score = probs.astype(np.float64) @ W
    noisy = score + rng.normal(0, 0.08, score.shape)
    order = np.argsort(-noisy, axis=1, kind="stable")  # the feed: top k by the noisy score
    m, probs, score = (np.take_along_axis(a, order[..., None] if a.ndim == 3 else order, 1)
                       for a in (m, probs, score))  # fmt: skip
    best = -np.sort(-score, axis=1)[:, :k].mean(axis=1)
    residual = score[:, :k].mean(axis=1) - best  # <= 0
    user = np.repeat(np.arange(n_users), per_user)
    c_user = rng.normal(-1.0, 0.5, n_users)
    previous = np.r_[0.0, residual[:-1]]
    previous[np.arange(n_sessions) % per_user == 0] = 0.0  # a user's first session
    c = c_user[user] + effect * previous + rng.normal(0, 0.35, n_sessions)
    shown_m = m[:, :k]
    skip = rng.random(shown_m.shape) < expit(c[:, None] - shown_m)
    ratio = np.exp(-0.2 + 0.3 * shown_m + rng.normal(0, 0.42, shown_m.shape))
    duration = rng.lognormal(np.log(9.4), 0.4, shown_m.shape) * 1000
    items = rng.permuted(np.tile(np.arange(width * 4), (n_sessions, 1)), axis=1)[:, :width]
    start = 1.6e9 + np.arange(n_sessions) * 7200.0
    interactions = pd.DataFrame(
        {
            "session_id": np.repeat(np.arange(n_sessions), k),
            "user_id": np.repeat(user, k),
            "position": np.tile(np.arange(k), n_sessions),
            "timestamp": np.repeat(start, k) + np.tile(np.arange(k) * 10.0, n_sessions),
            "date": 20200705,
            "burst": 0,
            "split": "train",
            "video_id": items[:, :k].ravel(),
            "negative": skip.ravel().astype(np.int8),
            "watch_ratio": np.where(skip, 0.05, ratio).ravel(),
            "video_duration_ms": duration.ravel(),
        }
    )
    cache = {"items": items, "valid": np.ones((n_sessions, width), bool), "probs": probs}
    return interactions, cache


def run(effect: float, seed: int) -> tuple[dict, dict]:
    interactions, cache = planted_platform(effect, seed=seed)
    base = session_feeds(interactions).drop(columns="feed")
    emb = np.random.default_rng(seed).normal(size=(cache["items"].max() + 1, 4))
    settings = SETTINGS | {"n_boot": 12}
    return causal_run(interactions, base, cache, emb, W, settings, w_study=W).records()


@pytest.fixture(scope="module")
def planted() -> dict[int, tuple[dict, dict]]:
    return {seed: run(-5.0, seed) for seed in (0, 1)}


def test_06_finds_a_planted_effects_sign_and_a_null_placebo(planted: dict) -> None:
    for record, details in planted.values():
        assert record["effect"] < 0 and record["ci95"][1] < 0, record
        assert record["effect_iv"]["effect"] < 0
        placebo = record["placebo"]
        assert abs(placebo["effect"]) < 2.5 * placebo["se"], placebo
        assert details["watch_depth"]["scale"] > 0
    pooled = pool_effects({s: r for s, (r, _) in planted.items()}, -5.0, tolerance=3.0)
    assert pooled["verdicts"]["effect_is_negative"] == "holds"
    assert pooled["verdicts"]["placebo_is_null"] in ("holds", "not distinguishable")
    assert pooled["effect"]["ci95"][1] < 0
    # the study's estimator's w is the platform's here: its residual gives the same sign
    assert pooled["study_estimator"]["effect"]["mean"] < 0


def test_06_finds_no_effect_where_none_was_planted() -> None:
    record, _ = run(0.0, seed=5)
    lo, hi = record["ci95"]
    assert lo < 0 < hi or abs(record["effect"]) < 2.5 * record["se"], record
