"""Head weights from logged feeds: the study's simulated-moments estimator (DESIGN.md section 6).

For a session s with K_s observed videos and a candidate set (the observed videos plus others
available that day), ``Score_w = sum_j w_j p_j`` ranks the candidates and the simulated feed is
the top K_s. ``mu_obs(s)`` and ``mu_sim(s, w)`` are the mean item embeddings of the observed and
simulated feeds, and

    w* = argmin_{|w|_1 = 1} mean_s || mu_obs(s) - mu_sim(s, w) ||^2 .

A ranking does not change when w is scaled by a positive number, so w lives on the unit L1
sphere. The hard top-K objective is piecewise constant: it is minimised by a derivative-free
search (Nelder-Mead on an unconstrained vector, normalised onto the sphere, from several starts)
and always judged by the hard objective. Everything is vectorised over sessions: candidates are
padded to a common width, and one evaluation is a batched sort and an embedding average.

This module knows nothing of where the probabilities and embeddings come from (the notebook
05_head_weights builds them from the GNN) and never reads a simulator's ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize

from kuairec_utils.heads import HEADS


@dataclass
class FeedProblem:
    """Sessions with their candidates, padded to a common width C.

    probs: (S, C, 4) predicted head probabilities of each candidate (HEADS order)
    embeddings: (S, C, r) the candidates' item embeddings (possibly reduced, e.g. by PCA)
    valid: (S, C) which candidate slots are real (the rest is padding)
    k: (S,) feed size K_s of each session (clipped to the number of valid candidates)
    mu_obs: (S, r) mean embedding of the observed feed
    """

    probs: torch.Tensor
    embeddings: torch.Tensor
    valid: torch.Tensor
    k: torch.Tensor
    mu_obs: torch.Tensor

    @classmethod
    def from_arrays(
        cls,
        probs: np.ndarray,
        embeddings: np.ndarray,
        valid: np.ndarray,
        k: np.ndarray,
        mu_obs: np.ndarray,
    ) -> FeedProblem:
        """Check shapes and build the problem (float32 tensors on the CPU)."""
        s, c = valid.shape
        if probs.shape != (s, c, len(HEADS)):
            raise ValueError(
                f"probs must be (S, C, {len(HEADS)}) = ({s}, {c}, 4), got {probs.shape}"
            )
        if embeddings.shape[:2] != (s, c) or mu_obs.shape != (s, embeddings.shape[2]):
            raise ValueError("embeddings must be (S, C, r) and mu_obs (S, r)")
        if np.any(np.asarray(k) < 1):
            raise ValueError("every session needs a feed of at least one video (k >= 1)")
        k = np.minimum(np.asarray(k), valid.sum(axis=1))  # a feed cannot exceed its candidates
        return cls(
            torch.as_tensor(probs, dtype=torch.float32),
            torch.as_tensor(embeddings, dtype=torch.float32),
            torch.as_tensor(valid, dtype=torch.bool),
            torch.as_tensor(k, dtype=torch.long),
            torch.as_tensor(mu_obs, dtype=torch.float32),
        )

    def __len__(self) -> int:
        return int(self.valid.shape[0])


def to_l1_sphere(w: Sequence[float] | np.ndarray) -> np.ndarray:
    """``w / sum |w_j|``: the representative of w's ranking on the unit L1 sphere."""
    w = np.asarray(w, dtype=np.float64)
    norm = np.abs(w).sum()
    if not np.isfinite(norm) or norm == 0:
        raise ValueError(f"weights must be finite and not all zero, got {w.tolist()}")
    return w / norm


def simulated_feed_mask(problem: FeedProblem, w: np.ndarray) -> torch.Tensor:
    """(S, C) mask of the top-K_s candidates of each session by ``Score_w``."""
    score = problem.probs @ torch.as_tensor(w, dtype=torch.float32)
    score = score.masked_fill(~problem.valid, float("-inf"))
    order = torch.argsort(score, dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order))
    return rank < problem.k[:, None]


def session_losses(problem: FeedProblem, w: np.ndarray) -> np.ndarray:
    """``|| mu_obs(s) - mu_sim(s, w) ||^2`` of every session, (S,)."""
    mask = simulated_feed_mask(problem, to_l1_sphere(w)).to(torch.float32)
    mu_sim = torch.einsum("sc,scr->sr", mask, problem.embeddings) / problem.k[:, None]
    return ((problem.mu_obs - mu_sim) ** 2).sum(dim=1).numpy().astype(np.float64)


def objective(
    problem: FeedProblem, w: np.ndarray, session_weights: np.ndarray | None = None
) -> float:
    """The hard top-K objective: the (weighted) mean of the session losses."""
    losses = session_losses(problem, w)
    if session_weights is None:
        return float(losses.mean())
    return float(np.average(losses, weights=session_weights))


def default_starts(n_random: int = 8, seed: int = 0) -> np.ndarray:
    """Starting points: the eight signed axes and random points, all on the L1 sphere."""
    axes = np.vstack([np.eye(len(HEADS)), -np.eye(len(HEADS))])
    rng = np.random.default_rng(seed)
    random = rng.laplace(size=(n_random, len(HEADS)))
    return np.vstack([axes, random / np.abs(random).sum(axis=1, keepdims=True)])


@dataclass
class WeightEstimate:
    """The minimiser on the L1 sphere, its objective and every start's result."""

    w: np.ndarray
    objective: float
    starts: list[tuple[np.ndarray, float]]


def estimate_weights(
    problem: FeedProblem,
    starts: np.ndarray | None = None,
    session_weights: np.ndarray | None = None,
    max_evaluations: int = 300,
) -> WeightEstimate:
    """Derivative-free minimisation of the hard objective from several starts.

    Nelder-Mead moves an unconstrained 4-vector; the objective normalises it onto the L1 sphere
    (scale invariance makes that exact). Its first simplex is wide (0.25 around the start), so
    it steps across the objective's flat pieces; the best start wins.
    """
    starts = default_starts() if starts is None else np.atleast_2d(starts)
    cache: dict[tuple[float, ...], float] = {}

    def f(v: np.ndarray) -> float:
        if not np.all(np.isfinite(v)) or np.abs(v).sum() < 1e-9:
            return np.inf
        w = to_l1_sphere(v)
        key = tuple(np.round(w, 12))
        if key not in cache:
            cache[key] = objective(problem, w, session_weights)
        return cache[key]

    results = []
    for start in starts:
        x0 = to_l1_sphere(start)
        simplex = np.vstack([x0, x0 + 0.25 * np.eye(len(HEADS))])
        fit = minimize(
            f,
            x0,
            method="Nelder-Mead",
            options={
                "initial_simplex": simplex,
                "maxfev": max_evaluations,
                "xatol": 1e-4,
                "fatol": 0.0,
            },
        )
        results.append((to_l1_sphere(fit.x), float(fit.fun)))
    best = min(results, key=lambda r: r[1])
    return WeightEstimate(best[0], best[1], results)


def bootstrap_weights(
    problem: FeedProblem,
    groups: np.ndarray,
    w_hat: np.ndarray,
    n_boot: int = 100,
    seed: int = 0,
    max_evaluations: int = 150,
) -> np.ndarray:
    """(n_boot, 4) estimates on bootstrap resamples of groups (users with all their sessions),
    each warm-started from ``w_hat``. A replicate only re-weights sessions: session i counts as
    many times as its group was drawn."""
    groups = np.asarray(groups)
    labels, inverse = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, len(HEADS)))
    for b in range(n_boot):
        draws = np.bincount(rng.integers(0, len(labels), len(labels)), minlength=len(labels))
        weights = draws[inverse].astype(np.float64)
        out[b] = estimate_weights(problem, w_hat[None, :], weights, max_evaluations).w
    return out


def percentile_intervals(draws: np.ndarray, level: float = 0.95) -> dict[str, list[float]]:
    """Percentile interval of each head's weight across bootstrap draws."""
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return {h: [float(lo[j]), float(hi[j])] for j, h in enumerate(HEADS)}


def sample_candidates(
    day_index: np.ndarray,
    observed: Sequence[np.ndarray],
    daily_shows: np.ndarray,
    n_others: int,
    seed: int = 0,
) -> list[np.ndarray]:
    """Each session's candidate set: its observed videos, then ``n_others`` other videos
    available that day, drawn without replacement in proportion to that day's ``show_cnt``
    (the way a platform plausibly builds its pool). Reproducible for a seed.

    day_index: (S,) the session's day, a row of ``daily_shows``
    observed: S arrays of video indices (the observed feed, in order)
    daily_shows: (n_days, n_videos) show counts; zero where a video was not available
    """
    if n_others < 0:
        raise ValueError(f"n_others must be non-negative, got {n_others}")
    rng = np.random.default_rng(seed)
    out = []
    for day, feed in zip(np.asarray(day_index), observed, strict=True):
        weights = daily_shows[day].astype(np.float64).copy()
        weights[np.asarray(feed, dtype=np.int64)] = 0.0  # others are not already in the feed
        available = int((weights > 0).sum())
        take = min(n_others, available)
        # Efraimidis-Spirakis: the largest log(u)/w keys are a weighted sample without replacement
        keys = np.where(
            weights > 0, np.log(rng.random(len(weights))) / np.maximum(weights, 1e-300), -np.inf
        )
        others = np.argpartition(-keys, take)[:take] if take else np.zeros(0, dtype=np.int64)
        out.append(np.concatenate([np.asarray(feed, dtype=np.int64), np.sort(others)]))
    return out
