"""06's evaluation against the simulator's truth (docs/design.md section 7): how well each step
of the causal analysis measures what it stands for, and which step fails. Evaluation only: the
estimates never read any of this.

- ``with_the_truth``: the regression of 06 with the simulator's true residual (and, in turn,
  the estimated, true or otherwise built selectivity) in place of the measured one;
- ``diagnosis``: how much of the true residual the measured one carries within a user, and
  how the measured residual moves the true selectivity and the estimate's error;
- ``observable_part``: how much of the true residual a session's log shows (its projection on
  the feed's statistics, fitted on the truth), and the regression on that projection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kuairec_utils.causal.regressions import (
    VARIANT_NAMES,
    effect_regression,
    session_lag,
    within_projection,
)
from kuairec_utils.causal.residuals import FEED_STATISTICS
from kuairec_utils.config import GROUND_TRUTH_SUBDIR

SESSION_COLUMNS = [
    "session_id",
    "user_id",
    "start",
    "c",
    "precision",
    "hour",
    "weekend",
    "burst",
    "log_length",
]


def _effect(fit: Mapping[str, Any]) -> dict[str, float]:
    return {"effect": fit["effect"], "se": fit["se"]}


def _with_placebo(fits: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    prev, nxt = fits["prev"], fits["next"]
    return _effect(prev) | {"placebo": nxt["effect"], "placebo_se": nxt["se"]}


def session_truth(
    raw_dir: str | Path, rows: pd.DataFrame, row_session: np.ndarray
) -> dict[str, np.ndarray]:
    """Each session's true selectivity and residual (from its first row of the truth table),
    and each of its rows' true utility."""
    truth = pd.read_parquet(
        Path(raw_dir) / GROUND_TRUTH_SUBDIR / "big_matrix_truth.parquet",
        columns=["selectivity", "residual", "utility"],
    )
    first = rows.groupby(row_session)["raw_row"].first().to_numpy()
    return {
        "c": truth["selectivity"].to_numpy()[first],
        "residual": truth["residual"].to_numpy()[first],
        "utility": truth["utility"].to_numpy()[rows["raw_row"].to_numpy()],
    }


def true_quality_offset(
    truth: Mapping[str, np.ndarray], rows: pd.DataFrame, row_session: np.ndarray, slopes: np.ndarray
) -> np.ndarray:
    """The quality offset the skips cannot see, from the simulator's utilities: each session's
    mean of ``m_i - b x_i - g log(1 + position_i)`` (``P(skip) = sigmoid(c_s - m_i)`` on the
    platform), with ``b`` and ``g`` the threshold model's slopes."""
    linear = rows["x"].to_numpy() * slopes[0] + np.log1p(rows["position"].to_numpy()) * slopes[1]
    return pd.Series(truth["utility"] - linear).groupby(row_session).mean().to_numpy()


def with_the_truth(
    check: pd.DataFrame,
    controls: Sequence[str],
    held_prev: Sequence[str],
    held_next: Sequence[str],
    variant: str | None,
) -> dict[str, dict[str, float]]:
    """The regression on the true residual (and its placebo on the next one), with each
    selectivity in turn: estimated, true, the other construction, the skips' with the true
    quality offset; then with the feed's mean index held, and with the candidates' scores held."""
    steps = {
        "true residual, estimated c_s": ("c", "precision"),
        "true residual, true c_s": ("true_c", None),
    }
    if variant is not None:
        steps[f"true residual, {VARIANT_NAMES[variant]}"] = ("c_other", "precision_other")
    steps["true residual, c_s from the skips with the true quality offset"] = (
        "c_true_offset",
        "precision_skips",
    )
    out = {}
    for name, (outcome, weight) in steps.items():
        fits = {
            lag: effect_regression(check, outcome, f"true_residual_{lag}", controls, weights=weight)
            for lag in ("prev", "next")
        }
        out[name] = _with_placebo(fits)
    held = effect_regression(
        check, "c", "true_residual_prev", [*controls, "index_mean"], weights="precision"
    )
    out["true residual, estimated c_s, feed's index held"] = _effect(held)
    held_fits = {
        lag: effect_regression(check, "c", f"true_residual_{lag}", held_lags, weights="precision")
        for lag, held_lags in (("prev", held_prev), ("next", held_next))
    }
    out["true residual, estimated c_s, the candidates' scores held"] = _with_placebo(held_fits)
    return out


def diagnosis(
    check: pd.DataFrame,
    controls: Sequence[str],
    held_prev: Sequence[str],
    held_next: Sequence[str],
) -> dict[str, Any]:
    """Where the estimate goes wrong: the within-user correlation of the measured and true
    residuals (the variation the fixed-effects regression uses), what the measured r(s-1) gives
    with the true c_s, how the estimated c_s's error moves with it, and the placebo's path."""
    within = {
        name: check[name] - check.groupby("user_id")[name].transform("mean")
        for name in ("residual", "true_residual")
    }
    fits = {
        "true c_s on measured r(s-1)": ("true_c", "residual_prev", controls, None),
        "error of estimated c_s on measured r(s-1)": (
            "c_error",
            "residual_prev",
            controls,
            "precision",
        ),
        "true c_s on measured r(s+1)": ("true_c", "residual_next", controls, None),
        "true c_s on measured r(s+1), the candidates' scores held": (
            "true_c",
            "residual_next",
            held_next,
            None,
        ),
        "true c_s on measured r(s-1), the candidates' scores held": (
            "true_c",
            "residual_prev",
            held_prev,
            None,
        ),
    }
    corr = float(np.corrcoef(within["residual"], within["true_residual"])[0, 1])
    return {"corr_residual_true_within_user": corr} | {
        name: _effect(effect_regression(check, y, x, c, weights=w))
        for name, (y, x, c, w) in fits.items()
    }


def observable_part(
    check: pd.DataFrame, stats: pd.DataFrame, controls: Sequence[str]
) -> dict[str, Any]:
    """How much of the true residual a session's log shows: the within-user least-squares
    projection of the true residual on the feed's statistics (fitted on the truth), its share of
    the within-user variance (and the feed length's alone), and the regression of the true and
    the estimated c_s on the projection's lag."""
    stats = stats.assign(
        user_id=check["user_id"].to_numpy(), true_residual=check["true_residual"].to_numpy()
    )
    projected, r2 = within_projection(stats, "true_residual", FEED_STATISTICS, "user_id")
    _, r2_length = within_projection(stats, "true_residual", ("length", "log_length"), "user_id")
    check = check.assign(projected=projected)
    check["projected_prev"] = session_lag(check, "projected", 1)
    true_fit = effect_regression(check, "true_c", "projected_prev", controls)
    estimated = effect_regression(check, "c", "projected_prev", controls, weights="precision")
    return {
        "within_r2": r2,
        "within_r2_length_only": r2_length,
        "true c_s on projected r(s-1)": _effect(true_fit),
        "estimated c_s on projected r(s-1)": _effect(estimated),
    }


def evaluate_against_truth(
    raw_dir: str | Path,
    sessions: pd.DataFrame,
    rows: pd.DataFrame,
    row_session: np.ndarray,
    slopes: np.ndarray,
    stats: pd.DataFrame,
    variant: str | None,
    controls: Sequence[str],
) -> dict[str, Any]:
    """06's evaluation: the correlations of the estimated selectivities and residual with the
    true ones, then ``with_the_truth``, ``diagnosis`` and ``observable_part``. ``sessions``: 06's
    session table (c, precision, c_skips, precision_skips, c_{variant}, the residuals and their
    lags, the candidates' score statistics and their lags, the feed's mean index); ``rows``: its
    videos (with the engagement index ``x``) and ``row_session`` their session's row."""
    truth = session_truth(raw_dir, rows, row_session)
    held_prev = [*controls, "others_mean_prev", "others_sd_prev"]
    held_next = [*controls, "others_mean_next", "others_sd_next"]
    out: dict[str, Any] = {"corr_c_true": float(np.corrcoef(sessions["c"], truth["c"])[0, 1])}
    for column in ("c_skips", "c_watch"):
        if column in sessions:
            out[f"corr_{column}_true"] = float(np.corrcoef(sessions[column], truth["c"])[0, 1])
    out["corr_residual_true"] = float(np.corrcoef(sessions["residual"], truth["residual"])[0, 1])
    check = sessions[[*SESSION_COLUMNS, "index_mean", "c_skips", "precision_skips"]].copy()
    if variant is not None:
        check["c_other"] = sessions[f"c_{variant}"].to_numpy()
        check["precision_other"] = sessions[f"precision_{variant}"].to_numpy()
    check["true_residual"], check["true_c"] = truth["residual"], truth["c"]
    check["true_residual_prev"] = session_lag(check, "true_residual", 1)
    check["true_residual_next"] = session_lag(check, "true_residual", -1)
    offset_true = true_quality_offset(truth, rows, row_session, slopes)
    check["c_true_offset"] = check["c_skips"] + offset_true - offset_true.mean()
    if "quality_offset" in sessions:
        watched = sessions["n_watched"].to_numpy() > 0
        out["corr_quality_offset_true"] = float(
            np.corrcoef(sessions["quality_offset"].to_numpy()[watched], offset_true[watched])[0, 1]
        )
    for column in ("others_mean", "others_sd"):
        for lag in ("prev", "next"):
            check[f"{column}_{lag}"] = sessions[f"{column}_{lag}"].to_numpy()
    out["with_the_truth"] = with_the_truth(check, controls, held_prev, held_next, variant)
    for column in ("residual", "residual_prev", "residual_next"):
        check[column] = sessions[column].to_numpy()
    check["c_error"] = sessions["c"].to_numpy() - truth["c"]
    out["diagnosis"] = diagnosis(check, controls, held_prev, held_next)
    out["observable_part"] = observable_part(check, stats, controls)
    return out
