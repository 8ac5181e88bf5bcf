"""06 on one value model's run, and its effects pooled over the value-model seeds
(docs/design.md sections 7 and 10).

``causal_run`` is the whole causal step for one seed's value model: the residuals of its feeds
under the chosen estimator's w (two independent measurements, the feed's statistics), the
selectivity of every session (the threshold model plus the watch-depth offset), the regressions
and the bootstrap over users that repeats the selectivity step; beside it, the study's
estimator's w gives its own residuals (the selectivity does not depend on w) and its naive,
instrumented and placebo regressions, with clustered standard errors. ``pool_effects`` pools the
headline effects over the seeds and judges the claims.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kuairec_utils.causal.regressions import (
    CONTROLS,
    bootstrap_effects,
    causal_records,
    effect_regression,
    regression_table,
    session_covariates,
)
from kuairec_utils.causal.residuals import (
    feed_residuals,
    feed_statistics,
    shown_rows,
    split_candidates,
)
from kuairec_utils.causal.selectivity import (
    SelectivityFit,
    WatchDepthFit,
    session_thresholds,
    watch_depth_offsets,
)
from kuairec_utils.uncertainty import pool, verdict

BOOTSTRAPPED = {  # the regressions the bootstrap repeats, by name
    "main": {"treatment": "residual_prev", "controls": CONTROLS, "weights": "precision"},
    "iv": {
        "treatment": "residual_a_prev",
        "controls": CONTROLS,
        "instrument": "residual_b_prev",
        "weights": "precision",
    },
}


@dataclass
class CausalRun:
    """One seed's 06: the session table (residuals, selectivity, covariates), the shown rows,
    the fits, every regression, the bootstrap draws, and the study's estimator's effects."""

    sessions: pd.DataFrame
    rows: pd.DataFrame
    row_session: np.ndarray
    stats: pd.DataFrame
    fit: SelectivityFit
    depth: WatchDepthFit | None
    other: str | None
    results: dict[str, dict[str, float]]
    draws: dict[str, np.ndarray]
    study: dict[str, dict[str, float]] | None

    def records(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """This run's metrics as 06 reports one run: the headline effects (bootstrap se and
        percentile interval) and the details (``causal_records``)."""
        ci = {n: np.quantile(v, [0.025, 0.975]).tolist() for n, v in self.draws.items()}
        se = {n: float(np.std(v, ddof=1)) for n, v in self.draws.items()}
        record, details = causal_records(self.results, se, ci, self.other)
        details["slope_b"] = float(self.fit.slopes[0])
        if self.depth is not None:
            details["watch_depth"] = self.depth.summary()
        if self.study is not None:
            record["study_estimator"] = self.study
        return record, details


def _residuals(
    probs: np.ndarray,
    valid: np.ndarray,
    k: np.ndarray,
    w: np.ndarray,
    halves: tuple[np.ndarray, np.ndarray],
    item_emb: np.ndarray | None = None,
    items: np.ndarray | None = None,
) -> pd.DataFrame:
    out = feed_residuals(probs, valid, k, w, item_emb, items)
    for name, mask in zip(("a", "b"), halves, strict=True):
        out[f"residual_{name}"] = feed_residuals(probs, mask, k, w)["residual"].to_numpy()
    return out


def selectivity(
    sessions: pd.DataFrame,
    rows: pd.DataFrame,
    row_session: np.ndarray,
    prior_sd: float,
    quality_offset: str,
) -> tuple[SelectivityFit, WatchDepthFit | None, str | None]:
    """Every session's ``c_s`` (06's "Selectivity" cells): the threshold model of the skips,
    then (``quality_offset == "watch"``) the feed's quality offset from the watch depth; adds
    ``c``, ``precision``, ``c_se`` and the two variants' columns to ``sessions``. Returns the
    fits and the other variant's name (None when the watch depth could not be measured)."""
    fit = session_thresholds(rows, row_session, prior_sd)
    sessions["c_skips"], sessions["precision_skips"] = fit.c, 1.0 / fit.se**2
    try:
        depth = watch_depth_offsets(rows, row_session, len(sessions), fit.slopes[0])
    except ValueError:
        if quality_offset == "watch":
            raise
        depth = None  # the side variant needs it; the main estimate does not
    if depth is not None:
        sessions["quality_offset"], sessions["n_watched"] = depth.offset, depth.n_watched
        sessions["c_watch"] = fit.c + depth.offset
        sessions["precision_watch"] = 1.0 / (fit.se**2 + depth.se**2)
    chosen = "watch" if quality_offset == "watch" else "skips"
    other = {"watch": "skips", "skips": "watch"}[chosen] if depth is not None else None
    sessions["c"], sessions["precision"] = sessions[f"c_{chosen}"], sessions[f"precision_{chosen}"]
    sessions["c_se"] = 1.0 / np.sqrt(sessions["precision"])
    return fit, depth, other


def study_effects(sessions: pd.DataFrame, residuals: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The naive, instrumented and placebo regressions of ``c`` on another estimator's
    residuals (``residual``, ``residual_a``, ``residual_b``), clustered standard errors."""
    measured = ["residual", "residual_a", "residual_b"]
    frame = sessions.drop(columns=[c for c in sessions if c.startswith("residual")])
    frame = session_covariates(pd.concat([frame, residuals[measured]], axis=1))
    fits = {
        "effect": effect_regression(frame, "c", "residual_prev", CONTROLS, weights="precision"),
        "effect_iv": effect_regression(
            frame,
            "c",
            "residual_a_prev",
            CONTROLS,
            weights="precision",
            instrument="residual_b_prev",
        ),
        "placebo": effect_regression(frame, "c", "residual_next", CONTROLS, weights="precision"),
    }
    return {name: {"effect": f["effect"], "se": f["se"]} for name, f in fits.items()}


def causal_run(
    interactions: pd.DataFrame,
    base: pd.DataFrame,
    cache: Mapping[str, np.ndarray],
    item_emb: np.ndarray,
    w_star: np.ndarray,
    settings: Mapping[str, Any],
    w_study: np.ndarray | None = None,
    progress: bool = False,
) -> CausalRun:
    """06 on one value model: ``base`` is ``session_feeds(interactions)`` (the feed column
    dropped), ``cache`` the model's candidates (``items``, ``valid``, ``probs``), ``settings``
    the causal section's values (``seed``, ``prior_sd``, ``center_index``, ``quality_offset``,
    ``n_boot``). With ``w_study``, the study's estimator's effects beside (``study_effects``)."""
    items, valid, probs = cache["items"], cache["valid"], cache["probs"]
    k = base["k"].to_numpy()
    halves = split_candidates(valid, k, settings["seed"])
    residuals = _residuals(probs, valid, k, w_star, halves, item_emb, items)
    stats = feed_statistics(probs, valid, k, w_star)  # the feed's score statistics
    residuals[["others_mean", "others_sd"]] = stats[["others_mean", "others_sd"]].to_numpy()
    sessions = pd.concat([base.reset_index(drop=True), residuals], axis=1)
    rows, row_session = shown_rows(interactions, sessions["session_id"].to_numpy(), probs)
    x = rows["x"].to_numpy()
    sessions["index_mean"] = pd.Series(x).groupby(row_session).mean().to_numpy()  # a control
    if settings["center_index"] == "yes":  # c_s then also absorbs the feed's mean engagement
        rows["x"] = x - pd.Series(x).groupby(row_session).transform("mean").to_numpy()
    fit, depth, other = selectivity(
        sessions, rows, row_session, settings["prior_sd"], settings["quality_offset"]
    )
    sessions = session_covariates(sessions)
    draws = bootstrap_effects(
        sessions,
        rows,
        row_session,
        fit,
        settings["prior_sd"],
        BOOTSTRAPPED,
        settings["n_boot"],
        settings["seed"],
        progress=progress,
        watch_depth=settings["quality_offset"] == "watch",
    )
    study = None
    if w_study is not None:
        study = study_effects(sessions, _residuals(probs, valid, k, w_study, halves))
    results = regression_table(sessions, other)
    return CausalRun(sessions, rows, row_session, stats, fit, depth, other, results, draws, study)


def _pooled(estimates: Sequence[Mapping[str, float]]) -> Any:
    return pool([e["effect"] for e in estimates], [e["se"] for e in estimates])


def pool_effects(
    records: Mapping[int, Mapping[str, Any]],
    effect_true: float | None,
    tolerance: float,
) -> dict[str, Any]:
    """The headline effects over the seeds' ``records`` (``CausalRun.records``' headline):
    the naive and instrumented effects of r(s-1) and the placebo, each pooled by Rubin's rules
    (the bootstrap se within run; the placebo's clustered se), the same for the study's
    estimator's residual when the runs have it, and the verdicts: a worse feed raises the next
    session's selectivity (the effect is below 0), the placebo is null (0 within
    ``tolerance``), and on simulated data whether each effect recovers ``effect_true``."""
    runs = list(records.values())
    pooled = {
        "effect": _pooled([{"effect": r["effect"], "se": r["se"]} for r in runs]),
        "effect_iv": _pooled([r["effect_iv"] for r in runs]),
        "placebo": _pooled([r["placebo"] for r in runs]),
    }
    out: dict[str, Any] = {name: p.record() for name, p in pooled.items()}
    verdicts = {
        "effect_is_negative": verdict(pooled["effect"].ci95, "below"),
        "effect_iv_is_negative": verdict(pooled["effect_iv"].ci95, "below"),
        "placebo_is_null": verdict(pooled["placebo"].ci95, "equal", 0.0, tolerance),
    }
    if effect_true is not None:
        for name in ("effect", "effect_iv"):
            verdicts[f"{name}_recovers_truth"] = verdict(
                pooled[name].ci95, "equal", effect_true, tolerance
            )
    out["verdicts"] = verdicts
    if all("study_estimator" in r for r in runs):
        study = {n: _pooled([r["study_estimator"][n] for r in runs]) for n in pooled}
        out["study_estimator"] = {n: p.record() for n, p in study.items()}
        out["study_estimator"]["verdicts"] = {
            "effect_is_negative": verdict(study["effect"].ci95, "below"),
            "placebo_is_null": verdict(study["placebo"].ci95, "equal", 0.0, tolerance),
        }
    return out
