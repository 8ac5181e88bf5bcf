"""How well can a session's log measure the residual of the ranking noise? (simulated data only)

06_causal regresses a session's selectivity c_s on the previous session's residual, the feed's
mean score minus that of the deterministic top K. The simulator's true residual compares the
feed with the platform's own candidate pool, which the logs never show; 06 measures it against
a fresh sample of candidates. This script puts side by side, for several measurements of the
residual: their within-user correlation with the true residual (the variation the
fixed-effects regression uses), the regression of the *true* c_s on the measurement of r(s-1)
(what a perfect selectivity step would give; the truth is -5 on the default data), the same on
r(s+1) (a placebo, which should be 0) and the regression of 06's *estimated* c_s on r(s-1):

- the measured residual of 06;
- its projection on the feed's statistics (``causal.feed_statistics``: the feed's length and the
  spread of its and the other candidates' scores), least squares within user *fitted on the
  true residual*: how much of the shock a log carries, which no estimator can fit this way;
- a simulation-calibrated residual, which an estimator could build: the platform's feed is
  simulated from each session's other candidates (the feed's length, the GNN's scores under
  06's w taken as the platform's, normal ranking noise of sd ``--sigma``, by default the
  simulator's own, which an analyst would not know), and the simulated residual's least-squares
  fit on the simulated feed's statistics is applied to the observed feed's;
- split-half simulations, closer to how the logs were made: the observed feed's videos and a
  random half of the others play the pool (the platform's pool holds the feed; 06's others are
  a sample beside it), the feed is simulated from that pool with the selection model's w and
  its estimated noise sd (05's, both read from weights.json: nothing here is the simulator's),
  and the statistics of the simulated and of the observed feed are both taken against the other
  half of the others. The fit uses the feed's statistics as they are, or standardised by the
  others' mean and sd (times that sd, the residual's scale; ``split_design``), or those with
  their squares: the three are what an analyst could choose between, and the simulation's own
  R^2 (printed) would pick the last;
- the true residual.

Evaluation only: it reads the ground truth, and nothing of the pipeline reads what it prints.
Run after ``make repro`` (about 20 seconds on 2 cores; ``make diagnostics`` runs it as the
supplementary stage ``residual_measurement``). ``--model`` is the value model 05 and 06 ran on,
by default the first of ``value_model.downstream``; ``--out FILE`` also writes the R^2s, the
table and the settings as a metrics file::

    .venv/bin/python diagnostics/residual_measurement.py [--sigma 0.08] [--model M] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kuairec_utils.causal.regressions import effect_regression, session_lag, within_projection
from kuairec_utils.causal.residuals import (
    FEED_STATISTICS,
    feed_scores,
    feed_statistics,
    score_statistics,
)
from kuairec_utils.config import GROUND_TRUTH_SUBDIR, load_params, resolve
from kuairec_utils.evaluation.truth import has_ground_truth
from kuairec_utils.head_weights.feeds import session_feeds
from kuairec_utils.head_weights.moments import top_k_mask
from kuairec_utils.heads import HEADS
from kuairec_utils.metrics import write_metrics
from kuairec_utils.records import run_settings

CONTROLS = ["C(hour)", "weekend", "C(burst)", "log_length"]  # those of 06_causal


def least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The least-squares coefficients of ``y`` on the columns of ``x`` and the fit's R^2."""
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    return beta, 1.0 - float(np.var(y - x @ beta) / np.var(y))


def simulated_calibration(
    probs: np.ndarray,
    valid: np.ndarray,
    k: np.ndarray,
    w: np.ndarray,
    observed: pd.DataFrame,
    sigma: float,
    draws: int = 4,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """The residual predicted from the observed feed's statistics (``observed``, from
    ``causal.feed_statistics``) by a least-squares fit on simulated feeds: each session's other
    candidates play the platform's pool, the GNN's ``Score_w`` the platform's score, and the
    feed is the top K of score + N(0, sigma^2). Returns the prediction for every session (NaN
    where it has fewer than two others) and the fit's R^2 on the simulated sessions."""
    score, shown, k = feed_scores(probs, valid, k, w)
    others = valid & ~shown
    pool = np.where(others, score, -np.inf)
    size = np.minimum(k, others.sum(axis=1) - 1)  # a feed leaves one out at least
    ok = size >= 1
    pool, score, others, size = pool[ok], score[ok], others[ok], size[ok]
    rng = np.random.default_rng(seed)
    deterministic = top_k_mask(pool, size)
    parts = []
    for _ in range(draws):
        feed = top_k_mask(pool + sigma * rng.normal(size=pool.shape), size) & others
        residual = ((score * feed).sum(axis=1) - (score * deterministic).sum(axis=1)) / size
        # the others' statistics are the whole pool's, as for the observed feed
        parts.append(score_statistics(score, feed, others, size).assign(residual=residual))
    sim = pd.concat(parts, ignore_index=True).dropna()
    x = np.column_stack([np.ones(len(sim)), sim[list(FEED_STATISTICS)].to_numpy()])
    beta, r2 = least_squares(x, sim["residual"].to_numpy())
    prediction = np.full(len(k), np.nan)
    prediction[ok] = np.column_stack([np.ones(ok.sum()), observed[ok].to_numpy()]) @ beta
    return prediction, r2


SPLIT_DESIGNS = ("statistics", "standardised", "standardised with squares")


def split_design(stats: pd.DataFrame, design: str) -> np.ndarray:
    """The regressors of a split-half calibration, with an intercept: the feed's statistics as
    they are (``statistics``), or the feed's mean, minimum and maximum and the others' 90%
    quantile less the others' mean, and the feed's sd, all over the others' sd (z), with the
    log length and the others' sd, each z times the sd and times the sd and the log length
    (``standardised``: the residual is in score units, so its scale follows the sd), plus
    each product of two z's times the sd (``standardised with squares``)."""
    if design == "statistics":
        return np.column_stack([np.ones(len(stats)), stats[list(FEED_STATISTICS)].to_numpy()])
    sd, mean = stats["others_sd"].to_numpy(), stats["others_mean"].to_numpy()
    z = [(stats[c].to_numpy() - mean) / sd for c in ("feed_mean", "feed_min", "feed_max")]
    z += [(stats["others_q90"].to_numpy() - mean) / sd, stats["feed_sd"].to_numpy() / sd]
    log_k = stats["log_length"].to_numpy()
    columns = [np.ones(len(stats)), *z, log_k, sd, log_k * sd]
    columns += [v * sd for v in z] + [v * log_k * sd for v in z]
    if design == "standardised with squares":
        columns += [a * b * sd for i, a in enumerate(z) for b in z[i:]]
    return np.column_stack(columns)


def split_calibration(
    probs: np.ndarray,
    valid: np.ndarray,
    k: np.ndarray,
    w: np.ndarray,
    sigma: float,
    draws: int = 4,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The split-half simulations of the module docstring: for each of ``SPLIT_DESIGNS``, the
    residual predicted for every session (NaN where a half has fewer than two others or no
    spread) and the fit's R^2 on the simulated sessions."""
    score, shown, k = feed_scores(probs, valid, k, w)
    rng = np.random.default_rng(seed)
    half = rng.random(valid.shape) < 0.5
    others = valid & ~shown
    pool, rest = shown | (others & half), others & ~half
    observed = score_statistics(score, shown, rest, k)
    deterministic = top_k_mask(np.where(pool, score, -np.inf), k)
    best = (score * deterministic).sum(axis=1) / k
    parts = []
    for _ in range(draws):
        noisy = np.where(pool, score + sigma * rng.normal(size=score.shape), -np.inf)
        feed = top_k_mask(noisy, k)
        residual = (score * feed).sum(axis=1) / k - best
        parts.append(score_statistics(score, feed, rest, k).assign(residual=residual))
    sim = pd.concat(parts, ignore_index=True)
    predictions, r2 = {}, {}
    for design in SPLIT_DESIGNS:
        x = split_design(sim, design)
        ok = np.isfinite(x).all(axis=1) & (sim["others_sd"].to_numpy() > 0)
        y = sim["residual"].to_numpy()[ok]
        beta, r2[design] = least_squares(x[ok], y)
        xo = split_design(observed, design)
        usable = np.isfinite(xo).all(axis=1) & (observed["others_sd"].to_numpy() > 0)
        predictions[design] = np.where(usable, np.nan_to_num(xo) @ beta, np.nan)
    return predictions, r2


def measurements(
    interim_dir: Path,
    raw_dir: Path,
    models_dir: Path,
    metrics_dir: Path,
    sigma: float | None = None,
    draws: int = 4,
    seed: int = 0,
    model: str = "taste_h64",
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The table of the module docstring (one row per measurement of the residual) and the R^2
    of each simulation's fit."""
    interactions = pd.read_parquet(interim_dir / "interactions.parquet")
    sessions = session_feeds(interactions)
    causal = json.loads((metrics_dir / f"causal_{model}.json").read_text())
    run = f"seed_{causal['seeds'][0]}"  # the first value-model seed's run
    frame = pd.read_parquet(models_dir / "causal" / model / run / "sessions.parquet")
    if not np.array_equal(frame["session_id"], sessions["session_id"]):
        raise ValueError(
            f"models/causal/{model}/{run}/sessions.parquet is not of these interactions"
        )
    cache = np.load(models_dir / "head_weights" / model / run / "candidates.npz")
    record = json.loads((metrics_dir / "details" / f"causal_{model}.json").read_text())
    record = record["runs"][str(causal["seeds"][0])]
    w = np.array([record["w"][h] for h in HEADS])  # the w* 06 scored the feeds with
    truth_dir = raw_dir / GROUND_TRUTH_SUBDIR
    if sigma is None:
        sigma = float(
            json.loads((truth_dir / "truth.json").read_text())["constants"]["rank_noise_sd"]
        )
    truth = pd.read_parquet(
        truth_dir / "big_matrix_truth.parquet", columns=["selectivity", "residual"]
    )
    first = (
        interactions.sort_values(["session_id", "position"])
        .groupby("session_id")["raw_row"]
        .first()
    )
    first = first.loc[frame["session_id"].to_numpy()].to_numpy()
    frame["true_c"] = truth["selectivity"].to_numpy()[first]
    frame["true_residual"] = truth["residual"].to_numpy()[first]
    start = pd.to_datetime(frame["start"], unit="s") + pd.Timedelta(hours=8)  # Beijing time
    frame["hour"] = start.dt.hour.astype(str)
    frame["burst"] = sessions["burst"].astype(str).to_numpy()
    k = frame["k"].to_numpy()
    stats = feed_statistics(cache["probs"], cache["valid"], k, w)
    stats["user_id"], stats["true_residual"] = frame["user_id"].to_numpy(), frame["true_residual"]
    frame["projected"] = within_projection(stats, "true_residual", FEED_STATISTICS, "user_id")[0]
    frame["simulated"], r2_pool = simulated_calibration(
        cache["probs"], cache["valid"], k, w, stats[list(FEED_STATISTICS)], sigma, draws, seed
    )
    r2 = {"simulation-calibrated": r2_pool}
    names = {
        "measured residual (06)": "residual",
        "projection on the feed's statistics (fitted on the truth)": "projected",
        f"simulation-calibrated (noise sd {sigma:g}, GNN scores as the platform's)": "simulated",
    }
    details = json.loads((metrics_dir / "details" / f"weights_{model}.json").read_text())
    weights = details["runs"][str(causal["seeds"][0])]["estimators"]
    details = details["runs"][str(causal["seeds"][0])]["details"]
    if "w" in weights.get("selection", {}):
        w_sel = np.array([weights["selection"]["w"][h] for h in HEADS])
        sigma_sel = float(details["selection"]["noise_sd"])
        split, split_r2 = split_calibration(
            cache["probs"], cache["valid"], k, w_sel, sigma_sel, draws, seed
        )
        for design, prediction in split.items():
            column = f"split_{design}"
            frame[column] = prediction
            label = f"split-half simulation, selection w and noise sd {sigma_sel:.3f}, {design}"
            names[label] = column
            r2[design] = split_r2[design]
    names["true residual"] = "true_residual"
    rows = {}
    for label, column in names.items():
        if frame[column].isna().all():
            continue
        frame["prev"] = session_lag(frame, column, 1)
        frame["next"] = session_lag(frame, column, -1)
        within = frame[[column, "true_residual"]] - frame.groupby("user_id")[
            [column, "true_residual"]
        ].transform("mean")
        lag = effect_regression(frame, "true_c", "prev", CONTROLS)
        lead = effect_regression(frame, "true_c", "next", CONTROLS)
        estimated = effect_regression(frame, "c", "prev", CONTROLS, weights="precision")
        rows[label] = {
            "within-user corr with the true residual": within.corr().iloc[0, 1],
            "true c_s on r(s-1)": lag["effect"],
            "se": lag["se"],
            "true c_s on r(s+1) (placebo)": lead["effect"],
            "estimated c_s on r(s-1)": estimated["effect"],
            "se (estimated)": estimated["se"],
        }
    return pd.DataFrame(rows).T, r2


FIT = "the simulations' fit of the residual on the feed's statistics (R^2)"
TABLE = "measurements of the residual"


def measurement_record(table: pd.DataFrame, r2: dict[str, float]) -> dict[str, Any]:
    """The printed figures as a metrics record: each simulation's R^2 (``FIT``) and the table
    (``TABLE``: {measurement: {column: value}})."""
    return {
        FIT: {name: float(value) for name, value in r2.items()},
        TABLE: {
            str(label): {str(column): float(value) for column, value in row.items()}
            for label, row in table.iterrows()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interim", type=Path, default=resolve("data/interim"))
    parser.add_argument("--raw", type=Path, default=resolve("data/raw"))
    parser.add_argument("--models", type=Path, default=resolve("models"))
    parser.add_argument("--metrics", type=Path, default=resolve("metrics"))
    parser.add_argument("--sigma", type=float, default=None, help="default: the simulator's")
    parser.add_argument("--draws", type=int, default=4, help="simulated feeds per session")
    parser.add_argument(
        "--model",
        default=None,
        help="the value model 05 and 06 ran on (default: the first of value_model.downstream)",
    )
    parser.add_argument("--out", type=Path, help="also write the figures to this metrics file")
    args = parser.parse_args(argv)
    if not has_ground_truth(args.raw):
        print(f"{args.raw} holds no ground truth: this diagnostic exists on simulated data only")
        return 1
    if args.sigma is not None and not args.sigma > 0:
        parser.error(f"--sigma must be positive, got {args.sigma}")
    args.model = args.model or load_params()["value_model"]["downstream"][0]
    table, r2 = measurements(
        args.interim, args.raw, args.models, args.metrics, args.sigma, args.draws, 0, args.model
    )
    for name, value in r2.items():
        print(
            f"the {name} simulation's fit of the residual on the feed's statistics: R^2 {value:.3f}"
        )
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(table.round(3).to_string())
    if args.out is not None:
        write_metrics(args.out, {"settings": run_settings(args), **measurement_record(table, r2)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
