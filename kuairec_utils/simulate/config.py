"""The simulator's parameters: SimConfig (one field per constant of params.yaml, section
simulate), the error raised for a bad parameter or output folder, and the fixed constants of the
real KuaiRec release the simulated one copies (its size, its clock, its user activity degrees).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

import numpy as np

from kuairec_utils.heads import HEADS, LabelThresholds

FULL_USERS = 7176  # KuaiRec 2.0: users of big_matrix
FULL_VIDEOS = 10728  # videos of big_matrix
BEIJING_UTC_OFFSET_S = 8 * 3600
DAY_S = 86400
REF_DURATION_S = 9.4  # the duration at which log_ratio_intercept applies
MAX_WATCH_RATIO = 600.0  # the real big matrix's watch_ratio reaches about 570
COLLECT_FIRST_DATE = date(2020, 8, 1)  # collect_* columns are empty before this day
DEGREES = ("full_active", "high_active", "middle_active", "low_active", "UNKNOWN")

# parameters that must be positive, and those that are shares in [0, 1]
POSITIVE_PARAMS = (
    "day_median",
    "sessions_per_day_mean",
    "max_session_len",
    "dim",
    "item_gap_mean_s",
    "log_ratio_sd",
    "pool_factor",
    "pool_min",
    "duration_min_s",
    "n_authors_ratio",
    "music_ratio",
    "author_zipf",
)
SHARE_PARAMS = (
    "p_active_burst",
    "p_active_off",
    "evening_share",
    "user_feature_weight",
    "video_category_weight",
    "frac_uploaded_before",
    "long_video_share",
    "heavy_user_share",
    "habit_rate",
    "duplicate_share",
    "small_missing_time_share",
)


class SimulationError(ValueError):
    """A bad simulator parameter or output folder; raised before anything is written."""


@dataclass(frozen=True)
class SimConfig:
    """Constants of the generative model; each is documented in params.yaml (section simulate)."""

    scale: float
    video_scale_exponent: float
    start_date: str
    end_date: str
    bursts: list
    p_active_burst: float
    p_active_off: float
    day_median: float
    user_activity_skew: float
    heavy_user_share: float
    heavy_user_log_mult: float
    heavy_user_log_sd: float
    day_activity_sd: float
    degree_activity: dict
    min_user_interactions: int
    sessions_per_day_mean: float
    max_session_len: int
    session_gap_min_minutes: float
    session_gap_extra_mean_s: float
    item_gap_mean_s: float
    evening_peak_hour: float
    evening_peak_sd_hours: float
    evening_share: float
    day_start_hour: float
    dim: int
    user_feature_weight: float
    video_category_weight: float
    taste_scale: float
    quality_sd: float
    author_sd: float
    user_bias_sd: float
    n_authors_ratio: float
    author_zipf: float
    music_ratio: float
    popularity_sd: float
    popularity_quality_corr: float
    frac_uploaded_before: float
    duration_log_median_s: float
    duration_log_sd: float
    long_video_share: float
    long_video_log_median_s: float
    long_video_log_sd: float
    duration_min_s: float
    duration_max_s: float
    habit_rate: float
    habit_weight: float
    fatigue_per_log_position: float
    utility_intercept: float
    log_ratio_intercept: float
    log_ratio_slope: float
    log_ratio_duration: float
    log_ratio_sd: float
    selectivity_mean: float
    selectivity_user_sd: float
    selectivity_session_sd: float
    selectivity_degree: dict
    effect_true: float
    w_true: dict
    pool_factor: float
    pool_min: int
    rank_noise_sd: float
    duplicate_share: float
    small_users: int
    small_videos: int
    small_missing_time_share: float
    social_rows: int
    daily_shows_median: float
    candidate_pool: bool = True  # also write the platform's log of its candidate pools
    labels: LabelThresholds = field(default_factory=LabelThresholds)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, scale: float | None = None) -> SimConfig:
        """Build from a whole params.yaml dict (sections simulate and labels), checking values."""
        if "simulate" not in params:
            raise SimulationError("params: no 'simulate' section")
        section = dict(params["simulate"])
        if scale is not None:
            section["scale"] = scale
        names = [f.name for f in fields(cls) if f.name != "labels"]
        missing = [n for n in names if n not in section]
        unknown = sorted(set(section) - set(names))
        if missing or unknown:
            raise SimulationError(
                f"params simulate: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}"
            )
        labels = LabelThresholds.from_params(params.get("labels", {}))
        cfg = cls(**{n: section[n] for n in names}, labels=labels)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise SimulationError naming the first bad parameter."""

        def bad(name: str, why: str) -> SimulationError:
            """The error naming the parameter, its value and what is wrong with it."""
            return SimulationError(f"params simulate.{name} = {getattr(self, name)!r}: {why}")

        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float | int) and not isinstance(value, bool):
                if not math.isfinite(value):
                    raise bad(f.name, "must be finite")
        if not isinstance(self.candidate_pool, bool):
            raise bad("candidate_pool", "must be true or false")
        if not 0 < self.scale <= 1:
            raise bad("scale", "must be in (0, 1] (1.0 = the full size of KuaiRec)")
        for name in POSITIVE_PARAMS:
            if not getattr(self, name) > 0:
                raise bad(name, "must be positive")
        if self.sessions_per_day_mean < 1:
            raise bad("sessions_per_day_mean", "must be at least 1")
        if self.duration_max_s <= self.duration_min_s:
            raise bad("duration_max_s", "must exceed duration_min_s")
        if self.pool_factor < 1:
            raise bad("pool_factor", "must be at least 1 (the pool holds the feed)")
        for name in SHARE_PARAMS:
            if not 0 <= getattr(self, name) <= 1:
                raise bad(name, "must be a share in [0, 1]")
        if not 0 <= self.duplicate_share < 0.5:
            raise bad("duplicate_share", "must be below 0.5")
        if not -1 <= self.popularity_quality_corr <= 1:
            raise bad("popularity_quality_corr", "must be a correlation in [-1, 1]")
        sds = [n for n in (f.name for f in fields(self)) if n.endswith("_sd")]
        for name in sds:
            if getattr(self, name) < 0:
                raise bad(name, "must be non-negative")
        if set(self.w_true) != set(HEADS):
            raise bad("w_true", f"must give one weight per head {list(HEADS)}")
        w = np.array([self.w_true[h] for h in HEADS], dtype=float)
        if not np.all(np.isfinite(w)):
            raise bad("w_true", "weights must be finite numbers")
        if not np.isclose(np.abs(w).sum(), 1.0, atol=1e-6):
            raise bad("w_true", "must lie on the unit L1 sphere (sum of |w| = 1)")
        for name in ("degree_activity", "selectivity_degree"):
            if set(getattr(self, name)) != set(DEGREES):
                raise bad(name, f"must give one value per user_active_degree {list(DEGREES)}")
        try:
            first, last = date.fromisoformat(self.start_date), date.fromisoformat(self.end_date)
            bursts = [(date.fromisoformat(a), date.fromisoformat(b)) for a, b in self.bursts]
        except (TypeError, ValueError) as exc:
            raise bad("bursts", f"dates must be YYYY-MM-DD pairs ({exc})") from None
        if last < first:
            raise bad("end_date", "must not precede start_date")
        for a, b in bursts:
            if not first <= a <= b <= last:
                raise bad("bursts", f"burst {a}..{b} must lie within start_date..end_date")

    @property
    def w_vector(self) -> np.ndarray:
        """The platform's true head weights as a vector, in HEADS order."""
        return np.array([self.w_true[h] for h in HEADS], dtype=np.float64)

    @property
    def n_days(self) -> int:
        """Days in the observation window, both ends included."""
        return (date.fromisoformat(self.end_date) - date.fromisoformat(self.start_date)).days + 1
