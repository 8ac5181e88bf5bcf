"""The decomposition's parts on small made-up data: the residual from the valid candidates
only (06's own), the fixed-effects design (pyfixest's figures), the adjacent-session lags, the
logged pool's candidate table and its probabilities, and the shares of the gap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kuairec_utils.causal import decomposition as parts
from kuairec_utils.causal.regressions import (
    CONTROLS,
    WithinDesign,
    effect_regression,
    fe_effect,
    lagged,
)
from kuairec_utils.causal.residuals import feed_residuals, split_candidates
from kuairec_utils.head_weights.feeds import logged_pool_table, pool_probabilities


def _candidates(rng: np.random.Generator, n: int = 300, width: int = 40):
    k = rng.integers(1, 12, size=n)
    valid = np.zeros((n, width), dtype=bool)
    for s in range(n):
        valid[s, : k[s] + rng.integers(0, width - k[s] + 1)] = True
    probs = np.where(valid[..., None], rng.random((n, width, 4)), np.nan).astype(np.float32)
    return k, valid, probs


def test_the_residual_from_the_valid_candidates_is_06s() -> None:
    rng = np.random.default_rng(0)
    k, valid, probs = _candidates(rng)
    items = rng.integers(0, 500, size=valid.shape)
    w = np.array([0.3, 0.1, -0.1, -0.5])
    cands = parts.CandidateSet(valid, items[valid], k, seed=3)
    cands.set_probabilities("value model", probs)
    got = parts.measured_residuals(cands, cands.score("selection", w, "value model"))
    expected = feed_residuals(probs, valid, k, w)["residual"].to_numpy()
    np.testing.assert_allclose(got["residual"], expected, atol=1e-6)
    for name, half in zip("ab", split_candidates(valid, k, 3), strict=True):
        one_half = feed_residuals(probs, half, k, w)["residual"].to_numpy()
        np.testing.assert_allclose(got[f"residual_{name}"], one_half, atol=1e-6)
    assert (got["residual"] <= 1e-12).all()  # the observed feed never beats the top K
    # the logged pool's true weights with true probabilities: its logged scores
    logged = rng.random(valid.shape)
    pool = parts.CandidateSet(valid, items[valid], k, seed=3, logged=logged[valid])
    assert np.array_equal(pool.score("true", None, "true"), logged[valid])
    assert pool.score("true", None, "value model") is None


def _panel(rng: np.random.Generator, n_users: int = 60, per_user: int = 12) -> pd.DataFrame:
    user = np.repeat(np.arange(n_users), per_user)
    frame = pd.DataFrame(
        {
            "user_id": user,
            "session_id": np.arange(len(user)),
            "start": 1.6e9 + rng.random(len(user)) * 86400 * 30,
            "burst": rng.integers(0, 3, len(user)),
            "k": rng.integers(1, 40, len(user)),
        }
    )
    frame["hour"] = (frame["start"] // 3600 % 24).astype(int).astype(str)
    frame["weekend"] = rng.integers(0, 2, len(user))
    frame["burst"] = frame["burst"].astype(str)
    frame["log_length"] = np.log(frame["k"])
    z = rng.normal(size=len(user))
    frame["z"] = z
    frame["x"] = z + rng.normal(size=len(user))
    frame["y"] = -2.0 * frame["x"] + rng.normal(size=n_users)[user] + rng.normal(size=len(user))
    frame["w"] = rng.uniform(0.5, 2.0, len(user))
    return frame


@pytest.mark.parametrize(
    "kwargs", [{}, {"weights": "w"}, {"weights": "w", "instrument": "z"}, {"instrument": "z"}]
)
def test_the_fixed_effects_design_gives_pyfixests_figures(kwargs: dict) -> None:
    frame = _panel(np.random.default_rng(1))
    ours = fe_effect(frame, "y", "x", CONTROLS, **kwargs)
    theirs = effect_regression(frame, "y", "x", CONTROLS, **kwargs)
    assert ours["effect"] == pytest.approx(theirs["effect"], rel=1e-9)
    assert ours["se"] == pytest.approx(theirs["se"], rel=1e-9)
    design = WithinDesign(frame, CONTROLS, kwargs.get("weights"), np.ones(len(frame), bool))
    z = frame["z"].to_numpy() if "instrument" in kwargs else None
    again = design.effect(frame["y"].to_numpy(), frame["x"].to_numpy(), z)
    assert again["effect"] == pytest.approx(ours["effect"], rel=1e-12)


def test_a_lag_across_a_left_out_session_is_empty() -> None:
    frame = pd.DataFrame(
        {"user_id": [1, 1, 1, 2, 2], "session_id": [0, 1, 3, 4, 5], "start": [1, 2, 3, 1, 2]}
    )
    frame["r"] = [10.0, 20.0, 30.0, 40.0, 50.0]
    prev = lagged(frame, "r", "user_id", "start", 1, adjacent="session_id")
    nxt = lagged(frame, "r", "user_id", "start", -1, adjacent="session_id")
    np.testing.assert_array_equal(prev, [np.nan, 10.0, np.nan, np.nan, 40.0])
    np.testing.assert_array_equal(nxt, [20.0, np.nan, np.nan, 50.0, np.nan])
    plain = lagged(frame, "r", "user_id", "start", 1)  # without: session 2's residual unknown
    assert plain[2] == 20.0


def test_the_logged_pool_table_and_its_probabilities() -> None:
    item_ids = np.array([10, 11, 12, 13, 14, 15])
    sessions = pd.DataFrame({"session_id": [7, 9], "k": [2, 1]})
    sessions["feed"] = [np.array([12, 10]), np.array([13])]
    pool = pd.DataFrame(
        {
            "session_id": [7, 7, 7, 7, 7, 9, 9, 9],
            "video_id": [10, 12, 14, 99, 11, 13, 15, 11],
            "score": [0.9, 0.8, 0.5, 0.4, 0.3, 0.7, 0.6, 0.2],
            "shown": [True, True, False, False, False, True, False, False],
            "seen": [False, False, False, False, True, False, False, False],
        }
    )
    items, valid, score = logged_pool_table(sessions, item_ids, pool)
    # the feed in order, then the others the model knows, not seen, by descending score
    assert item_ids[items[0][valid[0]]].tolist() == [12, 10, 14]
    assert item_ids[items[1][valid[1]]].tolist() == [13, 15, 11]
    np.testing.assert_allclose(score[0][valid[0]], [0.8, 0.9, 0.5])
    sampled = {
        "items": np.array([[2, 0, 5], [3, 1, 0]]),
        "valid": np.array([[1, 1, 1], [1, 1, 0]], bool),
    }
    sampled_probs = [np.arange(24, dtype=np.float32).reshape(2, 3, 4)]

    def score_rest(some: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = np.full((1, *some.shape, 4), np.nan, dtype=np.float32)
        out[0][mask] = -1.0 - some[mask][:, None]
        return out

    probs = pool_probabilities(sampled, sampled_probs, items, valid, score_rest)
    assert probs.shape == (1, int(valid.sum()), 4)
    # session 7: 12 and 10 were sampled (slots 0, 1), 14 (row 4) was not; session 9: 13 was
    np.testing.assert_array_equal(probs[0, 0], sampled_probs[0][0, 0])
    np.testing.assert_array_equal(probs[0, 1], sampled_probs[0][0, 1])
    assert (probs[0, 2] == -5.0).all()
    np.testing.assert_array_equal(probs[0, 3], sampled_probs[0][1, 0])
    assert (probs[0, 4] == -6.0).all()
    np.testing.assert_array_equal(probs[0, 5], sampled_probs[0][1, 1])


def test_the_shares_of_the_gap_add_up_in_either_order() -> None:
    def cell(candidates: str, weights: str, probabilities: str, selectivity: str, e: float):
        levels = dict(candidates=candidates, weights=weights, probabilities=probabilities)
        return levels | {"selectivity": selectivity, "effect": {"mean": e, "se": 0.1}}

    values = {  # the effect as a sum of the four steps and one interaction
        (c, w, p, s): -1.0 - (c == "logged") - (w == "true") - 0.5 * (p == "true")
        - 0.5 * (s == "true") - 0.5 * (c == "logged" and s == "true")
        for c in ("sampled", "logged")
        for w in ("selection", "true")
        for p in ("value model", "true")
        for s in ("estimated", "true")
    }  # fmt: skip
    cells = [cell(*key, e) for key, e in values.items()]
    start = dict(candidates="sampled", weights="selection", probabilities="value model")
    start["selectivity"] = "estimated"
    end = dict.fromkeys(parts.INGREDIENTS, "true") | {"candidates": "logged"}
    shares = parts.gap_shares(cells, start, end, target=-5.0)
    gap = -5.0 - -1.0
    assert shares["fixed order"]["candidates"]["share"] == pytest.approx(-1.0 / gap)
    assert shares["fixed order"]["selectivity"]["share"] == pytest.approx(-1.0 / gap)
    assert shares["reverse order"]["selectivity"]["share"] == pytest.approx(-0.5 / gap)
    assert shares["reverse order"]["candidates"]["share"] == pytest.approx(-1.5 / gap)
    for order in ("fixed order", "reverse order"):
        total = sum(s["share"] for s in shares[order].values())
        assert total + shares["left"] == pytest.approx(1.0)
    assert shares["left"] == pytest.approx((-5.0 - -4.5) / gap)
    targets = parts.targets(cells, -5.0, "selection")
    assert targets["every true ingredient"]["distance_in_se"] == pytest.approx(5.0)
    assert targets["every true ingredient"]["within_1_se"] is False


def test_a_cell_the_same_on_every_seed_has_no_spread() -> None:
    """Rounding noise in the last bits is no spread across seeds; a real difference is."""
    noise = [-4.9, -4.9 * (1 + 1e-15), -4.9 * (1 - 1e-15)]
    assert parts.steady(noise) == [-4.9, -4.9, -4.9]
    assert parts.steady([-4.9, -4.8, -5.0]) == [-4.9, -4.8, -5.0]
    cell = dict(candidates="logged", weights="true", probabilities="true", selectivity="true")
    runs = {}
    for seed, x in enumerate(noise):
        fits = {name: x for name in parts.REGRESSIONS} | {f"{n}_se": 0.1 for n in parts.REGRESSIONS}
        runs[seed] = [cell | fits | {"corr_true_within_user": 1.0}]
    pooled = parts.pool_cells(runs)[0]
    assert pooled["effect"]["sd_seeds"] == 0.0 and pooled["effect"]["df"] is None
