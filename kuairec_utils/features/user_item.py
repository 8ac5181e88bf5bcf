"""User and item features: per user and per video, gathered to the rows, and the video's
statistics of the latest day before the interaction's (``lagged_item_stats``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kuairec_utils.data.kuairec import UNKNOWN_CATEGORY_ID
from kuairec_utils.features.config import (
    FeatureConfig,
    SideTables,
    _column_name,
    _day_number,
    _safe_ratio,
)
from kuairec_utils.features.encoders import _Columns, _range_rank

# --- user features --------------------------------------------------------------------------------

USER_FLAGS = ("is_lowactive_period", "is_live_streamer", "is_video_author")
USER_COUNTS = {  # log1p(count) column -> its range-bin column
    "follow_user_num": "follow_user_num_range",
    "fans_user_num": "fans_user_num_range",
    "friend_user_num": "friend_user_num_range",
    "register_days": "register_days_range",
}
N_ENCRYPTED = 18  # onehot_feat0..17


def _user_features(
    cols: _Columns,
    users: pd.DataFrame,
    user_rows: np.ndarray,
    train_rows: np.ndarray,
    cfg: FeatureConfig,
) -> None:
    """User features, computed per user and gathered to rows (``user_rows``: a user's index)."""
    weights = np.bincount(user_rows[train_rows], minlength=len(users))
    cols.add_categorical(
        "user_active_degree", "user", users["user_active_degree"], weights, user_rows, cfg
    )
    for flag in USER_FLAGS:
        values = users[flag].to_numpy(dtype="float64", na_value=0.0)
        cols.add(f"user_{flag}", "user", "binary", values[user_rows])
    for count, bins in USER_COUNTS.items():
        values = np.log1p(users[count].to_numpy(dtype="float64", na_value=np.nan))
        cols.add(_column_name("user_log", count), "user", "numeric", values[user_rows])
        cols.add(_column_name("user", bins), "user", "ordinal", _range_rank(users[bins])[user_rows])
    encrypted = [f"onehot_feat{k}" for k in range(N_ENCRYPTED)]
    missing = users[encrypted].isna().any(axis=1).to_numpy()  # 277 real users have them empty
    cols.add("user_onehot_missing", "user", "binary", missing[user_rows])
    for name in encrypted:
        cols.add_categorical(f"user_{name}", "user", users[name], weights, user_rows, cfg)


# --- item features --------------------------------------------------------------------------------

DAILY_RATES = {  # feature -> (numerator, denominator) of the video's latest earlier day
    "play_rate": ("play_cnt", "show_cnt"),
    "complete_rate": ("complete_play_cnt", "play_cnt"),
    "valid_rate": ("valid_play_cnt", "play_cnt"),
    "short_rate": ("short_time_play_cnt", "play_cnt"),
    "like_rate": ("like_cnt", "play_cnt"),
}


def _item_table(video_ids: np.ndarray, side: SideTables) -> pd.DataFrame:
    """One row per video of ``video_ids`` (in that order) with its static attributes.

    Metadata come from the video's first row of ``item_daily_features`` (its upload-time
    attributes), categories from the caption table, tags from ``item_categories``.
    """
    daily = side.item_daily.sort_values(["video_id", "date"], kind="stable")
    first = daily.drop_duplicates("video_id").set_index("video_id")
    meta_columns = ["author_id", "video_type", "upload_dt", "upload_type", "visible_status"]
    meta_columns += ["video_width", "video_height", "music_id"]
    items = first[meta_columns].reindex(video_ids)
    items["has_meta"] = np.isin(video_ids, first.index.to_numpy())
    captions = side.captions.set_index("video_id").reindex(video_ids)
    for k, level in enumerate(("first", "second", "third"), start=1):
        items[f"category{k}"] = captions[f"{level}_level_category_id"].astype("Int32")
    tags = side.item_categories.set_index("video_id")["feat"].reindex(video_ids)
    items["tags"] = [t if isinstance(t, list) else [] for t in tags]
    return items


def _item_features(
    cols: _Columns,
    items: pd.DataFrame,
    frame: pd.DataFrame,
    item_rows: np.ndarray,
    day: np.ndarray,
    train_rows: np.ndarray,
    side: SideTables,
    cfg: FeatureConfig,
) -> None:
    """Item features: static ones per video, gathered to rows, then the lagged daily statistics."""
    weights = np.bincount(item_rows[train_rows], minlength=len(items))
    duration_s = frame["video_duration_ms"].to_numpy(dtype="float64") / 1000.0
    cols.add("item_log_duration_s", "item", "numeric", np.log(duration_s))
    width = items["video_width"].to_numpy(dtype="float64", na_value=np.nan)
    height = items["video_height"].to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = np.where((width > 0) & (height > 0), np.log(width / height), np.nan)
    cols.add("item_log_aspect_ratio", "item", "numeric", aspect[item_rows])
    upload_day = items["upload_dt"].to_numpy("datetime64[D]")
    upload_day = np.where(np.isnat(upload_day), np.nan, upload_day.astype(np.int64))
    age_d = np.maximum(day - upload_day[item_rows], 0.0)
    cols.add("item_log_upload_age_d", "item", "numeric", np.log1p(age_d))
    cols.add("item_meta_missing", "item", "binary", (~items["has_meta"].to_numpy())[item_rows])
    for name in ("video_type", "upload_type", "visible_status", "author_id", "music_id"):
        cols.add_categorical(f"item_{name}", "item", items[name], weights, item_rows, cfg)
    for k in (1, 2, 3):
        category = items[f"category{k}"].where(items[f"category{k}"] != UNKNOWN_CATEGORY_ID)
        cols.add_categorical(f"item_category{k}", "item", category, weights, item_rows, cfg)
    _tag_features(cols, items["tags"], weights, item_rows, cfg)
    lagged = lagged_item_stats(side.item_daily, frame["video_id"].to_numpy(), frame["date"])
    for name, values in lagged.items():
        cols.add(name, "item", "binary" if name.endswith("_missing") else "numeric", values)


def _tag_features(
    cols: _Columns, tags: pd.Series, weights: np.ndarray, item_rows: np.ndarray, cfg: FeatureConfig
) -> None:
    """Multi-hot tags: a column per tag on at least ``onehot_min_share`` of the training rows,
    the rarer tags (and tags never seen in training) pooled into ``item_tag_other``."""
    n_tags = 1 + max((max(t) for t in tags if t), default=0)
    if cols.fitted is not None:  # the kept tags may lie beyond these videos' largest tag
        n_tags = max(n_tags, 1 + int(cols.fitted.tag_kept.max(initial=-1)))
    multi_hot = np.zeros((len(tags), n_tags), dtype=np.float32)
    for i, video_tags in enumerate(tags):
        multi_hot[i, video_tags] = 1.0
    if cols.fitted is not None:
        kept = cols.fitted.tag_kept
    else:
        share = weights @ multi_hot / max(weights.sum(), 1)
        kept = np.flatnonzero(share >= cfg.onehot_min_share)
    for tag in kept:
        cols.add(f"item_tag_{tag}", "item", "multihot", multi_hot[item_rows, tag])
    rare = np.setdiff1d(np.arange(n_tags), kept)
    other = multi_hot[:, rare].max(axis=1, initial=0.0)
    cols.tag_kept = kept
    cols.add("item_tag_other", "item", "multihot", other[item_rows])
    cols.encoders["item_tag"] = {"kind": "multihot", "kept": kept.tolist(), "other": rare.tolist()}


def lagged_item_stats(
    daily: pd.DataFrame, video_id: np.ndarray, date: np.ndarray
) -> dict[str, np.ndarray]:
    """Each interaction's video statistics on its latest ``item_daily_features`` day strictly
    before the interaction's ``date`` (YYYYMMDD; usually the day before).

    A day's counts include that day's outcomes, so the same day is never used. Returns raw
    columns (NaN where missing, or where a rate's denominator is 0) and the 0/1 column
    ``item_prev_day_missing`` (no earlier day: before the video's first row, or no row at all).
    """
    daily = daily.sort_values(["video_id", "date"], kind="stable").reset_index(drop=True)
    stats = {"log_show": np.log1p(daily["show_cnt"].to_numpy("float64", na_value=np.nan))}
    for name, (num, den) in DAILY_RATES.items():
        stats[name] = _safe_ratio(daily[num], daily[den])
    stats["progress"] = daily["play_progress"].to_numpy("float64", na_value=np.nan)

    day = _day_number(date)
    videos, video_index = np.unique(daily["video_id"].to_numpy(), return_inverse=True)
    daily_day = _day_number(daily["date"].to_numpy())
    first_day = min(int(daily_day.min(initial=day.min())), int(day.min())) - 1
    n_days = max(int(daily_day.max(initial=day.max())), int(day.max())) - first_day + 1
    latest = np.full((len(videos), n_days), -1, dtype=np.int64)  # latest daily row <= each day
    latest[video_index, daily_day - first_day] = np.arange(len(daily))
    latest = np.maximum.accumulate(latest, axis=1)  # a video's rows increase with the date

    pos = np.searchsorted(videos, video_id).clip(0, max(len(videos) - 1, 0))
    known = (videos[pos] == video_id) if len(videos) else np.zeros(len(video_id), dtype=bool)
    row = np.where(known, latest[pos, day - 1 - first_day] if len(videos) else -1, -1)
    missing = row < 0
    out = {"item_prev_day_missing": missing.astype(np.float64)}
    for name, values in stats.items():
        out[f"item_prev_day_{name}"] = np.where(missing, np.nan, values[row])
    return out
