"""Features of 02_features: hand-checked history features (ties!), encoders, the lagged item
statistics, and leakage: changing or deleting every event from a time t on leaves every feature
of every earlier event unchanged."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kuairec_utils.config import kuairec_data_dir
from kuairec_utils.data.interactions import InteractionsConfig, build_interactions
from kuairec_utils.data.kuairec import read_table
from kuairec_utils.features import (
    GROUPS,
    ID_COLUMNS,
    LABEL_COLUMNS,
    SCALED_TYPES,
    CategoricalEncoder,
    FeatureConfig,
    _range_rank,
    build_features,
    check_split_days,
    history_features,
    lagged_item_stats,
    load_side_tables,
    previous_session_features,
    query_features,
    read_manifest,
    write_processed,
)
from kuairec_utils.heads import HEADS, LabelThresholds

PRIOR = np.array([0.4, 0.3, 0.1, 0.2])


def history(frame: pd.DataFrame, half_lives=(1.0, 2.0), category_half_life=1.0) -> pd.DataFrame:
    """History features of a hand-made frame (columns user, ts, heads, category, author)."""
    out = history_features(
        frame["user"].to_numpy(),
        frame["ts"].to_numpy(),
        frame[list(HEADS)].to_numpy(),
        frame["category"].to_numpy(),
        frame["author"].to_numpy(),
        half_lives,
        category_half_life,
        PRIOR,
    )
    return pd.DataFrame(out, index=frame.index)


def hand_frame() -> pd.DataFrame:
    """One user, four events, two of them tied at ts = 2."""
    return pd.DataFrame(
        {
            "user": [7, 7, 7, 7],
            "ts": [1.0, 2.0, 2.0, 30.0],
            "complete": [1, 0, 1, 0],
            "long": [0, 0, 1, 1],
            "rewatch": [0, 0, 0, 0],
            "negative": [0, 1, 0, 0],
            "category": [3, 5, 3, 3],
            "author": [0, 1, 0, 1],
        }
    )


# --- history features by hand -------------------------------------------------------------------


def test_ema_starts_at_the_prior_and_tied_events_share_the_state_before_them() -> None:
    h = history(hand_frame())  # half-life 1 event: alpha = 1/2
    # after event 0: 0.4 + (1 - 0.4) / 2 = 0.7; the tie group (outcomes 0 and 1) moves it
    # 1 - (1/2)**2 = 3/4 of the way to their mean 1/2: 0.7 / 4 + 0.5 * 3 / 4 = 0.55
    assert h["hist_complete_ema1"].tolist() == pytest.approx([0.4, 0.7, 0.7, 0.55])
    assert h["hist_negative_ema1"].tolist() == pytest.approx([0.2, 0.1, 0.1, 0.4])
    alpha = 1 - 2 ** (-1 / 2)  # half-life 2 events
    assert h["hist_long_ema2"].iloc[1] == pytest.approx(0.3 * (1 - alpha))
    assert h["hist_log_n_events"].tolist() == pytest.approx(np.log1p([0, 1, 1, 3]).tolist())
    assert h["hist_no_previous_event"].tolist() == [1, 0, 0, 0]
    assert h["hist_last_complete"].tolist() == [0, 1, 1, 1]  # the tie group's max


def test_category_features_count_earlier_events_only() -> None:
    h = history(hand_frame())  # categories 3, 5, 3, 3; complete 1, 0, 1, 0; alpha 1/2
    assert h["hist_category_complete_ema"].tolist() == pytest.approx([0.4, 0.4, 0.7, 0.85])
    assert h["hist_category_share"].tolist() == pytest.approx([0, 0, 1, 2 / 3])
    counts = np.array([2, 1])
    expected = -(counts / 3 * np.log(counts / 3)).sum()
    assert h["hist_category_entropy"].tolist() == pytest.approx([0, 0, 0, expected])


def test_author_recency_is_strictly_before_and_flags_never() -> None:
    h = history(hand_frame())  # authors 0, 1, 0, 1 at ts 1, 2, 2, 30
    assert h["hist_author_never"].tolist() == [1, 1, 0, 0]
    assert h["hist_author_log_gap_s"].iloc[2] == pytest.approx(math.log1p(1.0))
    assert h["hist_author_log_gap_s"].iloc[3] == pytest.approx(math.log1p(28.0))
    tied = hand_frame().assign(author=[0, 1, 1, 1])  # the same author twice at ts = 2
    assert history(tied)["hist_author_never"].tolist() == [1, 1, 1, 0]


def test_a_new_user_starts_from_the_prior_and_row_order_does_not_matter() -> None:
    one = hand_frame()
    two = pd.concat([one, one.assign(user=3, complete=[0, 0, 0, 1])], ignore_index=True)
    h = history(two)
    pd.testing.assert_frame_equal(h.iloc[:4], history(one))
    assert h["hist_complete_ema1"].iloc[4] == 0.4
    assert h["hist_no_previous_event"].iloc[4] == 1
    shuffled = two.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(history(shuffled).sort_index(), h)


def test_previous_session_length_and_gap() -> None:
    user = np.array([1, 1, 1, 1, 1, 2, 2])
    session = np.array([10, 10, 11, 11, 11, 12, 13])
    ts = np.array([0.0, 5.0, 3605.0, 3610.0, 3620.0, 0.0, 100.0])
    out = previous_session_features(user, session, ts)
    assert out["hist_first_session"].tolist() == [1, 1, 0, 0, 0, 1, 0]
    assert np.isnan(out["hist_prev_session_log_len"][[0, 1, 5]]).all()
    assert out["hist_prev_session_log_len"][2:5] == pytest.approx([math.log1p(2)] * 3)
    assert out["hist_prev_session_log_gap_s"][2:5] == pytest.approx([math.log1p(3600)] * 3)
    assert out["hist_prev_session_log_gap_s"][6] == pytest.approx(math.log1p(100))
    order = np.array([6, 3, 0, 5, 2, 4, 1])
    again = previous_session_features(user[order], session[order], ts[order])
    assert np.array_equal(
        again["hist_prev_session_log_len"], out["hist_prev_session_log_len"][order], equal_nan=True
    )


# --- leakage of the history features at any t ---------------------------------------------------


def random_events(rng: np.random.Generator, n_users: int = 4, n: int = 300) -> pd.DataFrame:
    """Events with many tied timestamps, sessions (gaps > 1000 s), categories and authors."""
    frames = []
    for user in range(n_users):
        gaps = rng.choice([0.0, 0.0, 3.0, 7.0, 2000.0], size=n)  # zeros make ties
        ts = 1e6 + np.cumsum(gaps)
        frames.append(
            pd.DataFrame(
                {
                    "user": user,
                    "ts": ts,
                    "session": user * 1000 + np.cumsum(gaps > 1000),
                    "category": rng.integers(-1, 6, size=n),
                    "author": rng.integers(-1, 12, size=n),
                    **{h: rng.integers(0, 2, size=n) for h in HEADS},
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def all_history(frame: pd.DataFrame) -> pd.DataFrame:
    sessions = previous_session_features(
        frame["user"].to_numpy(), frame["session"].to_numpy(), frame["ts"].to_numpy()
    )
    return pd.concat(
        [history(frame, (5.0, 50.0), 10.0), pd.DataFrame(sessions, index=frame.index)], axis=1
    )


def change_from(frame: pd.DataFrame, t: float, rng: np.random.Generator) -> pd.DataFrame:
    """Labels, categories, authors and times of every event at or after t changed."""
    late = frame["ts"] >= t
    changed = frame.copy()
    for column, high in [*((h, 2) for h in HEADS), ("category", 6), ("author", 12)]:
        changed.loc[late, column] = rng.integers(0, high, size=late.sum())
    changed.loc[late, "ts"] += rng.choice([0.0, 1.0, 5000.0], size=late.sum())
    return changed


def assert_same_before(full: pd.DataFrame, other: pd.DataFrame, early: pd.Series) -> None:
    a, b = full.loc[early[early].index], other.loc[early[early].index]
    for column in full.columns:
        assert np.array_equal(a[column].to_numpy(), b[column].to_numpy(), equal_nan=True), column


def test_history_features_before_t_ignore_every_event_from_t_on() -> None:
    rng = np.random.default_rng(3)
    events = random_events(rng)
    full = all_history(events)
    ts = events["ts"].to_numpy()
    tied = ts[np.flatnonzero(np.diff(ts) == 0)[5]]  # a timestamp shared by two events
    in_session = ts[(events["session"] == events["session"].iloc[40]).to_numpy()][2]
    for t in [tied, in_session, float(np.median(ts)), ts.min(), ts.max()]:
        early = events["ts"] < t
        assert_same_before(full, all_history(change_from(events, t, rng)), early)
        assert_same_before(full, all_history(events[early]), early)


def test_tied_events_get_identical_history() -> None:
    events = random_events(np.random.default_rng(5))
    h = history(events).drop(columns=["hist_category_complete_ema", "hist_category_share"])
    h = h.drop(columns=["hist_author_log_gap_s", "hist_author_never"])  # depend on the row's own
    tied = events.duplicated(["user", "ts"], keep=False)
    groups = h[tied].groupby([events["user"][tied], events["ts"][tied]])
    assert tied.sum() > 50 and (groups.nunique(dropna=False) == 1).all().all()


# --- encoders, bins, checks ---------------------------------------------------------------------


def test_onehot_encoder_drops_the_reference_pools_rare_and_unseen_levels() -> None:
    values = pd.Series(["a", "b", "c", "d", None])
    weights = np.array([60, 30, 3, 2, 5])  # training rows per entity
    enc = CategoricalEncoder.fit(values, weights, max_levels=12, min_share=0.04)
    assert enc.kind == "onehot" and enc.counts.index[0] == "a" and enc.kept == ("b", "NA")
    out = enc.transform(pd.Series(["a", "b", "c", None, "new"]))
    assert set(out) == {"b", "NA", "other"}
    assert out["b"].tolist() == [0, 1, 0, 0, 0]
    assert out["NA"].tolist() == [0, 0, 0, 1, 0]
    assert out["other"].tolist() == [0, 0, 1, 0, 1]  # rare c and d (5%), and unseen
    tiny_rest = CategoricalEncoder.fit(values, np.array([90, 8, 1, 0, 1]), 12, 0.04)
    assert tiny_rest.kept == ("b",) and not tiny_rest.has_other  # 2% rare: join the reference
    never = CategoricalEncoder.fit(values, np.array([1, 1, 0, 0, 0]), 12, 0.0)
    assert never.counts.index.tolist() == ["a", "b"]  # levels without training rows are unseen


def test_frequency_encoder_for_many_levels_counts_training_rows() -> None:
    values = pd.Series(np.arange(20))
    enc = CategoricalEncoder.fit(values, np.arange(20), max_levels=12, min_share=0.01)
    assert enc.kind == "frequency"
    out = enc.transform(pd.Series([19, 3, 0, 999]))["freq"]
    assert out.tolist() == pytest.approx(np.log1p([19, 3, 0, 0]).tolist())


def test_range_bins_are_ordered_by_lower_bound() -> None:
    labels = ["500+", "(10,50]", "0", "(0,10]", "[1w,10w)", "[100,1k)", "[1k,5k)"]
    bins = pd.Series(labels, dtype="category")
    rank = dict(zip(labels, _range_rank(bins), strict=True))
    order = ["0", "(0,10]", "(10,50]", "[100,1k)", "500+", "[1k,5k)", "[1w,10w)"]
    assert sorted(rank, key=rank.get) == order


def test_split_days_must_be_disjoint_and_ordered() -> None:
    date = np.array([1, 1, 2, 3, 4, 5])
    split = np.array(["train", "train", "train", "val", "test", "test"])
    assert check_split_days(date, split) == {"train": [1, 2], "val": [3], "test": [4, 5]}
    with pytest.raises(ValueError, match="more than one split"):
        check_split_days(date, np.array(["train", "val", "train", "val", "test", "test"]))
    with pytest.raises(ValueError, match="train days are not all before val"):
        check_split_days(date, np.array(["val", "val", "train", "train", "test", "test"]))
    burst = np.array([0, 0, 0, 0, 1, 1])
    by_burst = np.array(["train", "train", "val", "test", "train", "val"])
    assert check_split_days(date, by_burst, burst, mode="burst")["train"] == [1, 4]
    with pytest.raises(ValueError, match="not all before"):
        check_split_days(date, by_burst, burst, mode="global")


def test_lagged_item_stats_use_the_latest_day_before_never_the_same_day() -> None:
    daily = pd.DataFrame(
        {
            "video_id": [5, 5, 5],
            "date": [20200705, 20200706, 20200708],
            "show_cnt": pd.array([9, 99, 999], dtype="Int32"),
            "play_cnt": pd.array([4, 0, 500], dtype="Int32"),
            "complete_play_cnt": pd.array([1, 0, 50], dtype="Int32"),
            "valid_play_cnt": pd.array([2, 0, 5], dtype="Int32"),
            "short_time_play_cnt": pd.array([3, 0, 5], dtype="Int32"),
            "like_cnt": pd.array([0, 0, 5], dtype="Int32"),
            "play_progress": [0.5, 0.6, 0.7],
        }
    )
    video = np.array([5, 5, 5, 5, 5, 6])
    date = np.array([20200705, 20200706, 20200707, 20200708, 20200709, 20200709])
    out = lagged_item_stats(daily, video, date)
    assert out["item_prev_day_missing"].tolist() == [1, 0, 0, 0, 0, 1]
    assert np.allclose(
        out["item_prev_day_log_show"], np.log1p([np.nan, 9, 99, 99, 999, np.nan]), equal_nan=True
    )
    assert out["item_prev_day_complete_rate"][1] == 0.25
    assert out["item_prev_day_play_rate"][2] == 0.0
    assert np.isnan(out["item_prev_day_complete_rate"][2])  # no plays on 0706: 0/0 is missing
    assert out["item_prev_day_progress"][4] == 0.7


def test_feature_config_from_params(project_params: dict) -> None:
    cfg = FeatureConfig.from_params(project_params["features"])
    assert cfg.half_lives[0] < cfg.half_lives[1]
    with pytest.raises(ValueError, match="unknown"):
        FeatureConfig.from_params({"half_life": 3})
    with pytest.raises(ValueError, match="ema_half_life_short"):
        FeatureConfig.from_params({"ema_half_life_short": 0})


# --- the whole pipeline on a tiny simulated release ---------------------------------------------


@pytest.fixture(scope="module")
def tiny_interactions(tiny_sim: Path) -> pd.DataFrame:
    big = read_table(kuairec_data_dir(tiny_sim), "big_matrix")
    frame, _ = build_interactions(big, InteractionsConfig(), LabelThresholds())
    return frame


@pytest.fixture(scope="module")
def tiny_side(tiny_sim: Path):
    return load_side_tables(tiny_sim)


@pytest.fixture(scope="module")
def tiny_features(tiny_interactions: pd.DataFrame, tiny_side):
    return build_features(tiny_interactions, tiny_side)


def by_raw_row(features, rows: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(features.features, copy=False)
    return frame.set_index(features.ids["raw_row"]).loc[rows]


def test_every_feature_before_t_ignores_the_events_from_t_on(
    tiny_interactions: pd.DataFrame, tiny_side, tiny_features
) -> None:
    frame = tiny_interactions
    rng = np.random.default_rng(11)
    first_val = frame.loc[frame["split"] != "train", "timestamp"].min()
    for t in [first_val, frame.loc[frame["split"] == "val", "timestamp"].median()]:
        late = (frame["timestamp"] >= t).to_numpy()
        early_rows = frame.loc[~late, "raw_row"].to_numpy()
        changed = frame.copy()
        for head in HEADS:
            changed.loc[late, head] = (1 - changed.loc[late, head]).astype(np.int8)
        videos = frame["video_id"].unique()
        changed.loc[late, "video_id"] = rng.choice(videos, size=late.sum()).astype(np.int32)
        expected = by_raw_row(tiny_features, early_rows)
        for other in (changed, frame.loc[~late]):
            again = by_raw_row(build_features(other, tiny_side), early_rows)
            assert list(again.columns) == list(expected.columns)
            assert np.array_equal(again.to_numpy(), expected.to_numpy()), t


def test_features_are_complete_float32_and_match_the_manifest(
    tiny_interactions: pd.DataFrame, tiny_features, tmp_path: Path
) -> None:
    manifest = tiny_features.manifest
    names = tiny_features.names
    assert 60 <= len(names) <= 140 and len(set(names)) == len(names)
    assert {f["group"] for f in manifest["features"]} == set(GROUPS)
    for f in manifest["features"]:
        values = tiny_features.features[f["name"]]
        assert values.dtype == np.float32 and np.isfinite(values).all(), f["name"]
        if f["type"] in SCALED_TYPES:
            train = values[(tiny_features.ids["split"] == "train").to_numpy()]
            assert abs(train.mean()) < 1e-3 and f["name"] in manifest["scaler"]
    rows = write_processed(tiny_features, tmp_path)
    assert read_manifest(tmp_path) == json.loads(json.dumps(manifest))
    days = {}
    for split, n in rows.items():
        part = pd.read_parquet(tmp_path / f"{split}.parquet")
        assert len(part) == n and (part["split"] == split).all()
        assert list(part.columns) == [*ID_COLUMNS, *LABEL_COLUMNS, *names]
        assert all(part[h].dtype == np.int8 for h in LABEL_COLUMNS)
        days[split] = set(part["date"])
    assert sum(rows.values()) == len(tiny_interactions)
    assert max(days["train"]) < min(days["val"]) and max(days["val"]) < min(days["test"])


# --- queries: features of videos the user could have been shown --------------------------------


def session_start_queries(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """For every session: its first video, another video it showed, and a random video, all
    asked at the session's start."""
    first = frame.sort_values(["session_id", "position"]).groupby("session_id").first()
    last = frame.sort_values(["session_id", "position"]).groupby("session_id").last()
    videos = frame["video_id"].unique()
    parts = []
    for video in (first["video_id"], last["video_id"], rng.choice(videos, len(first))):
        parts.append(
            pd.DataFrame(
                {
                    "user_id": first["user_id"].to_numpy(),
                    "video_id": np.asarray(video),
                    "session_id": first.index.to_numpy(),
                    "timestamp": first["timestamp"].to_numpy(),
                    "position": first["position"].to_numpy(),  # 0 unless 01_data filtered it
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_queries_change_no_real_row_and_read_the_state_at_session_start(
    tiny_interactions: pd.DataFrame, tiny_side, tiny_features
) -> None:
    frame = tiny_interactions
    queries = session_start_queries(frame, np.random.default_rng(3))
    got = query_features(frame, queries, tiny_side)
    assert len(got.ids) == len(queries)
    assert np.array_equal(got.ids["video_id"].to_numpy(), queries["video_id"].to_numpy())
    assert got.manifest["scaler"] == tiny_features.manifest["scaler"]
    assert got.names == tiny_features.names
    # the session's first video asked at its start is exactly its first event
    n = frame["session_id"].nunique()
    first_rows = frame.sort_values(["session_id", "position"]).groupby("session_id")["raw_row"]
    expected = by_raw_row(tiny_features, first_rows.first().to_numpy())
    asked = pd.DataFrame({k: v[:n] for k, v in got.features.items()})
    assert np.array_equal(asked.to_numpy(), expected.to_numpy())
    # a later video of the session asked at the start: its own item features, the session's
    # context and the history before the session (not the later event's)
    last_rows = frame.sort_values(["session_id", "position"]).groupby("session_id")["raw_row"]
    later = by_raw_row(tiny_features, last_rows.last().to_numpy())
    asked_later = pd.DataFrame({k: v[n : 2 * n] for k, v in got.features.items()})
    item_cols = [c for c in later.columns if c.startswith("item_")]
    dates = frame.sort_values(["session_id", "position"]).groupby("session_id")["date"]
    same_day = (dates.first() == dates.last()).to_numpy()  # else: another day's statistics
    assert same_day.mean() > 0.9
    assert np.array_equal(
        asked_later[item_cols].to_numpy()[same_day], later[item_cols].to_numpy()[same_day]
    )
    assert np.array_equal(
        asked_later["hist_complete_ema5"].to_numpy(), expected["hist_complete_ema5"].to_numpy()
    )
    assert (
        asked_later["ctx_log_position"].to_numpy() == expected["ctx_log_position"].to_numpy()
    ).all()
    long_sessions = (frame.groupby("session_id").size() > 3).to_numpy()
    assert (
        asked_later["hist_log_n_events"].to_numpy()[long_sessions]
        < later["hist_log_n_events"].to_numpy()[long_sessions]
    ).all()


def test_fitted_features_transform_a_subset_of_users_as_the_whole_table_did(
    tiny_interactions: pd.DataFrame, tiny_side, tiny_features
) -> None:
    frame = tiny_interactions
    users = np.sort(frame["user_id"].unique())
    rng = np.random.default_rng(5)
    for chosen in (users[:1], rng.choice(users, len(users) // 3, replace=False)):
        part = frame[frame["user_id"].isin(chosen).to_numpy()]
        if (part["split"] == "train").all():  # a subset fitted alone would differ ...
            continue
        again = build_features(part, tiny_side, fitted=tiny_features.fitted)
        expected = by_raw_row(tiny_features, part["raw_row"].to_numpy())
        got = by_raw_row(again, part["raw_row"].to_numpy())
        assert list(got.columns) == list(expected.columns)
        assert np.array_equal(got.to_numpy(), expected.to_numpy())
        assert again.manifest == tiny_features.manifest
    refit = by_raw_row(build_features(part, tiny_side), part["raw_row"].to_numpy())
    assert not np.array_equal(refit.to_numpy(), got.to_numpy())  # ... as here
    with pytest.raises(ValueError, match="another FeatureConfig"):
        build_features(
            part, tiny_side, FeatureConfig(ema_half_life_short=3), fitted=tiny_features.fitted
        )


def test_queries_with_fitted_features_equal_the_full_build(
    tiny_interactions: pd.DataFrame, tiny_side, tiny_features
) -> None:
    frame = tiny_interactions
    queries = session_start_queries(frame, np.random.default_rng(6))
    users = np.sort(queries["user_id"].unique())
    expected = query_features(frame, queries, tiny_side)
    for chunk in np.array_split(users, 3):  # as score_candidates asks: some users at a time
        mine = queries["user_id"].isin(chunk).to_numpy()
        got = query_features(frame, queries[mine], tiny_side, fitted=tiny_features.fitted)
        assert got.names == expected.names
        for name in expected.names:
            assert np.array_equal(got.features[name], expected.features[name][mine]), name


def test_queries_must_name_known_sessions_of_their_user(
    tiny_interactions: pd.DataFrame, tiny_side
) -> None:
    queries = session_start_queries(tiny_interactions, np.random.default_rng(4)).head(5)
    with pytest.raises(ValueError, match="not in the interactions"):
        query_features(tiny_interactions, queries.assign(session_id=-5), tiny_side)
    with pytest.raises(ValueError, match="their own user"):
        query_features(tiny_interactions, queries.assign(user_id=-1), tiny_side)
    with pytest.raises(ValueError, match="lack the column"):
        query_features(tiny_interactions, queries.drop(columns="timestamp"), tiny_side)


def test_stack_rows_equals_column_stack_in_blocks() -> None:
    from kuairec_utils.head_weights.feeds import stack_rows

    rng = np.random.default_rng(2)
    columns = [rng.normal(size=10_001).astype(np.float32) for _ in range(7)]
    columns.append(np.full(10_001, 0.25, np.float32))
    full = np.column_stack(columns)
    for lo, hi in ((0, 10_001), (4_000, 9_000), (9_990, 20_000), (5, 5)):
        part = stack_rows(columns, lo, hi, block=512)
        assert part.dtype == np.float32 and part.flags.c_contiguous
        assert np.array_equal(part, full[lo:hi])


def test_scoring_queries_in_chunks_gives_the_bits_of_one_call(
    tiny_interactions: pd.DataFrame, tiny_side, tiny_features, tiny_processed: Path
) -> None:
    """05 scores the small matrix's pairs a chunk at a time; chunks cut across users."""
    import torch

    from kuairec_utils.head_weights.feeds import score_queries
    from kuairec_utils.models.dataset import load_processed
    from kuairec_utils.models.gcn import GCNValueModel, normalized_adjacency

    data = load_processed(tiny_processed, features=False)
    train = data.splits["train"]
    adjacency = normalized_adjacency(train.user, train.item, data.n_users, data.n_items)
    torch.manual_seed(0)
    model = GCNValueModel(
        data.n_users, data.n_items, len(data.feature_names), adjacency, hidden=8, mlp_hidden=16
    ).eval()
    queries = session_start_queries(tiny_interactions, np.random.default_rng(8))
    queries = queries[queries["video_id"].isin(data.item_ids)].reset_index(drop=True)
    args = (model, data, tiny_interactions, tiny_side, queries, FeatureConfig())
    kw = {"fitted": tiny_features.fitted, "batch_rows": 64}
    whole = score_queries(*args, **kw)
    chunked = score_queries(*args, max_rows=250, **kw)  # chunks of 192 rows: 3 passes each
    assert len(queries) > 1000 and whole.shape == (len(queries), 4)
    assert np.array_equal(chunked, whole)
    with pytest.raises(ValueError, match="max_rows=250 needs"):
        score_queries(*args, max_rows=250, batch_rows=64)  # without the fitted features
    # several models (one per value-model seed) on features built once: each one's own bits
    torch.manual_seed(1)
    other = GCNValueModel(
        data.n_users, data.n_items, len(data.feature_names), adjacency, hidden=8, mlp_hidden=16
    ).eval()
    part = queries.iloc[:400]
    args = (data, tiny_interactions, tiny_side, part, FeatureConfig())
    both = score_queries([model, other], *args, max_rows=250, **kw)
    alone = score_queries(other, *args, **kw)
    assert both.shape == (2, len(part), 4) and not np.array_equal(alone, whole[:400])
    assert np.array_equal(both[0], whole[:400]) and np.array_equal(both[1], alone)
