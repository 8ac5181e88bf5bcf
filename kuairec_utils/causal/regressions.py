"""The causal regressions (docs/design.md section 7): selectivity on the previous session's
residual with user fixed effects (pyfixest), precision weights and standard errors clustered by
user; the split-half instrument; the bootstrap over users that repeats the selectivity step; and
06's table of regressions and its metrics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kuairec_utils.causal.selectivity import (
    SelectivityFit,
    session_thresholds,
    watch_depth_offsets,
)


def within_projection(
    frame: pd.DataFrame, target: str, columns: list[str] | tuple[str, ...], group: str
) -> tuple[np.ndarray, float]:
    """Least squares of ``target`` on ``columns`` within ``group`` (both sides demeaned by group,
    as a fixed-effects regression sees them), on the rows where all are finite: the fitted
    values (``columns @ b``, NaN on the other rows; a group's constant is left to the fixed
    effects) and the within R^2."""
    columns = list(columns)
    values = frame[[*columns, target]].astype(np.float64)
    ok = np.isfinite(values.to_numpy()).all(axis=1)
    used = values[ok]
    centred = (used - used.groupby(frame.loc[ok, group]).transform("mean")).to_numpy()
    x, y = centred[:, :-1], centred[:, -1]
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    r2 = 1.0 - float(((y - x @ beta) ** 2).sum() / (y**2).sum())
    fitted = np.full(len(frame), np.nan)
    fitted[ok] = used[columns].to_numpy() @ beta
    return fitted, r2


def lagged(
    frame: pd.DataFrame, column: str, by: str, order: str, lag: int, adjacent: str | None = None
) -> np.ndarray:
    """``column`` of the same ``by`` group's row ``lag`` places earlier in ``order`` (lag > 0) or
    later (lag < 0); NaN where there is none. With ``adjacent``, a running number of the
    group's rows in the whole log (01's ``session_id``), NaN also where that row is not the one
    numbered ``lag`` away: the log's rows between them were left out (01 drops the sessions
    outside the bursts), so the one just before is unknown."""
    ordered = frame.sort_values([by, order], kind="stable")
    groups = ordered.groupby(by, sort=False)
    shifted = groups[column].shift(lag)
    if adjacent is not None:
        shifted = shifted.where(ordered[adjacent] - groups[adjacent].shift(lag) == lag)
    return shifted.reindex(frame.index).to_numpy()


def effect_regression(
    frame: pd.DataFrame,
    outcome: str,
    treatment: str,
    controls: list[str],
    *,
    fixed_effects: str = "user_id",
    cluster: str = "user_id",
    weights: str | None = None,
    instrument: str | None = None,
) -> dict[str, float]:
    """``outcome`` on ``treatment`` with ``controls`` and fixed effects, by pyfixest; standard
    errors clustered by ``cluster``. With ``instrument``, two-stage least squares with the
    instrument for the treatment. Rows missing any variable are left out. Returns the
    treatment's coefficient, standard error, 95% interval and the number of rows."""
    import pyfixest as pf

    used = [outcome, treatment, *(re.sub(r"^C\((.*)\)$", r"\1", c) for c in controls)]
    used += [fixed_effects, cluster]
    used += [c for c in (weights, instrument) if c]
    data = frame[list(dict.fromkeys(used))].dropna()
    rhs = " + ".join(controls) if controls else "1"
    if instrument:
        formula = f"{outcome} ~ {rhs} | {fixed_effects} | {treatment} ~ {instrument}"
    else:
        formula = f"{outcome} ~ {treatment} + {rhs} | {fixed_effects}"
    fit = pf.feols(formula, data=data, weights=weights, vcov={"CRV1": cluster})
    effect, se = float(fit.coef()[treatment]), float(fit.se()[treatment])
    lo, hi = fit.confint().loc[treatment].to_numpy(dtype=float)
    return {"effect": effect, "se": se, "ci95": [float(lo), float(hi)], "n": int(fit._N)}


def fe_coefficient(
    frame: pd.DataFrame,
    outcome: str,
    treatment: str,
    controls: list[str],
    *,
    fixed_effects: str = "user_id",
    cluster: str | None = None,
    weights: str | None = None,
    instrument: str | None = None,
) -> float:
    """The treatment's coefficient of ``effect_regression`` (same arguments, no standard
    errors), in numpy: what the bootstrap needs, ten times faster than building a pyfixest model.

    By Frisch-Waugh-Lovell: every variable is demeaned within ``fixed_effects`` (weighted means
    with ``weights``), the outcome, the treatment and the instrument are residualised on the
    demeaned controls (``C(x)`` gives one dummy per level; least squares, so dummies the fixed
    effects absorb do no harm), and the coefficient is the weighted ratio of the residuals:
    ``sum w x y / sum w x x``, or ``sum w z y / sum w z x`` with an instrument (two-stage least
    squares with one instrument). ``cluster`` only changes standard errors: it is accepted, so
    that the two take the same keyword arguments, and unused."""
    del cluster
    names = [re.sub(r"^C\((.*)\)$", r"\1", c) for c in controls]
    used = [outcome, treatment, *names, fixed_effects]
    used += [c for c in (weights, instrument) if c]
    data = frame[list(dict.fromkeys(used))].dropna()
    w = data[weights].to_numpy(dtype=np.float64) if weights else np.ones(len(data))
    parts = []
    for control, name in zip(controls, names, strict=True):
        if control.startswith("C("):
            codes, levels = pd.factorize(data[name], sort=True)
            parts.append(np.eye(len(levels))[codes])
        else:
            parts.append(data[[name]].to_numpy(dtype=np.float64))
    targets = [outcome, treatment, *([instrument] if instrument else [])]
    matrix = np.column_stack([data[targets].to_numpy(dtype=np.float64), *parts])
    group = pd.factorize(data[fixed_effects])[0]
    total = np.bincount(group, weights=w)
    means = (
        np.column_stack([np.bincount(group, weights=w * col) for col in matrix.T]) / total[:, None]
    )
    matrix = matrix - means[group]
    root = np.sqrt(w)[:, None]
    y_part, c_part = matrix[:, : len(targets)], matrix[:, len(targets) :]
    if c_part.shape[1]:
        coef = np.linalg.lstsq(c_part * root, y_part * root, rcond=None)[0]
        y_part = y_part - c_part @ coef
    r_y, r_x = y_part[:, 0], y_part[:, 1]
    r_z = y_part[:, 2] if instrument else r_x
    return float(np.sum(w * r_z * r_y) / np.sum(w * r_z * r_x))


def fe_effect(
    frame: pd.DataFrame,
    outcome: str,
    treatment: str,
    controls: list[str],
    *,
    weights: str | None = None,
    instrument: str | None = None,
) -> dict[str, float]:
    """``effect_regression`` in numpy (user fixed effects, clustered by user) on the rows where
    every variable is known: ``WithinDesign.effect``."""
    names = [re.sub(r"^C\((.*)\)$", r"\1", c) for c in controls]
    used = [outcome, treatment, *names, "user_id", *[c for c in (weights, instrument) if c]]
    rows = frame[list(dict.fromkeys(used))].notna().all(axis=1).to_numpy()
    design = WithinDesign(frame, controls, weights, rows)
    z = frame[instrument].to_numpy(np.float64)[rows] if instrument else None
    return design.effect(
        frame[outcome].to_numpy(np.float64)[rows], frame[treatment].to_numpy(np.float64)[rows], z
    )


class WithinDesign:
    """Many fixed-effects regressions on one sample: the rows of ``frame`` in the mask
    ``rows``, their weights (the column ``weights``, or 1), their users and their ``controls``
    (``C(x)``: one dummy per level) demeaned within users once, with an orthonormal basis of
    the controls in the weighted metric.

    ``effect(y, x, z)`` is then the treatment's coefficient of ``effect_regression`` by
    Frisch-Waugh-Lovell (``fe_coefficient``'s ratio) and its CRV1 standard error clustered by
    user, with pyfixest's small-sample factors ``G / (G - 1) * (N - 1) / (N - k)`` (``k``: the
    treatment, the controls' independent columns and one constant; the fixed effects nested in
    the clusters): pyfixest's figures without building its model, for the decomposition's few
    hundred regressions."""

    def __init__(
        self, frame: pd.DataFrame, controls: list[str], weights: str | None, rows: np.ndarray
    ) -> None:
        data = frame.loc[np.asarray(rows, dtype=bool)]
        self.w = data[weights].to_numpy(np.float64) if weights else np.ones(len(data))
        self.root = np.sqrt(self.w)
        self.group = pd.factorize(data["user_id"])[0]
        self.total = np.bincount(self.group, weights=self.w)
        parts = []
        for control in controls:
            name = re.sub(r"^C\((.*)\)$", r"\1", control)
            if control.startswith("C("):
                codes, levels = pd.factorize(data[name], sort=True)
                parts.append(np.eye(len(levels))[codes])
            else:
                parts.append(data[[name]].to_numpy(dtype=np.float64))
        matrix = np.column_stack(parts) if parts else np.zeros((len(data), 0))
        matrix = np.column_stack([self.demean(col) for col in matrix.T]) if parts else matrix
        u, sv, _ = np.linalg.svd(matrix * self.root[:, None], full_matrices=False)
        keep = sv > sv.max(initial=0.0) * max(matrix.shape) * np.finfo(float).eps
        self.basis = u[:, keep]

    def demean(self, v: np.ndarray) -> np.ndarray:
        """``v`` minus its user's weighted mean."""
        return v - (np.bincount(self.group, weights=self.w * v) / self.total)[self.group]

    def residualise(self, v: np.ndarray) -> np.ndarray:
        """``v`` demeaned within users, less its weighted projection on the controls."""
        v = self.demean(np.asarray(v, dtype=np.float64))
        return v - (self.basis @ (self.basis.T @ (v * self.root))) / self.root

    def effect(self, y: np.ndarray, x: np.ndarray, z: np.ndarray | None = None) -> dict[str, float]:
        """The coefficient of ``x`` (instrumented by ``z`` when given) in ``y`` and its
        clustered standard error; ``n`` the rows."""
        r_y, r_x = self.residualise(y), self.residualise(x)
        r_z = self.residualise(z) if z is not None else r_x
        bread = np.sum(self.w * r_z * r_x)
        beta = float(np.sum(self.w * r_z * r_y) / bread)
        score = self.w * r_z * (r_y - beta * r_x)
        meat = np.sum(np.bincount(self.group, weights=score) ** 2)
        n, g = len(self.w), len(self.total)
        factor = g / (g - 1) * (n - 1) / (n - 2 - self.basis.shape[1])
        return {"effect": beta, "se": float(np.sqrt(factor * meat) / abs(bread)), "n": n}


def bootstrap_effects(
    sessions: pd.DataFrame,
    rows: pd.DataFrame,
    row_session: np.ndarray,
    fit: SelectivityFit,
    prior_sd: float,
    regressions: Mapping[str, Mapping[str, Any]],
    n_boot: int,
    seed: int,
    progress: bool = False,
    watch_depth: bool = False,
) -> dict[str, np.ndarray]:
    """A bootstrap over users that repeats the selectivity step, as the treatment and the
    outcome are both estimated.

    Each replicate draws users with replacement, with all their sessions (a user drawn twice
    counts as two users, for the fixed effects and the clusters), estimates every ``c_s`` again
    from the sessions' rows (``session_thresholds``; Newton starts from the full sample's
    ``fit``, the same optimum in a few steps) and runs each regression of ``regressions``
    (name -> ``effect_regression``'s keyword arguments besides the frame and the outcome ``c``,
    whose coefficient ``fe_coefficient`` computes;
    ``weights="precision"`` weights by the replicate's own precisions). ``row_session`` gives
    each row of ``rows`` its row of ``sessions``. With ``watch_depth``, each replicate also
    measures the feeds' quality offsets again (``watch_depth_offsets``, with its own slopes) and
    adds them to its ``c_s``, as 06 does. Returns each regression's effects, (n_boot,).

    The replicates run in turn: forked worker processes hung in pyfixest when the replicates
    used it (a thread pool of the parent does not survive the fork), and spawned ones would copy
    the rows to every worker.
    """
    rng = np.random.default_rng(seed)
    read = ["x", "position", "negative"]  # what session_thresholds reads: less to copy
    rows = rows[read + ["watch_ratio", "video_duration_ms"] if watch_depth else read]
    user_sessions = sessions.groupby("user_id").indices  # user -> rows of ``sessions``
    user_list = np.array(sorted(user_sessions))
    row_groups = pd.Series(np.arange(len(rows))).groupby(np.asarray(row_session)).indices
    draws: dict[str, list[float]] = {name: [] for name in regressions}
    for _ in tqdm(range(n_boot), desc="bootstrap over users", disable=not progress):
        picked = rng.choice(user_list, len(user_list), replace=True)
        session_idx = np.concatenate([user_sessions[u] for u in picked])
        boot = sessions.iloc[session_idx].reset_index(drop=True)
        n_per_user = [len(user_sessions[u]) for u in picked]
        boot["user_id"] = np.repeat(np.arange(len(picked)), n_per_user)  # drawn twice: two users
        row_parts = [row_groups[s] for s in session_idx]
        boot_rows = rows.iloc[np.concatenate(row_parts)]
        boot_index = np.repeat(np.arange(len(session_idx)), [len(r) for r in row_parts])
        start = (fit.c[session_idx], fit.slopes)
        boot_fit = session_thresholds(boot_rows, boot_index, prior_sd, start=start)
        boot["c"], boot["precision"] = boot_fit.c, 1.0 / boot_fit.se**2
        if watch_depth:
            depth = watch_depth_offsets(boot_rows, boot_index, len(boot), boot_fit.slopes[0])
            boot["c"] = boot_fit.c + depth.offset
            boot["precision"] = 1.0 / (boot_fit.se**2 + depth.se**2)
        for name, kwargs in regressions.items():
            draws[name].append(fe_coefficient(boot, "c", **kwargs))
    return {name: np.array(values) for name, values in draws.items()}


# --------------------------------------------------------------------------------------------
# 06's regressions and its metrics

CONTROLS = ["C(hour)", "weekend", "C(burst)", "log_length"]
HELD_PREV = [*CONTROLS, "others_mean_prev", "others_sd_prev"]  # the previous residual's session
HELD_NEXT = [*CONTROLS, "others_mean_next", "others_sd_next"]  # the next residual's session
VARIANT_NAMES = {"skips": "c_s from the skips alone", "watch": "c_s with the watch-depth offset"}
MAIN, IV, PLACEBO = "r(s-1): main", "r_a(s-1) instrumented by r_b(s-1)", "r(s+1): placebo"


def session_lag(sessions: pd.DataFrame, column: str, lag: int) -> np.ndarray:
    """``column`` of the user's session ``lag`` sessions before (after, lag < 0) in 01's log,
    NaN where that session is not in ``sessions`` (``lagged``, adjacent by ``session_id``)."""
    return lagged(sessions, column, "user_id", "start", lag, adjacent="session_id")


def session_controls(sessions: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``sessions`` with the regressions' ``CONTROLS``: hour and weekend in Beijing
    time, the burst and the log feed length, from ``start``, ``burst`` and ``k``."""
    out = sessions.copy()
    start = pd.to_datetime(out["start"], unit="s") + pd.Timedelta(hours=8)  # Beijing time
    out["hour"] = start.dt.hour.astype(str)
    out["weekend"] = (start.dt.day_of_week >= 5).astype(int)
    out["burst"] = out["burst"].astype(str)
    out["log_length"] = np.log(out["k"])
    return out


def session_covariates(sessions: pd.DataFrame) -> pd.DataFrame:
    """06's session table with the regressions' controls (hour and weekend in Beijing time,
    burst, log feed length) and the residuals' lags within each user: the previous session's
    residuals (both halves), embedding distance and candidates' score statistics, and the next
    session's residual and score statistics; a lag is empty where the user's session just
    before (after) is not in the table (``lagged`` with ``adjacent="session_id"``)."""
    out = session_controls(sessions)
    for column in ("residual", "residual_a", "residual_b", "embedding_distance"):
        out[f"{column}_prev"] = session_lag(out, column, 1)
    out["residual_next"] = session_lag(out, "residual", -1)
    for column in ("others_mean", "others_sd"):
        out[f"{column}_prev"] = session_lag(out, column, 1)
        out[f"{column}_next"] = session_lag(out, column, -1)
    return out


def regression_table(sessions: pd.DataFrame, variant: str | None) -> dict[str, dict[str, float]]:
    """Every regression of ``c`` (precision-weighted, user fixed effects, ``CONTROLS``) that 06
    reports: the main one on r(s-1), the contemporaneous and the placebo, the embedding
    distance, the split-half instrument, the variants that hold the feed's mean index or the
    candidates' scores, and (with ``variant``) the other selectivity's naive and instrumented."""

    def fit(
        treatment: str,
        controls: list[str],
        instrument: str | None = None,
        frame: pd.DataFrame = sessions,
    ) -> dict[str, float]:
        return effect_regression(
            frame, "c", treatment, controls, weights="precision", instrument=instrument
        )

    index_held = [*CONTROLS, "index_mean"]
    results = {
        MAIN: fit("residual_prev", CONTROLS),
        "r(s): contemporaneous": fit("residual", CONTROLS),
        PLACEBO: fit("residual_next", CONTROLS),
        "embedding distance (s-1)": fit("embedding_distance_prev", CONTROLS),
        "r_a(s-1), naive": fit("residual_a_prev", CONTROLS),
        IV: fit("residual_a_prev", CONTROLS, "residual_b_prev"),
        "r(s-1), the feed's mean index held": fit("residual_prev", index_held),
        "r_a(s-1) instrumented, the feed's mean index held": fit(
            "residual_a_prev", index_held, "residual_b_prev"
        ),
        "r(s-1), the candidates' scores held": fit("residual_prev", HELD_PREV),
        "r_a(s-1) instrumented, the candidates' scores held": fit(
            "residual_a_prev", HELD_PREV, "residual_b_prev"
        ),
        "r(s+1): placebo, the candidates' scores held": fit("residual_next", HELD_NEXT),
    }
    if variant is not None:  # the other selectivity beside the main one
        other = sessions.assign(
            c=sessions[f"c_{variant}"], precision=sessions[f"precision_{variant}"]
        )
        name = VARIANT_NAMES[variant]
        results[f"r(s-1), {name}"] = fit("residual_prev", CONTROLS, frame=other)
        results[f"r_a(s-1) instrumented, {name}"] = fit(
            "residual_a_prev", CONTROLS, "residual_b_prev", frame=other
        )
    return results


def _pair(fit: Mapping[str, float]) -> dict[str, float]:
    return {"effect": fit["effect"], "se": fit["se"]}


def causal_records(
    results: Mapping[str, Mapping[str, float]],
    boot_se: Mapping[str, float],
    boot_ci: Mapping[str, list[float]],
    variant: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """06's metrics from ``regression_table`` and the bootstrap: the headline (the main and
    instrumented effects with their bootstrap se and interval, the placebo) and the details
    (clustered standard errors, the contemporaneous and embedding-distance rows, the variants)."""
    main, iv, placebo = results[MAIN], results[IV], results[PLACEBO]
    headline = {
        "effect": main["effect"],
        "se": boot_se["main"],
        "ci95": boot_ci["main"],
        "n_sessions": main["n"],
        "placebo": _pair(placebo),
        "effect_iv": {"effect": iv["effect"], "se": boot_se["iv"], "ci95": boot_ci["iv"]},
    }

    def held(kind: str) -> dict[str, float]:
        naive = results[f"r(s-1), the {kind} held"]
        instrumented = results[f"r_a(s-1) instrumented, the {kind} held"]
        return _pair(naive) | {"effect_iv": instrumented["effect"], "se_iv": instrumented["se"]}

    placebo_held = results["r(s+1): placebo, the candidates' scores held"]
    details = {
        "se_clustered": main["se"],
        "se_clustered_iv": iv["se"],
        "contemporaneous": _pair(results["r(s): contemporaneous"]),
        "embedding_distance": _pair(results["embedding distance (s-1)"]),
        "feed_index_held": held("feed's mean index"),
        "candidates_held": held("candidates' scores")
        | {"placebo": placebo_held["effect"], "placebo_se": placebo_held["se"]},
    }
    if variant is not None:
        name = VARIANT_NAMES[variant]
        naive, instrumented = results[f"r(s-1), {name}"], results[f"r_a(s-1) instrumented, {name}"]
        details["selectivity_variant"] = {"c_s": name, **_pair(naive)} | {
            "effect_iv": instrumented["effect"],
            "se_iv": instrumented["se"],
        }
    return headline, details
