"""05's head-weight estimates over the value-model seeds (docs/design.md section 10).

05 runs every estimator once per value-model seed: the seed's value model scores the candidates
and gives the item representations, everything else (the candidates, the search, the bootstrap
draws) keeps the data's seed. Each estimate has its own within-run standard error per head: the
sd of its bootstrap draws (plain, rank_logit) or its clustered sandwich (selection). ``pool_estimates``
pools each head's weight over the seeds by Rubin's rules (``uncertainty.pool``) and, on simulated
data, judges whether the estimator recovers ``w_true``: every head's combined interval must cover
its true weight and lie within ``tolerance`` of it (``uncertainty.verdict``, claim ``equal``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from kuairec_utils import parallel
from kuairec_utils.head_weights.estimators import Feeds, WeightResult, run_estimators
from kuairec_utils.heads import HEADS
from kuairec_utils.parallel import fork_map
from kuairec_utils.uncertainty import FAILS, HOLDS, UNDECIDED, pool, verdict


def _seed_task(seed: int) -> dict[str, WeightResult]:
    """One seed's estimators (``fork_map``'s task: the loader and settings are shared)."""
    load, settings = parallel.SHARED
    return run_estimators(load(seed), settings)


def estimators_over_seeds(
    load: Callable[[int], Feeds], seeds: Sequence[int], settings: Mapping[str, Any]
) -> dict[int, dict[str, WeightResult]]:
    """Every registered estimator on each seed's feeds (``load(seed)``), the seeds in
    ``settings["n_jobs"]`` forked processes, each seed's estimators in one process: the same
    estimates as one seed after the other (no estimate depends on the processes), with the
    cores busy where an estimator's own parts would leave one idle."""
    n_jobs = min(int(settings["n_jobs"]), len(seeds))
    inner = dict(settings) | {"n_jobs": 1 if n_jobs > 1 else settings["n_jobs"]}
    runs = fork_map(_seed_task, list(seeds), n_jobs, (load, inner), "value-model seeds")
    return dict(zip(seeds, runs, strict=True))


def within_se(result: WeightResult) -> np.ndarray | None:
    """An estimate's within-run standard error per head: the sd of its bootstrap draws, or the
    standard errors it reports (``details["se"]``); None when it has neither."""
    if result.draws is not None and len(result.draws) > 1:
        return np.asarray(result.draws, dtype=np.float64).std(axis=0, ddof=1)
    se = result.details.get("se")
    if isinstance(se, Mapping):
        return np.array([float(se[h]) for h in HEADS])
    return None


def combined_verdict(verdicts: list[str]) -> str:
    """One verdict from the heads': *does not hold* if any head's does not, *holds* if every
    head's holds, else *not distinguishable*."""
    if FAILS in verdicts:
        return FAILS
    return HOLDS if all(v == HOLDS for v in verdicts) else UNDECIDED


def pool_estimates(
    runs: Mapping[int, Mapping[str, WeightResult]],
    w_true: np.ndarray | None = None,
    tolerance: float = 0.05,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each estimator's weights over the seeds of ``runs`` ({seed: {estimator: result}}).

    Headline per estimator: ``w`` (each head's mean over the seeds where it was fitted), ``ci95``
    (the combined intervals), ``sd_seeds`` (the spread across seeds), ``seeds`` (those fitted);
    with ``w_true``: ``max_abs_error`` (the mean over seeds of each seed's largest error, its
    spread and a combined interval from the erring head's within-run standard error), whether
    each combined interval covers ``w_true``, and the ``verdict`` of the claim that the estimator
    recovers ``w_true``. Details: each head's full pooled record and verdict."""
    names = list(next(iter(runs.values())))
    headline: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for name in names:
        fitted = {s: r[name] for s, r in runs.items() if r[name].w is not None}
        if not fitted:
            headline[name], details[name] = {}, {"not_fitted": "in no seed's run"}
            continue
        w = np.array([r.w for r in fitted.values()])
        ses = [within_se(r) for r in fitted.values()]
        pooled = {
            h: pool(w[:, j], None if any(se is None for se in ses) else [se[j] for se in ses])
            for j, h in enumerate(HEADS)
        }
        record: dict[str, Any] = {
            "w": {h: p.mean for h, p in pooled.items()},
            "ci95": {h: list(p.ci95) for h, p in pooled.items()},
            "sd_seeds": {h: p.sd_seeds for h, p in pooled.items()},
            "seeds": [int(s) for s in fitted],
        }
        details[name] = {h: p.record() for h, p in pooled.items()}
        if w_true is not None:
            record |= _against_truth(w, ses, pooled, w_true, tolerance, details[name])
        headline[name] = record
    return headline, details


def _against_truth(
    w: np.ndarray,
    ses: list[np.ndarray | None],
    pooled: Mapping[str, Any],
    w_true: np.ndarray,
    tolerance: float,
    details: dict[str, Any],
) -> dict[str, Any]:
    errors = np.abs(w - w_true[None, :])
    worst = errors.argmax(axis=1)  # the head each seed misses most
    error_se = None
    if all(se is not None for se in ses):
        error_se = [se[j] for se, j in zip(ses, worst, strict=True)]
    max_error = pool(errors.max(axis=1), error_se)
    verdicts = {
        h: verdict(pooled[h].ci95, "equal", float(w_true[j]), tolerance)
        for j, h in enumerate(HEADS)
    }
    for h in HEADS:
        details[h]["verdict"] = verdicts[h]
    return {
        "max_abs_error": {
            "mean": max_error.mean,
            "sd_seeds": max_error.sd_seeds,
            "ci95": list(max_error.ci95),
            "per_seed": list(max_error.per_seed),
        },
        "covers_w_true": {
            h: bool(pooled[h].ci95[0] <= w_true[j] <= pooled[h].ci95[1])
            for j, h in enumerate(HEADS)
        },
        "verdict": combined_verdict(list(verdicts.values())),
    }
