"""Head weights from logged feeds: the study's simulated-moments estimator (docs/design.md section 6).

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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import InitVar, dataclass, field

import numba
import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from kuairec_utils import parallel
from kuairec_utils.heads import HEADS
from kuairec_utils.parallel import fork_map

BLOCK_SESSIONS = 4096  # sessions per block: similar candidate counts, padded to the block's width


@dataclass
class _Block:
    """Sessions of similar candidate counts, their valid candidates packed left."""

    sessions: np.ndarray  # (b,) rows of the problem
    probs: InitVar[np.ndarray]  # (b, c, 4) float32, kept only as ``heads``
    items: np.ndarray  # (b, c) int64, 0 on padding
    valid: np.ndarray  # (b, c) bool
    k: np.ndarray  # (b,)
    heads: np.ndarray = field(init=False, repr=False)  # (4, b, c) float32, 0 on padding
    pad: np.ndarray = field(init=False, repr=False)  # (b, c) float32: 0, or -inf on padding
    mu_obs: np.ndarray = field(init=False, repr=False)  # (b, r) the sessions' observed means

    def __post_init__(self, probs: np.ndarray) -> None:
        # Head-major copies make a score four contiguous multiply-adds instead of a matrix
        # product with an inner dimension of 4. They are the block's only copy of its
        # probabilities (a second, slot-major one was 0.8 GB at full scale).
        self.heads = np.ascontiguousarray(
            np.moveaxis(np.where(self.valid[:, :, None], probs, 0), 2, 0), dtype=np.float32
        )
        self.pad = np.where(self.valid, 0.0, -np.inf).astype(np.float32)

    def probs64(self) -> np.ndarray:
        """(b, c, 4) float64 probabilities, 0 on padding (what the rank logit reads)."""
        return np.ascontiguousarray(np.moveaxis(self.heads, 0, 2), dtype=np.float64)


@dataclass
class FeedProblem:
    """Sessions with their candidates (padded to a common width C on input).

    probs: (S, C, 4) predicted head probabilities of each candidate (HEADS order)
    items: (S, C) each candidate's row in ``item_embeddings`` (0 where not valid)
    item_embeddings: (V, r) the videos' embeddings
    valid: (S, C) which candidate slots are real (the rest is padding)
    k: (S,) feed size K_s of each session (clipped to the number of valid candidates)
    mu_obs: (S, r) mean embedding of the observed feed

    Internally the sessions are grouped into blocks of similar candidate counts, so a top-K
    pass sorts about sum_s C_s numbers, not S times the widest session's.
    """

    probs: np.ndarray
    items: np.ndarray
    item_embeddings: np.ndarray
    valid: np.ndarray
    k: np.ndarray
    mu_obs: np.ndarray
    blocks: list[_Block] = field(default_factory=list, repr=False)
    item_embeddings32: np.ndarray = field(init=False, repr=False)  # what the feed sums read

    def __post_init__(self) -> None:
        self.item_embeddings32 = np.asarray(self.item_embeddings, dtype=np.float32)

    @classmethod
    def from_items(
        cls,
        probs: np.ndarray,
        items: np.ndarray,
        item_embeddings: np.ndarray,
        valid: np.ndarray,
        k: np.ndarray,
        mu_obs: np.ndarray,
    ) -> FeedProblem:
        """Check shapes and build the problem. ``probs`` already in float32 and ``items``
        already in int64 with 0 on padding are used as they are, not copied (0.9-1.8 GB each at
        full scale): do not modify them while the problem is in use. Other ``items`` may hold
        anything where not valid."""
        valid = np.asarray(valid, dtype=bool)
        s, c = valid.shape
        probs, items = np.asarray(probs), np.asarray(items)
        if probs.shape != (s, c, len(HEADS)):
            raise ValueError(
                f"probs must be (S, C, {len(HEADS)}) = ({s}, {c}, 4), got {probs.shape}"
            )
        if items.shape != (s, c):
            raise ValueError(f"items must be (S, C) = ({s}, {c}), got {items.shape}")
        item_embeddings = np.asarray(item_embeddings, dtype=np.float64)
        if np.shape(mu_obs) != (s, item_embeddings.shape[1]):
            raise ValueError("mu_obs must be (S, r) with r the embeddings' width")
        if items.dtype != np.int64 or np.any(items, where=~valid):  # padding not yet 0
            items = np.where(valid, items, 0).astype(np.int64)
        if items.size and (items.min() < 0 or items.max() >= len(item_embeddings)):
            raise ValueError("items must index rows of item_embeddings")
        if np.any(np.asarray(k) < 1):
            raise ValueError("every session needs a feed of at least one video (k >= 1)")
        if not np.isfinite(probs[valid]).all():
            raise ValueError("probs must be finite on every valid candidate")
        k = np.minimum(np.asarray(k, dtype=np.int64), valid.sum(axis=1))  # feed <= candidates
        problem = cls(  # float32 probs are kept, not copied (1.8 GB at full scale)
            probs.astype(np.float32, copy=False),
            items,
            item_embeddings,
            valid,
            k,
            np.asarray(mu_obs, float),
        )
        problem.blocks = _make_blocks(problem.probs, items, valid, k)
        for block in problem.blocks:
            block.mu_obs = problem.mu_obs[block.sessions]
        return problem

    @classmethod
    def from_arrays(
        cls,
        probs: np.ndarray,
        embeddings: np.ndarray,
        valid: np.ndarray,
        k: np.ndarray,
        mu_obs: np.ndarray,
    ) -> FeedProblem:
        """A problem whose candidates each have their own embedding, (S, C, r)."""
        s, c = np.asarray(valid).shape
        if embeddings.shape[:2] != (s, c):
            raise ValueError(
                f"embeddings must be (S, C, r) = ({s}, {c}, r), got {embeddings.shape}"
            )
        items = np.arange(s * c).reshape(s, c)
        return cls.from_items(probs, items, embeddings.reshape(s * c, -1), valid, k, mu_obs)

    def __len__(self) -> int:
        return len(self.k)


def _make_blocks(
    probs: np.ndarray, items: np.ndarray, valid: np.ndarray, k: np.ndarray
) -> list[_Block]:
    n_valid = valid.sum(axis=1)
    order = np.argsort(n_valid, kind="stable")
    blocks = []
    for lo in range(0, len(order), BLOCK_SESSIONS):
        rows = order[lo : lo + BLOCK_SESSIONS]
        width = max(int(n_valid[rows].max(initial=1)), 1)
        pack = np.argsort(~valid[rows], axis=1, kind="stable")[:, :width]  # valid slots first
        v = np.take_along_axis(valid[rows], pack, axis=1)
        blocks.append(
            _Block(
                rows,
                np.take_along_axis(probs[rows], pack[:, :, None], axis=1),
                np.take_along_axis(items[rows], pack, axis=1),
                v,
                k[rows],
            )
        )
    return blocks


def to_l1_sphere(w: Sequence[float] | np.ndarray) -> np.ndarray:
    """``w / sum |w_j|``: the representative of w's ranking on the unit L1 sphere."""
    w = np.asarray(w, dtype=np.float64)
    norm = np.abs(w).sum()
    if not np.isfinite(norm) or norm == 0:
        raise ValueError(f"weights must be finite and not all zero, got {w.tolist()}")
    return w / norm


def _block_scores(block: _Block, w: np.ndarray) -> np.ndarray:
    """(b, c) float32 ``Score_w`` of the block's candidates, -inf on padding."""
    return _scores(block.heads, block.pad, w.astype(np.float32))


@numba.njit(cache=True)
def _scores(heads, pad, w):  # noqa: ANN001 (numba)
    """``pad + w_0 heads_0 + ... + w_3 heads_3`` in float32, each product rounded before its
    sum, in that order: what ``score = pad.copy(); score += w_j * heads[j]`` gives, in one pass
    instead of eight."""
    n_heads, b, c = heads.shape
    out = np.empty((b, c), dtype=np.float32)
    for i in range(b):
        for j in range(c):
            v = pad[i, j]
            for h in range(n_heads):
                v = v + w[h] * heads[h, i, j]
            out[i, j] = v
    return out


def _thresholds(score: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(b,) each row's ``k``-th largest score, from one plain sort of the values (many times
    faster than an argsort)."""
    b, c = score.shape
    return np.sort(score, axis=1)[np.arange(b), c - np.maximum(k, 1)]


def top_k_mask(score: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(b, c) mask of each row's ``k`` highest scores (ties: the earlier slot first).

    Exactly what a stable descending argsort would pick: the k-th largest value of a row is its
    threshold, every slot above it is in, and of the slots equal to it the first ones fill what
    is left.
    """
    b, c = score.shape
    if c == 0:
        return np.zeros((b, 0), dtype=bool)
    threshold = _thresholds(score, k)
    above = score > threshold[:, None]
    equal = score == threshold[:, None]
    need = k - above.sum(axis=1)
    mask = above | equal
    tied = np.flatnonzero(equal.sum(axis=1) > need)  # rare: ties across the threshold
    if len(tied):
        first = np.cumsum(equal[tied], axis=1) <= need[tied, None]
        mask[tied] = above[tied] | (equal[tied] & first)
    mask[k < 1] = False
    return mask


@numba.njit(cache=True)
def _top_k_sums(score, threshold, k, items, embeddings):  # noqa: ANN001 (numba)
    """(b, r) float32 sum of the embeddings of each row's top ``k`` slots of ``score``
    (``threshold``: the row's k-th largest score; ties: the earlier slot first), in one pass.

    The same selection as ``top_k_mask`` and the same float32 sums, slot by slot in row order, as
    a sparse row-selection matrix times the embeddings: the objective's values are those of the
    mask-and-matrix code it replaces, bit for bit, in a fraction of its time.
    """
    b, c = score.shape
    r = embeddings.shape[1]
    out = np.zeros((b, r), dtype=np.float32)
    chosen = np.empty(c, dtype=np.int64)
    for i in range(b):
        if k[i] < 1:
            continue
        t = threshold[i]
        above = 0
        equal = 0
        for j in range(c):
            above += score[i, j] > t
            equal += score[i, j] == t
        n = 0
        if equal <= k[i] - above:  # every slot at the threshold is in (no branch: fast)
            for j in range(c):
                chosen[n] = items[i, j]
                n += score[i, j] >= t
        else:  # ties across the threshold (rare): the first of them fill what is left
            ties_left = k[i] - above
            for j in range(c):
                s = score[i, j]
                if s > t or (s == t and ties_left > 0):
                    ties_left -= s == t
                    chosen[n] = items[i, j]
                    n += 1
        for m in range(n):
            e = chosen[m]
            for d in range(r):
                out[i, d] += embeddings[e, d]
    return out


def _feed_sum(problem: FeedProblem, block: _Block, score: np.ndarray) -> np.ndarray:
    """Sum of the embeddings of each session's simulated feed, the top K_s of the block's
    ``score``, as float64."""
    if score.shape[1] == 0:
        return np.zeros((len(block.k), problem.item_embeddings32.shape[1]))
    threshold = _thresholds(score, block.k)
    sums = _top_k_sums(score, threshold, block.k, block.items, problem.item_embeddings32)
    return sums.astype(np.float64)


def feed_mean_embeddings(
    items: np.ndarray, mask: np.ndarray, item_embeddings: np.ndarray
) -> np.ndarray:
    """(S, r) mean embedding of the candidates under ``mask`` in each row of ``items``, without
    materialising an (S, C, r) array."""
    rows, slots = np.nonzero(mask)
    counts = np.bincount(rows, minlength=len(mask)).astype(np.float64)
    if (counts == 0).any():
        raise ValueError("every session needs at least one video under the mask")
    picks = sp.csr_matrix(
        (1.0 / counts[rows], (rows, items[rows, slots])), shape=(len(mask), len(item_embeddings))
    )
    return picks @ np.asarray(item_embeddings, dtype=np.float64)


def top_k_feed_mask(
    probs: np.ndarray, valid: np.ndarray, k: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """(S, C) mask of each row's top ``k`` valid candidates by ``Score_w`` (w on the L1 sphere;
    ties: the earlier slot first)."""
    w = to_l1_sphere(w)
    score = np.where(valid, np.nan_to_num(probs) @ w.astype(np.float32), -np.inf)
    return top_k_mask(score, np.minimum(k, valid.sum(axis=1)))


def simulated_feed_mask(problem: FeedProblem, w: np.ndarray) -> np.ndarray:
    """(S, C) mask, in the input's slots, of the top-K_s candidates by ``Score_w``."""
    return top_k_feed_mask(problem.probs, problem.valid, problem.k, w)


def simulated_feed_means(
    problem: FeedProblem, w: np.ndarray, noise: np.ndarray | None = None, sigma: float = 0.0
) -> np.ndarray:
    """(S, r) mean embedding of each session's simulated feed, the top K_s by ``Score_w``
    (``w`` on the L1 sphere) plus ``sigma`` times the block's ``noise`` draws when given."""
    out = np.empty_like(problem.mu_obs)
    for block, means in _block_feed_means(problem, w, noise, sigma):
        out[block.sessions] = means
    return out


def session_losses(problem: FeedProblem, w: np.ndarray) -> np.ndarray:
    """``|| mu_obs(s) - mu_sim(s, w) ||^2`` of every session, (S,): block by block, the same
    numbers as from ``simulated_feed_means`` without gathering the means into one array."""
    out = np.empty(len(problem))
    for block, means in _block_feed_means(problem, w):
        out[block.sessions] = ((block.mu_obs - means) ** 2).sum(axis=1)
    return out


def _block_feed_means(
    problem: FeedProblem, w: np.ndarray, noise: np.ndarray | None = None, sigma: float = 0.0
) -> Iterator[tuple[_Block, np.ndarray]]:
    """Each block with the (b, r) mean embeddings of its sessions' simulated feeds."""
    w = to_l1_sphere(w)
    for b, block in enumerate(problem.blocks):
        score = _block_scores(block, w)
        if noise is not None and sigma > 0:
            score = score + sigma * noise[b]
        yield block, _feed_sum(problem, block, score) / block.k[:, None]


def objective(
    problem: FeedProblem, w: np.ndarray, session_weights: np.ndarray | None = None
) -> float:
    """The hard top-K objective: the (weighted) mean of the session losses."""
    losses = session_losses(problem, w)
    if session_weights is None:
        return float(losses.mean())
    return float(np.average(losses, weights=session_weights))


def sphere_points(n: int, seed: int = 0) -> np.ndarray:
    """The eight signed axes and ``n`` random points, all on the unit L1 sphere."""
    axes = np.vstack([np.eye(len(HEADS)), -np.eye(len(HEADS))])
    rng = np.random.default_rng(seed)
    random = rng.laplace(size=(n, len(HEADS)))
    return np.vstack([axes, random / np.abs(random).sum(axis=1, keepdims=True)])


# Several processes for the objective's evaluations: ``parallel.fork_map`` forks them with the
# problem in memory; its tasks below read it as ``parallel.SHARED``.


def _objective_task(args: tuple) -> float:
    w, session_weights = args
    return objective(parallel.SHARED, w, session_weights)


def _losses_task(w: np.ndarray) -> np.ndarray:
    return session_losses(parallel.SHARED, w)


def _search_task(args: tuple) -> tuple[np.ndarray, float, dict]:
    start, session_weights, max_evaluations, step = args
    cache: dict[tuple[float, ...], float] = {}
    f = _cached_objective(parallel.SHARED, session_weights, cache)
    w, value = _search(f, start[None, :], max_evaluations, step)
    return w, value, cache


@dataclass
class WeightEstimate:
    """The minimiser on the L1 sphere, its objective and every point the search evaluated."""

    w: np.ndarray
    objective: float
    evaluated: dict[tuple[float, ...], float]


def _search(
    f: Callable[[np.ndarray], float],
    starts: np.ndarray,
    max_evaluations: int,
    step: float,
) -> tuple[np.ndarray, float]:
    best = (None, np.inf)
    for start in starts:
        x0 = to_l1_sphere(start)
        simplex = np.vstack([x0, x0 + step * np.eye(len(HEADS))])
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
        if fit.fun < best[1]:
            best = (to_l1_sphere(fit.x), float(fit.fun))
    return best


def _cached_objective(
    problem: FeedProblem,
    session_weights: np.ndarray | None,
    cache: dict[tuple[float, ...], float],
) -> Callable[[np.ndarray], float]:
    """The hard objective of an unconstrained 4-vector (normalised onto the L1 sphere), each
    point evaluated once and kept in ``cache``; inf where the vector is not usable."""

    def f(v: np.ndarray) -> float:
        if not np.all(np.isfinite(v)) or np.abs(v).sum() < 1e-9:
            return np.inf
        w = to_l1_sphere(v)
        key = tuple(np.round(w, 10))
        if key not in cache:
            cache[key] = objective(problem, w, session_weights)
        return cache[key]

    return f


def _resampled_session_weights(rng: np.random.Generator, inverse: np.ndarray) -> np.ndarray:
    """One bootstrap draw of groups: each session weighted by how often its group was drawn
    (``inverse``: each session's group, 0..G-1)."""
    n_groups = int(inverse.max()) + 1
    draws = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
    return draws[inverse].astype(np.float64)


def estimate_weights(
    problem: FeedProblem,
    starts: np.ndarray | None = None,
    session_weights: np.ndarray | None = None,
    max_evaluations: int = 200,
    n_screen: int = 256,
    n_refine: int = 3,
    seed: int = 0,
    progress: bool = False,
    n_jobs: int = 1,
) -> WeightEstimate:
    """Derivative-free minimisation of the hard objective on the L1 sphere.

    First a screen: the objective at the signed axes and ``n_screen`` random points of the
    sphere (or at ``starts`` when given); then Nelder-Mead from the ``n_refine`` best of them.
    Nelder-Mead moves an unconstrained 4-vector that the objective normalises onto the sphere
    (scale invariance makes that exact); its first simplex is wide (0.25 around the start), so
    it steps across the objective's flat pieces. Every evaluated point is returned with its
    value. With ``n_jobs > 1`` the screen and the refinements run in that many processes; the
    estimate is the same (each point's value, and each refinement, is independent of the rest).
    """
    points = sphere_points(n_screen, seed) if starts is None else np.atleast_2d(starts)
    points = np.vstack([to_l1_sphere(p) for p in points])
    screen = [(p, session_weights) for p in points]
    values = np.array(fork_map(_objective_task, screen, n_jobs, problem, "screen", progress))
    evaluated = {tuple(np.round(p, 10)): float(v) for p, v in zip(points, values, strict=True)}
    best_starts = points[np.argsort(values, kind="stable")[:n_refine]]
    tasks = [(start, session_weights, max_evaluations, 0.25) for start in best_starts]
    fits = fork_map(_search_task, tasks, n_jobs, problem, "Nelder-Mead restarts", progress)
    for _, _, cache in fits:
        evaluated.update(cache)
    w, value, _ = min(fits, key=lambda fit: fit[1])  # the first of equal values
    return WeightEstimate(w, value, evaluated)


def local_points(center: np.ndarray, n: int, scale: float, seed: int = 0) -> np.ndarray:
    """``n`` points of the L1 sphere around ``center`` (Gaussian steps of sd ``scale``)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(scale=scale, size=(n, len(HEADS)))
    return np.vstack([to_l1_sphere(center + s) for s in steps])


def bootstrap_weights(
    problem: FeedProblem,
    groups: np.ndarray,
    w_hat: np.ndarray,
    n_boot: int = 100,
    seed: int = 0,
    n_grid: int = 400,
    grid_scale: float = 0.05,
    max_evaluations: int = 60,
    n_jobs: int = 1,
) -> np.ndarray:
    """(n_boot, 4) estimates on bootstrap resamples of groups (users with all their sessions).

    A replicate only re-weights sessions (session i counts as often as its group was drawn).
    So the session losses at a grid of points around ``w_hat`` are computed once, (n_grid, S),
    and each replicate's objective over the grid is one matrix-vector product. Its estimate is
    its best grid point, or, with ``max_evaluations > 0``, a short Nelder-Mead refinement on the
    replicate's own objective started there (each refinement costs that many passes over every
    session, the grid one pass per point for all replicates together).
    """
    inverse = np.unique(np.asarray(groups), return_inverse=True)[1]
    grid = np.vstack([to_l1_sphere(w_hat), local_points(w_hat, n_grid, grid_scale, seed + 1)])
    # (n_grid + 1, S)
    losses = np.vstack(
        fork_map(_losses_task, grid, n_jobs, problem, "bootstrap grid", progress=True)
    )
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, len(HEADS)))
    for b in range(n_boot):
        weights = _resampled_session_weights(rng, inverse)
        start = grid[np.argmin(losses @ weights)]
        if max_evaluations > 0:
            f = _cached_objective(problem, weights, {})
            start = _search(f, start[None, :], max_evaluations, grid_scale)[0]
        out[b] = start
    return out


def percentile_intervals(draws: np.ndarray, level: float = 0.95) -> dict[str, list[float]]:
    """Percentile interval of each head's weight across bootstrap draws."""
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return {h: [float(lo[j]), float(hi[j])] for j, h in enumerate(HEADS)}
