"""Tests of ``kuairec_utils.data.kuairec``: the real side files, a tiny release and broken inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kuairec_fixtures import (
    drop_column,
    keep_header_only,
    make_empty,
    read_csv_rows,
    rename_column,
    set_field,
    truncate_last_row,
    write_tiny_release,
)

from kuairec_utils.config import KUAIREC_SIDE_DIR
from kuairec_utils.data.kuairec import (
    TABLES,
    KuaiRecFormatError,
    count_exact_duplicates,
    read_table,
    validate_release,
)

N_USERS, N_VIDEOS = 6, 8  # write_tiny_release's defaults
CR_CAPTION_VIDEOS = [1378, 1613, 5910, 6331]
MATRIX_DTYPES = {
    "user_id": "int32",
    "video_id": "int32",
    "play_duration": "int32",
    "video_duration": "int32",
    "time": "datetime64[ms]",
    "date": "Int32",
    "timestamp": "float64",
    "watch_ratio": "float64",
}


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny release shared by the read-only tests."""
    return write_tiny_release(tmp_path_factory.mktemp("release") / "data")


@pytest.fixture(scope="module")
def tables(release: Path) -> dict[str, pd.DataFrame]:
    return {name: read_table(release, name) for name in TABLES}


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """A tiny release of its own, for a test to corrupt."""
    return write_tiny_release(tmp_path / "data")


def n_data_rows(path: Path) -> int:
    return len(read_csv_rows(path)[1])


# --- the real side files ------------------------------------------------------------------------


def test_real_user_features() -> None:
    users = read_table(KUAIREC_SIDE_DIR, "user_features")
    assert len(users) == 7_176
    assert users["user_id"].dtype == "int32" and users["user_id"].is_unique
    onehot = users[[f"onehot_feat{i}" for i in range(18)]]
    assert (onehot.dtypes == "Int16").all()
    assert onehot.isna().any(axis=1).sum() == 277
    assert users["onehot_feat4"].isna().sum() == 201
    assert isinstance(users["user_active_degree"].dtype, pd.CategoricalDtype)
    assert set(users["fans_user_num_range"].cat.categories) >= {"0", "[1,10)", "[1w,10w)"}
    assert users["is_video_author"].dtype == "int8"


def test_real_item_categories() -> None:
    items = read_table(KUAIREC_SIDE_DIR, "item_categories")
    assert len(items) == 10_728
    feat = items.set_index("video_id")["feat"]
    assert feat[0] == [8]
    assert feat[1] == [27, 9]
    assert all(isinstance(f, list) and all(type(x) is int for x in f) for f in feat)


def test_real_captions() -> None:
    captions = read_table(KUAIREC_SIDE_DIR, "kuairec_caption_category")
    assert len(captions) == 10_728
    assert captions["video_id"].dtype == "int32" and captions["video_id"].is_unique
    by_video = captions.set_index("video_id")
    for video in CR_CAPTION_VIDEOS:
        assert "\r" in by_video.loc[video, "caption"]
    assert captions["caption"].str.contains("\r").sum() == len(CR_CAPTION_VIDEOS)
    assert (captions["third_level_category_id"] == -124).any()
    assert "UNKNOWN" in captions["third_level_category_name"].cat.categories
    assert captions["first_level_category_id"].dtype == "int16"
    assert by_video.loc[4, "topic_tag"] == ["五爱市场", "感谢快手我要上热门", "搞笑"]
    assert by_video.loc[0, "topic_tag"] == []
    assert captions["caption"].notna().all()  # an empty caption reads as ""
    assert by_video.loc[1, "caption"] == ""


# --- the tiny release ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", TABLES)
def test_tiny_release_reads_every_row(release: Path, tables: dict, name: str) -> None:
    assert len(tables[name]) == n_data_rows(release / f"{name}.csv")
    assert isinstance(tables[name].index, pd.RangeIndex)


@pytest.mark.parametrize("name", ["big_matrix", "small_matrix"])
def test_matrix_dtypes(tables: dict, name: str) -> None:
    assert {c: str(t) for c, t in tables[name].dtypes.items()} == MATRIX_DTYPES


def test_small_matrix_empty_times_are_missing(tables: dict) -> None:
    small = tables["small_matrix"]
    empty = small["time"].isna()
    assert empty.sum() == 2  # the fixture blanks two rows
    assert small.loc[empty, "date"].isna().all() and small.loc[empty, "timestamp"].isna().all()
    assert small.loc[~empty, "date"].notna().all()
    # 20200709.0 in the file reads back as the integer 20200709, the day of `time`
    days = small.loc[~empty, "time"].dt.strftime("%Y%m%d").astype("int32")
    assert (small.loc[~empty, "date"].astype("int32") == days).all()


def test_big_matrix_keeps_exact_duplicates(tables: dict) -> None:
    big = tables["big_matrix"]
    assert len(big) == N_USERS * N_VIDEOS + 1
    assert count_exact_duplicates(big) == 1
    assert big.iloc[0].equals(big.iloc[1])


def test_count_exact_duplicates_compares_lists_by_value() -> None:
    df = pd.DataFrame({"id": [1, 1, 1, 2], "feat": [[1, 2], [1, 2], [2, 1], [1, 2]]})
    assert count_exact_duplicates(df) == 1
    assert count_exact_duplicates(df.iloc[:0]) == 0


def test_side_tables_of_the_tiny_release(tables: dict) -> None:
    users = tables["user_features"]
    assert users["onehot_feat4"].isna().sum() == 1 and users["onehot_feat17"].isna().sum() == 1
    assert list(users["user_active_degree"].cat.categories) == [
        "full_active",
        "high_active",
        "middle_active",
        "low_active",
        "UNKNOWN",
    ]
    assert tables["item_categories"]["feat"].iloc[1] == [27, 9]
    assert all(isinstance(f, list) for f in tables["social_network"]["friend_list"])
    captions = tables["kuairec_caption_category"]
    assert captions.loc[2, "caption"] == "我不会处理\r好吗"
    assert captions.loc[4, "caption"] == '他说"你好",我笑了'


def test_item_daily_features_dtypes(tables: dict) -> None:
    daily = tables["item_daily_features"]
    assert daily.shape[1] == 58
    assert daily["date"].dtype == "int32"
    assert daily["music_id"].dtype == "int64" and daily["music_id"].max() > 2**31
    assert daily["upload_dt"].dtype == "datetime64[ms]"
    assert list(daily["video_type"].cat.categories) == ["NORMAL", "AD"]
    assert daily["show_cnt"].dtype == "Int32" and daily["play_duration"].dtype == "Int64"
    first_day = daily["date"] == daily["date"].min()
    assert daily.loc[first_day, "collect_cnt"].isna().all()  # empty on early dates
    assert daily.loc[~first_day, "collect_cnt"].notna().all()


def test_validate_release_counts_rows(release: Path) -> None:
    counts = validate_release(release)
    assert list(counts) == list(TABLES)
    assert counts == {name: n_data_rows(release / f"{name}.csv") for name in TABLES}
    assert counts["big_matrix"] == N_USERS * N_VIDEOS + 1


def test_validate_release_raises_on_a_broken_file(fresh: Path) -> None:
    set_field(fresh / "social_network.csv", 2, "friend_list", "[1, x]")
    with pytest.raises(KuaiRecFormatError, match=r"social_network\.csv.*'friend_list'.*line 3"):
        validate_release(fresh)


def test_validate_release_checks_headers_first(fresh: Path) -> None:
    (fresh / "kuairec_caption_category.csv").unlink()
    set_field(fresh / "big_matrix.csv", 1, "user_id", "abc")  # would fail later, when read
    with pytest.raises(KuaiRecFormatError, match=r"kuairec_caption_category\.csv: file not found"):
        validate_release(fresh)


def test_unknown_table_name(release: Path) -> None:
    with pytest.raises(ValueError, match="valid names: big_matrix, small_matrix") as info:
        read_table(release, "bigmatrix")
    assert not isinstance(info.value, KuaiRecFormatError)


# --- broken inputs ------------------------------------------------------------------------------

Corruption = Callable[[Path], None]


def field(table: str, row: int, column: str, value: str) -> Corruption:
    return lambda d: set_field(d / f"{table}.csv", row, column, value)


def fields(table: str, row: int, **values: str) -> Corruption:
    def corrupt(d: Path) -> None:
        for column, value in values.items():
            set_field(d / f"{table}.csv", row, column, value)

    return corrupt


LAST_BIG_LINE = f"line {N_USERS * N_VIDEOS + 2}"  # header, then n_users * n_videos + 1 rows

# (table, corruption, fragments the message must contain); data row 3 is line 4 of the file.
BAD_INPUTS = {
    "missing file": ("big_matrix", lambda d: (d / "big_matrix.csv").unlink(), ["not found"]),
    "empty file": ("big_matrix", lambda d: make_empty(d / "big_matrix.csv"), ["0 bytes"]),
    "header only": (
        "item_categories",
        lambda d: keep_header_only(d / "item_categories.csv"),
        ["header but no data rows"],
    ),
    "missing column": (
        "big_matrix",
        lambda d: drop_column(d / "big_matrix.csv", "time"),
        ["header", "missing columns ['time']"],
    ),
    "renamed column": (
        "small_matrix",
        lambda d: rename_column(d / "small_matrix.csv", "watch_ratio", "watchratio"),
        ["missing columns ['watch_ratio']", "unexpected columns ['watchratio']"],
    ),
    "non-numeric user_id": (
        "big_matrix",
        field("big_matrix", 3, "user_id", "abc"),
        ["'user_id'", "line 4: 'abc'"],
    ),
    "user_id beyond int32": (
        "big_matrix",
        field("big_matrix", 3, "user_id", "3000000000"),
        ["'user_id'", "line 4: '3000000000'"],
    ),
    "zero video_duration": (
        "big_matrix",
        field("big_matrix", 3, "video_duration", "0"),
        ["'video_duration'", "greater_than(0)", "line 4: 0"],
    ),
    "negative video_duration": (
        "small_matrix",
        field("small_matrix", 3, "video_duration", "-6067"),
        ["'video_duration'", "line 4: -6067"],
    ),
    "negative play_duration": (
        "big_matrix",
        field("big_matrix", 3, "play_duration", "-1"),
        ["'play_duration'", "line 4: -1"],
    ),
    "infinite watch_ratio": (
        "big_matrix",
        field("big_matrix", 3, "watch_ratio", "inf"),
        ["'watch_ratio'", "finite", "line 4"],
    ),
    "truncated last row": (
        "big_matrix",
        lambda d: truncate_last_row(d / "big_matrix.csv", 3),
        ["wrong number of fields", f"{LAST_BIG_LINE}: 3 fields"],
    ),
    "truncated last row, user_features": (
        "user_features",
        lambda d: truncate_last_row(d / "user_features.csv", 25),
        ["wrong number of fields", f"line {N_USERS + 1}: 25 fields"],
    ),
    "truncated last row, captions": (
        "kuairec_caption_category",
        lambda d: truncate_last_row(d / "kuairec_caption_category.csv", 3),
        ["'first_level_category_id'", f"line {N_VIDEOS + 1}: ''"],
    ),
    "empty time in big_matrix": (
        "big_matrix",
        fields("big_matrix", 3, time="", date="", timestamp=""),
        ["'time'", "empty value", "line 4"],
    ),
    "time alone empty in small_matrix": (
        "small_matrix",
        field("small_matrix", 3, "time", ""),
        ["time_date_timestamp_empty_together", "line 4: time=empty"],
    ),
    "unparseable time": (
        "big_matrix",
        field("big_matrix", 3, "time", "2020-07-05 25:61:00"),
        ["'time'", "line 4: '2020-07-05 25:61:00'"],
    ),
    "day 32": ("big_matrix", field("big_matrix", 3, "date", "20200732"), ["'date'", "line 4"]),
    "30 February": (
        "big_matrix",
        field("big_matrix", 3, "date", "20200230"),
        ["'date'", "calendar_date_YYYYMMDD", "line 4: 20200230"],
    ),
    "month 13": ("big_matrix", field("big_matrix", 3, "date", "20201305"), ["'date'", "line 4"]),
    "seven digits": ("big_matrix", field("big_matrix", 3, "date", "2020075"), ["'date'", "line 4"]),
    "year 2019": ("big_matrix", field("big_matrix", 3, "date", "20190705"), ["'date'", "line 4"]),
    "fractional date": (
        "small_matrix",
        field("small_matrix", 3, "date", "20200705.5"),
        ["'date'", "not a YYYYMMDD date", "line 4: 20200705.5"],
    ),
    "text date": (
        "item_daily_features",
        field("item_daily_features", 3, "date", "2020-07-05"),
        ["'date'", "line 4: '2020-07-05'"],
    ),
    "date disagrees with time": (
        "big_matrix",
        fields("big_matrix", 3, time="2020-07-20 10:00:00.000", date="20200721"),
        ["date_matches_time", "line 4: date=20200721, time=2020-07-20 10:00:00"],
    ),
    "duplicate user in user_features": (
        "user_features",
        field("user_features", 3, "user_id", "0"),
        ["'user_id'", "uniqueness", "line 2: 0", "line 4: 0"],
    ),
    "unknown activity degree": (
        "user_features",
        field("user_features", 3, "user_active_degree", "semi_active"),
        ["'user_active_degree'", "line 4: 'semi_active'"],
    ),
    "flag not 0/1": (
        "user_features",
        field("user_features", 3, "is_live_streamer", "2"),
        ["'is_live_streamer'", "line 4: 2"],
    ),
    "negative onehot": (
        "user_features",
        field("user_features", 3, "onehot_feat5", "-1"),
        ["'onehot_feat5'", "line 4: -1"],
    ),
    "category id -3": (
        "kuairec_caption_category",
        field("kuairec_caption_category", 3, "second_level_category_id", "-3"),
        ["'second_level_category_id'", "line 4: -3"],
    ),
    "non-numeric caption video_id": (
        "kuairec_caption_category",
        field("kuairec_caption_category", 3, "video_id", "x3"),
        ["'video_id'", "line 4: 'x3'"],
    ),
    "topic_tag without brackets": (
        "kuairec_caption_category",
        field("kuairec_caption_category", 3, "topic_tag", "搞笑"),
        ["'topic_tag'", "line 4: '搞笑'"],
    ),
    "unknown video_type": (
        "item_daily_features",
        field("item_daily_features", 3, "video_type", "LIVE"),
        ["'video_type'", "line 4: 'LIVE'"],
    ),
    "negative music_id": (
        "item_daily_features",
        field("item_daily_features", 3, "music_id", "-5"),
        ["'music_id'", "line 4: -5"],
    ),
    "fractional count": (
        "item_daily_features",
        field("item_daily_features", 3, "show_cnt", "1.5"),
        ["'show_cnt'", "line 4: '1.5'"],
    ),
    "zero daily video_duration": (
        "item_daily_features",
        field("item_daily_features", 3, "video_duration", "0.0"),
        ["'video_duration'", "line 4: 0.0"],
    ),
    "friend_list not a list": (
        "social_network",
        field("social_network", 2, "friend_list", "[1, x]"),
        ["'friend_list'", "line 3: '[1, x]'"],
    ),
}


@pytest.mark.parametrize(("table", "corrupt", "fragments"), BAD_INPUTS.values(), ids=BAD_INPUTS)
def test_bad_input_names_file_column_and_row(
    fresh: Path, table: str, corrupt: Corruption, fragments: list[str]
) -> None:
    corrupt(fresh)
    with pytest.raises(KuaiRecFormatError) as info:
        read_table(fresh, table)
    message = str(info.value)
    assert str(fresh / f"{table}.csv") in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


@pytest.mark.parametrize(
    "feat",
    [
        '__import__("os").system("touch {sentinel}")',
        "[__import__('os').system('touch {sentinel}')]",
        "(lambda: open('{sentinel}', 'w'))()",
        "[1, 2",
        "abc",
        "[1.5]",
        "[-1]",
        "[1, True]",
        '["1"]',
        '{{"a": 1}}',
        "",
    ],
)
def test_feat_must_be_a_list_of_ints_and_is_never_evaluated(fresh: Path, feat: str) -> None:
    sentinel = fresh.parent / "evaluated"
    value = feat.format(sentinel=sentinel)
    set_field(fresh / "item_categories.csv", 3, "feat", value)
    with pytest.raises(KuaiRecFormatError) as info:
        read_table(fresh, "item_categories")
    assert not sentinel.exists()
    message = str(info.value)
    assert "item_categories.csv" in message and "'feat'" in message and "line 4" in message


def test_error_quotes_at_most_five_rows(fresh: Path) -> None:
    path = fresh / "big_matrix.csv"
    for row in range(1, 9):
        set_field(path, row, "video_duration", "0")
    with pytest.raises(KuaiRecFormatError) as info:
        read_table(fresh, "big_matrix")
    message = str(info.value)
    assert "in 8 rows" in message and "and 3 more" in message
    assert message.count("line ") == 5


def test_calendar_check_agrees_with_numpy() -> None:
    from kuairec_utils.data.kuairec import _yyyymmdd_to_days

    dates = pd.Series([20200229, 20190229, 20200431, 20201231, 20200000, None], dtype="Int32")
    days = _yyyymmdd_to_days(dates)
    expected = np.array(["2020-02-29", "NaT", "NaT", "2020-12-31", "NaT", "NaT"], "datetime64[D]")
    np.testing.assert_array_equal(days, expected)
