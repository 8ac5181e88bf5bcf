"""How well engagement signals reflect the users' latent preference (simulated data: the
preference and the true selectivity come from the simulator's truth, read only here), and the
rates by user group with intervals (any data).

Two levels, each head's signal oriented so that tracking the preference is a positive
correlation (the skip's sign flipped):

- across users: the user's mean signal against the mean latent preference of what the user
  was shown;
- within user, across sessions: the session's mean signal against its feed's mean preference,
  both as deviations from the user's mean over the user's sessions of at least ``min_length``
  videos (pooled over users).

The bootstrap resamples users (with all their sessions): every correlation, and the share of
the true selectivity's gain that a correction keeps, ``(r_corrected - r_raw) / (r_true -
r_raw)``, is recomputed on each replicate from per-user sums.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kuairec_utils.heads import HEADS

ORIENTATION = np.array([-1.0 if h == "negative" else 1.0 for h in HEADS])
LEVELS: tuple[str, ...] = ("across_users", "within_user")


def latent_preference(raw_dir: str | Path, user_id: np.ndarray, video_id: np.ndarray) -> np.ndarray:
    """The simulator's latent preference of each (user, video): the utility without the
    position's fatigue and the habit state (intercept, user bias, video quality, taste match).
    Evaluation only."""
    from kuairec_utils.evaluation.truth import _world_rows, simulated_world
    from kuairec_utils.simulate import static_utility

    cfg, world = simulated_world(raw_dir)
    u, v = _world_rows(world, np.asarray(user_id), np.asarray(video_id))
    return static_utility(cfg, world, u, v)


def means(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """(size, k) the mean of each column of ``values`` ((n, k) or (n,)) over the rows of each
    unit ``index`` 0..size-1 (0 for a unit without rows)."""
    values = np.asarray(values, dtype=np.float64).reshape(len(index), -1)
    total = np.stack([np.bincount(index, weights=v, minlength=size) for v in values.T], 1)
    return total / np.maximum(np.bincount(index, minlength=size), 1)[:, None]


@dataclass
class LevelSums:
    """Per-user sums from which every correlation of a level is a ratio of weighted totals:
    ``sums[name]`` is (U, heads, 5) of (x, y, xx, yy, xy) per head, x the signal and y the
    preference; ``count`` (U,) the units each user adds (1 across users, 0 within user)."""

    sums: dict[str, np.ndarray]
    count: np.ndarray
    centred: bool  # within user: x and y are already deviations (no mean to take out)


def level_sums(
    signals: Mapping[str, np.ndarray],
    preference: np.ndarray,
    user_index: np.ndarray,
    session_index: np.ndarray,
    n_users: int,
    min_length: int,
) -> dict[str, LevelSums]:
    """The two levels' per-user sums for every signal ((n, heads) scores per shown video)."""
    user_index = np.asarray(user_index, dtype=np.int64)
    session_index = np.asarray(session_index, dtype=np.int64)
    n_sessions = int(session_index.max()) + 1
    orient = ORIENTATION[None, :]

    def moments(x: np.ndarray, y: np.ndarray, owner: np.ndarray) -> np.ndarray:
        parts = [x, np.broadcast_to(y, x.shape), x * x, np.broadcast_to(y * y, x.shape), x * y]
        return np.stack(
            [
                np.stack(
                    [
                        np.bincount(owner, weights=p[:, h], minlength=n_users)
                        for h in range(x.shape[1])
                    ],
                    1,
                )
                for p in parts
            ],
            2,
        )

    # across users: one unit per user
    pref_u = means(preference[:, None], user_index, n_users)
    across = {
        name: moments(means(s, user_index, n_users) * orient, pref_u, np.arange(n_users))
        for name, s in signals.items()
    }
    out = {"across_users": LevelSums(across, np.ones(n_users), centred=False)}

    # within user: sessions of at least min_length videos, as deviations from the user's mean
    length = np.bincount(session_index, minlength=n_sessions)
    session_user = np.zeros(n_sessions, dtype=np.int64)
    session_user[session_index] = user_index
    keep = length >= min_length
    owner = session_user[keep]
    n_kept = np.bincount(owner, minlength=n_users)

    def deviations(values: np.ndarray) -> np.ndarray:
        per_session = means(values, session_index, n_sessions)[keep]
        user_mean = (
            np.stack([np.bincount(owner, weights=v, minlength=n_users) for v in per_session.T], 1)
            / np.maximum(n_kept, 1)[:, None]
        )
        return per_session - user_mean[owner]

    pref_s = deviations(preference[:, None])
    within = {name: moments(deviations(s) * orient, pref_s, owner) for name, s in signals.items()}
    out["within_user"] = LevelSums(within, np.zeros(n_users), centred=True)
    return out


def correlations(level: LevelSums, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Each signal's correlation per head, for every row of ``weights`` (B, U): how many times
    each user is drawn (a row of ones: the sample itself). Returns (B, heads) per signal."""
    weights = np.atleast_2d(weights)
    out = {}
    for name, s in level.sums.items():
        t = np.einsum("bu,uhk->bhk", weights, s)
        if level.centred:
            cov, vx, vy = t[..., 4], t[..., 2], t[..., 3]
        else:
            n = (weights @ level.count)[:, None]
            mx, my = t[..., 0] / n, t[..., 1] / n
            cov = t[..., 4] / n - mx * my
            vx, vy = t[..., 2] / n - mx**2, t[..., 3] / n - my**2
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = cov / np.sqrt(vx * vy)
    return out


def share_of_gain(raw: np.ndarray, corrected: np.ndarray, true: np.ndarray) -> np.ndarray:
    """The share of the true selectivity's gain in correlation that a correction keeps."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (corrected - raw) / (true - raw)


def bootstrap_weights(n_users: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, U) how many times each user is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=n_boot).astype(float)


def interval(values: np.ndarray) -> list[float]:
    """The 95% percentile interval of bootstrap draws (NaN draws left out; NaN if all are)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(values, [0.025, 0.975], axis=0).tolist()


def evaluation_table(
    sums: Mapping[str, LevelSums], boot: np.ndarray, corrections: tuple[str, ...]
) -> tuple[pd.DataFrame, dict[str, dict[str, dict]]]:
    """The correlations of every signal per level and head (a long table), and each
    correction's share of the true selectivity's gain per level and head with its interval."""
    rows, shares = [], {}
    for level, s in sums.items():
        point = correlations(s, np.ones(len(s.count)))
        draws = correlations(s, boot)
        for name in point:
            for h, head in enumerate(HEADS):
                rows.append(
                    {"level": level, "head": head, "signal": name, "corr": point[name][0, h]}
                )
        shares[level] = {
            c: {
                head: {
                    "estimate": float(share_of_gain(point["raw"], point[c], point["true"])[0, h]),
                    "ci95": interval(share_of_gain(draws["raw"], draws[c], draws["true"])[:, h]),
                }
                for h, head in enumerate(HEADS)
            }
            for c in corrections
        }
    return pd.DataFrame(rows), shares


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
