"""A case-control selection model of the platform's feed: head weights and the ranking noise
from which candidates made the feed (05's third estimator, on the long feeds).

The study's estimator (``weights.estimate_weights``) compares the feed with a deterministic top K
of the candidate set; it misses w_true on the simulated platform even on its exact ranking
probabilities. This model reads the feed as the platform built it, the top K_s of a pool by a
noisy score, and the other candidates as a sample of that pool, and fits it by maximum
likelihood (``selection_weights``), with a covariance clustered by user. It recovers w on
synthetic feeds whose head probabilities vary independently. On the simulated platform, where
the four heads follow one utility index, the incidental parameters (a threshold and an
intercept per session) bias it on short feeds; on the feeds of at least 20 videos it recovers
w within 0.022 from the exact probabilities (05, all 10,507 such sessions; every 8th of them,
``diagnostics/selection_model.py --k-range 20 1000``: 0.011), and within 0.011 with the
split-panel jackknife's bias correction (``jackknife_selection_weights``, 05's default;
docs/findings.md, section 3, gives the figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, log_ndtr

from kuairec_utils import parallel
from kuairec_utils.names import JACKKNIFE_MIN_FEED
from kuairec_utils.parallel import fork_map

# the split-panel jackknife's halves need a few feed videos per session: on shorter feeds a half
# often separates perfectly and its fit runs off (synthetic feeds of 3-29 videos: the corrected
# w lands on the other side of the sphere)


@dataclass
class SelectionEstimate:
    """``w`` on the L1 sphere, the ranking noise's sd in score units and the fit."""

    w: np.ndarray
    noise_sd: float  # 1 / |beta|_1: the sd of the normal ranking noise, in units of Score_w
    beta: np.ndarray
    log_likelihood: float  # penalised, mean per session
    n_sessions: int  # sessions with both feed videos and others (the rest carry no information)
    converged: bool
    iterations: int
    cov_beta: np.ndarray  # (4, 4) covariance of beta: clustered by ``cluster`` when given
    w_se: np.ndarray  # standard errors of w (delta method from cov_beta)
    # the maximum-likelihood fit that a bias-corrected estimate (``jackknife_selection_weights``)
    # started from; None for a plain fit
    uncorrected: SelectionEstimate | None = None

    def intervals(self, level: float = 0.95) -> np.ndarray:
        """(4, 2) normal intervals for w at ``level``."""
        from scipy.stats import norm

        half = norm.ppf(0.5 + level / 2) * self.w_se
        return np.column_stack([self.w - half, self.w + half])


def _w_and_se(beta: np.ndarray, cov_beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``w = beta / |beta|_1`` and its standard errors by the delta method."""
    norm = np.abs(beta).sum()
    w = beta / norm
    jac = (np.eye(len(beta)) - np.outer(w, np.sign(beta))) / norm
    return w, np.sqrt(np.diag(jac @ cov_beta @ jac.T))


def _mills_ratio(z: np.ndarray, log_cdf: np.ndarray) -> np.ndarray:
    """phi(z) / Phi(z), from ``log_cdf = log Phi(z)`` (stable far in the left tail)."""
    return np.exp(-0.5 * z**2 - 0.5 * np.log(2 * np.pi) - log_cdf)


def _group_sums(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, columns): the sums of the rows of ``values`` (n, columns) by ``group``."""
    return np.stack(
        [
            np.bincount(group, weights=values[:, j], minlength=n_groups)
            for j in range(values.shape[1])
        ],
        axis=1,
    )


def sessions_with_repeats(interactions: pd.DataFrame) -> pd.Series:
    """Per ``session_id``: does its feed show a video the user was shown in an earlier session?

    A platform that ranks the videos a user has seen below all others shows one only when its
    pool runs out of new candidates, and then fills the feed regardless of score: the selection
    model does not describe such a feed (on the simulated platform 17% of the sessions, 53% of
    the feeds of more than 33 videos). The logs alone say which sessions they are.
    """
    by_time = interactions.sort_values(["user_id", "timestamp"], kind="stable")
    first = by_time.groupby(["user_id", "video_id"])["session_id"].transform("first")
    return (by_time["session_id"] != first).groupby(by_time["session_id"]).any()


@dataclass
class _SessionLikelihood:
    """The penalised case-control likelihood of the candidates of the sessions that have both
    feed videos and others, in the parameters of ``selection_weights``: beta, and each session's
    threshold ``tau`` and intercept ``alpha``, (S,) each."""

    probs: np.ndarray  # (n, heads): the candidates' head probabilities
    y: np.ndarray  # (n,) 1.0 for a feed video, 0.0 for the others
    seg: np.ndarray  # (n,) the session of each candidate, 0..S-1
    keep: np.ndarray  # (rows given,) bool: the candidates of the sessions kept
    n_sessions: int
    # (S, heads) the feed's mean probabilities: the threshold's prior centre is beta . p_bar_s
    # (linear in beta, so the prior is a quadratic of (beta, tau_s) and the profiled likelihood
    # is smooth)
    p_bar: np.ndarray
    sd_tau: float
    sd_alpha: float
    inner_iterations: int  # the most Fisher scoring steps of the sessions' (tau, alpha)

    @classmethod
    def from_rows(
        cls,
        probs: np.ndarray,
        session: np.ndarray,
        in_feed: np.ndarray,
        cluster: np.ndarray | None,
        prior_sd: tuple[float, float],
        inner_iterations: int,
    ) -> _SessionLikelihood:
        """The candidate rows checked, less the sessions without both feed videos and others."""
        probs = np.asarray(probs, dtype=np.float64)
        in_feed = np.asarray(in_feed, dtype=bool)
        session = np.asarray(session)
        if probs.ndim != 2 or len(probs) != len(session) or len(in_feed) != len(session):
            raise ValueError(
                f"probs (n, heads), session (n,) and in_feed (n,) must have one length, got "
                f"{probs.shape}, {session.shape} and {in_feed.shape}"
            )
        if cluster is not None and len(cluster) != len(session):
            raise ValueError(f"cluster must have one entry per row, got {len(cluster)}")
        _, session = np.unique(session, return_inverse=True)
        n_feed = np.bincount(session, weights=in_feed)
        n_all = np.bincount(session)
        keep = ((n_feed > 0) & (n_feed < n_all))[session]
        probs, y = probs[keep], in_feed[keep].astype(np.float64)
        _, seg = np.unique(session[keep], return_inverse=True)
        n_sessions = int(seg.max()) + 1 if len(seg) else 0
        if n_sessions == 0:
            raise ValueError("no session has both feed videos and other candidates")
        if not np.isfinite(probs).all():
            raise ValueError("probs has NaN or infinite values among the candidates")
        p_bar = (
            _group_sums(seg, y[:, None] * probs, n_sessions)
            / np.bincount(seg, weights=y, minlength=n_sessions)[:, None]
        )
        sd_tau, sd_alpha = prior_sd
        return cls(probs, y, seg, keep, n_sessions, p_bar, sd_tau, sd_alpha, inner_iterations)

    def bsum(self, v: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Per session, the sum of ``v``: over all rows, or over ``rows`` (``v`` of theirs)."""
        seg = self.seg if rows is None else self.seg[rows]
        return np.bincount(seg, weights=v, minlength=self.n_sessions)

    def bsum_heads(self, v: np.ndarray) -> np.ndarray:
        """(S, heads): per session, the sum of ``v`` times the candidates' probabilities."""
        return _group_sums(self.seg, v[:, None] * self.probs, self.n_sessions)

    def session_scores(
        self,
        beta: np.ndarray,
        tau: np.ndarray,
        alpha: np.ndarray,
        state: tuple,
        rows: np.ndarray | None = None,
    ) -> tuple:
        """The residual, variance and Mills ratio of the ``rows`` (all when None), and each
        session's penalised scores for (tau, alpha) summed over them, at the evaluation
        ``state`` (of every row) of these parameters."""
        z, log_cdf, eta = state if rows is None else (a[rows] for a in state)
        pi = expit(eta)
        r = (self.y if rows is None else self.y[rows]) - pi
        v, mills = pi * (1.0 - pi), _mills_ratio(z, log_cdf)
        g_tau = -self.bsum(r * mills, rows) - (tau - self.p_bar @ beta) / self.sd_tau**2
        g_alpha = self.bsum(r, rows) - alpha / self.sd_alpha**2
        return r, v, mills, g_tau, g_alpha

    def evaluate(
        self, beta: np.ndarray, tau: np.ndarray, alpha: np.ndarray, rows: np.ndarray | None = None
    ) -> tuple:
        """z, log Phi(z) and the logit of the ``rows`` (all when None), and every session's
        penalised log-likelihood (its data part summed over those rows only)."""
        p, s = (self.probs, self.seg) if rows is None else (self.probs[rows], self.seg[rows])
        z = p @ beta - tau[s]
        log_cdf = log_ndtr(z)
        eta = log_cdf + alpha[s]
        y = self.y if rows is None else self.y[rows]
        ll = self.bsum(y * eta - np.logaddexp(0.0, eta), rows)
        ll -= (
            0.5 * ((tau - self.p_bar @ beta) / self.sd_tau) ** 2
            + 0.5 * (alpha / self.sd_alpha) ** 2
        )
        return z, log_cdf, eta, ll

    def fit_sessions(self, beta: np.ndarray, tau: np.ndarray, alpha: np.ndarray) -> tuple:
        """Every session's (tau, alpha) at this beta, from the given values: Newton's method
        per session (the observed information where it is positive definite, else the
        expected one) with step halving, on the rows of the sessions still moving only.
        Returns them, the evaluation there and the total."""
        z, log_cdf, eta, ll = self.evaluate(beta, tau, alpha)
        active = np.ones(self.n_sessions, dtype=bool)
        for _ in range(self.inner_iterations):
            rows = np.flatnonzero(active[self.seg])
            d_t, d_a = self.session_steps(beta, tau, alpha, (z, log_cdf, eta), rows, active)
            step, ll = self.halve_steps(
                beta, tau, alpha, (d_t, d_a), active, rows, ll, (z, log_cdf, eta)
            )
            tau, alpha = tau + step * d_t, alpha + step * d_a
            active &= np.maximum(np.abs(step * d_t), np.abs(step * d_a)) >= 1e-10
            if not active.any():
                break
        return tau, alpha, (z, log_cdf, eta), float(ll.sum())

    def session_steps(
        self,
        beta: np.ndarray,
        tau: np.ndarray,
        alpha: np.ndarray,
        state: tuple,
        rows: np.ndarray,
        active: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The Newton steps of the ``active`` sessions' (tau, alpha), from the ``rows`` of these
        sessions (0 for the other sessions): the observed information where it is positive
        definite, else the expected one."""
        r, v, mills, g_t, g_a = self.session_scores(beta, tau, alpha, state, rows)
        h_ta = -self.bsum(v * mills, rows)
        h_aa = self.bsum(v, rows) + 1.0 / self.sd_alpha**2
        expected = self.bsum(v * mills**2, rows) + 1.0 / self.sd_tau**2
        # -d g_tau / d tau
        observed = expected + self.bsum(r * mills * (state[0][rows] + mills), rows)
        h_tt = np.where((observed > 0) & (observed * h_aa > h_ta**2), observed, expected)
        det = h_tt * h_aa - h_ta**2
        d_t = np.where(active, (h_aa * g_t - h_ta * g_a) / det, 0.0)
        d_a = np.where(active, (h_tt * g_a - h_ta * g_t) / det, 0.0)
        return d_t, d_a

    def halve_steps(
        self,
        beta: np.ndarray,
        tau: np.ndarray,
        alpha: np.ndarray,
        steps: tuple[np.ndarray, np.ndarray],
        active: np.ndarray,
        rows: np.ndarray,
        ll: np.ndarray,
        state: tuple,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step halving per session along the ``active`` sessions' ``steps`` of (tau, alpha)
        (``rows``: the rows of those sessions): each trial evaluates only the rows of the
        sessions whose step is still being halved (the sessions are independent given beta). Writes the evaluation at the steps taken
        into ``state`` and returns each session's share of its step and its log-likelihood."""
        z, log_cdf, eta = state
        d_t, d_a = steps
        step = active.astype(np.float64)
        new_ll = ll.copy()
        pending, trial_rows = active.copy(), rows
        for halving in range(31):
            if halving == 30:  # no ascent for these sessions along their step: they stay
                step = np.where(pending, 0.0, step)
            trial = self.evaluate(beta, tau + step * d_t, alpha + step * d_a, trial_rows)
            worse = pending & (trial[3] < ll - 1e-12 * np.abs(ll)) & (halving < 30)
            done = pending & ~worse
            z[trial_rows], log_cdf[trial_rows], eta[trial_rows] = trial[:3]
            new_ll = np.where(done, trial[3], new_ll)
            if not worse.any():
                break
            pending = worse
            step = np.where(worse, step / 2.0, step)
            trial_rows = trial_rows[worse[self.seg[trial_rows]]]
        return step, new_ll

    def newton_system(
        self, beta: np.ndarray, tau: np.ndarray, alpha: np.ndarray, state: tuple
    ) -> dict:
        """The sessions' scores and the arrow Hessian's blocks (prior included), reduced to
        beta's Schur complement: the observed information where it is positive definite, else
        the expected one."""
        probs, p_bar, sd_tau = self.probs, self.p_bar, self.sd_tau
        z = state[0]
        r, v, mills, g_t, g_a = self.session_scores(beta, tau, alpha, state)
        # beta's own score per session (the tau prior centre beta . p_bar_s is in it too)
        g_beta = self.bsum_heads(r * mills) + ((tau - p_bar @ beta) / sd_tau**2)[:, None] * p_bar
        for observed in (True, False):
            # information weight on z: v m^2 (expected) plus r m (z + m) (observed: -r dm/dz)
            w_zz = v * mills**2 + (r * mills * (z + mills) if observed else 0.0)
            b_tau = -self.bsum_heads(w_zz) - p_bar / sd_tau**2  # (S, heads): beta-tau blocks
            b_alpha = self.bsum_heads(v * mills)
            c_tt = self.bsum(w_zz) + 1.0 / sd_tau**2
            c_ta = -self.bsum(v * mills)
            c_aa = self.bsum(v) + 1.0 / self.sd_alpha**2
            det = c_tt * c_aa - c_ta**2
            if not ((det > 0).all() and (c_tt > 0).all()):
                continue
            a_tt, a_ta, a_aa = c_aa / det, -c_ta / det, c_tt / det  # the 2x2 blocks' inverses
            info = (probs * w_zz[:, None]).T @ probs + p_bar.T @ p_bar / sd_tau**2
            schur = info - (
                b_tau.T @ (b_tau * a_tt[:, None])
                + b_tau.T @ (b_alpha * a_ta[:, None])
                + b_alpha.T @ (b_tau * a_ta[:, None])
                + b_alpha.T @ (b_alpha * a_aa[:, None])
            )
            if np.linalg.eigvalsh(schur).min() > 0:
                break
        # beta's efficient score per session: its score less the part tau_s and alpha_s take
        efficient = (
            g_beta
            - b_tau * (a_tt * g_t + a_ta * g_a)[:, None]
            - b_alpha * (a_ta * g_t + a_aa * g_a)[:, None]
        )
        return {"efficient": efficient, "schur": schur}


def _start_beta(start: np.ndarray | None, n_heads: int) -> np.ndarray:
    """The Newton start for beta: ``start``, checked, or the -negative direction at the
    platform's usual noise (~0.1 of a score)."""
    beta = np.asarray(start, dtype=np.float64).copy() if start is not None else None
    if beta is None:
        beta = np.array([0.0, 0.0, 0.0, -1.0])[:n_heads] * 10.0
    if beta.shape != (n_heads,) or not np.isfinite(beta).all():
        raise ValueError(f"start must be {n_heads} finite numbers, got {beta.tolist()}")
    return beta


def _profiled_newton(
    likelihood: _SessionLikelihood, beta: np.ndarray, max_iterations: int, tol: float
) -> tuple[np.ndarray, float, dict, bool, int]:
    """Newton's method for beta on the profiled likelihood, from ``beta``: its gradient is the
    sum of the efficient scores (the sessions' own scores vanish at their optimum), its
    information the Schur complement of the arrow Hessian; a step is halved until the
    likelihood does not fall; it stops when the predicted gain (half the Newton decrement) is
    below ``tol`` times the likelihood. Returns beta, the log-likelihood, the Newton system
    there, whether it converged and the iterations."""
    start_tau = likelihood.p_bar @ beta
    tau, alpha, state, ll = likelihood.fit_sessions(
        beta, start_tau, np.zeros(likelihood.n_sessions)
    )
    system = likelihood.newton_system(beta, tau, alpha, state)
    converged, iteration = False, 0
    while iteration < max_iterations:
        gradient = system["efficient"].sum(axis=0)
        d_beta = np.linalg.solve(system["schur"], gradient)
        if 0.5 * gradient @ d_beta < tol * abs(ll):
            converged = True
            break
        iteration += 1
        step = 1.0
        for _halving in range(40):
            trial = likelihood.fit_sessions(beta + step * d_beta, tau, alpha)
            if trial[3] >= ll:
                break
            step /= 2.0
        else:
            break  # no ascent along the Newton step: not converged
        beta = beta + step * d_beta
        tau, alpha, state, ll = trial
        system = likelihood.newton_system(beta, tau, alpha, state)
    return beta, ll, system, converged, iteration


def _clustered_covariance(
    likelihood: _SessionLikelihood, system: dict, cluster: np.ndarray | None
) -> np.ndarray:
    """The covariance of beta: the sandwich of the profiled information and the clusters'
    summed efficient scores (each session its own cluster when ``cluster`` is None)."""
    per_session = system["efficient"]
    n_sessions = likelihood.n_sessions
    if cluster is None:
        groups = np.arange(n_sessions)
    else:
        first = np.zeros(n_sessions, dtype=np.int64)
        first[likelihood.seg] = np.flatnonzero(likelihood.keep)  # any row of the session
        _, groups = np.unique(np.asarray(cluster)[first], return_inverse=True)
    n_groups = int(groups.max()) + 1
    summed = _group_sums(groups, per_session, n_groups)
    bread = np.linalg.inv(system["schur"])
    meat = summed.T @ summed * (n_groups / max(n_groups - 1, 1))
    return bread @ meat @ bread


def selection_weights(
    probs: np.ndarray,
    session: np.ndarray,
    in_feed: np.ndarray,
    cluster: np.ndarray | None = None,
    start: np.ndarray | None = None,
    prior_sd: tuple[float, float] = (10.0, 5.0),
    max_iterations: int = 100,
    inner_iterations: int = 30,
    tol: float = 1e-12,
) -> SelectionEstimate:
    """Head weights and the ranking noise's sd from which candidates made the feed.

    The platform shows the top K_s of a pool drawn from the videos of the day by ``Score_w +
    noise``, the noise normal of sd ``sigma``. The candidates are the feed (cases) and others
    drawn like the pool (controls). Then, for a candidate of session s (the case-control
    argument: the pool's and the controls' sampling cancel),

        P(in the feed | candidate) = logistic(log Phi(beta . p_i - tau_s) + alpha_s),

    ``beta = w / sigma``, ``tau_s`` the session's threshold (its K_s-th noisy score, over sigma)
    and ``alpha_s`` the log of the pool's size over the number of others (it also absorbs the
    share of the pool the user had already seen). Weak normal priors of sd ``prior_sd`` (around
    the feed's mean score ``beta . p_bar_s`` and 0) keep ``(tau_s, alpha_s)`` finite where the
    feed separates perfectly; the prior is a quadratic in ``(beta, tau_s)``, so the profiled
    likelihood is smooth. Every session's ``(tau_s, alpha_s)`` is fitted by Fisher scoring with
    step halving per session; ``beta`` by Newton's method on the profiled likelihood, whose
    gradient is the sum of the sessions' efficient scores and whose information is the Schur
    complement of the arrow Hessian (a 4x4 block for beta, a 2x2 block per session): linear in
    the rows. The observed information is used where it is positive definite, else the expected
    one; a step is halved until the likelihood does not fall; ``tol`` bounds the last step's
    predicted gain relative to the likelihood.

    ``cov_beta`` is the inverse of the profiled information for beta, made robust to
    dependence within ``cluster`` (e.g. the user of each row: sessions of one user share their
    habits) by the sandwich with the clusters' summed scores; ``w_se`` follows by the delta
    method through ``w = beta / |beta|_1``.

    probs: (n, 4) candidate rows; session: (n,) their session; in_feed: (n,) bool; cluster:
    (n,) a cluster id constant within a session, or None (sessions independent). Sessions
    without both feed videos and others are left out.
    """
    likelihood = _SessionLikelihood.from_rows(
        probs, session, in_feed, cluster, prior_sd, inner_iterations
    )
    beta = _start_beta(start, likelihood.probs.shape[1])
    beta, ll, system, converged, iteration = _profiled_newton(likelihood, beta, max_iterations, tol)
    cov_beta = _clustered_covariance(likelihood, system, cluster)
    w, w_se = _w_and_se(beta, cov_beta)
    return SelectionEstimate(
        w=w,
        noise_sd=1.0 / float(np.abs(beta).sum()),
        beta=beta,
        log_likelihood=ll / likelihood.n_sessions,
        n_sessions=likelihood.n_sessions,
        converged=converged,
        iterations=iteration,
        cov_beta=cov_beta,
        w_se=w_se,
    )


def split_halves(session: np.ndarray, in_feed: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n,) bool: which rows form half A of each session (the rest half B). Each session's feed
    videos and its other candidates are shuffled apart and dealt alternately, A first, so each
    half holds half of both (a session with one feed video keeps it in A)."""
    session, in_feed = np.asarray(session), np.asarray(in_feed, dtype=bool)
    order = np.lexsort((np.random.default_rng(seed).random(len(session)), in_feed, session))
    key = np.stack([session[order], in_feed[order]])
    starts = np.r_[0, np.flatnonzero((key[:, 1:] != key[:, :-1]).any(axis=0)) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, sizes)  # within (session, feed or not)
    half_a = np.empty(len(order), dtype=bool)
    half_a[order] = rank % 2 == 0
    return half_a


def _half_fit(task: tuple[int, int]) -> SelectionEstimate:
    """``selection_weights`` on half A (0) or B (1) of the split ``task[0]`` (``fork_map``'s
    task: the inputs, with each split's half A, are ``parallel.SHARED``)."""
    split, half = task
    probs, session, in_feed, cluster, halves_a, options = parallel.SHARED
    rows = ~halves_a[split] if half else halves_a[split]
    return selection_weights(
        probs[rows],
        session[rows],
        in_feed[rows],
        cluster=None if cluster is None else cluster[rows],
        **options,
    )


def jackknife_selection_weights(
    probs: np.ndarray,
    session: np.ndarray,
    in_feed: np.ndarray,
    cluster: np.ndarray | None = None,
    seed: int = 0,
    n_splits: int = 1,
    n_jobs: int = 1,
    **options,
) -> SelectionEstimate:
    """``selection_weights`` with the split-panel jackknife's bias correction (Dhaene and
    Jochmans, 2015, Review of Economic Studies 82(3)): ``beta = 2 beta_all - (beta_A +
    beta_B) / 2``, ``beta_A`` and ``beta_B`` fitted on two halves of every session's candidates
    (``split_halves``; averaged over ``n_splits`` random splits).

    Each session's threshold and intercept are estimated from its own few candidates, and their
    noise biases beta by O(1 / the candidates per session): too small a noise sd and the weights
    pulled off w (the incidental-parameter problem). The halves have half the candidates per
    session and about twice the bias, so the combination removes the first-order term. A random
    half of a session's feed and of its others follows the same model with the same threshold
    and intercept (the case-control argument holds for any sampling share), which is what the
    correction needs. It needs feeds of at least ``JACKKNIFE_MIN_FEED`` videos: on shorter ones
    a half often separates perfectly and its fit runs off. On the simulated platform's long feeds (at least 20 videos) and their exact
    probabilities it takes the error from 0.022 to 0.011 and the noise sd from 0.072 to 0.083
    (w_true's platform: 0.08).

    The correction depends on the random split: on the GNN's probabilities of the default run,
    one split's corrected rewatch weight moves by about 0.01 from one split to the next, as
    much as its standard error's half. Averaging over ``n_splits`` splits shrinks that noise,
    and with two or more its remaining part (the splits' covariance over ``n_splits``) is added
    to the full fit's covariance (the clustered sandwich: the correction changes the bias, not
    the first-order variance). The standard errors follow by the delta method at the corrected
    beta. ``uncorrected`` holds the full fit. With ``n_jobs > 1`` the halves are fitted in that
    many forked processes, with the same result.
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 1:
        raise ValueError(f"n_splits must be a positive integer, got {n_splits!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    probs, session, in_feed = np.asarray(probs), np.asarray(session), np.asarray(in_feed, bool)
    cluster = None if cluster is None else np.asarray(cluster)
    group = np.unique(session, return_inverse=True)[1]
    n_feed, n_all = np.bincount(group, weights=in_feed), np.bincount(group)
    fitted = n_feed[(n_feed > 0) & (n_feed < n_all)]  # the rest are left out anyway
    if len(fitted) and fitted.min() < JACKKNIFE_MIN_FEED:
        raise ValueError(
            f"the split-panel jackknife needs feeds of at least {JACKKNIFE_MIN_FEED} videos "
            f"(halves of {JACKKNIFE_MIN_FEED // 2}); a session has {int(fitted.min())}: fit on "
            "longer feeds, or without the correction (selection_weights)"
        )
    full = selection_weights(probs, session, in_feed, cluster=cluster, **options)
    options = {"start": full.beta} | options
    halves_a = [split_halves(session, in_feed, seed=seed + split) for split in range(n_splits)]
    shared = (probs, session, in_feed, cluster, halves_a, options)
    tasks = [(split, half) for split in range(n_splits) for half in (0, 1)]  # A, B of each
    halves = fork_map(_half_fit, tasks, n_jobs, shared)
    pairs = zip(halves[::2], halves[1::2], strict=True)
    per_split = np.array([(a.beta + b.beta) / 2.0 for a, b in pairs])
    beta = 2.0 * full.beta - per_split.mean(axis=0)
    cov_beta = full.cov_beta
    if n_splits > 1:  # the random split's own noise, which the average leaves
        cov_beta = cov_beta + np.cov(per_split, rowvar=False, ddof=1) / n_splits
    w, w_se = _w_and_se(beta, cov_beta)
    return SelectionEstimate(
        w=w,
        noise_sd=1.0 / float(np.abs(beta).sum()),
        beta=beta,
        log_likelihood=full.log_likelihood,
        n_sessions=full.n_sessions,
        converged=full.converged and all(h.converged for h in halves),
        iterations=full.iterations + sum(h.iterations for h in halves),
        cov_beta=cov_beta,
        w_se=w_se,
        uncorrected=full,
    )
