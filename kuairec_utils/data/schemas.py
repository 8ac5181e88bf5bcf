"""The seven tables of a KuaiRec 2.0 release: their column lists and the pandera schemas that
``read_table`` (``kuairec_utils.data.kuairec``) checks every file against, with the vectorised
checks the schemas use (calendar dates, finite numbers, category ids, the time fields of the
interaction matrices). The quirks of the real files these encode are described there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

TABLES: tuple[str, ...] = (
    "big_matrix",
    "small_matrix",
    "user_features",
    "item_categories",
    "item_daily_features",
    "social_network",
    "kuairec_caption_category",
)

FIRST_DATE, LAST_DATE = 20200101, 20201231  # the span a KuaiRec ``date`` may take
UNKNOWN_CATEGORY_ID = -124


# --- vectorised helpers used by the schemas -----------------------------------------------------


def _yyyymmdd_to_days(dates: pd.Series) -> np.ndarray:
    """YYYYMMDD integers as ``datetime64[D]``; NaT where missing or not a calendar date."""
    codes, uniques = pd.factorize(dates)  # a file holds few distinct dates: convert each once
    v = np.asarray(uniques, dtype="int64")
    year, month, day = v // 10_000, v // 100 % 100, v % 100
    ok = (v >= 0) & (month >= 1) & (month <= 12) & (day >= 1)
    months = np.where(ok, (year - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    first_day = months.astype("datetime64[D]")
    month_length = ((months + 1).astype("datetime64[D]") - first_day).astype("int64")
    ok &= day <= month_length
    days = first_day + (day - 1)
    days[~ok] = np.datetime64("NaT")
    return np.append(days, np.datetime64("NaT", "D"))[codes]  # code -1 (missing) -> NaT


def _is_calendar_date(dates: pd.Series) -> pd.Series:
    return pd.Series(~np.isnat(_yyyymmdd_to_days(dates)), index=dates.index)


def _is_finite(values: pd.Series) -> pd.Series:
    return pd.Series(
        np.isfinite(values.to_numpy(dtype="float64", na_value=np.nan)), index=values.index
    )


def _is_category_id(ids: pd.Series) -> pd.Series:
    return (ids >= 0) | (ids == UNKNOWN_CATEGORY_ID)


def _time_fields_empty_together(df: pd.DataFrame) -> pd.Series:
    """``time``, ``date`` and ``timestamp`` are all present or all empty."""
    empty = df["time"].isna()
    return (empty == df["date"].isna()) & (empty == df["timestamp"].isna())


def _date_matches_time(df: pd.DataFrame) -> pd.Series:
    """``date`` is ``time``'s calendar date (rows missing either pass; other checks cover them)."""
    time_days = df["time"].to_numpy().astype("datetime64[D]")
    date_days = _yyyymmdd_to_days(df["date"])
    agree = np.isnat(time_days) | np.isnat(date_days) | (time_days == date_days)
    return pd.Series(agree, index=df.index)


# --- schemas ------------------------------------------------------------------------------------

NON_NEGATIVE = pa.Check.ge(0)
FINITE = pa.Check(_is_finite, name="finite")
YYYYMMDD = [
    pa.Check.in_range(FIRST_DATE, LAST_DATE),
    pa.Check(_is_calendar_date, name="calendar_date_YYYYMMDD"),
]
USER_ACTIVE_DEGREES = ["full_active", "high_active", "middle_active", "low_active", "UNKNOWN"]
VIDEO_TYPES = ["NORMAL", "AD"]

# Columns the reader treats specially, by name (the schemas give everything else).
DATE_COLUMNS = {"date"}  # YYYYMMDD, read as float because small_matrix writes 20200705.0
DATETIME_COLUMNS = {"time", "upload_dt"}  # parsed to datetime64[ms]


def _matrix_schema(name: str, *, time_nullable: bool) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "user_id": pa.Column("int32", NON_NEGATIVE),
            "video_id": pa.Column("int32", NON_NEGATIVE),
            "play_duration": pa.Column("int32", NON_NEGATIVE),
            "video_duration": pa.Column("int32", pa.Check.gt(0)),
            "time": pa.Column("datetime64[ms]", nullable=time_nullable),
            "date": pa.Column("Int32", YYYYMMDD, nullable=time_nullable),
            "timestamp": pa.Column("float64", FINITE, nullable=time_nullable),
            "watch_ratio": pa.Column("float64", [NON_NEGATIVE, FINITE]),
        },
        checks=[
            pa.Check(_time_fields_empty_together, name="time_date_timestamp_empty_together"),
            pa.Check(_date_matches_time, name="date_matches_time"),
        ],
        strict=True,
        ordered=True,
        name=name,
    )


def _user_features_schema() -> pa.DataFrameSchema:
    columns = {
        "user_id": pa.Column("int32", NON_NEGATIVE, unique=True),
        "user_active_degree": pa.Column(pd.CategoricalDtype(USER_ACTIVE_DEGREES)),
    }
    for flag in ("is_lowactive_period", "is_live_streamer", "is_video_author"):
        columns[flag] = pa.Column("int8", pa.Check.isin([0, 1]))
    for count in ("follow_user_num", "fans_user_num", "friend_user_num", "register_days"):
        columns[count] = pa.Column("int32", NON_NEGATIVE)
        columns[f"{count}_range"] = pa.Column("category")
    for i in range(18):
        columns[f"onehot_feat{i}"] = pa.Column("Int16", NON_NEGATIVE, nullable=True)
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="user_features")


def _list_of(kind: type) -> pa.Check:
    def check(values: pd.Series) -> pd.Series:
        return values.map(lambda v: isinstance(v, list) and all(isinstance(x, kind) for x in v))

    return pa.Check(check, name=f"list_of_{kind.__name__}")


def _caption_schema() -> pa.DataFrameSchema:
    columns = {
        "video_id": pa.Column("int32", NON_NEGATIVE, unique=True),
        "manual_cover_text": pa.Column(str),
        "caption": pa.Column(str),
        "topic_tag": pa.Column(object, _list_of(str)),
    }
    for level in ("first", "second", "third"):
        columns[f"{level}_level_category_id"] = pa.Column(
            "int16", pa.Check(_is_category_id, name="non_negative_or_-124")
        )
        columns[f"{level}_level_category_name"] = pa.Column("category")
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="kuairec_caption_category")


DAILY_COUNT_COLUMNS = [  # item_daily_features after video_tag_name, in file order
    "show_cnt",
    "show_user_num",
    "play_cnt",
    "play_user_num",
    "play_duration",
    "complete_play_cnt",
    "complete_play_user_num",
    "valid_play_cnt",
    "valid_play_user_num",
    "long_time_play_cnt",
    "long_time_play_user_num",
    "short_time_play_cnt",
    "short_time_play_user_num",
    "play_progress",
    "comment_stay_duration",
    "like_cnt",
    "like_user_num",
    "click_like_cnt",
    "double_click_cnt",
    "cancel_like_cnt",
    "cancel_like_user_num",
    "comment_cnt",
    "comment_user_num",
    "direct_comment_cnt",
    "reply_comment_cnt",
    "delete_comment_cnt",
    "delete_comment_user_num",
    "comment_like_cnt",
    "comment_like_user_num",
    "follow_cnt",
    "follow_user_num",
    "cancel_follow_cnt",
    "cancel_follow_user_num",
    "share_cnt",
    "share_user_num",
    "download_cnt",
    "download_user_num",
    "report_cnt",
    "report_user_num",
    "reduce_similar_cnt",
    "reduce_similar_user_num",
    "collect_cnt",
    "collect_user_num",
    "cancel_collect_cnt",
    "cancel_collect_user_num",
]


def _item_daily_schema() -> pa.DataFrameSchema:
    columns = {
        "video_id": pa.Column("int32", NON_NEGATIVE),
        "date": pa.Column("int32", YYYYMMDD),
        "author_id": pa.Column("int32", NON_NEGATIVE),
        "video_type": pa.Column(pd.CategoricalDtype(VIDEO_TYPES)),
        "upload_dt": pa.Column("datetime64[ms]", nullable=True),
        "upload_type": pa.Column("category", nullable=True),
        "visible_status": pa.Column("category", nullable=True),
        "video_duration": pa.Column("float64", [pa.Check.gt(0), FINITE], nullable=True),
        "video_width": pa.Column("Int32", NON_NEGATIVE, nullable=True),
        "video_height": pa.Column("Int32", NON_NEGATIVE, nullable=True),
        "music_id": pa.Column("int64", NON_NEGATIVE),
        "video_tag_id": pa.Column("int32", pa.Check.ge(UNKNOWN_CATEGORY_ID)),
        "video_tag_name": pa.Column("category", nullable=True),
    }
    for count in DAILY_COUNT_COLUMNS:
        if count == "play_progress":
            columns[count] = pa.Column("float64", [NON_NEGATIVE, FINITE], nullable=True)
        elif count in ("play_duration", "comment_stay_duration"):
            columns[count] = pa.Column("Int64", NON_NEGATIVE, nullable=True)
        else:
            columns[count] = pa.Column("Int32", NON_NEGATIVE, nullable=True)
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="item_daily_features")


def _id_and_int_list_schema(name: str, id_column: str, list_column: str) -> pa.DataFrameSchema:
    """A unique non-negative id and a list of ints (item_categories, social_network)."""
    return pa.DataFrameSchema(
        {
            id_column: pa.Column("int32", NON_NEGATIVE, unique=True),
            list_column: pa.Column(object, _list_of(int)),
        },
        strict=True,
        ordered=True,
        name=name,
    )


SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "big_matrix": _matrix_schema("big_matrix", time_nullable=False),
    "small_matrix": _matrix_schema("small_matrix", time_nullable=True),
    "user_features": _user_features_schema(),
    "item_categories": _id_and_int_list_schema("item_categories", "video_id", "feat"),
    "item_daily_features": _item_daily_schema(),
    "social_network": _id_and_int_list_schema("social_network", "user_id", "friend_list"),
    "kuairec_caption_category": _caption_schema(),
}
COLUMNS: dict[str, list[str]] = {name: list(schema.columns) for name, schema in SCHEMAS.items()}
