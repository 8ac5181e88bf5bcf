"""05's evaluation against the simulator's truth (docs/design.md section 6): how far each
head-weight estimate lies from ``w_true``, what the same estimators give on the candidates' true
probabilities, and how alike each w ranks the candidates as ``w_true`` does. Evaluation only:
no estimator reads any of this."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from kuairec_utils.config import GROUND_TRUTH_SUBDIR
from kuairec_utils.evaluation.truth import (
    HABIT_COLUMNS,
    true_candidate_probabilities,
    truth_meta,
)
from kuairec_utils.head_weights.estimators import Feeds, WeightResult, run_estimators
from kuairec_utils.head_weights.moments import objective, to_l1_sphere, top_k_feed_mask
from kuairec_utils.heads import HEADS
from kuairec_utils.models.training import roc_auc

SINGLE_HEADS = {"complete only": (1.0, 0.0, 0.0, 0.0), "-negative only": (0.0, 0.0, 0.0, -1.0)}
EVERY_NTH_SESSION = 7  # the ranking comparisons read every 7th session (they sort every candidate)


def load_w_true(raw_dir: str | Path) -> np.ndarray:
    """The platform's head weights, from the simulator's truth.json, in HEADS order."""
    meta = truth_meta(raw_dir)
    return np.array([float(meta["w_true"][h]) for h in HEADS])


def truth_errors(result: WeightResult, w_true: np.ndarray) -> dict[str, Any]:
    """An estimate's largest error per head and whether each 95% interval covers ``w_true``."""
    if result.w is None:
        return {}
    out: dict[str, Any] = {"max_abs_error": float(np.abs(result.w - w_true).max())}
    if result.ci95 is not None:
        out["ci_covers_w_true"] = {
            h: bool(result.ci95[h][0] <= w_true[j] <= result.ci95[h][1])
            for j, h in enumerate(HEADS)
        }
    return out


def estimator_records(
    results: Mapping[str, WeightResult], w_true: np.ndarray | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each estimate as metrics: the headline (w, its 95% intervals and, with ``w_true``, the
    largest error) and the details (what else the estimator reports and, with ``w_true``,
    whether each interval covers it)."""
    headline, details = {}, {}
    for name, result in results.items():
        errors = truth_errors(result, w_true) if w_true is not None else {}
        record = result.record()
        headline[name] = {k: record[k] for k in ("w", "ci95") if k in record}
        if "max_abs_error" in errors:
            headline[name]["max_abs_error"] = errors.pop("max_abs_error")
        details[name] = result.details | errors
    return headline, details


def true_feed_probabilities(
    raw_dir: str | Path,
    interactions: pd.DataFrame,
    session_ids: np.ndarray,
    feeds: Feeds,
    item_ids: np.ndarray,
) -> tuple[np.ndarray, float]:
    """Every candidate's true ranking probabilities at its session's start, (S, C, 4) float32
    (nan on padding), and the share of its own deterministic top K that the platform's noisy
    feed keeps (the duplicates left out)."""
    first_row = (
        interactions[["session_id", "position", "raw_row"]]  # three columns, not every one
        .sort_values(["session_id", "position"])
        .groupby("session_id")["raw_row"]
        .first()
    )
    truth = pd.read_parquet(
        Path(raw_dir) / GROUND_TRUTH_SUBDIR / "big_matrix_truth.parquet",
        columns=[*HABIT_COLUMNS, "in_deterministic_top_k", "is_duplicate"],
    )
    keeps = float(truth.loc[~truth["is_duplicate"], "in_deterministic_top_k"].mean())
    rows, slots = np.nonzero(feeds.valid)
    true_probs = np.full(feeds.probs.shape, np.nan, dtype=np.float32)
    true_probs[rows, slots] = true_candidate_probabilities(
        raw_dir,
        feeds.users[rows],
        item_ids[feeds.items[rows, slots]],
        first_row.loc[session_ids].to_numpy()[rows],
        truth=truth,
    )
    return true_probs, keeps


def _scalars(details: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if isinstance(v, float) and k != "n_sessions"}


def evaluate_against_truth(
    results: Mapping[str, WeightResult],
    feeds: Feeds,
    true_probs: np.ndarray,
    w_true: np.ndarray,
    settings: Mapping[str, Any],
    platform_keeps: float,
    study_w: np.ndarray,
) -> dict[str, Any]:
    """Why the recovery misses: every estimator again on the candidates' true probabilities
    (what it still misses is the estimator's and the candidate set's, not the value model's),
    the study's objective at its estimate and at ``w_true`` on both, and how alike each w ranks
    the candidates' true probabilities as ``w_true`` does."""
    true_feeds = feeds.with_probabilities(true_probs)
    on_truth = run_estimators(true_feeds, settings, intervals=False, side_by_side=True)
    diagnosis: dict[str, Any] = {}
    for name, result in on_truth.items():
        if result.w is None:
            continue
        diagnosis[name] = {
            "w": dict(zip(HEADS, map(float, result.w), strict=True)),
            **truth_errors(result, w_true),
            **_scalars(result.details),
        }
        uncorrected = result.details.get("uncorrected")
        if uncorrected is not None:  # the estimate before its bias correction
            w = np.array([uncorrected["w"][h] for h in HEADS])
            diagnosis[name]["uncorrected_max_abs_error"] = float(np.abs(w - w_true).max())
    if "plain" in results:  # the study's moment condition, at its estimate and at the truth
        diagnosis["plain"]["objective_at_w_true"] = objective(true_feeds.problem, w_true)
        diagnosis["plain_gnn"] = {
            "objective": results["plain"].details["objective"],
            "objective_at_w_true": objective(feeds.problem, w_true),
        }
    candidates = {"study w*": study_w, **{n: np.array(w) for n, w in SINGLE_HEADS.items()}}
    for name in results:
        for source, fitted in (("GNN", results), ("true p", on_truth)):
            if fitted[name].w is not None:
                candidates[f"{name} ({source})"] = fitted[name].w
    every = range(0, len(feeds.k), EVERY_NTH_SESSION)
    agreement = {
        name: {
            "max_abs_error": float(np.abs(to_l1_sphere(w) - w_true).max()),
            **ranking_agreement(true_probs, feeds.valid, feeds.k, w_true, w, sessions=every),
        }
        for name, w in candidates.items()
    }
    return {
        "diagnosis_true_probabilities": diagnosis,
        "ranking_agreement_true_probabilities": {
            "platform_keeps_deterministic_top_k": platform_keeps,
            **agreement,
        },
    }


def selection_strength(feeds: Feeds, true_probs: np.ndarray, w_true: np.ndarray) -> pd.DataFrame:
    """How strongly the feed is selected among the candidates: the within-session AUC of
    ``Score_w_true`` (shown against the others, every 7th session) and the mean probabilities
    of shown and other candidates, on the true probabilities and the value model's."""
    shown, valid = feeds.shown, feeds.valid
    table = {}
    for name, p in [("true", true_probs), ("value model", feeds.probs)]:
        score = np.where(valid, p @ w_true.astype(np.float32), np.nan)
        sessions = range(0, len(feeds.k), EVERY_NTH_SESSION)
        auc = [roc_auc(shown[s][valid[s]], score[s][valid[s]]) for s in sessions]
        table[name] = {"within-session AUC (shown vs others)": float(np.nanmean(auc))}
        for j, h in enumerate(HEADS):
            mean_shown = np.nanmean(np.where(shown & valid, p[:, :, j], np.nan))
            mean_other = np.nanmean(np.where(valid & ~shown, p[:, :, j], np.nan))
            table[name][f"mean p_{h} shown / others"] = f"{mean_shown:.3f} / {mean_other:.3f}"
    return pd.DataFrame(table)


def ranking_agreement(
    probs: np.ndarray,
    valid: np.ndarray,
    k: np.ndarray,
    w_a: np.ndarray,
    w_b: np.ndarray,
    sessions: Iterable[int] | None = None,
) -> dict[str, float]:
    """How alike two weight vectors rank the candidates, which is all a feed reveals of w.

    For each session (all, or ``sessions``): the Spearman correlation of ``Score_wa`` and
    ``Score_wb`` over its valid candidates, and the share of ``Score_wa``'s top K_s that
    ``Score_wb``'s top K_s keeps (a stable sort, so ties go to the earlier candidate); returns
    their means over sessions (a session whose scores are constant under either w counts in the
    overlap only). probs (S, C, 4), valid (S, C), k (S,). Two w's far apart on the sphere can
    rank alike when the heads move together (all four follow one utility), which is when a
    ranking-based estimator cannot tell them apart.
    """
    probs, valid, k = np.asarray(probs), np.asarray(valid, dtype=bool), np.asarray(k)
    rows = np.arange(len(k)) if sessions is None else np.fromiter(sessions, dtype=np.int64)
    rows = rows[valid[rows].any(axis=1)]  # a session without candidates has no ranking
    probs, valid, k = probs[rows], valid[rows], k[rows]
    kept = top_k_feed_mask(probs, valid, k, w_a) & top_k_feed_mask(probs, valid, k, w_b)
    overlap = kept.sum(axis=1) / np.minimum(k, valid.sum(axis=1))
    # Spearman's rho of each session at once: a row's invalid slots score +inf, so its valid
    # candidates keep their ranks 1..n among themselves; Pearson of the ranks over valid slots
    p64 = np.where(valid[:, :, None], probs, 0.0).astype(np.float64)
    n = valid.sum(axis=1)
    ranks = []
    for w in (to_l1_sphere(w_a), to_l1_sphere(w_b)):
        r = rankdata(np.where(valid, p64 @ w, np.inf), axis=1)
        ranks.append(np.where(valid, r - (n[:, None] + 1) / 2, 0.0))  # centred: mean (n+1)/2
    # a row whose scores do not vary (or has one candidate) has only zero centred ranks
    varies = ((ranks[0] ** 2).sum(axis=1) > 0) & ((ranks[1] ** 2).sum(axis=1) > 0)
    ra, rb = ranks[0][varies], ranks[1][varies]
    rho = (ra * rb).sum(axis=1) / np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    return {
        "spearman": float(np.mean(rho)) if len(rho) else float("nan"),
        "top_k_overlap": float(overlap.mean()) if len(overlap) else float("nan"),
    }
