"""User, item, context and history features of the value model (notebook 02_features).

``build_features(interactions, side, cfg)`` turns the study's interaction table (01_data) and the
release's side tables into one float32 column per feature, and ``write_processed`` writes
``{train,val,test}.parquet`` and the manifest ``features.json`` that later stages read instead of
repeating lists of columns. The four groups (DESIGN.md section 4):

- **user** (``user_*``): activity degree, low-active period, live streamer, video author, follow /
  fan / friend counts and register days (log) with their range bins (ordinal), and the eighteen
  encrypted ``onehot_feat*``.
- **item** (``item_*``): duration and aspect ratio (log), days since upload, video type, upload
  type, visibility, author and music ids, the caption's three category levels, the 31 tags
  (multi-hot), and the video's statistics of the latest day *before* the interaction's day in
  ``item_daily_features`` (a day's counts include that day's outcomes, so never the same day).
- **context** (``ctx_*``): burst, day within the burst, position in session, hour of day as sine /
  cosine, weekend.
- **history** (``hist_*``): per user, exponential moving averages (EMAs) of each head's past
  outcomes at two half-lives, the EMA of ``complete`` within the video's category, the user's
  share of past events in that category and the entropy of their category mix, time since they
  last watched the author, the last outcome's ``complete``, past events, and the previous
  session's length and the gap since it ended.

Leakage rules. History features count only events with a timestamp strictly before the
interaction's: events sharing a timestamp all get the state from before the first of them.
Encoders, imputation values and scalers are fitted on the training split only, so the features
of every event before a time ``t`` at or after the first non-training day do not depend on any
event at or after ``t`` (``tests/test_features.py`` checks this by changing and deleting them).

Encodings. A categorical with at most ``max_onehot_levels`` levels among the training rows is
one-hot with the most frequent level as the reference (no column). Levels on less than
``onehot_min_share`` of the training rows, and levels never seen in training, pool into
``<name>_other``; when the rare levels together are still below that share there is no ``other``
column and they join the reference (all zeros). Missing is a level (``na``). A categorical with
more levels (author and music ids, the finer category levels, some encrypted user features)
becomes ``log1p`` of its count among the training rows (an unseen level counts 0). Tags on less
than ``onehot_min_share`` of the training rows pool into ``item_tag_other``. Numeric, ordinal
and frequency columns are imputed with their training mean where missing, then standardised
with the training mean and sd (``manifest["scaler"]``); where missingness itself says something
(no previous event, never watched this author, first session, no earlier daily statistics, no
item metadata, empty encrypted user features) a 0/1 indicator column says so. Binary, one-hot,
multi-hot and cyclic (sine / cosine) columns are left as they are.

The category of the history features is the video's first tag in ``item_categories`` (31
levels, one for every video), rather than the caption's first-level category, which is
``UNKNOWN`` for some videos.

The history features are one pass of a numba loop over the rows sorted by user and time, and
every other feature is computed once per user, per video or per day and gathered to the rows, so
the full 12.5M-row KuaiRec takes minutes (``benchmarks/bench_features.py``).
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kuairec_utils.config import kuairec_data_dir
from kuairec_utils.data.kuairec import UNKNOWN_CATEGORY_ID, read_table
from kuairec_utils.data.sessions import SPLITS
from kuairec_utils.heads import HEADS

GROUPS: tuple[str, ...] = ("user", "item", "context", "history")
ID_COLUMNS: tuple[str, ...] = (
    "raw_row",
    "user_id",
    "video_id",
    "session_id",
    "position",
    "timestamp",
    "date",
    "burst",
    "split",
)
LABEL_COLUMNS: tuple[str, ...] = HEADS
SCALED_TYPES: tuple[str, ...] = ("numeric", "ordinal", "frequency")  # standardised on train
CATEGORY_SOURCE = "item_categories.feat[0]"  # the category of the history's category features
MANIFEST_NAME = "features.json"
QUERY_SPLIT = "query"  # rows that ask "what if this video were shown then" (query_features)
ROW_GROUP_ROWS = 1_000_000  # rows per parquet row group (bounds the memory of writing)


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of 02_features (params.yaml section ``features``)."""

    ema_half_life_short: float = 5.0  # EMA of each head's past outcomes: half-life in events
    ema_half_life_long: float = 50.0  # ... a longer memory
    category_half_life: float = 10.0  # EMA of complete within a category: half-life in its events
    max_onehot_levels: int = 12  # categoricals with more training levels get a frequency encoding
    onehot_min_share: float = 0.02  # one-hot levels rarer than this share of training rows pool

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> FeatureConfig:
        """Build from the ``features`` section of params.yaml, checking every value."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - names)
        if unknown:
            raise ValueError(f"params features: unknown key(s) {unknown}; valid: {sorted(names)}")
        cfg = cls(**dict(section))
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ValueError naming the first bad parameter."""
        for name in ("ema_half_life_short", "ema_half_life_long", "category_half_life"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"params features.{name} = {value!r}: must be a positive number")
        if self.ema_half_life_short == self.ema_half_life_long:
            raise ValueError("params features: the two EMA half-lives must differ")
        levels = self.max_onehot_levels
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
            raise ValueError(f"params features.max_onehot_levels = {levels!r}: an integer >= 2")
        if not 0 <= self.onehot_min_share < 0.5:
            raise ValueError(
                f"params features.onehot_min_share = {self.onehot_min_share!r}: must be in [0, 0.5)"
            )

    @property
    def half_lives(self) -> tuple[float, float]:
        return (float(self.ema_half_life_short), float(self.ema_half_life_long))


@dataclass
class SideTables:
    """The release's side tables the features use, as ``read_table`` returns them."""

    user_features: pd.DataFrame
    item_categories: pd.DataFrame
    captions: pd.DataFrame  # kuairec_caption_category
    item_daily: pd.DataFrame  # item_daily_features


def load_side_tables(raw_dir: str | Path) -> SideTables:
    """Read the four side tables of the release (real or simulated) unpacked under ``raw_dir``."""
    data = kuairec_data_dir(raw_dir)
    return SideTables(
        user_features=read_table(data, "user_features"),
        item_categories=read_table(data, "item_categories"),
        captions=read_table(data, "kuairec_caption_category"),
        item_daily=read_table(data, "item_daily_features"),
    )


# --- checks and small helpers ---------------------------------------------------------------------


def check_split_days(
    date: np.ndarray, split: np.ndarray, burst: np.ndarray | None = None, mode: str = "global"
) -> dict[str, list[int]]:
    """Check that every day is in exactly one split and that later splits have later days.

    ``mode="global"``: every train day < every val day < every test day; ``mode="burst"``: the
    same within each burst. Returns the days of each split; raises ValueError otherwise.
    """
    frame = pd.DataFrame({"date": np.asarray(date), "split": pd.Categorical(split)})
    frame["group"] = np.asarray(burst) if mode == "burst" else 0
    per_day = frame.drop_duplicates(["date", "split"])
    shared = per_day["date"][per_day["date"].duplicated()].unique()
    if len(shared):
        raise ValueError(f"days in more than one split: {sorted(shared.tolist())[:5]}")
    for group, days in per_day.groupby("group"):
        bounds = days.groupby("split")["date"].agg(["min", "max"])
        present = [s for s in SPLITS if s in bounds.index]
        for earlier, later in zip(present, present[1:], strict=False):
            if not bounds.loc[earlier, "max"] < bounds.loc[later, "min"]:
                where = "" if mode == "global" else f" in burst {group}"
                raise ValueError(f"{earlier} days are not all before {later} days{where}")
    return {s: sorted(per_day.loc[per_day["split"] == s, "date"].tolist()) for s in SPLITS}


def _day_number(yyyymmdd: np.ndarray) -> np.ndarray:
    """YYYYMMDD integers as days since 1970-01-01 (int64)."""
    codes, uniques = pd.factorize(np.asarray(yyyymmdd))
    days = pd.to_datetime(pd.Series(uniques).astype(str), format="%Y%m%d")
    return days.to_numpy("datetime64[D]").astype(np.int64)[codes]


def _column_name(*parts: object) -> str:
    """A column name of lower-case letters, digits and underscores."""
    text = "_".join(str(p) for p in parts)
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()


def _safe_ratio(num: pd.Series, den: pd.Series) -> np.ndarray:
    """num / den as float64, NaN where either is missing or den is 0."""
    num = num.to_numpy(dtype="float64", na_value=np.nan)
    den = den.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


# --- categorical encodings (fitted on training rows) ----------------------------------------------


@dataclass(frozen=True)
class CategoricalEncoder:
    """One-hot (reference level dropped, rare levels pooled) or frequency encoding of one column.

    Fitted on entity-level values (one per user, video or row) weighted by each entity's count of
    training rows, so a level's share is its share of the training rows. Missing values are a
    level of their own (``"NA"``).
    """

    kind: str  # "onehot" | "frequency"
    counts: pd.Series  # training rows per level, most frequent first
    kept: tuple[str, ...] = ()  # one-hot: levels with a column (the reference is counts.index[0])
    has_other: bool = False  # one-hot: rare (and unseen) levels have an "other" column

    @classmethod
    def fit(
        cls, values: pd.Series, weights: np.ndarray, max_levels: int, min_share: float
    ) -> CategoricalEncoder:
        labels = _labels(values)
        counts = pd.Series(np.asarray(weights, dtype="float64")).groupby(labels.to_numpy()).sum()
        counts = counts[counts > 0]
        order = np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))
        counts = counts.iloc[order]
        if len(counts) > max_levels:
            return cls("frequency", counts)
        share = counts / counts.sum()
        rest = share.iloc[1:]  # the most frequent level is the reference
        kept = tuple(rest.index[(rest >= min_share).to_numpy()])
        pooled = rest[(rest < min_share).to_numpy()].sum()  # rarer together: join the reference
        return cls("onehot", counts, kept, bool(pooled >= min_share))

    def transform(self, values: pd.Series) -> dict[str, np.ndarray]:
        """Encoded columns by name suffix (level, ``other`` or ``freq``), float32."""
        labels = _labels(values)
        if self.kind == "frequency":
            count = labels.map(self.counts).to_numpy(dtype="float64", na_value=0.0)
            return {"freq": np.log1p(count).astype(np.float32)}
        out = {level: (labels == level).to_numpy(np.float32) for level in self.kept}
        if self.has_other:  # the rare levels, and levels never seen in training
            out["other"] = (~labels.isin({self.counts.index[0], *self.kept})).to_numpy(np.float32)
        return out


def _labels(values: pd.Series) -> pd.Series:
    """Category values as strings, missing values as the level ``"NA"``."""
    return pd.Series(values).astype("string").fillna("NA").astype(object)


def _range_rank(labels: pd.Series) -> np.ndarray:
    """Ordinal rank of range bins like ``0``, ``(0,10]``, ``[1,10)``, ``[1w,10w)``, ``500+``.

    Bins are ordered by their lower bound (``k`` = 1e3, ``w`` = 1e4), a closed bound first; the
    rank is over the categories the file defines, so it does not depend on the rows.
    """
    categories = list(labels.cat.categories)

    def key(text: str) -> tuple[float, int]:
        match = re.match(r"\s*([(\[]?)\s*([0-9.]+)\s*([kw]?)", text)
        if match is None:
            return (np.inf, 0)
        scale = {"": 1.0, "k": 1e3, "w": 1e4}[match.group(3)]
        return (float(match.group(2)) * scale, int(match.group(1) == "("))

    rank = {c: r for r, c in enumerate(sorted(categories, key=key))}
    return labels.astype(object).map(rank).to_numpy(dtype="float64", na_value=np.nan)


# --- the feature table under construction ---------------------------------------------------------


@dataclass
class _Columns:
    """Feature columns being built: float32 values (NaN = missing) and their manifest entries."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    specs: list[dict[str, str]] = field(default_factory=list)
    encoders: dict[str, dict[str, Any]] = field(default_factory=dict)
    fitted: FittedFeatures | None = None  # given: transform with its encoders, fit nothing
    fitted_encoders: dict[str, CategoricalEncoder] = field(default_factory=dict)
    tag_kept: np.ndarray | None = None  # what was fitted (or given), for FittedFeatures
    burst_first_day: dict[int, float] = field(default_factory=dict)

    def add(self, name: str, group: str, kind: str, values: np.ndarray) -> None:
        if name in self.values:
            raise ValueError(f"duplicate feature name {name!r}")
        self.values[name] = np.asarray(values, dtype=np.float32)
        self.specs.append({"name": name, "group": group, "type": kind})

    def add_categorical(
        self,
        name: str,
        group: str,
        values: pd.Series,
        weights: np.ndarray,
        rows: np.ndarray | None,
        cfg: FeatureConfig,
    ) -> None:
        """Encode an entity-level categorical (fitted on ``weights``, or the encoder of
        ``self.fitted``) and gather it to ``rows``."""
        if self.fitted is not None:
            enc = self.fitted.encoders[name]
        else:
            enc = CategoricalEncoder.fit(
                values, weights, cfg.max_onehot_levels, cfg.onehot_min_share
            )
        self.fitted_encoders[name] = enc
        for suffix, column in enc.transform(values).items():
            self.add(
                _column_name(name, suffix),
                group,
                enc.kind,
                column if rows is None else column[rows],
            )
        entry: dict[str, Any] = {"kind": enc.kind, "train_levels": len(enc.counts)}
        if enc.kind == "onehot":
            entry |= {"reference": enc.counts.index[0], "kept": list(enc.kept)}
            entry["other"] = enc.has_other
        self.encoders[name] = entry


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


# --- context features -----------------------------------------------------------------------------


def _context_features(
    cols: _Columns, frame: pd.DataFrame, day: np.ndarray, train_rows: np.ndarray, cfg: FeatureConfig
) -> None:
    """Burst (one-hot, fitted on train) and day within it, position, hour of day, weekend."""
    burst = frame["burst"].to_numpy()
    bursts, burst_rows = np.unique(burst, return_inverse=True)
    weights = np.bincount(burst_rows[train_rows], minlength=len(bursts))
    cols.add_categorical("ctx_burst", "context", pd.Series(bursts), weights, burst_rows, cfg)
    if cols.fitted is not None:
        first = cols.fitted.burst_first_day
        if not set(bursts.tolist()) <= set(first):
            raise ValueError(f"rows of bursts the features were not fitted on: {bursts.tolist()}")
        burst_first = np.array([first[b] for b in bursts.tolist()], dtype=np.float64)
    else:
        burst_first = pd.Series(day).groupby(burst_rows).min().to_numpy()
    cols.burst_first_day = dict(zip(bursts.tolist(), burst_first.tolist(), strict=True))
    first_day = burst_first[burst_rows]
    burst_day = np.where(burst >= 0, np.log1p(day - first_day), np.nan)
    cols.add("ctx_log_burst_day", "context", "numeric", burst_day)
    cols.add("ctx_log_position", "context", "numeric", np.log1p(frame["position"].to_numpy()))
    ms_of_day = frame["time"].to_numpy("datetime64[ms]").astype(np.int64) % 86_400_000
    angle = 2 * np.pi * ms_of_day / 86_400_000
    cols.add("ctx_hour_sin", "context", "cyclic", np.sin(angle))
    cols.add("ctx_hour_cos", "context", "cyclic", np.cos(angle))
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    cols.add("ctx_weekend", "context", "binary", weekday >= 5)


# --- history features -----------------------------------------------------------------------------


@numba.njit(cache=True)  # compiled once, then read from __pycache__
def _history_kernel(user, ts, labels, category, author, update, alphas, category_alpha, prior):  # noqa: ANN001 (numba)
    """One pass over rows sorted by user, then timestamp; features from strictly earlier events.

    Rows with ``update`` 0 are queries: they read the state like any row and never change it.

    A tie group (rows of one user sharing a timestamp) has no order: every row gets the state
    from before the group, and the group updates the state at once, as its mean outcome. With
    ``m`` tied events an EMA moves ``1 - (1 - alpha)**m`` of the way to their mean, which is the
    usual ``alpha`` step when ``m = 1``. Returns, per row: the EMA of each head at each of
    ``alphas`` (column ``a * n_heads + head``), the number of earlier events, the latest earlier
    ``complete`` (the tie group's max; -1 if none), the EMA of ``complete`` in the row's category
    (NaN without one), the share of earlier events in that category, the entropy (nats) of the
    category mix, and seconds since the author was last watched (NaN if never). ``category`` and
    ``author`` are codes (0..C-1, 0..A-1), -1 when unknown.
    """
    n, n_heads, n_alpha = len(ts), labels.shape[1], len(alphas)
    n_cat = category.max() + 1 if n > 0 and category.max() >= 0 else 1
    n_author = author.max() + 1 if n > 0 and author.max() >= 0 else 1
    ema_out = np.empty((n, n_alpha * n_heads))
    n_prev, last_complete = np.empty(n), np.empty(n)
    cat_ema_out, cat_share, entropy, author_gap = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    ema, mean = np.empty((n_alpha, n_heads)), np.empty(n_heads)  # the user's state ...
    cat_ema, cat_count = np.empty(n_cat), np.zeros(n_cat)
    author_seen, author_owner = np.empty(n_author), np.full(n_author, -1)
    count = sum_clogc = last = 0.0
    group_n, group_sum = np.zeros(n_cat), np.zeros(n_cat)  # ... and a tie group's, by category
    user_index, i = -1, 0
    while i < n:
        if i == 0 or user[i] != user[i - 1]:  # a new user: the prior state
            user_index += 1
            for a in range(n_alpha):
                ema[a, :] = prior
            cat_ema[:], cat_count[:] = prior[0], 0.0
            count, sum_clogc, last = 0.0, 0.0, -1.0
        j = i + 1
        while j < n and user[j] == user[i] and ts[j] == ts[i]:
            j += 1
        for r in range(i, j):  # the tie group's features: the state before it
            ema_out[r, :] = ema.ravel()
            n_prev[r], last_complete[r] = count, last
            c = category[r]
            cat_ema_out[r] = cat_ema[c] if c >= 0 else np.nan
            cat_share[r] = cat_count[c] / count if c >= 0 and count > 0 else 0.0
            entropy[r] = max(np.log(count) - sum_clogc / count, 0.0) if count > 0 else 0.0
            a = author[r]
            seen = a >= 0 and author_owner[a] == user_index
            author_gap[r] = ts[r] - author_seen[a] if seen else np.nan
        m = 0  # then the group's events (not its queries) update the state, at once
        for r in range(i, j):
            m += update[r]
        if m == 0:
            i = j
            continue
        for h in range(n_heads):
            total = 0.0
            for r in range(i, j):
                if update[r]:
                    total += labels[r, h]
            mean[h] = total / m
        for a in range(n_alpha):
            step = 1.0 - (1.0 - alphas[a]) ** m
            ema[a, :] = (1.0 - step) * ema[a, :] + step * mean
        last = 0.0
        for r in range(i, j):
            if not update[r]:
                continue
            last = max(last, float(labels[r, 0]))
            c = category[r]
            if c >= 0:
                group_n[c] += 1.0
                group_sum[c] += labels[r, 0]
            if author[r] >= 0:
                author_seen[author[r]], author_owner[author[r]] = ts[r], user_index
        for r in range(i, j):
            c = category[r]
            if c >= 0 and group_n[c] > 0:  # each category of the group once
                step = 1.0 - (1.0 - category_alpha) ** group_n[c]
                cat_ema[c] = (1.0 - step) * cat_ema[c] + step * group_sum[c] / group_n[c]
                old, new = cat_count[c], cat_count[c] + group_n[c]
                sum_clogc += new * np.log(new) - (old * np.log(old) if old > 0 else 0.0)
                cat_count[c], group_n[c], group_sum[c] = new, 0.0, 0.0
        count += m
        i = j
    return ema_out, n_prev, last_complete, cat_ema_out, cat_share, entropy, author_gap


def history_features(
    user_id: np.ndarray,
    timestamp: np.ndarray,
    labels: np.ndarray,
    category: np.ndarray,
    author: np.ndarray,
    half_lives: Sequence[float],
    category_half_life: float,
    prior: np.ndarray,
    update: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Raw (unscaled) history features of each row, from the same user's strictly earlier events.

    ``update`` (bool, default all true) marks the rows that are events; the others are queries
    (a video the user could have been shown at that time): they get the state at their time,
    as an event there would, and never change it.

    ``labels`` is (rows, heads) 0/1 in ``HEADS`` order (``complete`` first); ``category`` and
    ``author`` are non-negative codes, -1 when unknown; ``prior`` the heads' training means, the
    EMAs' value before a user's first event. An EMA with half-life ``h`` events moves
    ``alpha = 1 - 2**(-1/h)`` of the way to each new outcome; events sharing a timestamp move it
    together, to their mean (``_history_kernel``), so their order does not matter. Rows may come
    in any order; results follow it. Missing values are NaN (``hist_author_log_gap_s``: never watched; ``hist_last_complete`` is 0
    before the first event, which ``hist_no_previous_event`` flags).
    """
    user_id, timestamp = np.asarray(user_id), np.asarray(timestamp, dtype=np.float64)
    later = (user_id[1:] > user_id[:-1]) | (
        (user_id[1:] == user_id[:-1]) & (timestamp[1:] >= timestamp[:-1])
    )
    order = slice(None) if later.all() else np.lexsort((timestamp, user_id))  # 01_data's sort
    alphas = 1.0 - 2.0 ** (-1.0 / np.asarray(half_lives, dtype=np.float64))
    out = _history_kernel(
        user_id[order],
        timestamp[order],
        np.ascontiguousarray(np.asarray(labels, dtype=np.int8)[order]),
        np.asarray(category, dtype=np.int64)[order],
        np.asarray(author, dtype=np.int64)[order],
        (np.ones(len(user_id), np.int8) if update is None else np.asarray(update, np.int8))[order],
        alphas,
        1.0 - 2.0 ** (-1.0 / float(category_half_life)),
        np.asarray(prior, dtype=np.float64),
    )
    gc.collect()  # numba's first compile leaves reference cycles that hold the (large) inputs
    if isinstance(order, np.ndarray):  # back to the rows' own order
        unsorted = [np.empty_like(values) for values in out]
        for values, sorted_values in zip(unsorted, out, strict=True):
            values[order] = sorted_values
        out = tuple(unsorted)
    ema, n_prev, last, cat_ema, cat_share, entropy, author_gap = out
    features = {}
    for a, h in enumerate(half_lives):
        for k, head in enumerate(HEADS):
            features[f"hist_{head}_ema{h:g}"] = ema[:, a * len(HEADS) + k]
    features["hist_log_n_events"] = np.log1p(n_prev)
    features["hist_no_previous_event"] = (n_prev == 0).astype(np.float64)
    features["hist_last_complete"] = np.maximum(last, 0.0)
    features["hist_category_complete_ema"] = cat_ema
    features["hist_category_share"] = cat_share
    features["hist_category_entropy"] = entropy
    features["hist_author_log_gap_s"] = np.log1p(author_gap)
    features["hist_author_never"] = np.isnan(author_gap).astype(np.float64)
    return features


def previous_session_features(
    user_id: np.ndarray,
    session_id: np.ndarray,
    timestamp: np.ndarray,
    update: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The user's previous session: log1p of its rows and of the seconds from its last event to
    this session's first; NaN in a user's first session (flagged by ``hist_first_session``).

    Constant within a session. Rows may come in any order; results follow it. Only the rows
    marked in ``update`` (default: all) count as events; the others (queries) get the values of
    their session.
    """
    user_id, session_id = np.asarray(user_id), np.asarray(session_id)
    timestamp = np.asarray(timestamp, dtype=np.float64)
    events = pd.DataFrame({"user": user_id, "session": session_id, "ts": timestamp})
    if update is not None:
        events["ts"] = events["ts"].where(np.asarray(update, dtype=bool))  # queries: not counted
    grouped = events.groupby(["user", "session"], sort=False)
    row_session = grouped.ngroup().to_numpy()  # the row's session, numbered as in `per`
    per = grouped.agg(n=("ts", "count"), start=("ts", "min"), end=("ts", "max")).reset_index()
    per = per.iloc[np.lexsort((per["start"].to_numpy(), per["user"].to_numpy()))]
    same_user = per["user"].eq(per["user"].shift()).to_numpy()
    prev_len = np.where(same_user, np.log1p(per["n"].shift().to_numpy()), np.nan)
    gap = per["start"].to_numpy() - per["end"].shift().to_numpy()
    prev_gap = np.where(same_user, np.log1p(np.maximum(gap, 0.0)), np.nan)
    by_session = np.empty((len(per), 2))  # back to the groups' numbering
    by_session[per.index.to_numpy()] = np.column_stack([prev_len, prev_gap])
    prev_len, prev_gap = by_session[row_session, 0], by_session[row_session, 1]
    return {
        "hist_prev_session_log_len": prev_len,
        "hist_prev_session_log_gap_s": prev_gap,
        "hist_first_session": np.isnan(prev_len).astype(np.float64),
    }


HISTORY_TYPES = {
    "hist_no_previous_event": "binary",
    "hist_last_complete": "binary",
    "hist_author_never": "binary",
    "hist_first_session": "binary",
}


def _history_group(
    cols: _Columns,
    frame: pd.DataFrame,
    items: pd.DataFrame,
    item_rows: np.ndarray,
    prior: np.ndarray,
    cfg: FeatureConfig,
) -> None:
    """History features of every row; the category is the video's first tag."""
    first_tag = np.array([t[0] if t else -1 for t in items["tags"]], dtype=np.int64)
    author_codes = pd.factorize(items["author_id"])[0]  # -1 where the author is unknown
    events = (frame["split"] != QUERY_SPLIT).to_numpy()
    history = history_features(
        frame["user_id"].to_numpy(),
        frame["timestamp"].to_numpy(),
        frame[list(HEADS)].to_numpy(),
        first_tag[item_rows],
        author_codes[item_rows],
        cfg.half_lives,
        cfg.category_half_life,
        prior,
        update=events,
    )
    history |= previous_session_features(
        frame["user_id"].to_numpy(),
        frame["session_id"].to_numpy(),
        frame["timestamp"].to_numpy(),
        update=events,
    )
    for name, values in history.items():
        cols.add(name, "history", HISTORY_TYPES.get(name, "numeric"), values)


# --- imputation, scaling, assembly ----------------------------------------------------------------


def _impute_and_scale(cols: _Columns, train_rows: np.ndarray) -> dict[str, list[float]]:
    """Impute missing values with the training mean and standardise the scaled types, in place
    (with ``cols.fitted``: its means and sds, whatever the rows).

    Returns ``{name: [mean, sd]}`` of the standardised columns (sd 1 for a constant column).
    """
    scaler = {}
    for spec in cols.specs:
        name, values = spec["name"], cols.values[spec["name"]]
        if spec["type"] not in SCALED_TYPES:
            if np.isnan(values).any():
                raise ValueError(f"feature {name} ({spec['type']}) has missing values")
            continue
        if cols.fitted is not None:
            mean, sd = cols.fitted.scaler[name]
            values[np.isnan(values)] = mean
        else:
            train = values[train_rows]
            present = ~np.isnan(train)
            mean = float(train[present].mean(dtype=np.float64)) if present.any() else 0.0
            values[np.isnan(values)] = mean
            sd = float(values[train_rows].std(dtype=np.float64))
            sd = sd if sd > 0 else 1.0
        values -= np.float32(mean)
        values /= np.float32(sd)
        scaler[name] = [mean, sd]
    return scaler


@dataclass(frozen=True)
class FittedFeatures:
    """Everything ``build_features`` fits on its rows: with it, ``build_features`` transforms
    other rows (e.g. one user's events and queries) exactly as it transformed those rows, without
    the training rows at hand. A feature depends otherwise only on its own row, its user's rows,
    its video and the side tables."""

    prior: np.ndarray  # the heads' training means (the history EMAs' start)
    encoders: dict[str, CategoricalEncoder]  # by categorical feature
    tag_kept: np.ndarray  # the tags with a column of their own
    burst_first_day: dict[int, float]  # day number of each burst's first row
    scaler: dict[str, list[float]]  # [mean, sd] by standardised feature
    manifest: dict[str, Any]  # of the fit


@dataclass
class FeatureSet:
    """The features of every interaction (rows in the input's order) and their manifest."""

    ids: pd.DataFrame  # ID_COLUMNS and LABEL_COLUMNS
    features: dict[str, np.ndarray]  # float32 column per feature, manifest order
    manifest: dict[str, Any]
    fitted: FittedFeatures | None = None  # what the features were fitted with

    @property
    def names(self) -> list[str]:
        return [f["name"] for f in self.manifest["features"]]

    def frame(
        self, split: str | None = None, max_rows: int | None = None, seed: int = 0
    ) -> pd.DataFrame:
        """Ids, labels and features as one DataFrame, of one split or all rows; at most
        ``max_rows`` of them (a uniform sample, in row order) when given."""
        rows = np.arange(len(self.ids))
        if split is not None:
            rows = rows[(self.ids["split"] == split).to_numpy()]
        if max_rows is not None and len(rows) > max_rows:
            rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
        ids = self.ids.iloc[rows].reset_index(drop=True)
        features = pd.DataFrame({n: self.features[n][rows] for n in self.names}, copy=False)
        return pd.concat([ids, features], axis=1)


def build_features(
    interactions: pd.DataFrame,
    side: SideTables,
    cfg: FeatureConfig | None = None,
    split_mode: str = "global",
    fitted: FittedFeatures | None = None,
) -> FeatureSet:
    """Every feature of every interaction of the 01_data table, leak-free (module docstring).

    ``interactions`` has the columns ``build_interactions`` writes; ``split_mode`` is 01_data's
    (``global``: train days before val days before test days; ``burst``: within each burst), and
    is checked. Encoders, imputation and scaling are fitted on the ``train`` rows only; the
    result's ``fitted`` holds them. Given ``fitted`` (of a build with the same ``cfg``), nothing
    is fitted: the rows are transformed with it, so a subset of users' rows gets the features
    the whole table gave them.
    """
    cfg = cfg or FeatureConfig()
    cfg.validate()
    frame = interactions
    events = (frame["split"] != QUERY_SPLIT).to_numpy()
    check_split_days(
        frame["date"].to_numpy()[events],
        frame["split"].to_numpy()[events],
        frame["burst"].to_numpy()[events],
        split_mode,
    )
    train_rows = (frame["split"] == "train").to_numpy()
    if fitted is not None:
        if fitted.manifest["params"] != {**fitted.manifest["params"], **asdict(cfg)}:
            raise ValueError("fitted features of another FeatureConfig")
        prior = fitted.prior
    elif not train_rows.any():
        raise ValueError("no training rows: encoders and scalers are fitted on the train split")
    else:
        prior = frame.loc[train_rows, list(HEADS)].mean().to_numpy(dtype=np.float64)
    day = _day_number(frame["date"].to_numpy()).astype(np.float64)

    user_ids, user_rows = np.unique(frame["user_id"].to_numpy(), return_inverse=True)
    video_ids, item_rows = np.unique(frame["video_id"].to_numpy(), return_inverse=True)
    users = side.user_features.set_index("user_id").reindex(user_ids)
    items = _item_table(video_ids, side)

    cols = _Columns(fitted=fitted)
    _user_features(cols, users, user_rows, train_rows, cfg)
    _item_features(cols, items, frame, item_rows, day, train_rows, side, cfg)
    _context_features(cols, frame, day, train_rows, cfg)
    _history_group(cols, frame, items, item_rows, prior, cfg)
    scaler = _impute_and_scale(cols, train_rows)
    ids = frame[list(ID_COLUMNS) + list(LABEL_COLUMNS)].reset_index(drop=True)
    if fitted is not None:
        if [c["name"] for c in cols.specs] != [c["name"] for c in fitted.manifest["features"]]:
            raise ValueError("these rows give other feature columns than the fitted ones")
        return FeatureSet(ids, cols.values, fitted.manifest, fitted)

    manifest = {
        "id_columns": list(ID_COLUMNS),
        "label_columns": list(LABEL_COLUMNS),
        "features": cols.specs,
        "scaler": scaler,
        "params": {
            **asdict(cfg),
            "split_mode": split_mode,
            "category_source": CATEGORY_SOURCE,
            "prior": dict(zip(HEADS, prior.tolist(), strict=True)),
            "n_rows": {s: int((frame["split"] == s).sum()) for s in SPLITS},
        },
        "encoders": cols.encoders,
    }
    assert cols.tag_kept is not None  # set by _tag_features
    state = FittedFeatures(
        prior, cols.fitted_encoders, cols.tag_kept, cols.burst_first_day, scaler, manifest
    )
    return FeatureSet(ids, cols.values, manifest, state)


QUERY_COLUMNS: tuple[str, ...] = ("user_id", "video_id", "session_id", "timestamp")


def query_features(
    interactions: pd.DataFrame,
    queries: pd.DataFrame,
    side: SideTables,
    cfg: FeatureConfig | None = None,
    split_mode: str = "global",
    fitted: FittedFeatures | None = None,
) -> FeatureSet:
    """Features of hypothetical showings: user ``user_id`` shown video ``video_id`` at
    ``timestamp``, in session ``session_id`` (one of the user's sessions in ``interactions``).

    The candidates of head-weight estimation (05) are scored at the start of their session:
    a query there reads every state an event at that time would read (history, lagged daily
    statistics, context at position 0 unless ``queries`` has a ``position`` column) and changes
    nothing, so every real row keeps exactly the features ``build_features(interactions)`` gives
    it (encoders and scalers are fitted on the same training rows; tests check this). Returns
    the queries' features, in the queries' order.

    ``fitted`` (``build_features(interactions, ...).fitted``, computed once) makes it fast: only
    the queried users' events are built beside the queries, with the fitted encoders and scalers
    instead of a new fit on all of ``interactions``, and the features come out the same. That is
    what lets many queries be scored in chunks without rebuilding every event's features per
    chunk.
    """
    missing = [c for c in QUERY_COLUMNS if c not in queries.columns]
    if missing:
        raise ValueError(f"queries lack the column(s) {missing}; need {list(QUERY_COLUMNS)}")
    if (interactions["split"] == QUERY_SPLIT).any():
        raise ValueError(f"interactions must not contain rows of split {QUERY_SPLIT!r}")
    sessions = interactions.groupby("session_id", sort=False).agg(
        user_id=("user_id", "first"), date=("date", "first"), burst=("burst", "first")
    )
    known = queries["session_id"].isin(sessions.index).to_numpy()
    if not known.all():
        bad = queries["session_id"].to_numpy()[~known][:5].tolist()
        raise ValueError(f"queries name sessions that are not in the interactions: {bad}")
    own = sessions.loc[queries["session_id"].to_numpy()]
    if (own["user_id"].to_numpy() != queries["user_id"].to_numpy()).any():
        raise ValueError("queries must name sessions of their own user")
    durations = interactions.groupby("video_id")["video_duration_ms"].first()
    unknown = ~queries["video_id"].isin(durations.index).to_numpy()
    if unknown.any():
        raise ValueError(
            f"queries name videos with no interaction (no duration): "
            f"{queries['video_id'].to_numpy()[unknown][:5].tolist()}"
        )
    ts = queries["timestamp"].to_numpy(dtype=np.float64)
    rows = pd.DataFrame(
        {
            "raw_row": -1,
            "user_id": queries["user_id"].to_numpy(),
            "video_id": queries["video_id"].to_numpy(),
            "video_duration_ms": durations.loc[queries["video_id"].to_numpy()].to_numpy(),
            "time": pd.to_datetime(np.round(ts * 1000).astype(np.int64), unit="ms")
            + pd.Timedelta(hours=8),  # Beijing time, as 01_data writes it
            "date": own["date"].to_numpy(),
            "timestamp": ts,
            "session_id": queries["session_id"].to_numpy(),
            "position": queries["position"].to_numpy() if "position" in queries else 0,
            "burst": own["burst"].to_numpy(),
            "split": QUERY_SPLIT,
        }
    )
    for head in HEADS:
        rows[head] = np.int8(0)
    events = interactions
    if fitted is not None:  # the queried users' events only (a user's features need no others)
        events = interactions[interactions["user_id"].isin(np.unique(rows["user_id"])).to_numpy()]
    frame = pd.concat([events[rows.columns].astype({"split": str}), rows], ignore_index=True)
    built = build_features(frame, side, cfg, split_mode=split_mode, fitted=fitted)
    keep = slice(len(events), len(frame))  # the queries, after the events (views, no copies)
    ids = built.ids.iloc[keep].reset_index(drop=True)
    return FeatureSet(
        ids, {n: v[keep] for n, v in built.features.items()}, built.manifest, built.fitted
    )


def write_processed(features: FeatureSet, out_dir: str | Path) -> dict[str, int]:
    """Write ``<out_dir>/{train,val,test}.parquet`` and ``features.json``; rows per split.

    Each file holds the id columns, the labels, then the features, in row groups of
    ``ROW_GROUP_ROWS`` so that no split is ever copied whole.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = features.names
    written = {}
    for name in SPLITS:
        rows = np.flatnonzero((features.ids["split"] == name).to_numpy())
        writer = None
        for start in range(0, max(len(rows), 1), ROW_GROUP_ROWS):
            chunk = rows[start : start + ROW_GROUP_ROWS]
            table = pa.Table.from_pandas(features.ids.iloc[chunk], preserve_index=False)
            for feature in names:
                table = table.append_column(feature, pa.array(features.features[feature][chunk]))
            if writer is None:
                writer = pq.ParquetWriter(  # dictionaries only pay off for the split's name
                    out / f"{name}.parquet", table.schema, use_dictionary=["split"]
                )
            writer.write_table(table)
        writer.close()
        written[name] = len(rows)
    (out / MANIFEST_NAME).write_text(json.dumps(features.manifest, indent=1) + "\n")
    return written


def read_manifest(processed_dir: str | Path) -> dict[str, Any]:
    """The feature manifest ``features.json`` written by ``write_processed``."""
    return json.loads((Path(processed_dir) / MANIFEST_NAME).read_text())
