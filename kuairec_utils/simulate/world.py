"""The world of the simulated platform: real KuaiRec users (with their real features) and real
videos (with their real category tags), sampled at the configured scale and given the latent
parameters of the generative model: taste vectors, biases, selectivities and activity for the
users; taste, quality, author, music, duration, popularity and upload day for the videos.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from kuairec_utils.config import KUAIREC_SIDE_DIR
from kuairec_utils.simulate.config import DEGREES, FULL_USERS, FULL_VIDEOS, SimConfig


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
    """Each column centred and scaled to unit variance (constant columns only centred)."""
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
    all_users = pd.read_csv(side_dir / "user_features.csv")
    cats = pd.read_csv(side_dir / "item_categories.csv")
    n_users = max(4, round(FULL_USERS * cfg.scale))
    n_videos = max(20, round(FULL_VIDEOS * cfg.scale**cfg.video_scale_exponent))
    keep_u = np.sort(rng.choice(len(all_users), size=n_users, replace=False))
    keep_v = np.sort(rng.choice(len(cats), size=n_videos, replace=False))
    features = _user_feature_matrix(all_users)[keep_u]
    users = _user_latents(cfg, rng, all_users.iloc[keep_u].reset_index(drop=True), features)
    videos = _video_latents(cfg, rng, cats.iloc[keep_v].reset_index(drop=True))
    return World(**users, **videos)


def _user_latents(
    cfg: SimConfig, rng: np.random.Generator, users: pd.DataFrame, features: np.ndarray
) -> dict[str, Any]:
    """The kept users' fields of the World: taste from their real features through a random
    projection plus noise, activity degree, activity, bias and selectivity c_u."""
    n_users, d = len(users), cfg.dim
    proj = rng.normal(size=(features.shape[1], d)) / math.sqrt(features.shape[1])
    from_features = _gaussianise(features @ proj)
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
    user_bias = cfg.user_bias_sd * rng.normal(size=n_users)
    user_selectivity = (
        cfg.selectivity_mean + deg_sel + cfg.selectivity_user_sd * rng.normal(size=n_users)
    )
    return {
        "user_id": users["user_id"].to_numpy(np.int64),
        "user_degree": degree,
        "user_taste": user_taste.astype(np.float32),
        "user_bias": user_bias,
        "user_selectivity": user_selectivity,
        "user_activity": deg_act + np.log(linear) + log_heavy,
    }


def _video_latents(cfg: SimConfig, rng: np.random.Generator, cats: pd.DataFrame) -> dict[str, Any]:
    """The kept videos' fields of the World: taste from their real category tags, quality plus
    their author's effect, music, duration, popularity and upload day."""
    n_videos = len(cats)
    tags = [json.loads(s) for s in cats["feat"]]
    n_categories = 1 + max(max(t) for t in tags)
    video_taste = _video_taste(cfg, rng, tags, n_categories)
    author_idx, author_effect, author_ids = _authors(cfg, rng, n_videos)
    quality = cfg.quality_sd * rng.normal(size=n_videos)
    video_music = _music(cfg, rng, n_videos)
    duration_ms = _duration_ms(cfg, rng, n_videos)
    log_pop = _log_popularity(cfg, rng, quality)
    upload_day = _upload_days(cfg, rng, n_videos)
    return {
        "video_id": cats["video_id"].to_numpy(np.int64),
        "video_category": np.array([t[0] for t in tags]),
        "video_taste": video_taste,
        "video_quality": quality + author_effect[author_idx],
        "video_author": author_ids[author_idx],
        "video_music": video_music,
        "video_duration_ms": duration_ms,
        "video_log_popularity": log_pop,
        "video_upload_day": upload_day,
        "n_categories": n_categories,
    }


def _video_taste(
    cfg: SimConfig, rng: np.random.Generator, tags: list[list[int]], n_categories: int
) -> np.ndarray:
    """Taste vectors of the videos: the mean of their tags' vectors plus noise, scaled so that a
    taste match has standard deviation about ``taste_scale``."""
    d = cfg.dim
    tag_vectors = rng.normal(size=(n_categories, d))
    from_tags = np.stack([tag_vectors[t].mean(axis=0) for t in tags])
    wv = cfg.video_category_weight
    video_taste = math.sqrt(wv) * _standardise(from_tags) + math.sqrt(1 - wv) * rng.normal(
        size=(len(tags), d)
    )
    return (cfg.taste_scale * video_taste / math.sqrt(d)).astype(np.float32)


def _authors(
    cfg: SimConfig, rng: np.random.Generator, n_videos: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each video's author (Zipf-weighted), each author's quality effect and id."""
    n_authors = max(2, round(cfg.n_authors_ratio * n_videos))
    author_weights = 1.0 / np.arange(1, n_authors + 1) ** (cfg.author_zipf - 1.0)
    author_idx = rng.choice(n_authors, size=n_videos, p=author_weights / author_weights.sum())
    author_effect = cfg.author_sd * rng.normal(size=n_authors)
    author_ids = np.sort(rng.choice(10 * FULL_VIDEOS, size=n_authors, replace=False))
    return author_idx, author_effect, author_ids


def _music(cfg: SimConfig, rng: np.random.Generator, n_videos: int) -> np.ndarray:
    """Each video's music id, drawn from a Zipf-weighted set of tracks."""
    n_music = max(2, round(cfg.music_ratio * n_videos))
    music_ids = rng.integers(10**8, 5 * 10**9, size=n_music)
    music_weights = 1.0 / np.arange(1, n_music + 1)
    return music_ids[rng.choice(n_music, size=n_videos, p=music_weights / music_weights.sum())]


def _duration_ms(cfg: SimConfig, rng: np.random.Generator, n_videos: int) -> np.ndarray:
    """Video durations (ms): log-normal, a mixture of short and long videos, clipped."""
    is_long = rng.random(n_videos) < cfg.long_video_share
    log_dur = np.where(
        is_long,
        math.log(cfg.long_video_log_median_s) + cfg.long_video_log_sd * rng.normal(size=n_videos),
        math.log(cfg.duration_log_median_s) + cfg.duration_log_sd * rng.normal(size=n_videos),
    )
    dur_s = np.clip(np.exp(log_dur), cfg.duration_min_s, cfg.duration_max_s)
    return np.maximum(1, np.round(dur_s * 1000)).astype(np.int64)


def _log_popularity(cfg: SimConfig, rng: np.random.Generator, quality: np.ndarray) -> np.ndarray:
    """Log popularity of each video, correlated with its own quality."""
    rho = cfg.popularity_quality_corr
    z_q = quality / cfg.quality_sd if cfg.quality_sd > 0 else np.zeros(len(quality))
    return cfg.popularity_sd * (rho * z_q + math.sqrt(1 - rho**2) * rng.normal(size=len(quality)))


def _upload_days(cfg: SimConfig, rng: np.random.Generator, n_videos: int) -> np.ndarray:
    """Upload day of each video: a share before the window (up to half a year), the rest in it."""
    before = rng.random(n_videos) < cfg.frac_uploaded_before
    return np.where(
        before, -rng.integers(1, 180, size=n_videos), rng.integers(0, cfg.n_days, size=n_videos)
    )
