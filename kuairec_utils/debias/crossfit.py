"""Cross-fitted selectivity: each session's ``c_s`` estimated on videos whose skips the
debiased rate does not reuse.

06 estimates ``c_s`` from a session's quick skips (``session_thresholds``) plus the feed's
quality offset read from the watch depth (``watch_depth_offsets``); 07 then moves the same
skips' rate by ``c_ref - c_s``. Here each session's shown videos are split at random into two
halves (``split_folds``), 06's threshold model (and its watch-depth offset) is refitted on each
half alone, and every video is debiased with the ``c_s`` of its session's *other* half. A
session's (or a user's) cross-fitted rate still uses all its videos. The unit of the
corrections becomes the session's half (``CrossFit.part``), with its own ``c_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kuairec_utils.causal.selectivity import session_thresholds, watch_depth_offsets

QUALITY_OFFSETS: tuple[str, ...] = ("watch", "none")  # as causal.quality_offset
REPRODUCED = 1e-6  # 06's c_s counts as reproduced within this (its Newton stops at 1e-9)


def split_folds(row_session: np.ndarray, seed: int) -> np.ndarray:
    """(n,) 0 or 1: each session's shown videos in two random halves of (nearly) equal size;
    which half gets the odd video is drawn per session as well."""
    row_session = np.asarray(row_session, dtype=np.int64)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(row_session)), row_session))
    n_sessions = int(row_session.max()) + 1 if len(row_session) else 0
    start = np.r_[0, np.cumsum(np.bincount(row_session, minlength=n_sessions))[:-1]]
    rank = np.empty(len(row_session), dtype=np.int64)
    rank[order] = np.arange(len(row_session)) - start[row_session[order]]
    flip = rng.integers(0, 2, size=n_sessions)
    return (rank + flip[row_session]) % 2


def fold_selectivity(
    rows: pd.DataFrame,
    row_session: np.ndarray,
    n_sessions: int,
    prior_sd: float,
    quality_offset: str,
) -> tuple[np.ndarray, float]:
    """Every session's ``c_s`` (S,) from ``rows`` as 06 builds it (the skips' threshold, plus
    the watch-depth offset with ``quality_offset = "watch"``), and the index slope ``b``. A
    session without a row here keeps the prior's centre (the pooled skip logit) and offset 0."""
    if quality_offset not in QUALITY_OFFSETS:
        raise ValueError(f"quality_offset must be one of {QUALITY_OFFSETS}, got {quality_offset!r}")
    fit = session_thresholds(rows, row_session, prior_sd)
    c = np.full(n_sessions, fit.prior_mean)
    c[: len(fit.c)] = fit.c
    if quality_offset == "watch":
        c += watch_depth_offsets(rows, row_session, n_sessions, fit.slopes[0]).offset
    return c, float(fit.slopes[0])


@dataclass
class CrossFit:
    """The cross-fitted selectivity of every shown video."""

    fold: np.ndarray  # (n,) 0/1, the half of its session each video is in
    c_fold: np.ndarray  # (2, S) c_s fitted on each half alone
    slope_b: tuple[float, float]  # each half's index slope
    part: np.ndarray  # (n,) 0..P-1, the (session, half) each video is in
    part_session: np.ndarray  # (P,) the session of each part
    part_fold: np.ndarray  # (P,) the half of each part
    quality_offset: str  # as 06's: "watch" (the watch-depth offset added) | "none"
    prior_sd: float

    @property
    def c_part(self) -> np.ndarray:
        """(P,) each part's c_s: the one fitted on its session's other half."""
        return self.c_fold[1 - self.part_fold, self.part_session]

    def c_rows(self) -> np.ndarray:
        """(n,) each video's cross-fitted c_s."""
        return self.c_part[self.part]

    def summary(self) -> dict[str, object]:
        """The fit in a few figures: its settings and each half's index slope."""
        return {
            "quality_offset": self.quality_offset,
            "prior_sd": self.prior_sd,
            "slope_b": list(self.slope_b),
        }


def cross_fitted_selectivity(
    rows: pd.DataFrame,
    row_session: np.ndarray,
    prior_sd: float,
    quality_offset: str = "watch",
    seed: int = 0,
) -> CrossFit:
    """Split each session's videos in two halves (``split_folds``), fit 06's ``c_s`` on each
    half alone (``fold_selectivity``) and give each video the other half's ``c_s``.

    rows: shown videos as ``shown_rows`` gives them (``x``, ``position``, ``negative``, and for
    the watch-depth offset ``watch_ratio``, ``video_duration_ms``); ``x`` as 06 read it
    row_session: (n,) 0..S-1, each row's session
    """
    row_session = np.asarray(row_session, dtype=np.int64)
    n_sessions = int(row_session.max()) + 1
    fold = split_folds(row_session, seed)
    c_fold, slopes = np.empty((2, n_sessions)), []
    for k in (0, 1):
        mine = fold == k
        c_fold[k], b = fold_selectivity(
            rows[mine], row_session[mine], n_sessions, prior_sd, quality_offset
        )
        slopes.append(b)
    keys, part = np.unique(2 * row_session + fold, return_inverse=True)
    halves = (slopes[0], slopes[1])
    return CrossFit(fold, c_fold, halves, part, keys // 2, keys % 2, quality_offset, prior_sd)


@dataclass
class SelectivitySettings:
    """How 06 built its ``c_s``, as 07 reproduced it."""

    quality_offset: str  # "watch" | "none"
    center_index: str  # "yes" | "no"
    x: np.ndarray  # (n,) the engagement index as 06's threshold model read it


def reproduce_selectivity(
    rows: pd.DataFrame, row_session: np.ndarray, sessions: pd.DataFrame, prior_sd: float
) -> SelectivitySettings:
    """The settings with which 06 built ``sessions`` (its ``c``, ``c_skips`` and, with the
    watch-depth offset, ``c_watch`` per session): the quality offset is read off the columns,
    the centring of the index found by refitting the skips' thresholds on all rows, which must
    reproduce 06's ``c_skips``; an error otherwise (another prior sd, other rows)."""
    c = sessions["c"].to_numpy(np.float64)
    if "c_skips" not in sessions:
        raise ValueError("06's sessions lack c_skips: rerun the causal stage")
    watch = "c_watch" in sessions and np.array_equal(c, sessions["c_watch"].to_numpy(np.float64))
    if not watch and not np.array_equal(c, sessions["c_skips"].to_numpy(np.float64)):
        raise ValueError("06's c is neither its c_skips nor its c_watch: rerun the causal stage")
    x = rows["x"].to_numpy(np.float64)
    centred = x - pd.Series(x).groupby(row_session).transform("mean").to_numpy()
    for center, index in (("no", x), ("yes", centred)):
        fit = session_thresholds(rows.assign(x=index), row_session, prior_sd)
        if np.allclose(fit.c, sessions["c_skips"].to_numpy(), rtol=0, atol=REPRODUCED):
            return SelectivitySettings("watch" if watch else "none", center, index)
    raise ValueError(
        f"the threshold model with prior_sd {prior_sd} does not reproduce 06's c_s from these "
        "rows: set debias.prior_sd to causal.prior_sd (or rerun the causal stage)"
    )
