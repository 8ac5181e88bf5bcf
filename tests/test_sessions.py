"""Sessions, bursts, the calendar-day split and the labels, on hand-made data with known
answers; then build_interactions on the tiny simulated release."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kuairec_utils.config import kuairec_data_dir
from kuairec_utils.data.interactions import InteractionsConfig, build_interactions
from kuairec_utils.data.kuairec import read_table
from kuairec_utils.data.sessions import burst_of, find_bursts, sessionize, split_days
from kuairec_utils.heads import HEADS, LabelThresholds, head_labels

MIN = 60.0


def test_sessionize_known_answer() -> None:
    users = np.array([1, 1, 1, 1, 1, 2, 2, 2])
    ts = np.array([0, 10, 10 + 30 * MIN, 10 + 30 * MIN + 30 * MIN + 1, 5000, 0, 0, 31 * MIN])
    ts[4] = ts[3] + 5
    session, position = sessionize(users, ts, gap_minutes=30)
    # a gap of exactly 30 minutes does not end a session; 30 min + 1 s does; a new user does
    assert session.tolist() == [0, 0, 0, 1, 1, 2, 2, 3]
    assert position.tolist() == [0, 1, 2, 0, 1, 0, 1, 0]


def test_sessionize_refuses_unsorted_rows_and_bad_gap() -> None:
    with pytest.raises(ValueError, match="sorted"):
        sessionize(np.array([1, 1]), np.array([10.0, 5.0]), 30)
    with pytest.raises(ValueError, match="session_gap_minutes"):
        sessionize(np.array([1]), np.array([1.0]), 0)


def _daily(volumes: dict[str, float]) -> pd.Series:
    days = pd.date_range("2020-07-01", "2020-07-31")
    series = pd.Series(10.0, index=[int(d.strftime("%Y%m%d")) for d in days])
    for span, value in volumes.items():
        first, last = span.split("..")
        series.loc[int(first) : int(last)] = value
    return series


def test_find_bursts_known_windows() -> None:
    daily = _daily({"20200703..20200707": 100, "20200714..20200716": 90, "20200724..20200728": 95})
    daily.loc[20200715] = 5  # one quiet day inside the second burst is bridged
    assert find_bursts(daily, 3) == [
        (20200703, 20200707),
        (20200714, 20200716),
        (20200724, 20200728),
    ]
    # the two largest windows by volume, in time order
    assert find_bursts(daily, 2) == [(20200703, 20200707), (20200724, 20200728)]
    # a two-day quiet gap splits a window when only one day is bridged
    split = _daily({"20200703..20200705": 100, "20200708..20200710": 100})
    assert find_bursts(split, 2, max_gap_days=1) == [(20200703, 20200705), (20200708, 20200710)]
    assert find_bursts(split, 1, max_gap_days=2) == [(20200703, 20200710)]
    with pytest.raises(ValueError, match="fewer than n_bursts=4"):
        find_bursts(daily, 4)


def test_burst_of() -> None:
    ids = burst_of(
        np.array([20200702, 20200703, 20200707, 20200708, 20200725]),
        [(20200703, 20200707), (20200724, 20200728)],
    )
    assert ids.tolist() == [-1, 0, 0, -1, 1]


def test_split_days_ordered_disjoint_and_about_4_1_1() -> None:
    rng = np.random.default_rng(0)
    dates = np.repeat(np.arange(20200701, 20200731), rng.integers(900, 1100, 30))
    split = split_days(dates, (4, 1, 1))
    by = {s: [d for d, v in split.items() if v == s] for s in ("train", "val", "test")}
    assert set(split) == set(np.unique(dates))  # every day in exactly one split
    assert max(by["train"]) < min(by["val"]) and max(by["val"]) < min(by["test"])
    shares = pd.Series(dates).map(split).value_counts(normalize=True)
    assert shares["train"] == pytest.approx(4 / 6, abs=0.04)
    assert shares["val"] == pytest.approx(1 / 6, abs=0.04)
    # within each group (burst), later days for later splits
    group = (dates >= 20200716).astype(int)
    per_group = split_days(dates, (4, 1, 1), group)
    for g in (0, 1):
        days = sorted(set(dates[group == g]))
        labels = [per_group[d] for d in days]
        assert labels == sorted(labels, key=["train", "val", "test"].index)
        assert set(labels) == {"train", "val", "test"}
    with pytest.raises(ValueError, match="at least 3 days"):
        split_days(np.array([20200701, 20200702]), (4, 1, 1))
    with pytest.raises(ValueError, match="positive"):
        split_days(dates, (4, 0, 1))


def test_labels_at_the_thresholds_edges() -> None:
    t = LabelThresholds()
    wr = np.array([1.0, 1.0000001, 1.5, 1.5000001, 2.0, 1.9999999, 0.5, 0.5, 0.5, 0.1])
    play_ms = np.array([5000, 5000, 5000, 5000, 5000, 5000, 12000, 12001, 1999, 2000])
    labels = head_labels(wr, play_ms, t)
    assert labels["complete"].tolist() == [0, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert labels["long"].tolist() == [0, 0, 0, 1, 1, 1, 0, 1, 0, 0]
    assert labels["rewatch"].tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert labels["negative"].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    with pytest.raises(ValueError, match="labels.negative_play_s"):
        LabelThresholds.from_params({"negative_play_s": -1})


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"session_gap_minutes": 0}, "interactions.session_gap_minutes"),
        ({"n_bursts": 0}, "interactions.n_bursts"),
        ({"outside_bursts": "ignore"}, "interactions.outside_bursts"),
        ({"split_mode": "random"}, "interactions.split_mode"),
        ({"split_val": 0.0}, "interactions.split_val"),
        ({"burst_threshold": 1.5}, "interactions.burst_threshold"),
        ({"min_user_interactions": -1}, "interactions.min_user_interactions"),
        ({"sesion_gap": 3}, "unknown"),
    ],
)
def test_bad_interaction_parameters_are_named(changes: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        InteractionsConfig.from_params(changes)


def test_build_interactions_on_the_simulated_release(tiny_sim: Path) -> None:
    big = read_table(kuairec_data_dir(tiny_sim), "big_matrix")
    frame, summary = build_interactions(big, InteractionsConfig(), LabelThresholds())
    truth = pd.read_parquet(tiny_sim / "ground_truth" / "big_matrix_truth.parquet")
    constants = json.loads((tiny_sim / "ground_truth" / "truth.json").read_text())["constants"]
    # evaluation only: the pipeline's counts and bursts against what the simulator did
    assert summary["duplicates_removed"] == int(truth["is_duplicate"].sum())
    expected = [[int(a.replace("-", "")), int(b.replace("-", ""))] for a, b in constants["bursts"]]
    assert summary["bursts"] == expected
    assert not frame.duplicated(["user_id", "timestamp", "video_id"]).any()
    assert (frame["burst"] >= 0).all()  # outside_bursts: drop
    days = {s: set(frame.loc[frame["split"] == s, "date"]) for s in ("train", "val", "test")}
    assert max(days["train"]) < min(days["val"]) and max(days["val"]) < min(days["test"])
    assert sum(summary["n_interactions"].values()) == len(frame)
    for head in HEADS:
        assert set(summary["label_rate"][head]) == {"train", "val", "test"}
    # the raw_row key points back at the same big-matrix rows
    assert (big["video_id"].to_numpy()[frame["raw_row"]] == frame["video_id"].to_numpy()).all()
    assert {"n_interactions", "n_sessions", "n_users", "n_items", "duplicates_removed",
            "missing_time_removed", "bursts", "label_rate"} <= set(summary)  # fmt: skip
