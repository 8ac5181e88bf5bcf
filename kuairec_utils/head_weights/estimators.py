"""The head-weight estimators behind one interface, registered by name (docs/design.md section 6).

Every estimator reads the same ``Feeds`` (each session's candidates, the value model's four
probabilities of each at the session's start, the observed feed) and the ``head_weights``
settings of params.yaml, and returns a ``WeightResult``: ``w`` on the unit L1 sphere, its 95%
intervals per head, and what else it reports. ``ESTIMATORS`` maps a name to its function; 05 runs
them all, 06 scores the feeds with the one ``causal.estimator`` names, and the report and the
evaluation against the truth loop over them. Adding an estimator is one function here (or in its
own module), its name in ``kuairec_utils/names.py`` and the function in ``ESTIMATORS``.

- ``plain``: the study's simulated-moments estimator of the top-K feeds' mean embeddings
  (``moments``), intervals from a bootstrap over users;
- ``rank_logit``: the noise-aware rank-ordered logit of the shown order (``rank_logit``), a
  one-step bootstrap over users;
- ``selection``: the case-control selection model of the long feeds (``selection``), normal
  intervals from standard errors clustered by user; not fitted when too few feeds are long.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kuairec_utils import names, parallel
from kuairec_utils.head_weights.moments import (
    FeedProblem,
    bootstrap_weights,
    estimate_weights,
    feed_mean_embeddings,
    percentile_intervals,
)
from kuairec_utils.head_weights.rank_logit import bootstrap_rank_logit, rank_logit_weights
from kuairec_utils.head_weights.selection import jackknife_selection_weights, selection_weights
from kuairec_utils.heads import HEADS
from kuairec_utils.parallel import fork_map

MIN_SELECTION_SESSIONS = 30  # fewer long feeds than this: the selection model is not fitted


@dataclass
class Feeds:
    """What every estimator reads. ``items`` (S, C): each session's candidates as video node
    indices, the observed feed in its first ``k`` slots in the order shown, then the others,
    0 on padding; ``valid`` (S, C) marks real candidates; ``probs`` (S, C, 4) float32 the value
    model's head probabilities; ``users`` (S,) for bootstraps and clusters; ``repeats`` (S,)
    the sessions whose feed shows a video the user was shown before; ``item_emb`` the value
    model's video representations (the study's moments)."""

    items: np.ndarray
    valid: np.ndarray
    probs: np.ndarray
    k: np.ndarray
    users: np.ndarray
    repeats: np.ndarray
    item_emb: np.ndarray
    problem: FeedProblem = field(init=False, repr=False)

    def __post_init__(self) -> None:
        mu_obs = feed_mean_embeddings(self.items, self.shown & self.valid, self.item_emb)
        self.problem = FeedProblem.from_items(
            self.probs, self.items, self.item_emb, self.valid, self.k, mu_obs
        )

    @property
    def shown(self) -> np.ndarray:
        """(S, C) the observed feed's slots."""
        return np.arange(self.items.shape[1])[None, :] < self.k[:, None]

    def with_probabilities(self, probs: np.ndarray) -> Feeds:
        """The same feeds with other head probabilities (e.g. the true ones, to evaluate)."""
        return Feeds(self.items, self.valid, probs, self.k, self.users, self.repeats, self.item_emb)


@dataclass
class WeightResult:
    """An estimate: ``w`` (4,) on the unit L1 sphere (None when the estimator could not be
    fitted, ``details`` then says why), ``ci95`` per head, what else the estimator reports,
    its bootstrap draws (n_boot, 4) when it has some, and the fit itself."""

    w: np.ndarray | None
    ci95: dict[str, list[float]] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    draws: np.ndarray | None = None
    fit: Any = None

    def record(self) -> dict[str, Any]:
        """The estimate as JSON-ready metrics: w and ci95 by head, then the details."""
        out: dict[str, Any] = {}
        if self.w is not None:
            out["w"] = dict(zip(HEADS, map(float, self.w), strict=True))
        if self.ci95 is not None:
            out["ci95"] = self.ci95
        return out | self.details


def fit_plain(feeds: Feeds, settings: Mapping[str, Any], intervals: bool = True) -> WeightResult:
    """The study's estimator: the w whose simulated top-K feeds' mean embeddings come closest
    to the observed feeds' (a derivative-free search of the hard objective)."""
    fit = estimate_weights(
        feeds.problem,
        n_screen=settings["n_screen"],
        max_evaluations=settings["max_evaluations"],
        seed=settings["seed"],
        progress=intervals,
        n_jobs=settings["n_jobs"],
    )
    result = WeightResult(fit.w, details={"objective": fit.objective}, fit=fit)
    if intervals:
        result.draws = bootstrap_weights(
            feeds.problem,
            feeds.users,
            fit.w,
            n_boot=settings["n_boot"],
            seed=settings["seed"],
            n_grid=settings["boot_grid"],
            max_evaluations=settings["boot_refine"],
            n_jobs=settings["n_jobs"],
        )
        result.ci95 = percentile_intervals(result.draws)
    return result


def fit_rank_logit(
    feeds: Feeds, settings: Mapping[str, Any], intervals: bool = True
) -> WeightResult:
    """The rank-ordered logit of the shown order: w and the ranking noise's scale jointly."""
    fit = rank_logit_weights(feeds.problem)
    details = {"noise_scale": fit.noise_scale, "log_likelihood": fit.log_likelihood}
    result = WeightResult(fit.w, details=details, fit=fit)
    if intervals:
        result.draws = bootstrap_rank_logit(
            feeds.problem, feeds.users, fit.beta, n_boot=settings["n_boot"], seed=settings["seed"]
        )
        result.ci95 = percentile_intervals(result.draws)
    return result


def fit_selection(
    feeds: Feeds, settings: Mapping[str, Any], intervals: bool = True
) -> WeightResult:
    """The case-control selection model on the feeds of at least ``selection_min_feed`` videos
    that repeat no earlier video, with the chosen bias correction (``intervals`` changes
    nothing: its intervals come with the fit)."""
    long_feeds = (feeds.k >= settings["selection_min_feed"]) & ~feeds.repeats
    details: dict[str, Any] = {
        "min_feed": settings["selection_min_feed"],
        "n_sessions": int(long_feeds.sum()),
        "share_of_sessions_with_a_repeat": float(feeds.repeats.mean()),
    }
    if long_feeds.sum() < MIN_SELECTION_SESSIONS:
        details["not_fitted"] = (
            f"fewer than {MIN_SELECTION_SESSIONS} sessions with a feed of at least "
            f"{settings['selection_min_feed']} videos and no repeat"
        )
        return WeightResult(None, details=details)
    rows, slots = np.nonzero(feeds.valid & long_feeds[:, None])
    args = (feeds.probs[rows, slots], rows, slots < feeds.k[rows])
    correction = settings["selection_bias_correction"]
    if correction == "jackknife":
        fit = jackknife_selection_weights(
            *args,
            cluster=feeds.users[rows],
            seed=settings["seed"],
            n_splits=settings["selection_splits"],
            n_jobs=settings["n_jobs"],
        )
    else:
        fit = selection_weights(*args, cluster=feeds.users[rows])
    details |= {
        "se": dict(zip(HEADS, fit.w_se.tolist(), strict=True)),
        "noise_sd": fit.noise_sd,
        "n_sessions": fit.n_sessions,
        "converged": fit.converged,
        "iterations": fit.iterations,
        "bias_correction": correction,
    }
    if correction == "jackknife":
        details["splits"] = settings["selection_splits"]
    if fit.uncorrected is not None:
        details["uncorrected"] = {
            "w": dict(zip(HEADS, fit.uncorrected.w.tolist(), strict=True)),
            "noise_sd": fit.uncorrected.noise_sd,
        }
    ci95 = {
        h: [float(lo), float(hi)] for h, (lo, hi) in zip(HEADS, fit.intervals(0.95), strict=True)
    }
    return WeightResult(fit.w, ci95, details, fit=fit)


# keyed by the names of ``kuairec_utils.names.ESTIMATORS`` (which params.yaml is checked against)
ESTIMATORS: dict[str, Callable[..., WeightResult]] = dict(
    zip(names.ESTIMATORS, (fit_plain, fit_rank_logit, fit_selection), strict=True)
)


def run_estimators(
    feeds: Feeds, settings: Mapping[str, Any], intervals: bool = True, side_by_side: bool = False
) -> dict[str, WeightResult]:
    """Every registered estimator on ``feeds``, in the registry's order. ``side_by_side``: the
    estimators in ``settings["n_jobs"]`` forked processes, each in one (the same estimates;
    the cores stay busy where one estimator's own parts would leave one idle)."""
    if not side_by_side or settings["n_jobs"] == 1:
        return {name: fit(feeds, settings, intervals) for name, fit in ESTIMATORS.items()}
    inner = dict(settings) | {"n_jobs": 1}
    order = list(ESTIMATORS)
    fits = fork_map(_estimator_task, order, settings["n_jobs"], (feeds, inner, intervals))
    return dict(zip(order, fits, strict=True))


def _estimator_task(name: str) -> WeightResult:
    """One estimator (``fork_map``'s task: the feeds and settings are shared)."""
    feeds, settings, intervals = parallel.SHARED
    return ESTIMATORS[name](feeds, settings, intervals)
