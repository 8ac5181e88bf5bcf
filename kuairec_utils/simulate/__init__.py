"""The simulated KuaiRec platform: the embedded default data set, with its ground truth.

    python -m kuairec_utils.simulate --out data/raw --scale 0.12 --seed 20200705 [--params params.yaml]

writes ``OUT/KuaiRec 2.0/data/`` with the seven files of the KuaiRec 2.0 release (same columns,
order, formats and quirks) and ``OUT/ground_truth/`` with what the study's estimators try to
recover. The generative model is DESIGN.md section 8; every constant is in ``params.yaml``
(section ``simulate``, one comment each) and is recorded in ``truth.json``.

The model, in one paragraph. Real users (their real features) and real videos (their real
categories) get latent taste vectors; a user's utility for a video is
``m_ui = bias_u + quality_i + author_a + taste_u . taste_i + habit_u(category_i) - fatigue(position)``.
Users are active on most days of three bursts and a few days between; an active day holds a few
sessions hours apart. For each session the platform draws a popularity-weighted pool of videos
available that day, scores each by ``w_true . p(u, i)`` (the four heads' true probabilities) plus
ranking noise, and shows the top K_s in score order. Showing video i gives a quick skip (play under
2 s) with probability ``sigmoid(c_s - m_ui)``, otherwise a log-normal watch_ratio whose mean rises
with m_ui and falls with the video's duration, so the heads' true probabilities are closed-form.
The session's selectivity is ``c_s = c_u + effect_true * r_(s-1) + noise``, where ``r`` is the
previous session's residual: the feed's mean true score minus that of the deterministic top K.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from scipy.special import expit, ndtr, ndtri
from tqdm.auto import tqdm

from kuairec_utils.config import (
    GROUND_TRUTH_SUBDIR,
    KUAIREC_DATA_SUBDIR,
    KUAIREC_SIDE_DIR,
    load_params,
)
from kuairec_utils.data.kuairec import COLUMNS
from kuairec_utils.heads import HEADS, LabelThresholds

FULL_USERS = 7176  # KuaiRec 2.0: users of big_matrix
FULL_VIDEOS = 10728  # videos of big_matrix
BEIJING_UTC_OFFSET_S = 8 * 3600
DAY_S = 86400
REF_DURATION_S = 9.4  # the duration at which log_ratio_intercept applies
MAX_WATCH_RATIO = 600.0  # the real big matrix's watch_ratio reaches about 570
COLLECT_FIRST_DATE = date(2020, 8, 1)  # collect_* columns are empty before this day
DEGREES = ("full_active", "high_active", "middle_active", "low_active", "UNKNOWN")


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
    small_max_position: int
    small_missing_time_share: float
    social_rows: int
    daily_shows_median: float
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
            return SimulationError(f"params simulate.{name} = {getattr(self, name)!r}: {why}")

        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float | int) and not isinstance(value, bool):
                if not math.isfinite(value):
                    raise bad(f.name, "must be finite")
        if not 0 < self.scale <= 1:
            raise bad("scale", "must be in (0, 1] (1.0 = the full size of KuaiRec)")
        positive = [
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
        ]
        for name in positive:
            if not getattr(self, name) > 0:
                raise bad(name, "must be positive")
        if self.sessions_per_day_mean < 1:
            raise bad("sessions_per_day_mean", "must be at least 1")
        if self.duration_max_s <= self.duration_min_s:
            raise bad("duration_max_s", "must exceed duration_min_s")
        if self.pool_factor < 1:
            raise bad("pool_factor", "must be at least 1 (the pool holds the feed)")
        shares = [
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
        ]
        for name in shares:
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
        return np.array([self.w_true[h] for h in HEADS], dtype=np.float64)

    @property
    def n_days(self) -> int:
        return (date.fromisoformat(self.end_date) - date.fromisoformat(self.start_date)).days + 1


# --------------------------------------------------------------------------------------------
# The world: real users and videos with latent tastes


@dataclass
class World:
    """Users and videos of the simulated platform (arrays indexed by position, not by id)."""

    user_id: np.ndarray
    user_degree: np.ndarray  # index into DEGREES
    user_taste: np.ndarray  # (U, dim)
    user_bias: np.ndarray
    user_selectivity: np.ndarray  # c_u
    user_activity: np.ndarray  # log activity effect
    video_id: np.ndarray
    video_category: np.ndarray  # first real category tag, 0..n_categories-1
    video_taste: np.ndarray  # (V, dim)
    video_quality: np.ndarray  # quality_i + author effect
    video_author: np.ndarray  # author ids
    video_music: np.ndarray
    video_duration_ms: np.ndarray
    video_log_popularity: np.ndarray
    video_upload_day: np.ndarray  # day index (0 = start_date; negative = before the window)
    n_categories: int


def _gaussianise(x: np.ndarray) -> np.ndarray:
    """Each column mapped through its ranks to standard normal scores: the real user features
    are heavy-tailed (rare one-hot codes, follower counts), and a taste dimension must not be."""
    ranks = np.argsort(np.argsort(x, axis=0, kind="stable"), axis=0, kind="stable")
    return ndtri((ranks + 0.5) / len(x))


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _user_feature_matrix(users: pd.DataFrame) -> np.ndarray:
    """Numeric design matrix of the real user features (one-hot codes, log counts, flags)."""
    parts = [pd.get_dummies(users["user_active_degree"]).to_numpy(float)]
    for col in ("is_lowactive_period", "is_live_streamer", "is_video_author"):
        parts.append(users[[col]].to_numpy(float))
    for col in ("follow_user_num", "fans_user_num", "friend_user_num", "register_days"):
        parts.append(np.log1p(users[[col]].to_numpy(float)))
    for k in range(18):
        col = users[f"onehot_feat{k}"].fillna(-1).astype(int)
        codes = col.rank(method="dense").to_numpy() - 1
        # hash the category codes into a few buckets: a compact, fixed-width encoding
        parts.append(np.eye(8)[codes.astype(int) % 8])
    return _standardise(np.hstack(parts))


def build_world(
    cfg: SimConfig, rng: np.random.Generator, side_dir: Path = KUAIREC_SIDE_DIR
) -> World:
    """Sample the users and videos kept at ``cfg.scale`` and give them latent parameters."""
    users = pd.read_csv(side_dir / "user_features.csv")
    cats = pd.read_csv(side_dir / "item_categories.csv")
    n_users = max(4, round(FULL_USERS * cfg.scale))
    n_videos = max(20, round(FULL_VIDEOS * cfg.scale**cfg.video_scale_exponent))
    keep_u = np.sort(rng.choice(len(users), size=n_users, replace=False))
    keep_v = np.sort(rng.choice(len(cats), size=n_videos, replace=False))
    users = users.iloc[keep_u].reset_index(drop=True)
    cats = cats.iloc[keep_v].reset_index(drop=True)
    d = cfg.dim

    # users: taste from the real features through a random projection, plus noise
    x = _user_feature_matrix(pd.read_csv(side_dir / "user_features.csv"))[keep_u]
    proj = rng.normal(size=(x.shape[1], d)) / math.sqrt(x.shape[1])
    from_features = _gaussianise(x @ proj)
    wu = cfg.user_feature_weight
    user_taste = math.sqrt(wu) * from_features + math.sqrt(1 - wu) * rng.normal(size=(n_users, d))
    degree = users["user_active_degree"].map({g: i for i, g in enumerate(DEGREES)}).to_numpy()
    degree = np.where(np.isnan(degree.astype(float)), DEGREES.index("UNKNOWN"), degree).astype(int)
    deg_act = np.array([cfg.degree_activity[g] for g in DEGREES])[degree]
    deg_sel = np.array([cfg.selectivity_degree[g] for g in DEGREES])[degree]
    # activity is left-skewed on the linear scale (published per-user quartiles 883/1847/2461
    # around a mean of 1746: 1 minus a scaled Gumbel) with a few heavy users in the right tail
    linear = np.maximum(1.0 - cfg.user_activity_skew * rng.gumbel(size=n_users), 0.05)
    heavy = rng.random(n_users) < cfg.heavy_user_share
    log_heavy = np.where(
        heavy, cfg.heavy_user_log_mult * rng.lognormal(0, cfg.heavy_user_log_sd, n_users), 0.0
    )
    user_activity = deg_act + np.log(linear) + log_heavy
    user_bias = cfg.user_bias_sd * rng.normal(size=n_users)
    user_selectivity = (
        cfg.selectivity_mean + deg_sel + cfg.selectivity_user_sd * rng.normal(size=n_users)
    )

    # videos: taste from the real category tags (mean of tag vectors), plus noise
    tags = [json.loads(s) for s in cats["feat"]]
    n_categories = 1 + max(max(t) for t in json.loads("[" + ",".join(map(json.dumps, tags)) + "]"))
    tag_vectors = rng.normal(size=(n_categories, d))
    from_tags = np.stack([tag_vectors[t].mean(axis=0) for t in tags])
    wv = cfg.video_category_weight
    video_taste = math.sqrt(wv) * _standardise(from_tags) + math.sqrt(1 - wv) * rng.normal(
        size=(n_videos, d)
    )
    video_category = np.array([t[0] for t in tags])
    n_authors = max(2, round(cfg.n_authors_ratio * n_videos))
    author_weights = 1.0 / np.arange(1, n_authors + 1) ** (cfg.author_zipf - 1.0)
    author_idx = rng.choice(n_authors, size=n_videos, p=author_weights / author_weights.sum())
    author_effect = cfg.author_sd * rng.normal(size=n_authors)
    author_ids = np.sort(rng.choice(10 * FULL_VIDEOS, size=n_authors, replace=False))
    quality = cfg.quality_sd * rng.normal(size=n_videos)
    n_music = max(2, round(cfg.music_ratio * n_videos))
    music_ids = rng.integers(10**8, 5 * 10**9, size=n_music)
    music_weights = 1.0 / np.arange(1, n_music + 1)
    video_music = music_ids[
        rng.choice(n_music, size=n_videos, p=music_weights / music_weights.sum())
    ]

    is_long = rng.random(n_videos) < cfg.long_video_share
    log_dur = np.where(
        is_long,
        math.log(cfg.long_video_log_median_s) + cfg.long_video_log_sd * rng.normal(size=n_videos),
        math.log(cfg.duration_log_median_s) + cfg.duration_log_sd * rng.normal(size=n_videos),
    )
    dur_s = np.clip(np.exp(log_dur), cfg.duration_min_s, cfg.duration_max_s)
    rho = cfg.popularity_quality_corr
    z_q = quality / cfg.quality_sd if cfg.quality_sd > 0 else np.zeros(n_videos)
    log_pop = cfg.popularity_sd * (rho * z_q + math.sqrt(1 - rho**2) * rng.normal(size=n_videos))
    before = rng.random(n_videos) < cfg.frac_uploaded_before
    upload_day = np.where(
        before, -rng.integers(1, 180, size=n_videos), rng.integers(0, cfg.n_days, size=n_videos)
    )
    return World(
        user_id=users["user_id"].to_numpy(np.int64),
        user_degree=degree,
        user_taste=user_taste.astype(np.float32),
        user_bias=user_bias,
        user_selectivity=user_selectivity,
        user_activity=user_activity,
        video_id=cats["video_id"].to_numpy(np.int64),
        video_category=video_category,
        video_taste=(cfg.taste_scale * video_taste / math.sqrt(d)).astype(np.float32),
        video_quality=quality + author_effect[author_idx],
        video_author=author_ids[author_idx],
        video_music=video_music,
        video_duration_ms=np.maximum(1, np.round(dur_s * 1000)).astype(np.int64),
        video_log_popularity=log_pop,
        video_upload_day=upload_day,
        n_categories=n_categories,
    )


# --------------------------------------------------------------------------------------------
# Activity: which days each user is active, how much, and in how many sessions


@dataclass
class Schedule:
    """Planned sessions, sorted by user then planned start."""

    user: np.ndarray  # user position
    day: np.ndarray  # day index
    planned_start_s: np.ndarray  # seconds since start_date 00:00 Beijing time
    length: np.ndarray  # K_s: videos in the feed
    rank: np.ndarray  # the session's number among its user's sessions (0, 1, ...)


def burst_days(cfg: SimConfig) -> np.ndarray:
    """Boolean per day: inside one of the bursts."""
    first = date.fromisoformat(cfg.start_date)
    inside = np.zeros(cfg.n_days, dtype=bool)
    for a, b in cfg.bursts:
        lo = (date.fromisoformat(a) - first).days
        hi = (date.fromisoformat(b) - first).days
        inside[lo : hi + 1] = True
    return inside


def _session_hours(cfg: SimConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    evening = rng.random(n) < cfg.evening_share
    peak = (cfg.evening_peak_hour + cfg.evening_peak_sd_hours * rng.normal(size=n)) % 24
    flat = rng.uniform(cfg.day_start_hour, 24.0, size=n)
    return np.where(evening, peak, flat)


def schedule_sessions(cfg: SimConfig, world: World, rng: np.random.Generator) -> Schedule:
    """Active days, interactions per active day and their sessions, for every user."""
    n_users, n_days = len(world.user_id), cfg.n_days
    p_day = np.where(burst_days(cfg), cfg.p_active_burst, cfg.p_active_off)
    active = rng.random((n_users, n_days)) < p_day
    # every user is active on at least one day
    none = ~active.any(axis=1)
    active[none, rng.integers(0, n_days, size=none.sum())] = True
    uu, dd = np.nonzero(active)
    log_n = (
        math.log(cfg.day_median)
        + world.user_activity[uu]
        + cfg.day_activity_sd * rng.normal(size=len(uu))
    )
    n_day = np.maximum(1, np.round(np.exp(log_n))).astype(np.int64)
    # KuaiRec kept users with at least min_user_interactions: scale up the lightest users
    per_user = np.bincount(uu, weights=n_day, minlength=n_users)
    factor = np.maximum(1.0, cfg.min_user_interactions / np.maximum(per_user, 1))
    n_day = np.ceil(n_day * factor[uu]).astype(np.int64)

    # sessions of each active day: 1 + Poisson, at least ceil(n / max_len), at most n
    n_sess = 1 + rng.poisson(cfg.sessions_per_day_mean - 1, size=len(uu))
    n_sess = np.clip(n_sess, np.ceil(n_day / cfg.max_session_len).astype(np.int64), n_day)
    day_of_session = np.repeat(np.arange(len(uu)), n_sess)
    # split n_day among the sessions with Dirichlet(1) shares; the remainder goes to the first
    share = rng.exponential(size=len(day_of_session))
    share /= np.bincount(day_of_session, weights=share)[day_of_session]
    spare = (n_day - n_sess)[day_of_session]
    length = 1 + np.floor(share * spare).astype(np.int64)
    first_of_day = np.r_[0, np.cumsum(n_sess)[:-1]]
    length[first_of_day] += n_day - np.bincount(day_of_session, weights=length).astype(np.int64)
    length = np.minimum(length, cfg.max_session_len)

    hours = _session_hours(cfg, rng, len(day_of_session))
    start = dd[day_of_session] * DAY_S + hours * 3600.0
    user = uu[day_of_session]
    order = np.lexsort((start, user))
    user, start, length = user[order], start[order], length[order]
    day = dd[day_of_session][order]
    first_session = np.r_[0, np.flatnonzero(np.diff(user)) + 1]
    rank = np.arange(len(user)) - np.repeat(first_session, np.diff(np.r_[first_session, len(user)]))
    return Schedule(user=user, day=day, planned_start_s=start, length=length, rank=rank)


# --------------------------------------------------------------------------------------------
# Outcomes: the heads' true probabilities in closed form


def static_utility(cfg: SimConfig, world: World, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The part of user ``u``'s utility for video ``v`` (world positions) that never moves: the
    intercept, the user's bias, the video's quality and their taste match (no habit, no fatigue)."""
    return (
        cfg.utility_intercept
        + world.user_bias[u]
        + world.video_quality[v]
        + np.einsum("ij,ij->i", world.user_taste[u], world.video_taste[v])
    )


def head_probabilities(
    cfg: SimConfig, utility: np.ndarray, selectivity: np.ndarray, duration_ms: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True probabilities of the four heads, (n, 4) in HEADS order, plus p_skip and the mean
    log watch_ratio of a non-skip (which the outcome draw reuses)."""
    t = cfg.labels
    dur_s = duration_ms / 1000.0
    p_skip = expit(selectivity - utility)
    mu = (
        cfg.log_ratio_intercept
        + cfg.log_ratio_slope * utility
        + cfg.log_ratio_duration * np.log(dur_s / REF_DURATION_S)
    )
    sd = cfg.log_ratio_sd

    def above(log_threshold: np.ndarray | float) -> np.ndarray:  # P(log wr > threshold | play)
        return ndtr((mu - log_threshold) / sd)

    play = 1.0 - p_skip
    p = np.empty((len(mu), 4))
    p[:, 0] = play * above(math.log(t.complete_ratio))
    p[:, 1] = play * above(np.minimum(math.log(t.long_ratio), np.log(t.long_play_s / dur_s)))
    p[:, 2] = play * above(math.log(t.rewatch_ratio))
    p[:, 3] = p_skip + play * (1.0 - above(np.log(t.negative_play_s / dur_s)))
    return p, p_skip, mu


def draw_outcomes(
    cfg: SimConfig,
    rng: np.random.Generator,
    p_skip: np.ndarray,
    mu: np.ndarray,
    duration_ms: np.ndarray,
) -> np.ndarray:
    """play_duration (ms) of each showing: a quick skip or a log-normal watch_ratio."""
    n = len(mu)
    skip = rng.random(n) < p_skip
    # a quick skip stops before negative_play_s and before the end of the video
    skip_cap_ms = np.minimum(cfg.labels.negative_play_s * 1000.0 - 1.0, duration_ms - 1.0)
    skip_ms = np.floor(rng.random(n) * np.maximum(skip_cap_ms, 0.0))
    # capped where the real data stop (about 570), which keeps play_duration within int32
    watch_ratio = np.minimum(np.exp(mu + cfg.log_ratio_sd * rng.normal(size=n)), MAX_WATCH_RATIO)
    play_ms = np.where(skip, skip_ms, np.round(watch_ratio * duration_ms))
    return play_ms.astype(np.int64)


# --------------------------------------------------------------------------------------------
# The platform: sessions run in rounds (every user's k-th session at once)


def ranking_score(p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``p @ w`` as a sum of products in column order, the same bits on every CPU.

    A BLAS matrix-vector product rounds by its kernel (OpenBLAS picks one per CPU: with fused
    multiply-adds on AVX2, without on older kernels), and the platform's scores decide the feed,
    its residual and the next session's selectivity, so one last bit would change the data set.
    """
    out = p[:, 0] * w[0]
    for j in range(1, p.shape[1]):
        out = out + p[:, j] * w[j]
    return out


def _segment_ranks(segment: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Rank (0 = largest key) of each element within its segment."""
    order = np.lexsort((-key, segment))
    seg_sorted = segment[order]
    starts = np.r_[0, np.flatnonzero(np.diff(seg_sorted)) + 1]
    sizes = np.diff(np.r_[starts, len(segment)])
    rank_sorted = np.arange(len(segment)) - np.repeat(starts, sizes)
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank


def _segment_mean(segment: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(segment, weights=values, minlength=n) / np.maximum(
        np.bincount(segment, minlength=n), 1
    )


def run_platform(
    cfg: SimConfig,
    world: World,
    schedule: Schedule,
    rng: np.random.Generator,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Simulate every session's pool, feed and outcomes; return one array per column, one row
    per interaction, in simulation order."""
    n_users, n_videos, n_days = len(world.user_id), len(world.video_id), cfg.n_days
    w = cfg.w_vector
    # popularity of each video on each day (zero before upload), flattened with day offsets so
    # one searchsorted draws every session's pool from its own day
    available = world.video_upload_day[None, :] <= np.arange(n_days)[:, None]
    pop = np.where(available, np.exp(world.video_log_popularity)[None, :], 0.0)
    cum = np.cumsum(pop.ravel())
    day_lo = np.r_[0.0, cum[n_videos - 1 :: n_videos][:-1]]
    day_total = pop.sum(axis=1)

    seen = np.zeros((n_users, n_videos), dtype=bool)
    habit = np.zeros((n_users, world.n_categories))  # completion rate above the baseline
    baseline = None  # population completion rate, fixed after the first round
    last_end = np.full(n_users, -np.inf)
    r_prev = np.zeros(n_users)
    gap_min_s = cfg.session_gap_min_minutes * 60.0
    end_s = n_days * DAY_S
    out: dict[str, list[np.ndarray]] = {}
    n_rounds = int(schedule.rank.max()) + 1 if len(schedule.rank) else 0
    session_counter = 0
    for k in tqdm(range(n_rounds), desc="simulating sessions", disable=not progress):
        idx = np.flatnonzero(schedule.rank == k)
        u = schedule.user[idx]
        K = schedule.length[idx]
        day_idx = schedule.day[idx]
        start = np.maximum(
            schedule.planned_start_s[idx],
            last_end[u] + gap_min_s + rng.exponential(cfg.session_gap_extra_mean_s, len(u)),
        )
        keep = start < end_s - 600
        idx, u, K, day_idx, start = idx[keep], u[keep], K[keep], day_idx[keep], start[keep]
        day_idx = np.minimum(day_idx, n_days - 1)
        day_idx = np.maximum(day_idx, (start // DAY_S).astype(int).clip(0, n_days - 1))
        B = len(idx)
        if B == 0:
            continue
        c_s = (
            world.user_selectivity[u]
            + cfg.effect_true * r_prev[u]
            + cfg.selectivity_session_sd * rng.normal(size=B)
        )

        # the pool: popularity-weighted draws among the videos available that day
        pool_size = np.maximum(cfg.pool_min, np.ceil(cfg.pool_factor * K)).astype(np.int64)
        seg = np.repeat(np.arange(B), pool_size)
        draw = day_lo[day_idx[seg]] + rng.random(len(seg)) * day_total[day_idx[seg]]
        vid = np.minimum(np.searchsorted(cum, draw, side="right"), cum.size - 1) % n_videos
        order = np.lexsort((vid, seg))
        dup = np.zeros(len(seg), dtype=bool)
        dup[order[1:]] = (seg[order[1:]] == seg[order[:-1]]) & (vid[order[1:]] == vid[order[:-1]])
        uu = u[seg]
        penalty = np.where(dup, np.inf, np.where(seen[uu, vid], 10.0, 0.0))

        # the platform's scores: w_true . p at session start (position-free), plus noise
        cat = world.video_category[vid]
        m0 = static_utility(cfg, world, uu, vid) + cfg.habit_weight * habit[uu, cat]
        dur = world.video_duration_ms[vid]
        p0, _, _ = head_probabilities(cfg, m0, c_s[seg], dur)
        score = ranking_score(p0, w)
        noisy = score + cfg.rank_noise_sd * rng.normal(size=len(seg))
        rank = _segment_ranks(seg, noisy - penalty)
        det_rank = _segment_ranks(seg, score - penalty)
        in_feed = (rank < K[seg]) & ~dup
        in_det = (det_rank < K[seg]) & ~dup
        residual = _segment_mean(seg[in_feed], score[in_feed], B) - _segment_mean(
            seg[in_det], score[in_det], B
        )

        # showing the feed, in score order
        f = np.flatnonzero(in_feed)
        f = f[np.lexsort((rank[f], seg[f]))]
        fseg, fvid, fpos = seg[f], vid[f], rank[f]
        m = m0[f] - cfg.fatigue_per_log_position * np.log1p(fpos)
        p, p_skip, mu = head_probabilities(cfg, m, c_s[fseg], dur[f])
        play_ms = draw_outcomes(cfg, rng, p_skip, mu, dur[f])
        # time moves on by the play (capped, so a session never holds a 30-minute gap) + a pause
        advance_s = np.minimum(play_ms / 1000.0, 1500.0) + rng.exponential(
            cfg.item_gap_mean_s, len(f)
        )
        cum_adv = np.cumsum(advance_s)
        seg_first = np.r_[0, np.flatnonzero(np.diff(fseg)) + 1]
        offset = np.repeat(
            cum_adv[seg_first] - advance_s[seg_first], np.diff(np.r_[seg_first, len(f)])
        )
        t_s = start[fseg] + (cum_adv - advance_s - offset)
        last_end[u] = start + np.bincount(fseg, weights=advance_s, minlength=B)

        # habit: the EMA of the user's completion rate per category moves towards this session's
        complete = (play_ms / dur[f]) > cfg.labels.complete_ratio
        if baseline is None:
            baseline = complete.mean()
        key = u[fseg] * world.n_categories + world.video_category[fvid]
        keys, inv = np.unique(key, return_inverse=True)
        rate = np.bincount(inv, weights=complete) / np.bincount(inv)
        hu, hc = keys // world.n_categories, keys % world.n_categories
        habit[hu, hc] = (1 - cfg.habit_rate) * habit[hu, hc] + cfg.habit_rate * (rate - baseline)
        seen[u[fseg], fvid] = True

        session_id = session_counter + np.arange(B)
        session_counter += B
        cols = {
            "user": u[fseg],
            "video": fvid,
            "local_ms": np.round(t_s * 1000).astype(np.int64),
            "play_duration": play_ms,
            "p": p,
            "session": session_id[fseg],
            "position": fpos,
            "selectivity": c_s[fseg],
            "residual": residual[fseg],
            "residual_prev": r_prev[u][fseg],
            "score": score[f],
            "utility": m,
            "in_deterministic_top_k": in_det[f],
        }
        for name, value in cols.items():
            out.setdefault(name, []).append(value)
        r_prev[u] = residual
    return {name: np.concatenate(parts) for name, parts in out.items()}


# --------------------------------------------------------------------------------------------
# The fully observed small matrix


def simulate_small_matrix(
    cfg: SimConfig, world: World, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Every small-matrix user is shown every small-matrix video once, at random times."""
    n_su = min(len(world.user_id), max(2, round(cfg.small_users * cfg.scale)))
    n_sv = min(
        len(world.video_id),
        max(5, round(cfg.small_videos * cfg.scale**cfg.video_scale_exponent)),
    )
    users = np.sort(rng.choice(len(world.user_id), size=n_su, replace=False))
    # videos available during the whole window, the earliest uploads first if too few
    by_upload = np.argsort(world.video_upload_day + rng.random(len(world.video_id)), kind="stable")
    videos = np.sort(by_upload[:n_sv])
    uu, vv = np.repeat(users, n_sv), np.tile(videos, n_su)
    n = len(uu)
    local_s = rng.integers(0, cfg.n_days, size=n) * DAY_S + _session_hours(cfg, rng, n) * 3600.0
    position = rng.integers(0, cfg.small_max_position, size=n)
    utility = static_utility(cfg, world, uu, vv) - cfg.fatigue_per_log_position * np.log1p(position)
    selectivity = world.user_selectivity[uu] + cfg.selectivity_session_sd * rng.normal(size=n)
    dur = world.video_duration_ms[vv]
    p, p_skip, mu = head_probabilities(cfg, utility, selectivity, dur)
    play_ms = draw_outcomes(cfg, rng, p_skip, mu, dur)
    order = np.lexsort((local_s, uu))
    return {
        "user": uu[order],
        "video": vv[order],
        "local_ms": np.round(local_s[order] * 1000).astype(np.int64),
        "play_duration": play_ms[order],
        "p": p[order],
        "utility": utility[order],
        "selectivity": selectivity[order],
        "missing_time": rng.random(n) < cfg.small_missing_time_share,
    }


# --------------------------------------------------------------------------------------------
# item_daily_features: one row per video per day from its upload, platform-wide counts

UPLOAD_TYPES = {
    "ShortImport": 0.72, "LongImport": 0.08, "Web": 0.05, "Kmovie": 0.04, "PictureSet": 0.04,
    "LongPicture": 0.02, "FollowShoot": 0.03, "ShareFromOtherApp": 0.02,
}  # fmt: skip
VISIBLE = {"public": 0.97, "friend": 0.02, "private": 0.01}
SIZES = [(720, 1280), (1080, 1920), (540, 960), (576, 1024), (1280, 720), (720, 720)]
SIZE_P = [0.55, 0.2, 0.12, 0.05, 0.05, 0.03]


def simulate_item_daily_features(
    cfg: SimConfig, world: World, rng: np.random.Generator, side_dir: Path = KUAIREC_SIDE_DIR
) -> pd.DataFrame:
    """Platform-wide daily counts: exposures follow the pool popularity, outcomes the truth."""
    n_videos, first = len(world.video_id), date.fromisoformat(cfg.start_date)
    first_day = np.maximum(world.video_upload_day, 0)
    n_rows = cfg.n_days - first_day
    vi = np.repeat(np.arange(n_videos), n_rows)
    day = np.arange(len(vi)) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows) + first_day[vi]
    # the population's head rates for each video (average user, average session)
    p, _, _ = head_probabilities(
        cfg,
        cfg.utility_intercept + world.video_quality,
        np.full(n_videos, cfg.selectivity_mean),
        world.video_duration_ms.astype(float),
    )
    weekday = 1.0 + 0.12 * np.isin((np.arange(cfg.n_days) + first.weekday()) % 7, [5, 6])
    show = rng.poisson(
        cfg.daily_shows_median * np.exp(world.video_log_popularity[vi]) * weekday[day]
    )
    b = rng.binomial
    play = b(show, np.clip(0.62 + 0.3 * (1 - p[vi, 3]), 0, 1))
    like = b(play, np.clip(0.04 * np.exp(0.5 * world.video_quality[vi]), 0, 1))
    comment = b(play, 0.0012)
    follow = b(play, 0.02)
    collect = b(play, 0.002)
    counts = {
        "show_cnt": show,
        "show_user_num": b(show, 0.78),
        "play_cnt": play,
        "play_user_num": b(play, 0.74),
        "play_duration": np.round(
            play * world.video_duration_ms[vi] * 0.8 * np.exp(0.1 * rng.normal(size=len(vi)))
        ).astype(np.int64),
        "complete_play_cnt": (complete := b(play, p[vi, 0])),
        "complete_play_user_num": b(complete, 0.85),
        "valid_play_cnt": (valid := b(play, p[vi, 1])),
        "valid_play_user_num": (valid_users := b(valid, 0.87)),
        "long_time_play_cnt": valid,
        "long_time_play_user_num": valid_users,
        "short_time_play_cnt": (short := b(play, p[vi, 3])),
        "short_time_play_user_num": b(short, 0.76),
        "play_progress": np.clip(p[vi, 0] + 0.45 + 0.03 * rng.normal(size=len(vi)), 0, 1),
        "comment_stay_duration": np.round(play * 650 * rng.lognormal(0, 0.5, len(vi))).astype(
            np.int64
        ),
        "like_cnt": like,
        "like_user_num": b(like, 0.99),
        "click_like_cnt": (click := b(like, 0.55)),
        "double_click_cnt": like - click,
        "cancel_like_cnt": (cancel := b(like, 0.15)),
        "cancel_like_user_num": b(cancel, 0.98),
        "comment_cnt": comment,
        "comment_user_num": b(comment, 0.95),
        "direct_comment_cnt": (direct := b(comment, 0.7)),
        "reply_comment_cnt": comment - direct,
        "delete_comment_cnt": (delete := b(comment, 0.01)),
        "delete_comment_user_num": delete,
        "comment_like_cnt": (comment_like := b(play, 0.01)),
        "comment_like_user_num": b(comment_like, 0.55),
        "follow_cnt": follow,
        "follow_user_num": b(follow, 0.99),
        "cancel_follow_cnt": (unfollow := b(follow, 0.01)),
        "cancel_follow_user_num": unfollow,
        "share_cnt": (share := b(play, 0.0005)),
        "share_user_num": share,
        "download_cnt": (download := b(play, 0.0008)),
        "download_user_num": download,
        "report_cnt": (report := b(play, 0.00005)),
        "report_user_num": report,
        "reduce_similar_cnt": (reduce := b(play, 0.0004)),
        "reduce_similar_user_num": reduce,
        "collect_cnt": collect,
        "collect_user_num": b(collect, 0.98),
        "cancel_collect_cnt": (uncollect := b(collect, 0.05)),
        "cancel_collect_user_num": uncollect,
    }
    # static video attributes: real categories as the tag, the rest drawn
    captions = pd.read_csv(side_dir / "kuairec_caption_category.csv", lineterminator="\n")
    captions = captions.set_index("video_id").loc[world.video_id]
    second = captions["second_level_category_id"].to_numpy()
    tag_id = np.where(second != -124, second, captions["first_level_category_id"].to_numpy())
    tag_name = np.where(
        second != -124,
        captions["second_level_category_name"].to_numpy(),
        captions["first_level_category_name"].to_numpy(),
    )
    upload_date = [first + timedelta(days=int(d)) for d in world.video_upload_day]
    size = rng.choice(len(SIZES), size=n_videos, p=SIZE_P)
    static = {
        "author_id": world.video_author,
        "video_type": np.where(rng.random(n_videos) < 0.03, "AD", "NORMAL"),
        "upload_dt": np.array([d.isoformat() for d in upload_date]),
        "upload_type": rng.choice(list(UPLOAD_TYPES), size=n_videos, p=list(UPLOAD_TYPES.values())),
        "visible_status": rng.choice(list(VISIBLE), size=n_videos, p=list(VISIBLE.values())),
        "video_duration": world.video_duration_ms.astype(np.float64),
        "video_width": np.array([s[0] for s in SIZES])[size],
        "video_height": np.array([s[1] for s in SIZES])[size],
        "music_id": world.video_music,
        "video_tag_id": tag_id,
        "video_tag_name": tag_name,
    }
    dates = np.array(
        [int((first + timedelta(days=d)).strftime("%Y%m%d")) for d in range(cfg.n_days)]
    )
    frame = pd.DataFrame(
        {"video_id": world.video_id[vi], "date": dates[day]}
        | {k: v[vi] for k, v in static.items()}
        | counts
    )
    early = dates[day] < int(COLLECT_FIRST_DATE.strftime("%Y%m%d"))
    for col in ("collect_cnt", "collect_user_num", "cancel_collect_cnt", "cancel_collect_user_num"):
        frame[col] = pd.array(np.where(early, 0, frame[col]), dtype="Int64")
        frame.loc[early, col] = pd.NA
    return frame[COLUMNS["item_daily_features"]]


def simulate_social_network(cfg: SimConfig, world: World, rng: np.random.Generator) -> pd.DataFrame:
    """A few users with one to three friends among the simulated users."""
    n_users = len(world.user_id)
    n = min(n_users, max(1, round(cfg.social_rows * cfg.scale)))
    users = rng.choice(world.user_id, size=n, replace=False)
    friend_lists = []
    for uid in users:
        k = min(n_users - 1, 1 + rng.binomial(2, 0.12))
        others = world.user_id[world.user_id != uid]
        friends = sorted(int(x) for x in rng.choice(others, size=k, replace=False))
        friend_lists.append("[" + ", ".join(map(str, friends)) + "]")
    return pd.DataFrame({"user_id": users, "friend_list": friend_lists})


# --------------------------------------------------------------------------------------------
# Writing the release in the real formats


def _float_text(values: np.ndarray) -> pa.Array:
    """Floats as Python writes them (shortest round trip, '2.0' not '2'); NaN as empty."""
    arr = pa.array(values, from_pandas=True)
    text = pc.cast(arr, pa.string())
    integral = pc.invert(pc.match_substring_regex(text, r"[.eEn]"))
    return pc.if_else(integral, pc.binary_join_element_wise(text, ".0", ""), text)


def _write_csv(path: Path, columns: dict[str, Any]) -> None:
    """Write columns unquoted, with a plain header, as the real interaction files are."""
    table = pa.table(columns)
    with open(path, "wb") as f:
        f.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(
            table, f, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none")
        )


def _time_columns(cfg: SimConfig, local_ms: np.ndarray) -> dict[str, pa.Array]:
    """time (Beijing, ms), date (YYYYMMDD) and timestamp (unix seconds) from local times."""
    first = date.fromisoformat(cfg.start_date)
    epoch_local_ms = (first - date(1970, 1, 1)).days * DAY_S * 1000
    local = pa.array(local_ms + epoch_local_ms, type=pa.timestamp("ms"))
    unix_s = (local_ms + epoch_local_ms - BEIJING_UTC_OFFSET_S * 1000) / 1000.0
    return {
        "time": pc.strftime(local, format="%Y-%m-%d %H:%M:%S"),
        "date": pc.cast(pc.strftime(local, format="%Y%m%d"), pa.int64()),
        "timestamp": unix_s,
    }


def _matrix_columns(cfg: SimConfig, world: World, rows: Mapping[str, np.ndarray]) -> dict[str, Any]:
    dur = world.video_duration_ms[rows["video"]]
    times = _time_columns(cfg, rows["local_ms"])
    return {
        "user_id": world.user_id[rows["user"]],
        "video_id": world.video_id[rows["video"]],
        "play_duration": rows["play_duration"],
        "video_duration": dur,
        "time": times["time"],
        "date": times["date"],
        "timestamp": _float_text(times["timestamp"]),
        "watch_ratio": _float_text(rows["play_duration"] / dur),
    }


def _copy_rows_by_id(src: Path, dst: Path, keep_ids: np.ndarray) -> None:
    """Copy the header and the rows whose first field is a kept id, byte for byte (lines split
    on '\\n' only, so bare carriage returns inside captions stay where they are)."""
    keep = {str(int(i)).encode() for i in keep_ids}
    lines = src.read_bytes().split(b"\n")
    body = [ln for ln in lines[1:] if ln and ln.split(b",", 1)[0] in keep]
    dst.write_bytes(b"\n".join([lines[0], *body]) + b"\n")


def _add_duplicates(
    n: int, share: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Row order with exact duplicates right after their original, so that ``share`` of the
    rows are duplicates; and the flag marking the copies."""
    n_dup = min(n, round(n * share / (1 - share)))
    copies = np.zeros(n, dtype=np.int64)
    copies[rng.choice(n, size=n_dup, replace=False)] = 1
    order = np.repeat(np.arange(n), 1 + copies)
    is_copy = np.zeros(len(order), dtype=bool)
    is_copy[1:] = order[1:] == order[:-1]
    return order, is_copy


def check_output_dir(out: Path) -> None:
    """The output folder must be absent, empty, or hold only an earlier simulator output."""
    if not out.exists():
        return
    if not out.is_dir():
        raise SimulationError(f"--out {out}: exists and is not a folder")
    entries = {p.name for p in out.iterdir()}
    ours = {KUAIREC_DATA_SUBDIR.parts[0], GROUND_TRUTH_SUBDIR.name}
    marker = out / GROUND_TRUTH_SUBDIR / "truth.json"
    if entries and not (entries <= ours and marker.exists()):
        raise SimulationError(
            f"--out {out}: holds other files ({sorted(entries - ours) or sorted(entries)}); "
            "give an empty or new folder (an earlier simulator output is replaced)"
        )


def simulate(
    out: str | Path,
    cfg: SimConfig,
    seed: int,
    *,
    side_dir: Path = KUAIREC_SIDE_DIR,
    progress: bool = True,
) -> dict[str, Any]:
    """Simulate the platform and write the release plus its ground truth under ``out``.

    Everything is checked before anything is written; the files appear atomically (written to a
    sibling folder, then moved into place). Returns a summary (row counts, seconds)."""
    out = Path(out)
    cfg.validate()
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SimulationError(f"seed must be a non-negative integer, got {seed!r}")
    check_output_dir(out)
    tic = time.perf_counter()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)]
    world = build_world(cfg, streams[0], side_dir)
    schedule = schedule_sessions(cfg, world, streams[1])
    rows = run_platform(cfg, world, schedule, streams[2], progress=progress)
    order = np.lexsort((rows["local_ms"], world.user_id[rows["user"]]))
    dup_order, is_copy = _add_duplicates(len(order), cfg.duplicate_share, streams[3])
    big = {k: v[order][dup_order] for k, v in rows.items()}
    small = simulate_small_matrix(cfg, world, streams[4])
    daily = simulate_item_daily_features(cfg, world, streams[5], side_dir)
    social = simulate_social_network(cfg, world, streams[6])

    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    data_dir, truth_dir = tmp / KUAIREC_DATA_SUBDIR, tmp / GROUND_TRUTH_SUBDIR
    data_dir.mkdir(parents=True)
    truth_dir.mkdir(parents=True)
    try:
        big_cols = _matrix_columns(cfg, world, big)
        _write_csv(data_dir / "big_matrix.csv", big_cols)
        small_cols = _matrix_columns(cfg, world, small)
        gone = small["missing_time"]
        small_cols["time"] = pc.if_else(
            pa.array(gone), pa.scalar(None, pa.string()), small_cols["time"]
        )
        small_cols["date"] = _float_text(np.where(gone, np.nan, small_cols["date"].to_numpy()))
        small_cols["timestamp"] = pc.if_else(
            pa.array(gone), pa.scalar(None, pa.string()), small_cols["timestamp"]
        )
        _write_csv(data_dir / "small_matrix.csv", small_cols)
        daily.to_csv(data_dir / "item_daily_features.csv", index=False, lineterminator="\n")
        social.to_csv(data_dir / "social_network.csv", index=False, lineterminator="\n")
        _copy_rows_by_id(
            side_dir / "user_features.csv", data_dir / "user_features.csv", world.user_id
        )
        for name in ("item_categories.csv", "kuairec_caption_category.csv"):
            _copy_rows_by_id(side_dir / name, data_dir / name, world.video_id)

        truth_table = {
            "user_id": big_cols["user_id"],
            "video_id": big_cols["video_id"],
            "timestamp": _time_columns(cfg, big["local_ms"])["timestamp"],
            **{f"p_{h}": big["p"][:, j] for j, h in enumerate(HEADS)},
            "session_id": big["session"],
            "position": big["position"],
            "selectivity": big["selectivity"],
            "residual": big["residual"],
            "residual_prev": big["residual_prev"],
            "score": big["score"],
            "utility": big["utility"],
            "in_deterministic_top_k": big["in_deterministic_top_k"],
            "is_duplicate": is_copy,
        }
        pq.write_table(pa.table(truth_table), truth_dir / "big_matrix_truth.parquet")
        small_truth = {
            "user_id": small_cols["user_id"],
            "video_id": small_cols["video_id"],
            **{f"p_{h}": small["p"][:, j] for j, h in enumerate(HEADS)},
            "utility": small["utility"],
            "selectivity": small["selectivity"],
        }
        pq.write_table(pa.table(small_truth), truth_dir / "small_matrix_truth.parquet")
        summary = {
            "big_matrix_rows": int(len(is_copy)),
            "duplicate_rows": int(is_copy.sum()),
            "small_matrix_rows": int(len(small["user"])),
            "item_daily_features_rows": int(len(daily)),
            "users": int(len(world.user_id)),
            "videos": int(len(world.video_id)),
            "sessions": int(rows["session"].max() + 1),
        }
        truth = {
            "w_true": dict(cfg.w_true),
            "effect_true": cfg.effect_true,
            "heads": list(HEADS),
            "seed": seed,
            "constants": {k: v for k, v in asdict(cfg).items()},
            "counts": summary,
            "files": {
                "big_matrix_truth.parquet": "one row per big_matrix.csv row, same order",
                "small_matrix_truth.parquet": "one row per small_matrix.csv row, same order",
            },
        }
        (truth_dir / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    summary["seconds"] = round(time.perf_counter() - tic, 2)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kuairec_utils.simulate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", required=True, type=Path, help="folder to write (new or empty)")
    parser.add_argument("--scale", type=float, help="1.0 = full KuaiRec; default from params")
    parser.add_argument("--seed", type=int, help="random seed; default: params.yaml seed")
    parser.add_argument("--params", type=Path, help="params file (default: the project's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params) if args.params else load_params()
        cfg = SimConfig.from_params(params, scale=args.scale)
        seed = args.seed if args.seed is not None else params.get("seed", 0)
        summary = simulate(args.out, cfg, seed, progress=not args.no_progress)
    except SimulationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
