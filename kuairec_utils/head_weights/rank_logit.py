"""The noise-aware head-weight estimator: a rank-ordered logit of the observed feed
(docs/design.md section 6).

The platform's feed is read as the top K_s of ``Score_w + noise``, shown in the order of the
noisy scores; with Gumbel noise the shown order has the Plackett-Luce likelihood, whose
maximiser gives w and the noise's scale jointly. Intervals: a one-step bootstrap over users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from kuairec_utils.head_weights.moments import FeedProblem, _resampled_session_weights, to_l1_sphere
from kuairec_utils.heads import HEADS


@dataclass
class RankLogitEstimate:
    """``w`` on the L1 sphere, the ranking noise's scale in score units and the fit."""

    w: np.ndarray
    noise_scale: float  # 1 / |beta|_1: the Gumbel scale of the noise, in units of Score_w
    beta: np.ndarray
    log_likelihood: float  # mean per shown video


def _rank_logit(
    beta: np.ndarray, probs: np.ndarray, valid: np.ndarray, shown: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted negative log-likelihood of the shown order, its gradient in beta and each
    session's (unweighted) gradient."""
    u = np.where(valid, probs @ beta, -np.inf)
    top = u.max(axis=1, keepdims=True)
    e = np.exp(u - top)  # 0 on padding
    tail = np.cumsum(e[:, ::-1], axis=1)[:, ::-1]  # sum over the slots from i on
    tail_p = np.cumsum((e[:, :, None] * probs)[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_tail = np.log(tail) + top
        term = np.where(shown, u - log_tail, 0.0)
        grad_term = np.where(shown[:, :, None], probs - tail_p / tail[:, :, None], 0.0)
    nll = -float(weights @ term.sum(axis=1))
    per_session = -grad_term.sum(axis=1)  # (b, 4): each session's gradient
    return nll, weights @ per_session, per_session


def rank_logit_weights(
    problem: FeedProblem,
    session_weights: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> RankLogitEstimate:
    """Head weights and the ranking noise's scale, jointly, by maximum likelihood.

    The platform's feed is read as the top K_s of ``Score_w + noise``, shown in the order of
    the noisy scores. With Gumbel noise of scale ``sigma`` the shown order has the Plackett-Luce
    (rank-ordered, or "exploded", logit) likelihood: the video in position i is the choice among
    the candidates not shown before it, with utility ``beta . p``, ``beta = w / sigma``. So the
    scale of beta measures the noise and its direction is w (``w = beta / |beta|_1``). The
    likelihood is concave in beta; L-BFGS with the exact gradient finds its maximum. The
    observed feed must fill slots 0..K_s-1 in the order shown (``feeds.candidate_table``).
    """
    weights = np.ones(len(problem)) if session_weights is None else np.asarray(session_weights)
    blocks = [
        (
            b.probs64(),
            b.valid,
            np.arange(b.valid.shape[1])[None, :] < b.k[:, None],
            b.sessions,
        )
        for b in problem.blocks
    ]
    total = float(weights @ problem.k)

    def f(beta: np.ndarray) -> tuple[float, np.ndarray]:
        nll, grad = 0.0, np.zeros(len(HEADS))
        for probs, valid, shown, rows in blocks:
            n, g, _ = _rank_logit(beta, probs, valid, shown, weights[rows])
            nll, grad = nll + n, grad + g
        return nll / total, grad / total

    x0 = np.zeros(len(HEADS)) if start is None else np.asarray(start, dtype=np.float64)
    fit = minimize(
        f, x0, jac=True, method="L-BFGS-B", options={"maxiter": 500, "gtol": 1e-9, "ftol": 1e-14}
    )
    beta = fit.x
    return RankLogitEstimate(to_l1_sphere(beta), 1.0 / np.abs(beta).sum(), beta, -float(fit.fun))


def _session_gradients(problem: FeedProblem, beta: np.ndarray) -> np.ndarray:
    """(S, 4) each session's gradient of the negative log-likelihood at beta."""
    out = np.empty((len(problem), len(HEADS)))
    for b in problem.blocks:
        shown = np.arange(b.valid.shape[1])[None, :] < b.k[:, None]
        probs = b.probs64()
        out[b.sessions] = _rank_logit(beta, probs, b.valid, shown, np.ones(len(b.k)))[2]
    return out


def bootstrap_rank_logit(
    problem: FeedProblem,
    groups: np.ndarray,
    beta_hat: np.ndarray,
    n_boot: int = 100,
    seed: int = 0,
    step: float = 1e-4,
) -> np.ndarray:
    """(n_boot, 4) rank-logit estimates of w on bootstrap resamples of groups (users with all
    their sessions), by the one-step (score) bootstrap.

    A replicate re-weights sessions by how often their group was drawn, m_s. Its estimate is
    one Newton step from beta_hat: ``beta_b = beta_hat - H^-1 sum_s m_s g_s``, with g_s the
    sessions' gradients at beta_hat and H the Hessian of the full sample (by central
    differences of the gradient). The full sample's gradient is zero at beta_hat, so this is
    first-order equivalent to re-fitting every replicate, at the cost of one gradient pass.
    """
    inverse = np.unique(np.asarray(groups), return_inverse=True)[1]
    beta_hat = np.asarray(beta_hat, dtype=np.float64)
    grads = _session_gradients(problem, beta_hat)
    hessian = np.empty((len(HEADS), len(HEADS)))
    for j in range(len(HEADS)):
        e = np.eye(len(HEADS))[j] * step
        up = _session_gradients(problem, beta_hat + e).sum(axis=0)
        down = _session_gradients(problem, beta_hat - e).sum(axis=0)
        hessian[:, j] = (up - down) / (2 * step)
    hessian = (hessian + hessian.T) / 2
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, len(HEADS)))
    for b in range(n_boot):
        weights = _resampled_session_weights(rng, inverse)
        beta = beta_hat - np.linalg.solve(hessian, weights @ grads)
        out[b] = to_l1_sphere(beta)
    return out
