"""Session selectivity (docs/design.md section 7): the threshold model of quick skips and the
watch depth's quality offset.

A session's *selectivity* ``c_s`` comes from a threshold model of quick skips,
``P(skip of video i in session s) = sigmoid(c_s - b x_i - g' z_i)``, with ``x_i`` the value
model's engagement index of the video and ``z_i`` optional common covariates (position); the
``c_s`` (one per session) and the common slopes are estimated together by maximum likelihood
with vectorised Newton steps (``selectivity_mle``). A weak normal prior on ``c_s`` keeps sessions
with no skips (or only skips) finite without dropping them; every ``c_s`` gets its standard
error, and the regressions weight by precision rather than shrinking ``c_s`` toward the user's
mean (which would attenuate exactly the within-user variation they use).

The skips identify ``c_s`` only relative to the feed's true utility: a feed better or worse than
the value model's index says, by a common offset, shifts them as a threshold would. The watch
depth of the videos that were not skipped measures that offset (``watch_depth_offsets``), and
06 adds it to ``c_s`` by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit


@dataclass
class SelectivityFit:
    """Per-session thresholds, their standard errors and the common slopes."""

    c: np.ndarray  # (S,) c_s, sessions numbered 0..S-1
    se: np.ndarray  # (S,) standard error of each c_s (posterior sd under the weak prior)
    slopes: np.ndarray  # (p,) g: coefficients of the covariates, b = slopes[0] for x
    slopes_se: np.ndarray  # (p,)
    prior_mean: float
    prior_sd: float
    iterations: int
    log_posterior: float


def _log_posterior(
    eta: np.ndarray, y: np.ndarray, c: np.ndarray, prior_mean: float, prior_sd: float
) -> float:
    log_lik = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    return log_lik - float(np.sum((c - prior_mean) ** 2)) / (2 * prior_sd**2)


def _negative_hessian(
    session: np.ndarray, z: np.ndarray, weight: np.ndarray, n_sessions: int, inv_prior: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocks of the negative Hessian of the log posterior: ``a`` (S,) its diagonal c block,
    ``bmat`` (S, p) the c-by-slope block, ``d`` (p, p) the slope block."""
    a = np.bincount(session, weights=weight, minlength=n_sessions) + inv_prior
    bmat = -np.column_stack(
        [
            np.bincount(session, weights=weight * z[:, j], minlength=n_sessions)
            for j in range(z.shape[1])
        ]
    )
    return a, bmat, (z * weight[:, None]).T @ z


def _selectivity_newton_step(
    session: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    eta: np.ndarray,
    c: np.ndarray,
    prior_mean: float,
    inv_prior: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Newton's step for the thresholds ``c`` (S,) and the slopes (p,) at ``eta = c_s - z g``:
    the gradient of the log posterior solved against its negative Hessian through the p x p
    Schur complement of the diagonal c block."""
    n_sessions = len(c)
    pi = expit(eta)
    resid = y - pi
    weight = pi * (1 - pi)
    grad_c = (
        np.bincount(session, weights=resid, minlength=n_sessions) - (c - prior_mean) * inv_prior
    )
    grad_g = -(z.T @ resid)
    a, bmat, d = _negative_hessian(session, z, weight, n_sessions, inv_prior)
    schur = d - bmat.T @ (bmat / a[:, None])
    step_g = np.linalg.solve(schur, grad_g - bmat.T @ (grad_c / a))
    step_c = (grad_c - bmat @ step_g) / a
    return step_c, step_g


def _selectivity_standard_errors(
    session: np.ndarray, z: np.ndarray, eta: np.ndarray, n_sessions: int, inv_prior: float
) -> tuple[np.ndarray, np.ndarray]:
    """The standard errors of the thresholds (S,) and the slopes (p,) at the optimum: the
    square roots of the diagonal of the inverse negative Hessian."""
    pi = expit(eta)
    a, bmat, d = _negative_hessian(session, z, pi * (1 - pi), n_sessions, inv_prior)
    cov_g = np.linalg.inv(d - bmat.T @ (bmat / a[:, None]))
    u = bmat / a[:, None]
    var_c = 1.0 / a + np.einsum("sj,jk,sk->s", u, cov_g, u)
    return np.sqrt(var_c), np.sqrt(np.diag(cov_g))


def selectivity_mle(
    session: np.ndarray,
    skip: np.ndarray,
    covariates: np.ndarray,
    prior_sd: float = 3.0,
    max_iter: int = 100,
    tol: float = 1e-9,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> SelectivityFit:
    """Maximum (penalised) likelihood of ``logit P(skip_i) = c_s(i) - covariates_i . g``.

    session: (n,) 0..S-1, the session of each shown video
    skip: (n,) 0/1 quick skips
    covariates: (n, p) common covariates (the engagement index first)
    prior_sd: sd of the weak normal prior on every c_s, centred on the pooled intercept
    start: (c, g) to start Newton from (e.g. the full sample's fit for a bootstrap resample);
        the optimum is the same, it is only reached in fewer steps

    Newton's method on all S + p parameters at once: the Hessian is a diagonal block for the
    c_s bordered by p dense rows, so each step solves a p x p Schur complement and is O(n).
    Steps halve until the log posterior rises. The standard errors are the square roots of the
    diagonal of the inverse negative Hessian at the optimum.
    """
    session = np.asarray(session, dtype=np.int64)
    y = np.asarray(skip, dtype=np.float64)
    z = np.atleast_2d(np.asarray(covariates, dtype=np.float64).T).T
    n, p = z.shape
    if len(session) != n or len(y) != n:
        raise ValueError("session, skip and covariates must have one row per shown video")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("skip must be 0 or 1")
    if not np.isfinite(z).all():
        raise ValueError("covariates must be finite")
    if not prior_sd > 0:
        raise ValueError(f"prior_sd must be positive, got {prior_sd}")
    n_sessions = int(session.max()) + 1 if n else 0
    rate = np.clip(y.mean(), 1e-4, 1 - 1e-4)
    prior_mean = float(np.log(rate / (1 - rate)))
    c = np.full(n_sessions, prior_mean)
    g = np.zeros(p)
    if start is not None:
        c, g = (np.array(v, dtype=np.float64) for v in start)
        if c.shape != (n_sessions,) or g.shape != (p,) or not np.isfinite(np.r_[c, g]).all():
            raise ValueError(f"start must be finite (c, g) of shapes ({n_sessions},), ({p},)")
    eta = c[session] - z @ g
    current = _log_posterior(eta, y, c, prior_mean, prior_sd)
    inv_prior = 1.0 / prior_sd**2
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        step_c, step_g = _selectivity_newton_step(session, y, z, eta, c, prior_mean, inv_prior)
        t = 1.0
        while True:
            c_new, g_new = c + t * step_c, g + t * step_g
            eta_new = c_new[session] - z @ g_new
            value = _log_posterior(eta_new, y, c_new, prior_mean, prior_sd)
            if value >= current - 1e-12 or t < 1e-6:
                break
            t /= 2
        c, g, eta = c_new, g_new, eta_new
        change = value - current
        current = value
        if max(np.abs(t * step_c).max(initial=0.0), np.abs(t * step_g).max()) < tol or (
            0 <= change < tol * max(1.0, abs(current))
        ):
            break
    se_c, se_g = _selectivity_standard_errors(session, z, eta, n_sessions, inv_prior)
    return SelectivityFit(c, se_c, g, se_g, prior_mean, prior_sd, iterations, current)


def session_thresholds(
    rows: pd.DataFrame,
    session_index: np.ndarray,
    prior_sd: float,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> SelectivityFit:
    """Every session's ``c_s`` from its rows (``selectivity_mle``): quick skips (``negative``) on
    the engagement index ``x`` and ``log(1 + position)``; ``session_index`` numbers each row's
    session 0..S-1."""
    covariates = np.column_stack([rows["x"].to_numpy(), np.log1p(rows["position"].to_numpy())])
    y = rows["negative"].to_numpy()
    return selectivity_mle(session_index, y, covariates, prior_sd, start=start)


WATCH_DEPTH_COVARIATES: tuple[str, ...] = ("x", "log_duration", "log_position")


@dataclass
class WatchDepthFit:
    """Each session's quality offset from the watch depth of its videos that were not skipped."""

    offset: np.ndarray  # (S,) a_s on the threshold model's scale, centred over the sessions
    se: np.ndarray  # (S,) its standard error (the offsets' spread where nothing was watched)
    slopes: np.ndarray  # (3,) log watch_ratio on WATCH_DEPTH_COVARIATES, within session
    scale: float  # threshold units per log watch_ratio unit: b / slopes[0]
    residual_sd: float  # sd of log watch_ratio around its session mean and the slopes
    n_watched: np.ndarray  # (S,) rows of each session that were not quick skips

    def summary(self) -> dict[str, Any]:
        """The fit in a few figures: the within-session slopes, the scale, the offsets' sd and
        the sessions with every video skipped."""
        return {
            "slopes": dict(zip(WATCH_DEPTH_COVARIATES, self.slopes.tolist(), strict=True)),
            "scale": self.scale,
            "offset_sd": float(np.std(self.offset)),
            "sessions_all_skipped": int((self.n_watched == 0).sum()),
        }


def watch_depth_offsets(
    rows: pd.DataFrame, session_index: np.ndarray, n_sessions: int, slope_b: float
) -> WatchDepthFit:
    """The part of each feed's quality that the value model's index misses, measured by how
    deeply the user watched the videos of the session that were not quick skips.

    The threshold model reads a session's skips against the index: ``P(skip) = sigmoid(c_s -
    m_i)`` with the utility ``m_i = b x_i + a_s + e_i``. If the feed is better or worse than the
    index says by a common ``a_s`` (the platform ranks with what it knows of the session, which the
    value model does not), the skips alone identify only ``c_s - a_s``. The watch depth of the
    videos that were not skipped rises with the same utility and does not depend on the
    threshold: within session, ``log watch_ratio = s_x x_i + s_d log(duration) + s_p log(1 +
    position) + alpha_s + noise``. The session effect ``alpha_s`` measures ``a_s`` in log
    watch_ratio units; the two slopes on ``x`` convert it to the threshold's scale,
    ``a_s = alpha_s * b / s_x``, and ``c_s = (c_s - a_s) + a_s``. Both slopes are b times the
    utility's effect (on not skipping, on the depth), so ``b / s_x`` must be positive: a value
    model whose index the skips and the depth read in opposite directions is refused.

    rows: ``x``, ``negative`` (0/1), ``watch_ratio``, ``video_duration_ms``, ``position``
    session_index: (n,) 0..n_sessions-1, each row's session
    slope_b: ``b``, the threshold model's slope on ``x`` (``SelectivityFit.slopes[0]``)

    The offsets are centred on their mean over the sessions with a watched video (the fixed
    effects absorb a constant). A session whose videos were all skipped gets offset 0 and, as
    its standard error, the offsets' spread over sessions.

    The conversion assumes ``s_x = beta b``, ``beta`` the depth's slope on the utility: that the
    logit's slope and the depth's read the index on one utility scale. Where they do not (the
    logit's ``b`` steepened, ``s_x`` flattened by the selection of not skipping), the offset is
    off by a multiple of the feed's mean index; on the simulated platform that leaves about a
    quarter of the correction out (docs/findings.md, section 4.2).
    """
    session_index = np.asarray(session_index, dtype=np.int64)
    ratio = rows["watch_ratio"].to_numpy(dtype=np.float64)
    duration_s = rows["video_duration_ms"].to_numpy(dtype=np.float64) / 1000.0
    z = np.column_stack(
        [
            rows["x"].to_numpy(dtype=np.float64),
            np.log(np.where(duration_s > 0, duration_s, np.nan)),
            np.log1p(rows["position"].to_numpy(dtype=np.float64)),
        ]
    )
    watched = (rows["negative"].to_numpy() == 0) & (ratio > 0) & np.isfinite(z).all(axis=1)
    if not watched.any():
        raise ValueError("no row was watched (not a quick skip, watch_ratio > 0): no watch depth")
    sess, y, z = session_index[watched], np.log(ratio[watched]), z[watched]
    n_watched = np.bincount(sess, minlength=n_sessions)

    def session_mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(sess, weights=values, minlength=n_sessions) / np.maximum(n_watched, 1)

    within = np.column_stack([v - session_mean(v)[sess] for v in (y, *z.T)])
    slopes = np.linalg.lstsq(within[:, 1:], within[:, 0], rcond=None)[0]
    scale = float(slope_b / slopes[0]) if slopes[0] != 0 else np.nan
    if not scale > 0:  # both slopes are b times how the utility moves skips and depth
        raise ValueError(
            f"the skips and the watch depth disagree on the engagement index's direction (slope "
            f"{slope_b:.3g} in the threshold model, {slopes[0]:.3g} in log watch_ratio within "
            "session): the quality offset is undefined; set causal.quality_offset: none"
        )
    residual = within[:, 0] - within[:, 1:] @ slopes
    dof = max(len(y) - int((n_watched > 0).sum()) - len(slopes), 1)
    residual_sd = float(np.sqrt(np.sum(residual**2) / dof))
    alpha = session_mean(y - z @ slopes)
    seen = n_watched > 0
    offset = np.where(seen, (alpha - alpha[seen].mean()) * scale, 0.0)
    spread = float(np.std(offset[seen])) if seen.sum() > 1 else scale * residual_sd
    se = np.where(seen, scale * residual_sd / np.sqrt(np.maximum(n_watched, 1)), spread)
    return WatchDepthFit(offset, se, slopes, scale, residual_sd, n_watched)
