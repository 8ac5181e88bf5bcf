"""07's figures over the value-model seeds (docs/design.md section 10).

07 runs once per value-model seed (that seed's 06 ``c_s`` and engagement index), with the same
bootstrap draws of users. Each measure's value is averaged over the seeds; each difference from
raw is pooled by Rubin's rules with its paired bootstrap's standard error as the within-run
error, and the claimed differences (``run.CLAIMED``) get their verdict on the combined interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kuairec_utils.debias.run import CLAIMED
from kuairec_utils.uncertainty import pool, verdict


def pooled_difference(differences: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Seeds' differences from raw (``estimate``, ``se``) pooled: ``estimate`` (the mean),
    ``se`` and ``ci95`` (combined), ``sd_seeds``, ``se_within``, ``per_seed``."""
    p = pool([d["estimate"] for d in differences], [d["se"] for d in differences])
    return {
        "estimate": p.mean,
        "se": p.se,
        "ci95": list(p.ci95),
        "sd_seeds": p.sd_seeds,
        "se_within": p.se_within,
        "per_seed": list(p.per_seed),
    }


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


def pool_headline(records: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The headline record over the seeds' ``records`` (``DebiasRun.record``): the settings,
    the mean reference, and per level and measure the mean values and the pooled difference
    (with its verdict where the claim is about it)."""
    runs = list(records.values())
    first = runs[0]
    out = {k: first[k] for k in ("correction", "selectivity", "signal")}
    out["reference_c"] = _mean([r["reference_c"] for r in runs])
    if "evaluation" not in first:
        return out
    out["evaluation"] = {}
    for level, by_measure in first["evaluation"].items():
        out["evaluation"][level] = {}
        for measure, values in by_measure.items():
            seeds = [r["evaluation"][level][measure] for r in runs]
            pooled = {k: _mean([s[k] for s in seeds]) for k in values if k != "difference"}
            diff = pooled_difference([s["difference"] for s in seeds])
            if measure in CLAIMED:
                diff["verdict"] = verdict(diff["ci95"], "above", 0.0)
            out["evaluation"][level][measure] = pooled | {"difference": diff}
    return out


def pool_evaluation(evaluations: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The details' evaluation over the seeds: every signal's measures and every head's
    correlation with the preference averaged, every difference from raw pooled; the secondary
    share of gain and the units as the first seed's."""
    first = evaluations[0]
    out: dict[str, Any] = {
        k: first[k] for k in ("reference_c_true", "units", "share_of_gain") if k in first
    }
    out["measures"] = _average([e["measures"] for e in evaluations])
    out["corr_preference"] = _average([e["corr_preference"] for e in evaluations])
    out["differences"] = {
        level: {
            measure: {
                signal: pooled_difference(
                    [e["differences"][level][measure][signal] for e in evaluations]
                )
                for signal in by_signal
            }
            for measure, by_signal in by_measure.items()
        }
        for level, by_measure in first["differences"].items()
    }
    return out


def _average(records: list[Any]) -> Any:
    """Nested records of the same shape, every number averaged."""
    first = records[0]
    if isinstance(first, Mapping):
        return {k: _average([r[k] for r in records]) for k in first}
    if isinstance(first, int | float) and not isinstance(first, bool):
        return _mean([float(r) for r in records])
    return first
