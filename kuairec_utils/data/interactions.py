"""From the raw big matrix to the study's interaction table (notebook 01_data).

``build_interactions`` removes exact duplicates and rows without a time, finds sessions and
bursts, filters, splits by calendar day and adds the four head labels. Every count it drops is
reported, so ``metrics/data.json`` says what happened to the raw rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from kuairec_utils.heads import HEADS, LabelThresholds, head_labels
from kuairec_utils.data.sessions import SPLITS, burst_of, find_bursts, sessionize, split_days

OUTSIDE_BURSTS = ("drop", "keep")  # rows outside every burst: dropped, or kept with burst -1
SPLIT_MODES = ("global", "burst")  # later days for val/test overall, or within each burst


@dataclass(frozen=True)
class InteractionsConfig:
    """Parameters of 01_data (params.yaml section ``interactions``)."""

    session_gap_minutes: float = 30.0  # a longer gap ends a session
    n_bursts: int = 3  # high-traffic windows of daily volume
    burst_threshold: float = 0.3  # a busy day has at least this share of the busiest day's rows
    burst_max_gap_days: int = 1  # quiet days bridged inside one burst
    outside_bursts: str = "drop"  # drop | keep (burst id -1)
    min_user_interactions: int = 10  # users with fewer rows (after the video filter) are dropped
    min_video_interactions: int = 5  # videos with fewer rows are dropped
    split_mode: str = "global"  # global | burst
    split_train: float = 4.0  # train : val : test by rows
    split_val: float = 1.0
    split_test: float = 1.0

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> InteractionsConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - names)
        if unknown:
            raise ValueError(
                f"params interactions: unknown key(s) {unknown}; valid: {sorted(names)}"
            )
        cfg = cls(**dict(section))
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ValueError naming the first bad parameter."""

        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"params interactions.{name} = {getattr(self, name)!r}: {why}")

        for name in ("session_gap_minutes", "split_train", "split_val", "split_test"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise bad(name, "must be a positive number")
        for name in (
            "n_bursts",
            "burst_max_gap_days",
            "min_user_interactions",
            "min_video_interactions",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise bad(name, "must be a non-negative integer")
        if self.n_bursts < 1:
            raise bad("n_bursts", "must be at least 1")
        if not 0 < self.burst_threshold <= 1:
            raise bad("burst_threshold", "must be in (0, 1]")
        if self.outside_bursts not in OUTSIDE_BURSTS:
            raise bad("outside_bursts", f"must be one of {OUTSIDE_BURSTS}")
        if self.split_mode not in SPLIT_MODES:
            raise bad("split_mode", f"must be one of {SPLIT_MODES}")

    @property
    def split_ratios(self) -> tuple[float, float, float]:
        return (self.split_train, self.split_val, self.split_test)


def build_interactions(
    big: pd.DataFrame, cfg: InteractionsConfig, thresholds: LabelThresholds
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The study's interaction table from ``read_table(..., "big_matrix")`` and a summary.

    Columns: ``raw_row`` (the row's position in big_matrix.csv, the key to the simulator's
    ground truth), ids, time fields, durations in ms, ``session_id`` and ``position`` (sessions
    are found on all de-duplicated rows, before any filter, so they are the sessions the user
    lived), ``burst``, ``split`` and one 0/1 column per head. Sorted by user, then time.
    """
    n_raw = len(big)
    frame = big.reset_index(drop=True)
    frame.insert(0, "raw_row", np.arange(n_raw, dtype=np.int64))
    duplicate = frame.drop(columns="raw_row").duplicated().to_numpy()
    frame = frame.loc[~duplicate]
    missing = frame["timestamp"].isna().to_numpy() | frame["time"].isna().to_numpy()
    frame = frame.loc[~missing]
    frame = frame.sort_values(["user_id", "timestamp", "raw_row"], kind="stable")
    frame = frame.rename(
        columns={"play_duration": "play_duration_ms", "video_duration": "video_duration_ms"}
    )
    frame["date"] = frame["date"].astype(np.int32)
    session, position = sessionize(
        frame["user_id"].to_numpy(), frame["timestamp"].to_numpy(), cfg.session_gap_minutes
    )
    frame["session_id"], frame["position"] = session, position.astype(np.int32)

    daily = frame.groupby("date").size()
    bursts = find_bursts(daily, cfg.n_bursts, cfg.burst_threshold, cfg.burst_max_gap_days)
    frame["burst"] = burst_of(frame["date"].to_numpy(), bursts)
    n_outside = int((frame["burst"] < 0).sum())
    if cfg.outside_bursts == "drop":
        frame = frame.loc[frame["burst"] >= 0]

    n_before_filter = len(frame)
    video_rows = frame.groupby("video_id")["video_id"].transform("size")
    frame = frame.loc[video_rows >= cfg.min_video_interactions]
    user_rows = frame.groupby("user_id")["user_id"].transform("size")
    frame = frame.loc[user_rows >= cfg.min_user_interactions]
    if frame.empty:
        raise ValueError(
            "no interactions left after filtering: lower interactions.min_user_interactions or "
            "interactions.min_video_interactions"
        )

    group = frame["burst"].to_numpy() if cfg.split_mode == "burst" else None
    day_split = split_days(frame["date"].to_numpy(), cfg.split_ratios, group)
    frame["split"] = pd.Categorical(frame["date"].map(day_split), categories=list(SPLITS))
    for head, label in head_labels(
        frame["watch_ratio"], frame["play_duration_ms"], thresholds
    ).items():
        frame[head] = label
    frame = frame.reset_index(drop=True)
    for split in SPLITS:
        if not (frame["split"] == split).any():
            raise ValueError(f"the {split} split is empty: check interactions.split_* ratios")

    def per_split(values: pd.Series) -> dict[str, float]:
        return {s: float(values[frame["split"] == s].mean()) for s in SPLITS}

    summary = {
        "n_raw": n_raw,
        "duplicates_removed": int(duplicate.sum()),
        "missing_time_removed": int(missing.sum()),
        "outside_bursts": n_outside,
        "outside_bursts_removed": n_outside if cfg.outside_bursts == "drop" else 0,
        "filtered_out": n_before_filter - len(frame),
        "n_interactions": {s: int((frame["split"] == s).sum()) for s in SPLITS},
        "n_sessions": int(frame["session_id"].nunique()),
        "n_users": int(frame["user_id"].nunique()),
        "n_items": int(frame["video_id"].nunique()),
        "bursts": [list(b) for b in bursts],
        "split_days": {s: sorted(d for d, v in day_split.items() if v == s) for s in SPLITS},
        "label_rate": {h: per_split(frame[h]) for h in HEADS},
    }
    return frame, summary
