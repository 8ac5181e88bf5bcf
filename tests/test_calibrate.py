"""The simulator's calibration (kuairec_utils.simulate.calibrate and the AUC anchors)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SCALE, TINY_SEED, tiny_params

from kuairec_utils.simulate import calibrate, calibration
from kuairec_utils.simulate.calibration import (
    AUC_ANCHORS,
    AUC_TOLERANCE,
    PUBLISHED,
    PUBLISHED_SMALL,
    auc_anchor_table,
)


def test_a_spread_multiplies_the_constants_it_names(project_params: dict) -> None:
    sim = project_params["simulate"]
    out = calibrate.with_settings(project_params, {"video_spread": 0.5, "log_ratio_sd": 0.7})
    for name in calibrate.SPREADS["video_spread"]:
        assert out["simulate"][name] == pytest.approx(sim[name] * 0.5, abs=1e-4)
    for name in calibrate.SPREADS["user_spread"]:
        assert out["simulate"][name] == sim[name]
    assert out["simulate"]["log_ratio_sd"] == 0.7
    assert project_params["simulate"] is sim and sim["log_ratio_sd"] != 0.7  # a copy
    with pytest.raises(KeyError, match="no_such"):
        calibrate.with_settings(project_params, {"no_such": 1.0})


def test_a_later_rounds_spread_is_expressed_against_the_start(project_params: dict) -> None:
    current = calibrate.with_settings(project_params, {"user_spread": 2.0})
    settings = calibrate._compose(
        project_params, current, {"user_spread": 0.5, "log_ratio_sd": 0.6}
    )
    assert settings == {"user_spread": 1.0, "log_ratio_sd": 0.6}


def test_the_loss_is_zero_at_the_published_figures_and_counts_each_miss() -> None:
    big = {k: v for k, (v, _) in PUBLISHED.items()}
    small = {k: v for k, (v, _) in PUBLISHED_SMALL.items()}
    assert calibrate.marginal_loss(big, small) == 0.0
    assert calibrate.within(big, small) == (len(PUBLISHED), len(PUBLISHED_SMALL))
    value, tol = PUBLISHED_SMALL["watch_ratio mean"]
    off = small | {"watch_ratio mean": value * (1 + 2 * tol)}  # two tolerances out
    assert calibrate.marginal_loss(big, off) == pytest.approx(4.0 + 10.0)
    assert calibrate.within(big, off) == (len(PUBLISHED), len(PUBLISHED_SMALL) - 1)
    value, tol = PUBLISHED["watch_ratio median"]  # the big matrix's misses cost more
    off = big | {"watch_ratio median": value * (1 + 2 * tol)}
    assert calibrate.marginal_loss(off, small) == pytest.approx(4.0 + 100.0)
    # the big matrix's activity statistics do not enter the loss (the outcome fit cannot move them)
    busy = big | {"interactions per user: mean": 1e9}
    assert calibrate.marginal_loss(busy, small) == 0.0
    assert calibrate.within(busy, small)[0] == len(PUBLISHED) - 1


def test_the_anchor_table_holds_each_model_to_the_study() -> None:
    table = auc_anchor_table({"logreg": AUC_ANCHORS["logreg"] + AUC_TOLERANCE / 2, "edge_mlp": 0.9})
    assert table.loc["logreg", "within"] and not table.loc["edge_mlp", "within"]
    assert table.loc["edge_mlp", "gap"] == pytest.approx(0.9 - AUC_ANCHORS["edge_mlp"])
    assert set(table.index) == set(AUC_ANCHORS)


def test_the_tiny_simulation_gives_statistics_and_an_oracle_auc(project_params: dict) -> None:
    params = tiny_params(project_params)
    big, small, oracle = calibrate.simulated_statistics(params, TINY_SEED, TINY_SCALE)
    assert set(PUBLISHED) <= set(big) and set(PUBLISHED_SMALL) <= set(small)
    assert 0.6 < oracle < 1.0
    # less noise in the log watch ratio makes the outcomes easier to predict
    sharp = calibrate.with_settings(params, {"log_ratio_sd": 0.2})
    assert calibrate.simulated_statistics(sharp, TINY_SEED, TINY_SCALE)[2] > oracle


def test_a_short_fit_never_ends_worse_than_its_start(project_params: dict) -> None:
    params = tiny_params(project_params)
    big, small, oracle = calibrate.simulated_statistics(params, TINY_SEED, TINY_SCALE)
    start = calibrate.marginal_loss(big, small) + ((oracle - 0.8) / calibrate.ORACLE_AUC_SCALE) ** 2
    found = calibrate.fit(params, TINY_SEED, TINY_SCALE, 0.8, max_evaluations=4)
    assert found["loss"] <= start
    assert found["evaluations"] <= 4 and set(found["settings"]) == set(calibrate.FITTED)
    for name, (lo, hi) in calibrate.FITTED.items():
        assert lo <= found["settings"][name] <= hi
    assert np.isfinite(found["oracle"])


def test_the_records_are_json_ready_with_the_largest_gap_of_each_table() -> None:
    big = {k: v for k, (v, _) in PUBLISHED.items()}
    tables = {
        "small_matrix": calibration.small_calibration_table(
            pd.DataFrame({"watch_ratio": [0.5, 1.2]})
        ),
        "big_matrix": calibration._table(big, PUBLISHED),
        "auc_anchors": auc_anchor_table({"logreg": 0.83, "edge_mlp": None}),
    }
    details, summary = calibration.calibration_records(tables)
    assert json.loads(json.dumps(details)) == details
    assert summary["big_matrix"] == {
        "statistics": 23,
        "within_tolerance": 23,
        "max_abs_relative_gap": 0.0,
    }
    assert details["auc_anchors"]["edge_mlp"]["data"] is None
    assert summary["auc_anchors"]["max_abs_gap"] is None  # not every anchor measured
    assert summary["auc_anchors"]["within_tolerance"] == 1
    gaps = tables["small_matrix"]["relative_gap"].abs()
    assert summary["small_matrix"]["max_abs_relative_gap"] == pytest.approx(gaps.max())
