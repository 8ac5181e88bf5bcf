"""Engagement signals at a common selectivity (docs/design.md section 7, "Debiased signals").

A quick skip happens with ``P = sigmoid(c_s - m)``: a session's skips tell of the user's
utility ``m`` for what was shown and of the session's selectivity ``c_s`` at once, while the
depth to which an unskipped video is watched follows ``m`` alone. 06 separates the two (its
``c_s`` is the skips' threshold plus the feed's quality offset read from the watch depth). Here
each session's skip rate is moved from its own ``c_s`` to a common reference ``c_ref``, and the
other heads follow: a head other than the skip is ``(1 - P(skip)) * P(head | not skipped)`` and
only the first factor moves. Two corrections give the session's skip rate at its own and at the
reference selectivity (``SkipShift``):

- ``structural_shift``: the threshold model taken at its word. The session's skip rate (with
  one pseudo-video at the pooled rate) moves on the logit scale by exactly ``c_ref - c_s``.
- ``fitted_shift``: a model of each shown video's skip given the value model's engagement index,
  the position and the session's estimated ``c_s`` (a logistic regression, its slope on ``c_s``
  free), evaluated once at ``c_s`` and once at ``c_ref``. An estimated ``c_s`` is noisy, and the
  fitted slope shrinks the correction by the share of its spread that predicts the skips.

``debiased_rows`` turns a shift into one score per shown video and head, whose mean over a
session (or a user) is the session's (user's) rate at the reference selectivity;
``corrected_signals`` gives both corrections' scores at once. Its unit may be a session with
06's ``c_s``, or a session's half with the ``c_s`` fitted on the other half (``crossfit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, logit

from kuairec_utils.heads import HEADS

SKIP = HEADS.index("negative")


@dataclass
class SkipShift:
    """Each session's skip rate as modelled at its own selectivity and at the reference, and
    (structural) its observed rate: the debiased skip scores then average to ``reference``."""

    own: np.ndarray  # (S,)
    reference: np.ndarray  # (S,)
    observed: np.ndarray | None = None  # (S,)


def session_counts(session_index: np.ndarray, skip: np.ndarray, n_sessions: int) -> np.ndarray:
    """(S, 2): each session's shown videos and quick skips."""
    session_index = np.asarray(session_index, dtype=np.int64)
    n = np.bincount(session_index, minlength=n_sessions).astype(np.float64)
    skips = np.bincount(session_index, weights=np.asarray(skip, np.float64), minlength=n_sessions)
    return np.column_stack([n, skips])


def reference_selectivity(c: np.ndarray, n_shown: np.ndarray) -> float:
    """The common reference: the mean ``c_s`` over shown videos (each session weighted by its
    length), so the debiased rates stay on the scale of the observed ones."""
    c, n_shown = np.asarray(c, np.float64), np.asarray(n_shown, np.float64)
    if len(c) != len(n_shown) or not np.isfinite(c).all():
        raise ValueError("every session needs a finite selectivity c_s and its length")
    return float(np.sum(c * n_shown) / np.sum(n_shown))


def structural_shift(counts: np.ndarray, c: np.ndarray, reference: float) -> SkipShift:
    """The session's skip rate moved by ``c_ref - c_s`` on the logit scale: under ``P(skip) =
    sigmoid(c_s - m)`` the log-odds of a skip are additive in the selectivity, whatever the
    videos' utilities. The rate is smoothed by one pseudo-video at the pooled skip rate
    (``(skips + p) / (n + 1)``), so a session with no skip, or only skips, stays finite while a
    short session keeps the population's level rather than a half (a prior at 0.5 would lift
    every short session's logit far above a pooled rate near 0.1)."""
    n, skips = counts[:, 0], counts[:, 1]
    if (n <= 0).any():
        raise ValueError("a session without a shown video")
    pooled = skips.sum() / n.sum()
    own = np.clip((skips + pooled) / (n + 1.0), 1e-9, 1 - 1e-9)  # finite if none or all skip
    moved = expit(logit(own) + (reference - np.asarray(c, np.float64)))
    return SkipShift(own, moved, observed=skips / n)


def _logistic_fit(z: np.ndarray, y: np.ndarray, max_iter: int = 50) -> np.ndarray:
    """Maximum likelihood of ``P(y = 1) = sigmoid(z @ beta)`` by Newton's method."""
    beta = np.zeros(z.shape[1])
    for _ in range(max_iter):
        p = expit(z @ beta)
        hessian = (z * (p * (1 - p))[:, None]).T @ z
        step = np.linalg.solve(hessian + 1e-9 * np.eye(len(beta)), z.T @ (y - p))
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return beta


def fitted_shift(
    skip: np.ndarray,
    index: np.ndarray,
    position: np.ndarray,
    c: np.ndarray,
    session_index: np.ndarray,
    reference: float,
) -> tuple[SkipShift, dict[str, float]]:
    """A logistic regression of every shown video's skip on the session's estimated ``c_s``,
    the value model's engagement index and ``log(1 + position)``, evaluated at ``c_s`` and at
    ``c_ref``; each session's mean of the two predictions. Also the fitted coefficients."""
    session_index = np.asarray(session_index, dtype=np.int64)
    y = np.asarray(skip, np.float64)
    c_row = np.asarray(c, np.float64)[session_index]
    z = np.column_stack([np.ones(len(y)), c_row, index, np.log1p(position)])
    if not np.isfinite(z).all():
        raise ValueError("the engagement index, the positions and c_s must be finite")
    beta = _logistic_fit(z, y)
    at_reference = z.copy()
    at_reference[:, 1] = reference
    n_sessions = len(c)
    n = np.bincount(session_index, minlength=n_sessions)

    def session_mean(p: np.ndarray) -> np.ndarray:
        return np.bincount(session_index, weights=p, minlength=n_sessions) / n

    shift = SkipShift(session_mean(expit(z @ beta)), session_mean(expit(at_reference @ beta)))
    names = ("intercept", "c_s", "index", "log_position")
    return shift, dict(zip(names, beta.tolist(), strict=True))


def debiased_rows(labels: np.ndarray, session_index: np.ndarray, shift: SkipShift) -> np.ndarray:
    """(n, heads) scores at the reference selectivity, in ``HEADS`` order: the skip label plus the
    session's change of skip rate (from the observed rate where the shift has one, so a
    session's scores average to its rate at the reference, inside [0, 1]); every other head's
    label times the session's ratio of not-skipping rates (``P(head | not skipped)`` does not
    depend on the selectivity)."""
    out = np.asarray(labels, dtype=np.float64).copy()
    s = np.asarray(session_index, dtype=np.int64)
    ratio = (1.0 - shift.reference) / (1.0 - shift.own)
    start = shift.own if shift.observed is None else shift.observed
    for h in range(out.shape[1]):
        if h == SKIP:
            out[:, h] += (shift.reference - start)[s]
        else:
            out[:, h] *= ratio[s]
    return out


def corrected_signals(
    labels: np.ndarray,
    index: np.ndarray,
    position: np.ndarray,
    unit: np.ndarray,
    c: np.ndarray,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Both corrections' (n, heads) scores (``CORRECTIONS``) for shown videos with labels
    ``labels`` in units ``unit`` (0..P-1; a session, or a session's half) of selectivity ``c``
    (P,); also the reference (the mean ``c`` over the shown videos) and the fitted
    coefficients."""
    labels = np.asarray(labels, dtype=np.float64)
    counts = session_counts(unit, labels[:, SKIP], len(c))
    reference = reference_selectivity(c, counts[:, 0])
    shifts = {"structural": structural_shift(counts, c, reference)}
    shifts["fitted"], coefficients = fitted_shift(
        labels[:, SKIP], index, position, c, unit, reference
    )
    signals = {name: debiased_rows(labels, unit, shift) for name, shift in shifts.items()}
    return signals, {"reference_c": reference, "fitted_coefficients": coefficients}
