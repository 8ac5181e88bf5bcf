"""A case-control selection model of the platform's feed: head weights and the ranking noise
from which candidates made the feed (work in progress; 05 does not use it yet).

Issue 6's estimators miss w_true on the simulated platform even on its exact ranking
probabilities (the study's plain estimator by 0.6, the rank logit by 0.4). This model reads the
feed as the platform built it, the top K_s of a pool by a noisy score, and the other candidates
as a sample of that pool; ``diagnostics/selection_model.py`` measures how well it recovers w.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_ndtr

from kuairec_utils.weights import to_l1_sphere


@dataclass
class SelectionEstimate:
    """``w`` on the L1 sphere, the ranking noise's sd in score units and the fit."""

    w: np.ndarray
    noise_sd: float  # 1 / |beta|_1: the sd of the normal ranking noise, in units of Score_w
    beta: np.ndarray
    log_likelihood: float  # profiled, mean per session
    n_sessions: int  # sessions with both feed videos and others (the rest carry no information)
    converged: bool


def _mills_ratio(z: np.ndarray, log_cdf: np.ndarray) -> np.ndarray:
    """phi(z) / Phi(z), from ``log_cdf = log Phi(z)`` (stable far in the left tail)."""
    return np.exp(-0.5 * z**2 - 0.5 * np.log(2 * np.pi) - log_cdf)


def _segment_kth_largest(score: np.ndarray, segment: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per segment, the k-th largest score (segments numbered 0..len(k)-1, each non-empty)."""
    order = np.lexsort((-score, segment))
    starts = np.r_[0, np.flatnonzero(np.diff(segment[order])) + 1]
    rank = np.empty(len(score), dtype=np.int64)
    rank[order] = np.arange(len(score)) - np.repeat(starts, np.diff(np.r_[starts, len(score)]))
    out = np.zeros(len(k))
    hit = rank == k[segment] - 1
    out[segment[hit]] = score[hit]
    return out


def selection_weights(
    probs: np.ndarray,
    session: np.ndarray,
    in_feed: np.ndarray,
    start: np.ndarray | None = None,
    prior_sd: tuple[float, float] = (10.0, 5.0),
    inner_iterations: int = 30,
) -> SelectionEstimate:
    """Head weights and the ranking noise's sd from which candidates made the feed.

    The platform shows the top K_s of a pool drawn from the videos of the day by ``Score_w +
    noise``, the noise normal of sd ``sigma``. The candidates are the feed (cases) and others
    drawn like the pool (controls). Then, for a candidate of session s (the case-control
    argument: the pool's and the controls' sampling cancel),

        P(in the feed | candidate) = logistic(log Phi(beta . p_i - tau_s) + alpha_s),

    ``beta = w / sigma``, ``tau_s`` the session's threshold (its K_s-th noisy score, over sigma)
    and ``alpha_s`` the log of the pool's size over the number of others (it also absorbs the
    share of the pool the user had already seen). The likelihood is profiled: every session's
    ``(tau_s, alpha_s)`` by vectorised Fisher scoring with step halving (weak normal priors of
    sd ``prior_sd``, around the K_s-th score and 0, keep them finite where the feed separates
    perfectly), then ``beta`` by L-BFGS with the envelope gradient.

    probs: (n, 4) candidate rows; session: (n,) their session; in_feed: (n,) bool. Sessions
    without both feed videos and others are left out.
    """
    probs = np.asarray(probs, dtype=np.float64)
    in_feed = np.asarray(in_feed, dtype=bool)
    _, session = np.unique(np.asarray(session), return_inverse=True)
    n_feed = np.bincount(session, weights=in_feed)
    n_all = np.bincount(session)
    informative = (n_feed > 0) & (n_feed < n_all)
    keep = informative[session]
    probs, in_feed = probs[keep], in_feed[keep].astype(np.float64)
    _, seg = np.unique(session[keep], return_inverse=True)
    n_sessions = int(seg.max()) + 1 if len(seg) else 0
    if n_sessions == 0:
        raise ValueError("no session has both feed videos and other candidates")
    if not np.isfinite(probs).all():
        raise ValueError("probs has NaN or infinite values among the candidates")
    k = np.bincount(seg, weights=in_feed).astype(np.int64)
    sd_tau, sd_alpha = prior_sd

    def bsum(v: np.ndarray) -> np.ndarray:
        return np.bincount(seg, weights=v, minlength=n_sessions)

    def fit_sessions(s: np.ndarray, tau: np.ndarray, alpha: np.ndarray) -> tuple:
        center = _segment_kth_largest(s, seg, k)

        def evaluate(tau: np.ndarray, alpha: np.ndarray) -> tuple:
            z = s - tau[seg]
            log_cdf = log_ndtr(z)
            eta = log_cdf + alpha[seg]
            ll = bsum(in_feed * eta - np.logaddexp(0.0, eta))
            ll -= 0.5 * ((tau - center) / sd_tau) ** 2 + 0.5 * (alpha / sd_alpha) ** 2
            return z, log_cdf, eta, ll

        z, log_cdf, eta, ll = evaluate(tau, alpha)
        for _ in range(inner_iterations):
            pi = expit(eta)
            r = in_feed - pi
            mills = _mills_ratio(z, log_cdf)
            v = pi * (1.0 - pi)
            g_t = bsum(-r * mills) - (tau - center) / sd_tau**2
            g_a = bsum(r) - alpha / sd_alpha**2
            h_tt = bsum(v * mills**2) + 1.0 / sd_tau**2
            h_ta = -bsum(v * mills)
            h_aa = bsum(v) + 1.0 / sd_alpha**2
            det = h_tt * h_aa - h_ta**2
            d_t = (h_aa * g_t - h_ta * g_a) / det
            d_a = (h_tt * g_a - h_ta * g_t) / det
            step = np.ones(n_sessions)
            for _halving in range(10):
                new = evaluate(tau + step * d_t, alpha + step * d_a)
                worse = new[3] < ll - 1e-12
                if not worse.any():
                    break
                step = np.where(worse, step / 2.0, step)
            else:
                new = evaluate(tau + step * d_t * ~worse, alpha + step * d_a * ~worse)
            tau, alpha = tau + step * d_t * ~worse, alpha + step * d_a * ~worse
            z, log_cdf, eta, ll = new
            if max(np.abs(step * d_t).max(), np.abs(step * d_a).max()) < 1e-8:
                break
        r = in_feed - expit(eta)
        return float(ll.sum()), (r * _mills_ratio(z, log_cdf)) @ probs, tau, alpha

    beta0 = np.asarray(start, dtype=np.float64) if start is not None else None
    if beta0 is None:  # the -negative direction at the platform's usual noise (~0.1 of a score)
        beta0 = np.array([0.0, 0.0, 0.0, -1.0])[: probs.shape[1]] * 10.0
    state = {
        "tau": _segment_kth_largest(probs @ beta0, seg, k),
        "alpha": np.zeros(n_sessions),
    }

    def f(beta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad, state["tau"], state["alpha"] = fit_sessions(
            probs @ beta, state["tau"], state["alpha"]
        )
        return -ll / n_sessions, -grad / n_sessions

    fit = minimize(f, beta0, jac=True, method="L-BFGS-B", options={"maxiter": 300, "gtol": 1e-7})
    beta = fit.x
    return SelectionEstimate(
        to_l1_sphere(beta),
        1.0 / float(np.abs(beta).sum()),
        beta,
        -float(fit.fun),
        n_sessions,
        bool(fit.success),
    )
