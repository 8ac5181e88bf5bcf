"""The parameters of 02_features, the column lists of its output and the side tables it reads,
with the check that the splits' days follow each other and small helpers of the other modules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kuairec_utils.config import kuairec_data_dir
from kuairec_utils.data.kuairec import read_table
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
