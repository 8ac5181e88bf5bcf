"""07 for one value model, from arrays: the signals (raw, both corrections with 06's ``c_s`` and
with the cross-fitted one, and on simulated data the structural correction with the true
``c_s``), their evaluation against the exact target, and the two metrics records
(``debias_run``). Another value model (or a seed of one) is another call.

The headline signal is ``debias.correction`` with ``debias.selectivity``'s ``c_s``. The headline
record holds, per level, its quick-skip measures beside raw's and the true ``c_s``'s, and its
paired difference from raw with the bootstrap's standard error and 95% interval. The details
hold every signal, every measure and every head's correlation with the latent preference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kuairec_utils.debias import evaluate as ev
from kuairec_utils.debias.correct import (
    SKIP,
    corrected_signals,
    debiased_rows,
    reference_selectivity,
    session_counts,
    structural_shift,
)
from kuairec_utils.debias.crossfit import CrossFit
from kuairec_utils.evaluation.debias_target import SkipTruth
from kuairec_utils.names import CORRECTIONS, SELECTIVITIES
from kuairec_utils.uncertainty import verdict

CROSS_FITTED = "_cross_fitted"  # the cross-fitted corrections' names: "structural_cross_fitted"
MIN_GAIN = 0.05  # share_of_gain only where |corr_true - corr_raw| is at least this
CLAIMED: tuple[str, ...] = ("corr_target", "partial_corr_preference")  # each difference above 0


def value_model_seed(seeds: Sequence[int]) -> int:
    """The value-model seed whose 05 and 06 07 reads: the first of ``value_model.seeds``."""
    if (
        not isinstance(seeds, list | tuple)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise ValueError(f"seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    return int(seeds[0])


def signal_name(correction: str, selectivity: str) -> str:
    """The name of a correction's signal with 06's (``in_sample``) or the cross-fitted c_s."""
    if correction not in CORRECTIONS or selectivity not in SELECTIVITIES:
        raise ValueError(f"no signal for {correction!r} with {selectivity!r} c_s")
    return correction + (CROSS_FITTED if selectivity == "cross_fitted" else "")


def debias_signals(
    labels: np.ndarray,
    index: np.ndarray,
    position: np.ndarray,
    row_session: np.ndarray,
    c_in_sample: np.ndarray,
    cross_fit: CrossFit | None,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """(n, heads) scores of ``raw`` and of both corrections with 06's ``c_s`` (S,) and, given
    ``cross_fit``, with the cross-fitted one; per selectivity the reference and the fitted
    coefficients."""
    labels = np.asarray(labels, dtype=np.float64)
    signals = {"raw": labels}
    found, info = corrected_signals(labels, index, position, row_session, c_in_sample)
    signals |= found
    infos = {"in_sample": info}
    if cross_fit is not None:
        found, info = corrected_signals(labels, index, position, cross_fit.part, cross_fit.c_part)
        signals |= {name + CROSS_FITTED: s for name, s in found.items()}
        infos["cross_fitted"] = info
    return signals, infos


def true_signal(labels: np.ndarray, row_session: np.ndarray, c_true: np.ndarray) -> np.ndarray:
    """The structural correction with the true ``c_s`` (``c_true`` per shown video): the
    method's ceiling. Evaluation only."""
    row_session = np.asarray(row_session, dtype=np.int64)
    counts = session_counts(row_session, labels[:, SKIP], int(row_session.max()) + 1)
    c_session = np.zeros(len(counts))
    c_session[row_session] = c_true
    reference = reference_selectivity(c_session, counts[:, 0])
    return debiased_rows(labels, row_session, structural_shift(counts, c_session, reference))


def _share_of_gain(corr: Mapping[str, float], signal: str) -> dict[str, Any]:
    """A secondary figure: the share of the true c_s's gain in the skip's correlation with
    the preference that ``signal`` keeps; null where that gain is under ``MIN_GAIN``."""
    gain = corr["true"] - corr["raw"]
    if abs(gain) < MIN_GAIN:
        return {
            "estimate": None,
            "denominator": gain,
            "reason": f"|corr_true - corr_raw| = {abs(gain):.3f} < {MIN_GAIN}: no gain to share",
        }
    return {"estimate": (corr[signal] - corr["raw"]) / gain, "denominator": gain}


def evaluation_record(
    signals: Mapping[str, np.ndarray],
    truth: SkipTruth,
    index: np.ndarray,
    row_user: np.ndarray,
    row_session: np.ndarray,
    n_users: int,
    min_length: int,
    boot: np.ndarray,
) -> dict[str, Any]:
    """Every signal's measures (``evaluate.MEASURES``) per level, the target's own, each
    signal's paired difference from raw (estimate, bootstrap se, 95% interval), every head's
    correlation with the latent preference, and the secondary share of gain. ``signals`` holds
    ``raw`` and ``true``; ``boot`` (B, U) the bootstrap's draws of users."""
    columns = ev.signal_columns(signals)
    columns |= {ev.TARGET: truth.target, ev.PREFERENCE: truth.preference, ev.INDEX: index}
    columns[ev.C_TRUE] = truth.c_true
    moments = ev.unit_moments(columns, row_user, row_session, n_users, min_length)
    names, out = [*signals, ev.TARGET], {"reference_c_true": truth.reference}
    for key in ("units", "measures", "differences", "corr_preference", "share_of_gain"):
        out[key] = {}
    for level, m in moments.items():
        point = ev.correlation_matrix(ev.covariances(m, np.ones(len(m.count))))
        draws = ev.correlation_matrix(ev.covariances(m, boot))
        at_point = {s: ev.skip_measures(point, m.names, s) for s in names}
        at_draws = {s: ev.skip_measures(draws, m.names, s) for s in signals}
        out["units"][level] = int(m.count.sum())
        out["measures"][level] = {
            measure: {s: float(at_point[s][measure][0]) for s in names} for measure in ev.MEASURES
        }
        out["differences"][level] = {
            measure: {
                s: ev.difference(
                    at_point[s][measure][0] - at_point["raw"][measure][0],
                    at_draws[s][measure] - at_draws["raw"][measure],
                )
                for s in signals
                if s != "raw"
            }
            for measure in ev.MEASURES
        }
        corr = ev.preference_correlations(point, m.names, list(signals))
        out["corr_preference"][level] = corr
        out["share_of_gain"][level] = {
            s: _share_of_gain(corr["negative"], s) for s in signals if s not in ("raw", "true")
        }
    return out


def headline_evaluation(evaluation: Mapping[str, Any], signal: str) -> dict[str, Any]:
    """The headline's part of ``evaluation_record``: per level and measure, raw's, the headline
    ``signal``'s (``corrected``), the true ``c_s``'s and the target's own values, and the
    headline's difference from raw; for the two measures the claim is about (``CLAIMED``: the
    debiased rate tracks its target, and the preference beyond the index, better than raw), the
    verdict of that difference's interval on "above 0" (``uncertainty.verdict``)."""
    out = {}
    for level, by_measure in evaluation["measures"].items():
        out[level] = {}
        for measure, values in by_measure.items():
            diff = dict(evaluation["differences"][level][measure][signal])
            if measure in CLAIMED and np.isfinite(diff["ci95"]).all():
                diff["verdict"] = verdict(diff["ci95"], "above", 0.0)
            out[level][measure] = {
                "raw": values["raw"],
                "corrected": values[signal],
                "true": values["true"],
                "target": values[ev.TARGET],
                "difference": diff,
            }
    return out


def measures_frame(evaluation: Mapping[str, Any]) -> pd.DataFrame:
    """``evaluation_record``'s quick-skip measures as a table: one row per level, measure and
    signal, with the difference from raw and its interval."""
    rows = []
    for level, by_measure in evaluation["measures"].items():
        for measure, values in by_measure.items():
            for signal, value in values.items():
                diff = evaluation["differences"][level][measure].get(signal, {})
                low, high = diff.get("ci95", (np.nan, np.nan))
                rows.append(
                    {
                        "level": level,
                        "measure": measure,
                        "signal": signal,
                        "value": value,
                        "minus_raw": diff.get("estimate", np.nan),
                        "se": diff.get("se", np.nan),
                        "ci95_low": low,
                        "ci95_high": high,
                    }
                )
    return pd.DataFrame(rows)


@dataclass
class DebiasRun:
    """One value model's signals and its two metrics records (headline, details)."""

    signals: dict[str, np.ndarray]
    record: dict[str, Any]
    details: dict[str, Any]


def _user_rate_sd(
    rates: Mapping[str, np.ndarray], row_user: np.ndarray, n_users: int
) -> dict[str, float]:
    """The sd across users of each users' mean of ``rates`` ((n,) per shown video)."""
    return {s: float(np.std(ev.means(r, row_user, n_users)[:, 0])) for s, r in rates.items()}


def debias_run(
    labels: np.ndarray,
    index: np.ndarray,
    position: np.ndarray,
    row_session: np.ndarray,
    row_user: np.ndarray,
    n_users: int,
    c_in_sample: np.ndarray,
    cross_fit: CrossFit | None,
    truth: SkipTruth | None,
    boot: np.ndarray,
    correction: str = "structural",
    selectivity: str = "in_sample",
    min_session_length: int = 10,
) -> DebiasRun:
    """07 on one value model: the signals, and the headline and detailed records (the
    evaluation, under ``evaluation``, only with ``truth``).

    labels: (n, heads) the shown videos' labels; index: (n,) the value model's engagement index
    ``x`` (uncentred); position: (n,); row_session, row_user: (n,) 0..S-1, 0..U-1;
    c_in_sample: (S,) 06's ``c_s``; cross_fit: the cross-fitted ``c_s`` (needed when
    ``selectivity`` is ``cross_fitted``); boot: (B, U) the bootstrap's draws of users.
    """
    if selectivity == "cross_fitted" and cross_fit is None:
        raise ValueError("the cross-fitted selectivity needs cross_fit")
    headline = signal_name(correction, selectivity)
    signals, infos = debias_signals(labels, index, position, row_session, c_in_sample, cross_fit)
    record = {"correction": correction, "selectivity": selectivity, "signal": headline}
    record["reference_c"] = infos[selectivity]["reference_c"]
    details = {
        **record,
        "min_session_length": min_session_length,
        "n_boot": len(boot),
        "reference_c": {k: v["reference_c"] for k, v in infos.items()},
        "fitted_coefficients": {k: v["fitted_coefficients"] for k, v in infos.items()},
        "skip_rate_sd_across_users": _user_rate_sd(
            {s: v[:, SKIP] for s, v in signals.items()}, row_user, n_users
        ),
    }
    if cross_fit is not None:
        same = np.corrcoef(np.asarray(c_in_sample)[row_session], cross_fit.c_rows())[0, 1]
        details["cross_fit"] = cross_fit.summary() | {"corr_in_sample_c": float(same)}
    if truth is not None:
        signals["true"] = true_signal(signals["raw"], row_session, truth.c_true)
        evaluation = evaluation_record(
            signals, truth, index, row_user, row_session, n_users, min_session_length, boot
        )
        evaluation["skip_rate_sd_across_users"] = _user_rate_sd(
            {"true": signals["true"][:, SKIP], "target": truth.target}, row_user, n_users
        )
        record["evaluation"] = headline_evaluation(evaluation, headline)
        details["evaluation"] = evaluation
    return DebiasRun(signals, record, details)
