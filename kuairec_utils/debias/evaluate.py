"""How well engagement signals do what a debiased signal claims (simulated data: the exact
target, the true selectivity and the latent preference come from the simulator's truth, read
only by evaluation code), and the rates by user group with intervals (any data).

Two levels of units:

- across users: one unit per user, the means over the user's shown videos;
- within user, across sessions: the user's sessions of at least ``min_length`` videos, each
  session's means as deviations from the user's mean over those sessions (pooled over users).

Every figure of a level is a function of the units' covariance matrix of a few variables (the
signals' rates, the exact target, the latent preference, the value model's index, the true
``c_s``). ``unit_moments`` keeps each user's sums of the units' values and of their outer
products, so the sample and every bootstrap replicate over users (``bootstrap_weights``: how
many times each user is drawn, with all its sessions) are weighted sums of the same per-user
arrays (``covariances``).

The measures of the quick-skip rate (``skip_measures``):

- ``corr_target``: the correlation with the exact target (``target.py``), the rate the same
  unit would have had at the common true selectivity;
- ``partial_corr_preference``: the partial correlation with the latent preference given the
  value model's engagement index, the rate oriented so that tracking the preference is positive
  (the skip flipped): what the debiased behaviour tells of the preference beyond what the value
  model already knows;
- ``corr_true_c``: the correlation of the (unflipped) rate with the true ``c_s``: positive,
  selectivity left in the rate; negative, over-corrected. The target's own value is its
  benchmark.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from kuairec_utils.heads import HEADS

ORIENTATION = np.array([-1.0 if h == "negative" else 1.0 for h in HEADS])
LEVELS: tuple[str, ...] = ("across_users", "within_user")
MEASURES: tuple[str, ...] = ("corr_target", "partial_corr_preference", "corr_true_c")
SKIP = HEADS.index("negative")
# the unit variables besides the signals' rates (columns of ``unit_moments``)
TARGET, PREFERENCE, INDEX, C_TRUE = "target", "preference", "index", "c_true"


def means(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """(size, k) the mean of each column of ``values`` ((n, k) or (n,)) over the rows of each
    unit ``index`` 0..size-1 (0 for a unit without rows)."""
    values = np.asarray(values, dtype=np.float64).reshape(len(index), -1)
    total = np.stack([np.bincount(index, weights=v, minlength=size) for v in values.T], 1)
    return total / np.maximum(np.bincount(index, minlength=size), 1)[:, None]


def signal_columns(signals: Mapping[str, np.ndarray], heads: Sequence[str] = HEADS) -> dict:
    """The rate columns of every signal ((n, heads) scores) for ``unit_moments``, named
    ``"signal|head"``."""
    return {f"{name}|{h}": s[:, HEADS.index(h)] for name, s in signals.items() for h in heads}


@dataclass
class UnitMoments:
    """One level's per-user sums: ``first`` (U, k) of the units' values, ``second`` (U, k, k) of
    their outer products, ``count`` (U,) the units each user adds; ``centred``: the values are
    deviations from the user's means (within user), so no mean is taken out."""

    names: tuple[str, ...]
    first: np.ndarray
    second: np.ndarray
    count: np.ndarray
    centred: bool

    def column(self, name: str) -> int:
        return self.names.index(name)


def _per_user_sums(
    values: np.ndarray, owner: np.ndarray, n_users: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user sums of the rows of ``values`` (units, k), of their outer products, and the
    units of each user."""
    indicator = sparse.csr_matrix(
        (np.ones(len(owner)), (owner, np.arange(len(owner)))), shape=(n_users, len(owner))
    )
    first = np.asarray(indicator @ values)
    second = np.stack([np.asarray(indicator @ (values * v[:, None])) for v in values.T], 1)
    return first, second, np.bincount(owner, minlength=n_users).astype(np.float64)


def unit_moments(
    columns: Mapping[str, np.ndarray],
    user_index: np.ndarray,
    session_index: np.ndarray,
    n_users: int,
    min_length: int,
) -> dict[str, UnitMoments]:
    """Both levels' per-user sums of the unit means of ``columns`` ((n,) per shown video)."""
    names = tuple(columns)
    values = np.column_stack([np.asarray(columns[n], np.float64) for n in names])
    user_index = np.asarray(user_index, dtype=np.int64)
    session_index = np.asarray(session_index, dtype=np.int64)
    across = _per_user_sums(means(values, user_index, n_users), np.arange(n_users), n_users)
    out = {"across_users": UnitMoments(names, *across, centred=False)}

    n_sessions = int(session_index.max()) + 1
    length = np.bincount(session_index, minlength=n_sessions)
    session_user = np.zeros(n_sessions, dtype=np.int64)
    session_user[session_index] = user_index
    keep = length >= min_length
    owner = session_user[keep]
    per_session = means(values, session_index, n_sessions)[keep]
    user_mean = means(per_session, owner, n_users)
    within = _per_user_sums(per_session - user_mean[owner], owner, n_users)
    out["within_user"] = UnitMoments(names, *within, centred=True)
    return out


def covariances(moments: UnitMoments, weights: np.ndarray) -> np.ndarray:
    """(B, k, k) the units' covariance matrix for every row of ``weights`` (B, U): how many
    times each user is drawn (a row of ones: the sample itself)."""
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    n = (weights @ moments.count)[:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        second = np.einsum("bu,ukl->bkl", weights, moments.second) / n
        if moments.centred:
            return second
        mean = (weights @ moments.first) / n[:, :, 0]
        return second - mean[:, :, None] * mean[:, None, :]


def correlation_matrix(cov: np.ndarray) -> np.ndarray:
    """(B, k, k) correlations from covariances (NaN where a variable does not vary)."""
    sd = np.sqrt(np.einsum("bkk->bk", cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / (sd[:, :, None] * sd[:, None, :])


def partial_correlation(r: np.ndarray, a: int, b: int, given: int) -> np.ndarray:
    """(B,) the partial correlation of variables ``a`` and ``b`` given ``given``."""
    r_ab, r_ag, r_bg = r[:, a, b], r[:, a, given], r[:, b, given]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (r_ab - r_ag * r_bg) / np.sqrt((1 - r_ag**2) * (1 - r_bg**2))


def skip_measures(r: np.ndarray, names: Sequence[str], signal: str) -> dict[str, np.ndarray]:
    """``MEASURES`` of a signal's quick-skip rate (column ``"signal|negative"``, or ``"target"``
    for the target itself) from correlation matrices ``r`` (B, k, k): (B,) each."""
    s = names.index(TARGET if signal == TARGET else f"{signal}|negative")
    at = names.index
    return {
        "corr_target": r[:, s, at(TARGET)],  # both rates unflipped: the same as both flipped
        "partial_corr_preference": ORIENTATION[SKIP]
        * partial_correlation(r, s, at(PREFERENCE), at(INDEX)),
        "corr_true_c": r[:, s, at(C_TRUE)],  # unflipped: a rate that rises with c_s is positive
    }


def preference_correlations(
    r: np.ndarray, names: Sequence[str], signals: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Each head's correlation with the latent preference per signal, oriented (the skip
    flipped), from one correlation matrix (the sample's: ``r[0]``)."""
    p = names.index(PREFERENCE)
    return {
        head: {s: float(ORIENTATION[h] * r[0, names.index(f"{s}|{head}"), p]) for s in signals}
        for h, head in enumerate(HEADS)
    }


def bootstrap_weights(n_users: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, U) how many times each user is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=n_boot).astype(float)


def interval(values: np.ndarray) -> list[float]:
    """The 95% percentile interval of bootstrap draws (NaN draws left out; NaN if all are)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(values, [0.025, 0.975], axis=0).tolist()


def difference(point: float, draws: np.ndarray) -> dict[str, float | list[float]]:
    """A paired difference: its estimate, its bootstrap standard error (the draws' sd) and the
    95% percentile interval of the draws."""
    finite = draws[np.isfinite(draws)]
    se = float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
    return {"estimate": float(point), "se": se, "ci95": interval(draws)}


def group_rates(
    user_rates: Mapping[str, np.ndarray], groups: pd.Series, boot: np.ndarray
) -> pd.DataFrame:
    """The mean of each user rate ((U,) arrays, one per signal) by user group, with a bootstrap
    interval over users (``boot``: (B, U) draws). One row per group and signal."""
    rows = []
    codes, names = pd.factorize(groups, sort=True)
    for g, group in enumerate(names):
        member = (codes == g).astype(float)
        for name, rate in user_rates.items():
            w = boot * member
            with np.errstate(invalid="ignore", divide="ignore"):
                draws = (w @ rate) / w.sum(axis=1)
            lo, hi = interval(draws)
            rows.append(
                {
                    "group": group,
                    "signal": name,
                    "users": int(member.sum()),
                    "rate": float(rate[member > 0].mean()),
                    "ci95_low": lo,
                    "ci95_high": hi,
                }
            )
    return pd.DataFrame(rows)
