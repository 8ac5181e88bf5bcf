"""Sessions, bursts and the calendar-day split (docs/design.md section 3; notebook 01_data).

- A user's session ends when the gap to their next interaction exceeds ``session_gap_minutes``.
- Bursts are the high-traffic windows of daily volume: runs of days whose volume is at least
  ``threshold`` times the busiest day's (gaps of at most ``max_gap_days`` quiet days bridged),
  the ``n_bursts`` runs with the most interactions, numbered in time order.
- The split is by calendar day: validation and test days come after training days (globally, or
  within each burst), about ``train:val:test`` by rows, every day in exactly one split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SPLITS: tuple[str, ...] = ("train", "val", "test")


def sessionize(
    user_id: np.ndarray, timestamp_s: np.ndarray, gap_minutes: float
) -> tuple[np.ndarray, np.ndarray]:
    """Session id (0, 1, ... in row order) and 0-based position in session of each row.

    Rows must be sorted by user, then time. A new session starts at a user's first row and after
    any gap strictly longer than ``gap_minutes``.
    """
    if not gap_minutes > 0:
        raise ValueError(f"session_gap_minutes must be positive, got {gap_minutes!r}")
    user_id, ts = np.asarray(user_id), np.asarray(timestamp_s, dtype=np.float64)
    if len(ts) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    same_user = np.r_[False, user_id[1:] == user_id[:-1]]
    gap = np.r_[np.inf, np.diff(ts)]
    if np.any(same_user & (gap < 0)):
        raise ValueError("rows must be sorted by user, then timestamp")
    new = ~same_user | (gap > gap_minutes * 60.0)
    session = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    position = np.arange(len(ts)) - np.repeat(starts, np.diff(np.r_[starts, len(ts)]))
    return session.astype(np.int64), position.astype(np.int64)


def find_bursts(
    daily_volume: pd.Series, n_bursts: int, threshold: float = 0.3, max_gap_days: int = 1
) -> list[tuple[int, int]]:
    """The ``n_bursts`` high-traffic windows of a daily volume series indexed by YYYYMMDD ints.

    Returns ``[(first_day, last_day), ...]`` in time order (YYYYMMDD ints). A day is busy when
    its volume is at least ``threshold`` times the busiest day's; runs of busy days separated by
    at most ``max_gap_days`` quiet days form one window; the windows with the most interactions
    are kept. Days missing from the series count as zero volume.
    """
    if n_bursts < 1:
        raise ValueError(f"n_bursts must be at least 1, got {n_bursts!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"burst threshold must be in (0, 1], got {threshold!r}")
    days = pd.to_datetime(daily_volume.index.astype(str), format="%Y%m%d")
    full = pd.Series(daily_volume.to_numpy(float), index=days).asfreq("D", fill_value=0.0)
    busy = full.to_numpy() >= threshold * full.max()
    windows: list[list[int]] = []  # [first index, last index]
    for i in np.flatnonzero(busy):
        if windows and i - windows[-1][1] - 1 <= max_gap_days:
            windows[-1][1] = i
        else:
            windows.append([i, i])
    if len(windows) < n_bursts:
        raise ValueError(
            f"found {len(windows)} high-traffic windows, fewer than n_bursts={n_bursts} "
            f"(threshold {threshold} of the busiest day)"
        )
    volume = [full.iloc[a : b + 1].sum() for a, b in windows]
    keep = sorted(np.argsort(volume, kind="stable")[::-1][:n_bursts])

    def yyyymmdd(i: int) -> int:
        return int(full.index[i].strftime("%Y%m%d"))

    return [(yyyymmdd(windows[k][0]), yyyymmdd(windows[k][1])) for k in keep]


def burst_of(date: np.ndarray, bursts: Sequence[tuple[int, int]]) -> np.ndarray:
    """Burst id (0, 1, ...) of each YYYYMMDD date, -1 outside every burst."""
    date = np.asarray(date)
    out = np.full(len(date), -1, dtype=np.int8)
    for k, (first, last) in enumerate(bursts):
        out[(date >= first) & (date <= last)] = k
    return out


def split_days(
    date: np.ndarray, ratios: Sequence[float], group: np.ndarray | None = None
) -> dict[int, str]:
    """Assign each calendar day to train, val or test, later days to later splits.

    Days are ordered in time (within each ``group`` value, e.g. burst, when given) and cut where
    the cumulative share of rows is closest to ``ratios`` (normalised), so each split gets about
    its share of rows, every day exactly one split, and no split is empty.
    """
    ratios = np.asarray(ratios, dtype=float)
    if ratios.shape != (3,) or np.any(ratios <= 0) or not np.all(np.isfinite(ratios)):
        raise ValueError(f"split ratios must be three positive numbers, got {list(ratios)}")
    frame = pd.DataFrame({"date": np.asarray(date)})
    frame["group"] = 0 if group is None else np.asarray(group)
    counts = frame.groupby(["group", "date"]).size()
    out: dict[int, str] = {}
    cuts = np.cumsum(ratios / ratios.sum())[:2]
    for _, per_day in counts.groupby(level="group"):
        days = per_day.index.get_level_values("date").to_numpy()
        if len(days) < 3:
            raise ValueError(f"a split needs at least 3 days per group, got days {list(days)}")
        share = np.cumsum(per_day.to_numpy()) / per_day.sum()
        # the last train day and the last val day: closest to the cut, leaving every split a day
        end_train = int(np.clip(np.abs(share - cuts[0]).argmin(), 0, len(days) - 3))
        end_val = int(np.clip(np.abs(share - cuts[1]).argmin(), end_train + 1, len(days) - 2))
        for i, day in enumerate(days):
            out[int(day)] = "train" if i <= end_train else "val" if i <= end_val else "test"
    return out
