"""Figures that hold when the value model is retrained (docs/design.md section 10).

Every value model is trained once per value-model seed, and 05, 06 and 07 run on every one.
A headline figure then has one estimate per seed, each with its own within-run standard error
(a bootstrap over users, a sandwich, a clustered DeLong variance). ``pool`` combines them by
Rubin's rules for multiple imputation: with ``k`` seeds, estimates ``q_i`` and within-run
variances ``u_i``,

    q = mean(q_i),  U = mean(u_i),  B = var(q_i) (ddof 1),  T = U + (1 + 1/k) B,

the combined interval is ``q +- t_nu sqrt(T)`` with Rubin's degrees of freedom
``nu = (k - 1) (1 + U / ((1 + 1/k) B))**2`` (normal when ``B`` is 0 or ``k`` is 1). ``B`` is
what retraining moves: one trained value model's interval (``U`` alone) cannot show it.

``verdict`` states the claims' rule once: a claim is a statement about a figure (it is above or
below a reference, or it equals a reference up to a stated tolerance) and its combined 95%
interval decides it: *holds*, *does not hold* or *not distinguishable*.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "not distinguishable"
CLAIMS: tuple[str, ...] = ("above", "below", "equal")


@dataclass(frozen=True)
class Pooled:
    """A figure over value-model seeds: the mean, the spread across seeds (``sd_seeds``, None
    with one seed), the within-run standard error (root mean within variance; None where the
    runs have none), the combined standard error and degrees of freedom, the combined 95%
    interval, and every seed's estimate."""

    mean: float
    sd_seeds: float | None
    se_within: float | None
    se: float
    df: float
    ci95: tuple[float, float]
    per_seed: tuple[float, ...]

    def record(self) -> dict[str, Any]:
        """JSON-ready: ``mean``, ``sd_seeds``, ``se_within``, ``se``, ``ci95``, ``per_seed``
        (the degrees of freedom are ``null`` when infinite)."""
        return {
            "mean": self.mean,
            "sd_seeds": self.sd_seeds,
            "se_within": self.se_within,
            "se": self.se,
            "df": self.df if math.isfinite(self.df) else None,
            "ci95": list(self.ci95),
            "per_seed": list(self.per_seed),
        }


def pool(estimates: Sequence[float], within_se: Sequence[float | None] | None = None) -> Pooled:
    """Rubin's rules over the seeds' ``estimates`` and their within-run standard errors
    (``None``: a run without one; then, and when none is given, the spread across seeds alone,
    with ``k - 1`` degrees of freedom)."""
    q = np.asarray(estimates, dtype=np.float64)
    k = len(q)
    if k == 0 or not np.isfinite(q).all():
        raise ValueError(f"pool needs at least one finite estimate, got {list(q)}")
    ses = [None] * k if within_se is None else list(within_se)
    if len(ses) != k:
        raise ValueError(f"{k} estimates but {len(ses)} standard errors")
    known = [s for s in ses if s is not None]
    if known and (len(known) < k or not all(np.isfinite(known)) or min(known) < 0):
        raise ValueError(f"within-run standard errors must be given for every seed: {ses}")
    u = float(np.mean(np.square(known))) if known else None
    b = float(np.var(q, ddof=1)) if k > 1 else None
    if b is None and u is None:
        raise ValueError("one seed without a standard error: no interval")
    between = (1.0 + 1.0 / k) * b if b is not None else 0.0
    total = (u or 0.0) + between
    if u is None:
        df = float(k - 1)
    elif between == 0.0:
        df = math.inf
    else:
        df = (k - 1) * (1.0 + u / between) ** 2
    se = math.sqrt(total)
    quantile = stats.norm.ppf(0.975) if math.isinf(df) else stats.t.ppf(0.975, df)
    mean = float(q.mean())
    return Pooled(
        mean=mean,
        sd_seeds=math.sqrt(b) if b is not None else None,
        se_within=math.sqrt(u) if u is not None else None,
        se=se,
        df=df,
        ci95=(mean - quantile * se, mean + quantile * se),
        per_seed=tuple(float(v) for v in q),
    )


def verdict(
    ci95: Sequence[float], claim: str, reference: float = 0.0, tolerance: float | None = None
) -> str:
    """The claims' rule. ``above`` (the figure exceeds ``reference``) and ``below``: *holds*
    when the whole interval lies on the claimed side, *does not hold* when it lies on the other
    side, else *not distinguishable*. ``equal`` (the figure is ``reference``, up to
    ``tolerance``): *does not hold* when the interval excludes ``reference``, *holds* when it
    covers it and lies within ``reference +- tolerance``, else (covering it, but too wide to
    tell) *not distinguishable*."""
    lo, hi = (float(v) for v in ci95)
    if not lo <= hi:
        raise ValueError(f"an interval needs lo <= hi, got {list(ci95)}")
    if claim not in CLAIMS:
        raise ValueError(f"claim must be one of {list(CLAIMS)}, got {claim!r}")
    if claim == "above":
        return HOLDS if lo > reference else FAILS if hi < reference else UNDECIDED
    if claim == "below":
        return HOLDS if hi < reference else FAILS if lo > reference else UNDECIDED
    if tolerance is None or not tolerance > 0:
        raise ValueError(f"an 'equal' claim needs a positive tolerance, got {tolerance!r}")
    if hi < reference or lo > reference:
        return FAILS
    inside = reference - tolerance <= lo and hi <= reference + tolerance
    return HOLDS if inside else UNDECIDED
