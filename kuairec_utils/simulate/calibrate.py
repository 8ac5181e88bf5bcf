"""Calibrating the simulator to three sets of published facts at once (docs/design.md section 8).

The facts: the big matrix's 23 published statistics, the small matrix's 9 watch-ratio marginals
(``calibration.PUBLISHED``, ``PUBLISHED_SMALL``) and the study's mean test AUCs of the logistic
regression and the edge MLP on real KuaiRec (``calibration.AUC_ANCHORS``), which this
repository's own pipeline (01-03) is held to on the simulated data.

What is searched: how much of the utility varies across a user's videos (``video_spread``
multiplies taste, quality, author and habit: what a feature or the platform's ranking can
exploit), how much across users (``user_spread`` multiplies the users' engagement and
selectivity sds: what a feature can exploit but the ranking cannot), and the outcome constants
(intercepts, the log watch ratio's slope and noise, the mean selectivity).

How (``calibrate``): the constants minimise, in memory and in seconds per simulation at a small
scale, the watch-ratio marginals' squared gaps in tolerance units plus the gap of the oracle's
mean AUC (the true probabilities' AUC over every row, ``oracle_auc``) to a target (Nelder-Mead,
``fit``). The target is the anchors' mean minus the offset between the pipeline's AUC and the
oracle's: measured at the start and after each fit, three rounds. Everything
runs on a development seed, never the data's default one: ``python
benchmarks/calibrate_simulator.py`` re-makes the choice and prints it.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from kuairec_utils.config import KUAIREC_SIDE_DIR
from kuairec_utils.heads import HEADS, head_labels
from kuairec_utils.simulate.calibration import (
    AUC_ANCHORS,
    PUBLISHED,
    PUBLISHED_SMALL,
    release_statistics,
    watch_ratio_statistics,
)
from kuairec_utils.simulate.config import DAY_S, SimConfig

# the constants each spread multiplies
SPREADS: dict[str, tuple[str, ...]] = {
    "video_spread": ("taste_scale", "quality_sd", "author_sd", "habit_weight"),
    "user_spread": ("user_bias_sd", "selectivity_user_sd"),
}
# what the fit moves, within these bounds (low, high)
FITTED: dict[str, tuple[float, float]] = {
    "video_spread": (0.3, 1.5),
    "user_spread": (0.5, 3.0),
    "utility_intercept": (-2.0, 2.0),
    "log_ratio_intercept": (-1.0, 1.0),
    "log_ratio_slope": (0.05, 0.6),
    "log_ratio_sd": (0.2, 1.0),
    "selectivity_mean": (-5.0, 0.0),
}
ORACLE_AUC_SCALE = 0.005  # the oracle AUC's gap to its target counts in units of this


def with_settings(params: Mapping[str, Any], settings: Mapping[str, float]) -> dict[str, Any]:
    """A copy of a params dict with ``simulate`` constants replaced; a spread multiplies the
    constants it names (SPREADS) from their values in ``params``."""
    out = copy.deepcopy(dict(params))
    section = out["simulate"]
    for name, value in settings.items():
        if name in SPREADS:
            for constant in SPREADS[name]:
                section[constant] = round(float(params["simulate"][constant]) * value, 4)
        elif name in section:
            section[name] = round(float(value), 4)
        else:
            raise KeyError(f"params simulate has no constant {name!r}")
    return out


def simulated_statistics(
    params: Mapping[str, Any], seed: int, scale: float
) -> tuple[dict[str, float], dict[str, float], float]:
    """The published statistics of the big and the small matrix a simulation would write, and
    the oracle's mean AUC over the big matrix's rows, computed in memory (no files): seconds at
    scale 0.05."""
    from kuairec_utils.simulate.release import _simulate_tables

    cfg = SimConfig.from_params(params, scale=scale)
    sim = _simulate_tables(cfg, seed, KUAIREC_SIDE_DIR, progress=False, log_pools=False)
    world, big = sim.world, sim.big
    duration = world.video_duration_ms[big["video"]]
    frame = pd.DataFrame(
        {
            "user_id": world.user_id[big["user"]],
            "video_id": world.video_id[big["video"]],
            "play_duration": big["play_duration"],
            "video_duration": duration,
            "local_ms": big["local_ms"],
            "date": big["local_ms"] // (DAY_S * 1000),
            "watch_ratio": big["play_duration"] / duration,
        }
    )
    small = sim.small["play_duration"] / world.video_duration_ms[sim.small["video"]]
    oracle = oracle_auc(frame["watch_ratio"].to_numpy(), big["play_duration"], big["p"], cfg)
    return release_statistics(frame), watch_ratio_statistics(small), oracle


def oracle_auc(
    watch_ratio: np.ndarray, play_ms: np.ndarray, p_true: np.ndarray, cfg: SimConfig
) -> float:
    """Mean over the heads of the true probabilities' AUC for the realised labels."""
    from kuairec_utils.models.training import auc_by_head

    labels = head_labels(watch_ratio, play_ms, cfg.labels)
    return auc_by_head(np.column_stack([labels[h] for h in HEADS]), p_true)["mean"]


def _gaps(stats: Mapping[str, float], published: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """Each statistic's relative gap to its published value, in units of its tolerance."""
    return np.array([(stats[k] / v - 1.0) / tol for k, (v, tol) in published.items()])


def watch_ratio_names() -> list[str]:
    """The big matrix's statistics the outcome constants move (its watch-ratio marginals)."""
    return [name for name in PUBLISHED if name.startswith("watch_ratio")]


def marginal_loss(big: Mapping[str, float], small: Mapping[str, float]) -> float:
    """Sum of squared gaps in tolerance units over the big matrix's watch-ratio marginals and
    the small matrix's, plus a penalty for each statistic outside its tolerance: 100 on the big
    matrix (kept in tolerance: a constraint), 10 on the small one (a statistic held counts
    more than a smaller miss elsewhere)."""
    big_gaps = _gaps(big, {k: PUBLISHED[k] for k in watch_ratio_names()})
    small_gaps = _gaps(small, PUBLISHED_SMALL)
    return float(
        np.sum(big_gaps**2)
        + np.sum(small_gaps**2)
        + 100.0 * np.sum(np.abs(big_gaps) > 1.0)
        + 10.0 * np.sum(np.abs(small_gaps) > 1.0)
    )


def within(big: Mapping[str, float], small: Mapping[str, float]) -> tuple[int, int]:
    """How many of the big matrix's 23 and the small matrix's 9 statistics are in tolerance."""
    return (
        int(np.sum(np.abs(_gaps(big, PUBLISHED)) <= 1.0)),
        int(np.sum(np.abs(_gaps(small, PUBLISHED_SMALL)) <= 1.0)),
    )


def fit(
    params: Mapping[str, Any],
    seed: int,
    scale: float,
    oracle_target: float,
    *,
    max_evaluations: int = 120,
) -> dict[str, Any]:
    """The FITTED settings that minimise the marginal loss plus the oracle AUC's squared gap to
    ``oracle_target`` (in ORACLE_AUC_SCALE units), by Nelder-Mead from params' values within
    FITTED's bounds; with the statistics they give."""
    names = list(FITTED)
    lo, hi = (np.array([FITTED[n][i] for n in names]) for i in (0, 1))
    start = np.array([1.0 if n in SPREADS else float(params["simulate"][n]) for n in names])
    seen: dict[tuple[float, ...], tuple[float, dict[str, Any]]] = {}

    def evaluate(x: np.ndarray) -> float:
        x = np.clip(np.round(x, 4), lo, hi)
        key = tuple(x)
        if key not in seen:
            settings = {n: float(v) for n, v in zip(names, x, strict=True)}
            big, small, oracle = simulated_statistics(with_settings(params, settings), seed, scale)
            loss = marginal_loss(big, small) + ((oracle - oracle_target) / ORACLE_AUC_SCALE) ** 2
            seen[key] = (loss, {"settings": settings, "big": big, "small": small, "oracle": oracle})
        return seen[key][0]

    minimize(
        evaluate,
        start,
        method="Nelder-Mead",
        options={"maxfev": max_evaluations, "initial_simplex": _simplex(start, lo, hi)},
    )
    loss, best = min(seen.values(), key=lambda item: item[0])
    return best | {
        "loss": loss,
        "within": within(best["big"], best["small"]),
        "evaluations": len(seen),
    }


def _simplex(start: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The start and one step of a tenth of each bound's range along each axis."""
    steps = np.diag(0.1 * (hi - lo))
    return np.vstack([start, start + steps])


def auc_anchors(
    params: Mapping[str, Any],
    seed: int,
    scale: float,
    value_seed: int,
    *,
    work_dir: Path | None = None,
) -> dict[str, float]:
    """Mean test AUC of the logistic regression and the edge MLP, trained by the pipeline's own
    steps (01 interactions, 02 features, 03 baselines with params' settings, one value-model
    seed) on a simulation of ``params`` at ``scale`` and ``seed``."""
    from kuairec_utils.config import kuairec_data_dir
    from kuairec_utils.data.interactions import InteractionsConfig, build_interactions
    from kuairec_utils.data.kuairec import read_table
    from kuairec_utils.features import (
        FeatureConfig,
        build_features,
        load_side_tables,
        write_processed,
    )
    from kuairec_utils.heads import LabelThresholds
    from kuairec_utils.models.dataset import load_processed
    from kuairec_utils.models.runs import train_over_seeds
    from kuairec_utils.models.training import TrainConfig
    from kuairec_utils.simulate.release import simulate

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        root = Path(tmp)
        simulate(root / "raw", SimConfig.from_params(params, scale=scale), seed, progress=False)
        big = read_table(kuairec_data_dir(root / "raw"), "big_matrix")
        interactions, _ = build_interactions(
            big,
            InteractionsConfig.from_params(params["interactions"]),
            LabelThresholds.from_params(params["labels"]),
        )
        del big
        features = build_features(
            interactions,
            load_side_tables(root / "raw"),
            FeatureConfig.from_params(params["features"]),
            split_mode=params["interactions"]["split_mode"],
        )
        write_processed(features, root / "processed")
        del features, interactions
        data = load_processed(root / "processed")
        b = params["baselines"]
        cfg = TrainConfig(
            epochs=b["epochs"],
            batch_size=b["batch_size"],
            lr=b["lr"],
            weight_decay=b["weight_decay"],
            patience=b["patience"],
            device="cpu",
            schedule=b["schedule"],
        )
        settings = {"logreg": {}, "edge_mlp": {"hidden": b["mlp_hidden"], "dropout": b["dropout"]}}
        return {
            name: float(
                train_over_seeds(
                    name, data, arch, cfg, [value_seed], root / "models", name, progress=False
                )[value_seed].test_auc["mean"]
            )
            for name, arch in settings.items()
        }


def auc_gaps(aucs: Mapping[str, float]) -> dict[str, float]:
    """Each model's mean test AUC minus the study's."""
    return {name: aucs[name] - AUC_ANCHORS[name] for name in AUC_ANCHORS}


def calibrate(
    params: Mapping[str, Any],
    seed: int,
    *,
    fit_scale: float = 0.05,
    auc_scale: float = 0.12,
    value_seed: int = 20200705,
    rounds: int = 3,
    max_evaluations: int = 120,
    log: Any = print,
) -> list[dict[str, Any]]:
    """The calibration's rounds (see the module's docstring), each a record: the settings, the
    statistics in tolerance, the oracle AUC, the pipeline's AUCs and their gaps to the anchors.
    The first record is the start (params' own values)."""
    anchor = float(np.mean(list(AUC_ANCHORS.values())))
    settings: dict[str, float] = {}
    records = []
    for round_ in range(rounds + 1):
        current = with_settings(params, settings)
        big, small, oracle = simulated_statistics(current, seed, fit_scale)
        aucs = auc_anchors(current, seed, auc_scale, value_seed)
        record = {
            "round": round_,
            "settings": settings,
            "within": within(big, small),
            "oracle_auc": oracle,
            "auc": aucs,
            "auc_gap": auc_gaps(aucs),
        }
        log(record)
        records.append(record)
        if round_ == rounds:
            break
        offset = float(np.mean(list(aucs.values()))) - oracle
        found = fit(current, seed, fit_scale, anchor - offset, max_evaluations=max_evaluations)
        # the fit's spreads multiply the current constants: express them against params
        settings = _compose(params, current, found["settings"])
    return records


def _compose(
    params: Mapping[str, Any], current: Mapping[str, Any], found: Mapping[str, float]
) -> dict[str, float]:
    """Settings against ``params`` equal to ``found`` applied to ``current``."""
    out = {}
    for name, value in found.items():
        if name in SPREADS:
            first = SPREADS[name][0]
            base = float(params["simulate"][first])
            out[name] = round(float(current["simulate"][first]) * value / base, 4)
        else:
            out[name] = value
    return out
