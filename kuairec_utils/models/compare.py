"""Two value models' test AUCs compared on the same rows, with a standard error that respects
users (docs/design.md section 10).

A test set holds many rows per user, and a user's rows are not independent, so the AUC's
standard error is DeLong's, clustered by user (Obuchowski 1997). The AUC is the mean over
positive-negative pairs of ``[s_pos > s_neg] + [s_pos = s_neg] / 2``; to first order it moves
with each row's *placement*, the share of the other class it beats:

    AUC - theta ~ sum_pos (V_i - theta) / m + sum_neg (W_j - theta) / n,

``V_i`` the share of negatives a positive row beats, ``W_j`` the share of positives that beat
a negative row, ``m`` and ``n`` the class sizes. Each row's term is its influence; a user's is
the sum over the user's rows, and the variance is the sum of squared user influences (times
``G / (G - 1)`` for ``G`` users). Two models on the same rows differ by the difference of their
influences, so the comparison is paired: what the two models share cancels. The mean AUC over
the heads takes the mean of the heads' influences.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kuairec_utils.heads import HEADS
from kuairec_utils.uncertainty import pool, verdict


def auc_influence(labels: np.ndarray, score: np.ndarray) -> tuple[float, np.ndarray]:
    """The AUC of ``score`` for the positive ``labels`` (ties one half) and each row's
    first-order influence on it (see the module's docstring)."""
    positive = np.asarray(labels) != 0
    score = np.asarray(score, dtype=np.float64)
    if np.isnan(score).any():
        raise ValueError("auc_influence: the scores contain NaN")
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        raise ValueError("auc_influence needs both classes")
    pos, neg = np.sort(score[positive]), np.sort(score[~positive])
    s_pos, s_neg = score[positive], score[~positive]
    below = np.searchsorted(neg, s_pos, side="left")
    tied = np.searchsorted(neg, s_pos, side="right") - below
    v = (below + 0.5 * tied) / n  # the share of negatives each positive beats
    above = m - np.searchsorted(pos, s_neg, side="right")
    tied = np.searchsorted(pos, s_neg, side="right") - np.searchsorted(pos, s_neg, side="left")
    w = (above + 0.5 * tied) / m  # the share of positives that beat each negative
    theta = float(v.mean())
    influence = np.empty(len(score))
    influence[positive] = (v - theta) / m
    influence[~positive] = (w - theta) / n
    return theta, influence


def clustered_se(influence: np.ndarray, cluster: np.ndarray) -> float:
    """The standard error from rows' influences summed within clusters, with the small-sample
    factor ``G / (G - 1)``."""
    _, codes = np.unique(np.asarray(cluster), return_inverse=True)
    totals = np.bincount(codes, weights=np.asarray(influence, np.float64))
    g = len(totals)
    if g < 2:
        raise ValueError("a clustered standard error needs at least two clusters")
    return float(np.sqrt(g / (g - 1) * np.sum(totals**2)))


def mean_auc_influence(y: np.ndarray, p: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """Each head's AUC and the mean over the heads (as ``auc_by_head``), and the rows'
    influence on the mean."""
    aucs, influence = {}, np.zeros(len(y))
    for j, head in enumerate(HEADS):
        aucs[head], part = auc_influence(y[:, j], p[:, j])
        influence += part / len(HEADS)
    aucs["mean"] = float(np.mean([aucs[h] for h in HEADS]))
    return aucs, influence


@dataclass(frozen=True)
class AucComparison:
    """Model a against model b on the same rows: each one's mean AUC, the difference a - b and
    its standard error clustered by user (paired), and each mean AUC's own standard error."""

    auc_a: float
    auc_b: float
    difference: float
    se: float
    se_a: float
    se_b: float

    def record(self) -> dict[str, float]:
        return {
            "auc_a": self.auc_a,
            "auc_b": self.auc_b,
            "difference": self.difference,
            "se": self.se,
            "se_a": self.se_a,
            "se_b": self.se_b,
        }


def compare_auc(
    y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, cluster: np.ndarray
) -> AucComparison:
    """The mean AUC over the heads of two models' predictions ``p_a`` and ``p_b`` ((n, 4), the
    same rows in the same order) against the labels ``y`` (n, 4), and the paired difference
    with its standard error clustered by ``cluster`` (the rows' users)."""
    y, p_a, p_b = np.asarray(y), np.asarray(p_a), np.asarray(p_b)
    if not (y.shape == p_a.shape == p_b.shape and y.ndim == 2 and len(cluster) == len(y)):
        raise ValueError(
            f"labels {y.shape}, predictions {p_a.shape} and {p_b.shape}, "
            f"{len(cluster)} clusters: the same rows are needed"
        )
    auc_a, infl_a = mean_auc_influence(y, p_a)
    auc_b, infl_b = mean_auc_influence(y, p_b)
    return AucComparison(
        auc_a=auc_a["mean"],
        auc_b=auc_b["mean"],
        difference=auc_a["mean"] - auc_b["mean"],
        se=clustered_se(infl_a - infl_b, cluster),
        se_a=clustered_se(infl_a, cluster),
        se_b=clustered_se(infl_b, cluster),
    )


def compare_over_seeds(
    y: np.ndarray,
    predictions: Mapping[str, Mapping[int, np.ndarray]],
    users: np.ndarray,
    reference: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every model of ``predictions`` ({model: {seed: (n, 4) test predictions}}) against the
    ``reference`` model, seed by seed (model a's seed s against the reference's seed s), pooled
    over the seeds by Rubin's rules (``uncertainty.pool``), each difference judged by the claim
    "the model's mean test AUC exceeds the reference's" (``uncertainty.verdict``).

    Returns the headline record ({model: {"difference": pooled record, "verdict"}}) and the
    details ({model: {seed: ``AucComparison.record``}})."""
    if reference not in predictions:
        raise ValueError(f"no predictions of the reference model {reference!r}")
    headline, details = {}, {}
    for name, by_seed in predictions.items():
        if name == reference:
            continue
        seeds = [s for s in by_seed if s in predictions[reference]]
        if not seeds:
            raise ValueError(f"{name} and {reference} share no seed")
        runs = {s: compare_auc(y, by_seed[s], predictions[reference][s], users) for s in seeds}
        pooled = pool([r.difference for r in runs.values()], [r.se for r in runs.values()])
        headline[name] = {"difference": pooled.record(), "verdict": verdict(pooled.ci95, "above")}
        details[name] = {str(s): r.record() for s, r in runs.items()}
    return headline, details
