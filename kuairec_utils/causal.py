"""The residual treatment, session selectivity and the causal regressions (notebook 06).

DESIGN.md section 7. A session's *residual* is how much better (in ``Score_w*`` units) the feed
it got was than the feed a deterministic top-K would have given it:
``r_s = mean Score_w*(observed feed) - mean Score_w*(simulated feed)``. The ranking noise that
makes it non-zero is exogenous, so its effect on the user's next session is identified.

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

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from tqdm.auto import tqdm

from kuairec_utils.heads import HEADS
from kuairec_utils.weights.moments import feed_mean_embeddings, to_l1_sphere, top_k_mask


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
        pi = expit(eta)
        resid = y - pi
        weight = pi * (1 - pi)
        # gradient of the log posterior; eta = c_s - z g
        grad_c = (
            np.bincount(session, weights=resid, minlength=n_sessions) - (c - prior_mean) * inv_prior
        )
        grad_g = -(z.T @ resid)
        a, bmat, d = _negative_hessian(session, z, weight, n_sessions, inv_prior)
        schur = d - bmat.T @ (bmat / a[:, None])
        step_g = np.linalg.solve(schur, grad_g - bmat.T @ (grad_c / a))
        step_c = (grad_c - bmat @ step_g) / a
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
    # standard errors at the optimum
    pi = expit(eta)
    a, bmat, d = _negative_hessian(session, z, pi * (1 - pi), n_sessions, inv_prior)
    cov_g = np.linalg.inv(d - bmat.T @ (bmat / a[:, None]))
    u = bmat / a[:, None]
    var_c = 1.0 / a + np.einsum("sj,jk,sk->s", u, cov_g, u)
    return SelectivityFit(
        c, np.sqrt(var_c), g, np.sqrt(np.diag(cov_g)), prior_mean, prior_sd, iterations, current
    )


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
    simulated = top_k_mask(np.where(valid, score, -np.inf), k)  # the valid candidates' top K_s
    out = pd.DataFrame(
        {
            "score_observed": (score * shown).sum(axis=1) / k,
            "score_simulated": (score * simulated).sum(axis=1) / k,
        }
    )
    out["residual"] = out["score_observed"] - out["score_simulated"]
    if item_embeddings is not None and items is not None:
        mu_obs = feed_mean_embeddings(items, shown, item_embeddings)
        mu_sim = feed_mean_embeddings(items, simulated, item_embeddings)
        out["embedding_distance"] = np.sqrt(((mu_obs - mu_sim) ** 2).sum(axis=1))
    return out


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


def within_projection(
    frame: pd.DataFrame, target: str, columns: list[str] | tuple[str, ...], group: str
) -> tuple[np.ndarray, float]:
    """Least squares of ``target`` on ``columns`` within ``group`` (both sides demeaned by group,
    as a fixed-effects regression sees them), on the rows where all are finite: the fitted
    values (``columns @ b``, NaN on the other rows; a group's constant is left to the fixed
    effects) and the within R^2."""
    columns = list(columns)
    values = frame[[*columns, target]].astype(np.float64)
    ok = np.isfinite(values.to_numpy()).all(axis=1)
    used = values[ok]
    centred = (used - used.groupby(frame.loc[ok, group]).transform("mean")).to_numpy()
    x, y = centred[:, :-1], centred[:, -1]
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    r2 = 1.0 - float(((y - x @ beta) ** 2).sum() / (y**2).sum())
    fitted = np.full(len(frame), np.nan)
    fitted[ok] = used[columns].to_numpy() @ beta
    return fitted, r2


def split_candidates(valid: np.ndarray, k: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two valid masks over disjoint random halves of each session's other candidates, both
    holding the observed feed (slots 0..K_s-1): two independent measurements of the residual."""
    rng = np.random.default_rng(seed)
    shown = np.arange(valid.shape[1])[None, :] < np.asarray(k)[:, None]
    half = rng.random(valid.shape) < 0.5
    others = valid & ~shown
    return shown & valid | (others & half), shown & valid | (others & ~half)


def lagged(frame: pd.DataFrame, column: str, by: str, order: str, lag: int) -> np.ndarray:
    """``column`` of the same ``by`` group's row ``lag`` places earlier in ``order`` (lag > 0) or
    later (lag < 0); NaN where there is none."""
    ordered = frame.sort_values([by, order], kind="stable")
    shifted = ordered.groupby(by, sort=False)[column].shift(lag)
    return shifted.reindex(frame.index).to_numpy()


def engagement_index(probs: np.ndarray) -> np.ndarray:
    """The value model's engagement index of a video on the threshold model's scale:
    ``logit(1 - p_negative)``, the log-odds of not skipping (HEADS order in ``probs``)."""
    p = np.clip(np.asarray(probs)[..., HEADS.index("negative")], 1e-6, 1 - 1e-6)
    return np.log((1 - p) / p)


def effect_regression(
    frame: pd.DataFrame,
    outcome: str,
    treatment: str,
    controls: list[str],
    *,
    fixed_effects: str = "user_id",
    cluster: str = "user_id",
    weights: str | None = None,
    instrument: str | None = None,
) -> dict[str, float]:
    """``outcome`` on ``treatment`` with ``controls`` and fixed effects, by pyfixest; standard
    errors clustered by ``cluster``. With ``instrument``, two-stage least squares with the
    instrument for the treatment. Rows missing any variable are left out. Returns the
    treatment's coefficient, standard error, 95% interval and the number of rows."""
    import pyfixest as pf

    used = [outcome, treatment, *(re.sub(r"^C\((.*)\)$", r"\1", c) for c in controls)]
    used += [fixed_effects, cluster]
    used += [c for c in (weights, instrument) if c]
    data = frame[list(dict.fromkeys(used))].dropna()
    rhs = " + ".join(controls) if controls else "1"
    if instrument:
        formula = f"{outcome} ~ {rhs} | {fixed_effects} | {treatment} ~ {instrument}"
    else:
        formula = f"{outcome} ~ {treatment} + {rhs} | {fixed_effects}"
    fit = pf.feols(formula, data=data, weights=weights, vcov={"CRV1": cluster})
    effect, se = float(fit.coef()[treatment]), float(fit.se()[treatment])
    lo, hi = fit.confint().loc[treatment].to_numpy(dtype=float)
    return {"effect": effect, "se": se, "ci95": [float(lo), float(hi)], "n": int(fit._N)}


def fe_coefficient(
    frame: pd.DataFrame,
    outcome: str,
    treatment: str,
    controls: list[str],
    *,
    fixed_effects: str = "user_id",
    cluster: str | None = None,
    weights: str | None = None,
    instrument: str | None = None,
) -> float:
    """The treatment's coefficient of ``effect_regression`` (same arguments, no standard
    errors), in numpy: what the bootstrap needs, ten times faster than building a pyfixest model.

    By Frisch-Waugh-Lovell: every variable is demeaned within ``fixed_effects`` (weighted means
    with ``weights``), the outcome, the treatment and the instrument are residualised on the
    demeaned controls (``C(x)`` gives one dummy per level; least squares, so dummies the fixed
    effects absorb do no harm), and the coefficient is the weighted ratio of the residuals:
    ``sum w x y / sum w x x``, or ``sum w z y / sum w z x`` with an instrument (two-stage least
    squares with one instrument). ``cluster`` only changes standard errors: it is accepted, so
    that the two take the same keyword arguments, and unused."""
    del cluster
    names = [re.sub(r"^C\((.*)\)$", r"\1", c) for c in controls]
    used = [outcome, treatment, *names, fixed_effects]
    used += [c for c in (weights, instrument) if c]
    data = frame[list(dict.fromkeys(used))].dropna()
    w = data[weights].to_numpy(dtype=np.float64) if weights else np.ones(len(data))
    parts = []
    for control, name in zip(controls, names, strict=True):
        if control.startswith("C("):
            codes, levels = pd.factorize(data[name], sort=True)
            parts.append(np.eye(len(levels))[codes])
        else:
            parts.append(data[[name]].to_numpy(dtype=np.float64))
    targets = [outcome, treatment, *([instrument] if instrument else [])]
    matrix = np.column_stack([data[targets].to_numpy(dtype=np.float64), *parts])
    group = pd.factorize(data[fixed_effects])[0]
    total = np.bincount(group, weights=w)
    means = (
        np.column_stack([np.bincount(group, weights=w * col) for col in matrix.T]) / total[:, None]
    )
    matrix = matrix - means[group]
    root = np.sqrt(w)[:, None]
    y_part, c_part = matrix[:, : len(targets)], matrix[:, len(targets) :]
    if c_part.shape[1]:
        coef = np.linalg.lstsq(c_part * root, y_part * root, rcond=None)[0]
        y_part = y_part - c_part @ coef
    r_y, r_x = y_part[:, 0], y_part[:, 1]
    r_z = y_part[:, 2] if instrument else r_x
    return float(np.sum(w * r_z * r_y) / np.sum(w * r_z * r_x))


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


def bootstrap_effects(
    sessions: pd.DataFrame,
    rows: pd.DataFrame,
    row_session: np.ndarray,
    fit: SelectivityFit,
    prior_sd: float,
    regressions: Mapping[str, Mapping[str, Any]],
    n_boot: int,
    seed: int,
    progress: bool = False,
    watch_depth: bool = False,
) -> dict[str, np.ndarray]:
    """A bootstrap over users that repeats the selectivity step, as the treatment and the
    outcome are both estimated.

    Each replicate draws users with replacement, with all their sessions (a user drawn twice
    counts as two users, for the fixed effects and the clusters), estimates every ``c_s`` again
    from the sessions' rows (``session_thresholds``; Newton starts from the full sample's
    ``fit``, the same optimum in a few steps) and runs each regression of ``regressions``
    (name -> ``effect_regression``'s keyword arguments besides the frame and the outcome ``c``,
    whose coefficient ``fe_coefficient`` computes;
    ``weights="precision"`` weights by the replicate's own precisions). ``row_session`` gives
    each row of ``rows`` its row of ``sessions``. With ``watch_depth``, each replicate also
    measures the feeds' quality offsets again (``watch_depth_offsets``, with its own slopes) and
    adds them to its ``c_s``, as 06 does. Returns each regression's effects, (n_boot,).

    The replicates run in turn: forked worker processes hung in pyfixest when the replicates
    used it (a thread pool of the parent does not survive the fork), and spawned ones would copy
    the rows to every worker.
    """
    rng = np.random.default_rng(seed)
    read = ["x", "position", "negative"]  # what session_thresholds reads: less to copy
    rows = rows[read + ["watch_ratio", "video_duration_ms"] if watch_depth else read]
    user_sessions = sessions.groupby("user_id").indices  # user -> rows of ``sessions``
    user_list = np.array(sorted(user_sessions))
    row_groups = pd.Series(np.arange(len(rows))).groupby(np.asarray(row_session)).indices
    draws: dict[str, list[float]] = {name: [] for name in regressions}
    for _ in tqdm(range(n_boot), desc="bootstrap over users", disable=not progress):
        picked = rng.choice(user_list, len(user_list), replace=True)
        session_idx = np.concatenate([user_sessions[u] for u in picked])
        boot = sessions.iloc[session_idx].reset_index(drop=True)
        n_per_user = [len(user_sessions[u]) for u in picked]
        boot["user_id"] = np.repeat(np.arange(len(picked)), n_per_user)  # drawn twice: two users
        row_parts = [row_groups[s] for s in session_idx]
        boot_rows = rows.iloc[np.concatenate(row_parts)]
        boot_index = np.repeat(np.arange(len(session_idx)), [len(r) for r in row_parts])
        start = (fit.c[session_idx], fit.slopes)
        boot_fit = session_thresholds(boot_rows, boot_index, prior_sd, start=start)
        boot["c"], boot["precision"] = boot_fit.c, 1.0 / boot_fit.se**2
        if watch_depth:
            depth = watch_depth_offsets(boot_rows, boot_index, len(boot), boot_fit.slopes[0])
            boot["c"] = boot_fit.c + depth.offset
            boot["precision"] = 1.0 / (boot_fit.se**2 + depth.se**2)
        for name, kwargs in regressions.items():
            draws[name].append(fe_coefficient(boot, "c", **kwargs))
    return {name: np.array(values) for name, values in draws.items()}
