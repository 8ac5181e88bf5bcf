"""The residual treatment (docs/design.md section 7): how much better (in ``Score_w*`` units)
a session's feed was than the feed a deterministic top-K would have given it,
``r_s = mean Score_w*(observed feed) - mean Score_w*(simulated feed)``. The ranking noise that
makes it non-zero is exogenous, so its effect on the user's next session is identified. Also the
feed's score statistics, the split of the candidates into halves (a second measurement) and the
engagement index the threshold model reads.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from kuairec_utils.head_weights.moments import feed_mean_embeddings, to_l1_sphere, top_k_mask
from kuairec_utils.heads import HEADS


def feed_scores(
    probs: np.ndarray, valid: np.ndarray, k: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every candidate's ``Score_w`` (w on the L1 sphere; float64, 0 on padding), the mask of the
    observed feed (slots 0..K_s-1) and K_s clipped to the valid candidates."""
    w = to_l1_sphere(w)
    k = np.minimum(np.asarray(k), valid.sum(axis=1))
    shown = (np.arange(valid.shape[1])[None, :] < k[:, None]) & valid
    score = np.where(valid, np.nan_to_num(probs) @ w.astype(np.float32), 0.0).astype(np.float64)
    return score, shown, k


def feed_residuals(
    probs: np.ndarray,
    valid: np.ndarray,
    k: np.ndarray,
    w: np.ndarray,
    item_embeddings: np.ndarray | None = None,
    items: np.ndarray | None = None,
) -> pd.DataFrame:
    """Each session's residual against the simulated feed (top K_s of its valid candidates by
    ``Score_w``), the observed feed filling slots 0..K_s-1: ``score_observed``,
    ``score_simulated``, ``residual`` and, with embeddings, ``embedding_distance`` (the distance
    between the two feeds' mean embeddings)."""
    score, shown, k = feed_scores(probs, valid, k, w)
    out, simulated = score_residuals(score, valid, shown, k)
    if item_embeddings is not None and items is not None:
        mu_obs = feed_mean_embeddings(items, shown, item_embeddings)
        mu_sim = feed_mean_embeddings(items, simulated, item_embeddings)
        out["embedding_distance"] = np.sqrt(((mu_obs - mu_sim) ** 2).sum(axis=1))
    return out


def score_residuals(
    score: np.ndarray, valid: np.ndarray, shown: np.ndarray, k: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """``score_observed`` (the mean ``score`` of the ``shown`` slots), ``score_simulated`` (of
    the top ``k`` valid slots by ``score``) and their difference ``residual``, per row of the
    (S, C) ``score`` (0 on padding); and the simulated feeds' mask."""
    simulated = top_k_mask(np.where(valid, score, -np.inf), k)  # the valid candidates' top K_s
    out = pd.DataFrame(
        {
            "score_observed": (score * shown).sum(axis=1) / k,
            "score_simulated": (score * simulated).sum(axis=1) / k,
        }
    )
    out["residual"] = out["score_observed"] - out["score_simulated"]
    return out, simulated


FEED_STATISTICS: tuple[str, ...] = (
    "length",
    "log_length",
    "feed_mean",
    "feed_min",
    "feed_max",
    "feed_sd",
    "others_mean",
    "others_sd",
    "others_q90",
)


def feed_statistics(
    probs: np.ndarray, valid: np.ndarray, k: np.ndarray, w: np.ndarray
) -> pd.DataFrame:
    """What a session's log shows of its feed, in ``Score_w`` units (``FEED_STATISTICS``), the
    observed feed filling slots 0..K_s-1 of ``probs`` / ``valid``: ``score_statistics`` of the
    feed against the session's other candidates. A residual of the platform's ranking noise
    leaves traces in them (a feed with a low-scoring video was likely pushed down by the noise);
    the evaluation of 06 measures how much of the true residual they carry."""
    score, shown, k = feed_scores(probs, valid, k, w)
    return score_statistics(score, shown, valid & ~shown, k)


def score_statistics(
    score: np.ndarray, feed: np.ndarray, rest: np.ndarray, k: np.ndarray
) -> pd.DataFrame:
    """``FEED_STATISTICS`` of each row of ``score`` (S, C): the feed's length ``k``, the mean,
    minimum, maximum and sd of the scores in the ``feed`` mask, and the mean, sd and 90% quantile
    of those in the ``rest`` mask (NaN for a row without any)."""
    chosen = np.where(feed, score, np.nan)
    others = np.where(rest, score, np.nan)
    k = np.asarray(k)
    with warnings.catch_warnings():  # a session without other candidates: NaN, no warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return pd.DataFrame(
            {
                "length": k.astype(np.float64),
                "log_length": np.log(k),
                "feed_mean": np.nanmean(chosen, axis=1),
                "feed_min": np.nanmin(chosen, axis=1),
                "feed_max": np.nanmax(chosen, axis=1),
                "feed_sd": np.nanstd(chosen, axis=1),
                "others_mean": np.nanmean(others, axis=1),
                "others_sd": np.nanstd(others, axis=1),
                "others_q90": np.nanquantile(others, 0.9, axis=1),
            }
        )


def split_candidates(valid: np.ndarray, k: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two valid masks over disjoint random halves of each session's other candidates, both
    holding the observed feed (slots 0..K_s-1): two independent measurements of the residual."""
    rng = np.random.default_rng(seed)
    shown = np.arange(valid.shape[1])[None, :] < np.asarray(k)[:, None]
    half = rng.random(valid.shape) < 0.5
    others = valid & ~shown
    return shown & valid | (others & half), shown & valid | (others & ~half)


def shown_rows(
    interactions: pd.DataFrame, session_ids: np.ndarray, probs: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every shown video in (session, position) order, with ``slot`` (its place in the
    session's feed) and ``x`` (its engagement index, from ``probs`` (S, C, heads) of the
    sessions ``session_ids``, the feed in slots 0..K_s-1), and the number of its session in
    ``session_ids``."""
    rows = interactions.sort_values(["session_id", "position"], kind="stable")
    rows = rows.assign(slot=rows.groupby("session_id").cumcount().to_numpy())
    index_of = pd.Series(np.arange(len(session_ids)), index=session_ids)
    row_session = index_of.loc[rows["session_id"].to_numpy()].to_numpy()
    rows["x"] = engagement_index(probs[row_session, rows["slot"].to_numpy()])
    return rows, row_session


def engagement_index(probs: np.ndarray) -> np.ndarray:
    """The value model's engagement index of a video on the threshold model's scale:
    ``logit(1 - p_negative)``, the log-odds of not skipping (HEADS order in ``probs``)."""
    p = np.clip(np.asarray(probs)[..., HEADS.index("negative")], 1e-6, 1 - 1e-6)
    return np.log((1 - p) / p)
