"""Logged feeds, their candidate sets and the value model's view of them (notebook 05).

The head-weight estimator (``weights``) needs, for every session, the observed feed, a candidate
set and every candidate's predicted head probabilities at the session's start. This module
builds them from the study's tables:

- ``session_feeds``: one row per session of 01_data's interactions, with its feed in order;
- ``daily_show_matrix``: each day's ``show_cnt`` of every video (``item_daily_features``), the
  pool the candidates are drawn from;
- ``candidate_table``: the observed feed plus N others per session (``sample_candidates``);
- ``score_candidates``: the trained value model of 04 (``models.load_value_model``) scores every (user, candidate) at
  the session's start, once, from features computed as if the candidate had been shown first
  (``features.query_features``: the state before the session, position 0).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from kuairec_utils.features import (
    FeatureConfig,
    FittedFeatures,
    SideTables,
    build_features,
    query_features,
)
from kuairec_utils.heads import HEADS
from kuairec_utils.models.dataset import Dataset
from kuairec_utils.models.networks import ValueModel

SCORE_ROWS = 65536  # queries per forward pass of the GNN's edge MLP


def downstream_interactions(interactions: pd.DataFrame, max_users: int, seed: int) -> pd.DataFrame:
    """The interactions 05, 06 and 07 read: every row of at most ``max_users`` users, drawn
    without replacement with ``seed`` (all of them where there are no more; the same rows, in
    the same order, then). The estimators' intervals need a few thousand users, not every user
    of a full-size data set; each stage's metrics say how many it used."""
    users = np.unique(interactions["user_id"].to_numpy())
    if max_users < 1:
        raise ValueError(f"max_users must be a positive integer, got {max_users!r}")
    if len(users) <= max_users:
        return interactions
    kept = np.random.default_rng(seed).choice(users, max_users, replace=False)
    return interactions[interactions["user_id"].isin(kept)]


def session_feeds(interactions: pd.DataFrame) -> pd.DataFrame:
    """One row per session, in time order within each user: ids, start, date, burst, split,
    ``k`` (videos shown) and ``feed`` (their video ids, by position)."""
    rows = interactions.sort_values(["session_id", "position"], kind="stable")
    grouped = rows.groupby("session_id", sort=False)
    sessions = grouped.agg(
        user_id=("user_id", "first"),
        start=("timestamp", "min"),
        date=("date", "first"),
        burst=("burst", "first"),
        split=("split", "first"),
        k=("video_id", "size"),
    )
    sessions["feed"] = grouped["video_id"].agg(lambda v: v.to_numpy())
    sessions = sessions.reset_index()
    order = np.lexsort((sessions["start"].to_numpy(), sessions["user_id"].to_numpy()))
    return sessions.iloc[order].reset_index(drop=True)


def daily_show_matrix(
    item_daily: pd.DataFrame, video_ids: np.ndarray, dates: np.ndarray
) -> np.ndarray:
    """(len(dates), len(video_ids)) ``show_cnt`` of each video on each date (0 if no row)."""
    frame = item_daily[["date", "video_id", "show_cnt"]].dropna()
    frame = frame[frame["video_id"].isin(video_ids) & frame["date"].isin(dates)]
    out = np.zeros((len(dates), len(video_ids)))
    row = np.searchsorted(dates, frame["date"].to_numpy())
    col = np.searchsorted(video_ids, frame["video_id"].to_numpy())
    np.add.at(out, (row, col), frame["show_cnt"].to_numpy(dtype=np.float64))
    return out


def candidate_table(
    sessions: pd.DataFrame,
    item_ids: np.ndarray,
    daily: pd.DataFrame,
    n_others: int,
    seed: int,
    exclude_seen: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates of every session as a padded (S, C) array of rows of ``item_ids`` and its
    valid mask; the observed feed fills the first ``k`` slots, in order."""
    dates = np.unique(sessions["date"].to_numpy())
    shows = daily_show_matrix(daily, item_ids, dates)
    feeds = [np.searchsorted(item_ids, f) for f in sessions["feed"]]
    if any((item_ids[f] != v).any() for f, v in zip(feeds, sessions["feed"], strict=True)):
        raise ValueError("a feed holds a video the model has no node for")
    cands = sample_candidates(
        np.searchsorted(dates, sessions["date"].to_numpy()),
        feeds,
        shows,
        n_others,
        seed,
        user=sessions["user_id"].to_numpy() if exclude_seen else None,
    )
    width = max(len(c) for c in cands)
    items = np.zeros((len(cands), width), dtype=np.int64)
    valid = np.zeros((len(cands), width), dtype=bool)
    for s, c in enumerate(cands):
        items[s, : len(c)], valid[s, : len(c)] = c, True
    return items, valid


def score_queries(
    model: ValueModel | Sequence[ValueModel],
    data: Dataset,
    interactions: pd.DataFrame,
    side: SideTables,
    queries: pd.DataFrame,
    feature_cfg: FeatureConfig,
    split_mode: str = "global",
    h: torch.Tensor | Sequence[torch.Tensor | None] | None = None,
    fixed_features: Mapping[str, float] | None = None,
    fitted: FittedFeatures | None = None,
    max_rows: int | None = None,
    batch_rows: int = SCORE_ROWS,
) -> np.ndarray:
    """(n, 4) the value model's head probabilities of ``queries`` (``features.query_features``:
    user, video, one of the user's sessions, a time): videos shown as if first in that session.
    ``fixed_features`` sets some features to one value for every query (e.g. the user's
    history to its training mean); ``fitted``, the features fitted on ``interactions``, spares
    building every event's features again (the same result).

    ``model`` may be a sequence of models on the same data (e.g. one per value-model seed):
    the features are then built once and each model scores them; the result is (M, n, 4).

    ``max_rows`` (needs ``fitted``) builds the features of at most that many queries at a time,
    rounded down to whole forward passes of ``batch_rows``, so the passes and so the bits are
    those of one call (the small matrix's 4.7M pairs at scale 1.0 took 7 GB at once)."""
    several = not isinstance(model, ValueModel)
    models = list(model) if several else [model]
    if several:
        h = [None] * len(models) if h is None else list(h)
    else:
        h = [h]
    if max_rows is not None and (fitted is None or max_rows < 1):
        raise ValueError(
            f"max_rows={max_rows} needs a positive count and the fitted features (each chunk "
            "fitted alone would encode its own queries differently)"
        )
    with torch.no_grad():
        h = [m.propagate() if hm is None else hm for m, hm in zip(models, h, strict=True)]
    if max_rows is not None and len(queries) > max_rows:
        step = max(batch_rows, max_rows // batch_rows * batch_rows)
        parts = [
            score_queries(
                models,
                data,
                interactions,
                side,
                queries.iloc[a : a + step],
                feature_cfg,
                split_mode,
                h,
                fixed_features,
                fitted,
                batch_rows=batch_rows,
            )
            for a in range(0, len(queries), step)
        ]
        out = np.concatenate(parts, axis=1)
        return out if several else out[0]
    built = query_features(interactions, queries, side, feature_cfg, split_mode, fitted)
    fixed = dict(fixed_features or {})
    unknown = sorted(set(fixed) - set(data.feature_names))
    if unknown:
        raise ValueError(f"fixed_features names unknown features: {unknown}")
    columns = [
        np.full(len(queries), fixed[n], np.float32) if n in fixed else built.features[n]
        for n in data.feature_names
    ]
    user = np.searchsorted(data.user_ids, queries["user_id"].to_numpy())
    item = np.searchsorted(data.item_ids, queries["video_id"].to_numpy())
    if (
        data.item_ids[item.clip(0, len(data.item_ids) - 1)] != queries["video_id"].to_numpy()
    ).any():
        raise ValueError("queries name videos the model has no node for")
    out = np.empty((len(models), len(queries), len(HEADS)), dtype=np.float32)
    with torch.no_grad():
        for a in range(0, len(queries), batch_rows):
            sl = slice(a, a + batch_rows)
            x = torch.from_numpy(stack_rows(columns, a, a + batch_rows))
            u, i = torch.from_numpy(user[sl]), torch.from_numpy(item[sl])
            for m, (one, hm) in enumerate(zip(models, h, strict=True)):
                out[m, sl] = torch.sigmoid(one.score_edges(hm, x, u, i)).numpy()
    return out if several else out[0]


def stack_rows(columns: Sequence[np.ndarray], lo: int, hi: int, block: int = 4096) -> np.ndarray:
    """``np.column_stack(columns)[lo:hi]`` as float32, built a few thousand rows at a time.

    Writing a whole column into a row-major matrix strides across all of it once per column;
    on a million rows of a hundred features that is several seconds where blocks that stay in
    the cache take a fraction of one.
    """
    hi = min(hi, len(columns[0]))
    out = np.empty((max(hi - lo, 0), len(columns)), dtype=np.float32)
    for a in range(lo, hi, block):
        b = min(a + block, hi)
        for j, column in enumerate(columns):
            out[a - lo : b - lo, j] = column[a:b]
    return out


def score_candidates(
    model: ValueModel | Sequence[ValueModel],
    data: Dataset,
    interactions: pd.DataFrame,
    side: SideTables,
    sessions: pd.DataFrame,
    items: np.ndarray,
    valid: np.ndarray,
    feature_cfg: FeatureConfig,
    split_mode: str = "global",
    max_rows: int = 1_500_000,
    progress: bool = True,
    fixed_features: Mapping[str, float] | None = None,
    fitted: FittedFeatures | None = None,
) -> np.ndarray:
    """(S, C, 4) predicted head probabilities of every valid candidate at its session's start
    (NaN on padding), in chunks of sessions of at most ``max_rows`` candidates
    (``fixed_features``: see ``score_queries``). A sequence of models (one per value-model
    seed) scores each chunk's features, built once: (M, S, C, 4).

    The features' encoders and scalers are fitted once, on ``interactions`` as 02 fits them
    (``fitted``, or here when it is not given), and each chunk builds only its own users' events
    beside its queries: before, every chunk built the features of every event again (at scale
    1.0, 33 chunks of the 10.4M events' features).
    """
    several = not isinstance(model, ValueModel)
    models = list(model) if several else [model]
    probs = np.full((len(models), *items.shape, len(HEADS)), np.nan, dtype=np.float32)
    if fitted is None:
        fitted = build_features(interactions, side, feature_cfg, split_mode=split_mode).fitted
    counts = valid.sum(axis=1)
    bounds = np.r_[0, np.cumsum(counts)]
    cuts = np.searchsorted(bounds, np.arange(0, bounds[-1], max_rows), side="right") - 1
    edges = np.unique(np.r_[cuts, len(sessions)])
    with torch.no_grad():
        h = [m.propagate() for m in models]
    for lo, hi in tqdm(list(zip(edges[:-1], edges[1:], strict=True)), disable=not progress):
        rows, slots = np.nonzero(valid[lo:hi])
        part = sessions.iloc[lo:hi]
        queries = pd.DataFrame(
            {
                "user_id": part["user_id"].to_numpy()[rows],
                "video_id": data.item_ids[items[lo:hi][rows, slots]],
                "session_id": part["session_id"].to_numpy()[rows],
                "timestamp": part["start"].to_numpy()[rows],
            }
        )
        scored = score_queries(
            models,
            data,
            interactions,
            side,
            queries,
            feature_cfg,
            split_mode,
            h,
            fixed_features,
            fitted,
        )
        probs[:, lo + rows, slots] = scored
    return probs if several else probs[0]


def small_matrix_queries(
    small: pd.DataFrame, sessions: pd.DataFrame, data: Dataset
) -> pd.DataFrame:
    """Every (user, video) pair of the fully observed small matrix that the model knows, asked
    at the start of the user's last session; with the pair's observed outcome
    (``watch_ratio``, ``play_duration``)."""
    last = sessions.sort_values("start").groupby("user_id").last()
    pairs = small[
        small["user_id"].isin(last.index) & small["video_id"].isin(data.item_ids)
    ].drop_duplicates(["user_id", "video_id"])
    at = last.loc[pairs["user_id"].to_numpy()]
    return pd.DataFrame(
        {
            "user_id": pairs["user_id"].to_numpy(),
            "video_id": pairs["video_id"].to_numpy(),
            "session_id": at["session_id"].to_numpy(),
            "timestamp": at["start"].to_numpy(),
            "watch_ratio": pairs["watch_ratio"].to_numpy(),
            "play_duration": pairs["play_duration"].to_numpy(),
        }
    )


def top_k_outcomes(
    queries: pd.DataFrame, score: np.ndarray, k: int, labels: dict[str, np.ndarray]
) -> dict[str, float]:
    """Mean observed outcomes of each user's top ``k`` videos by ``score`` (ties: first), averaged
    over users: ``watch_ratio`` and the rate of each head."""
    frame = pd.DataFrame({"user": queries["user_id"].to_numpy(), "score": score})
    frame["watch_ratio"] = queries["watch_ratio"].to_numpy()
    for head, values in labels.items():
        frame[head] = values
    rank = frame.groupby("user")["score"].rank(method="first", ascending=False)
    top = frame[rank <= k]
    return top.groupby("user")[["watch_ratio", *labels]].mean().mean().to_dict()


def sample_candidates(
    day_index: np.ndarray,
    observed: Sequence[np.ndarray],
    daily_shows: np.ndarray,
    n_others: int,
    seed: int = 0,
    user: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Each session's candidate set: its observed videos, then ``n_others`` other videos
    available that day, drawn without replacement in proportion to that day's ``show_cnt``
    (the way a platform plausibly builds its pool). Reproducible for a seed.

    day_index: (S,) the session's day, a row of ``daily_shows``
    observed: S arrays of video indices (the observed feed, in order)
    daily_shows: (n_days, n_videos) show counts; zero where a video was not available
    user: (S,) the sessions' users, given in time order within each user: then the others
        exclude the videos a user was shown in an earlier session (a platform rarely shows a
        video twice; the logs say how rarely)
    """
    if n_others < 0:
        raise ValueError(f"n_others must be non-negative, got {n_others}")
    rng = np.random.default_rng(seed)
    seen: dict[int, np.ndarray] = {}
    users = np.full(len(observed), -1) if user is None else np.asarray(user)
    out = []
    for day, feed, u in zip(np.asarray(day_index), observed, users, strict=True):
        feed = np.asarray(feed, dtype=np.int64)
        weights = daily_shows[day].astype(np.float64).copy()
        weights[feed] = 0.0  # others are not already in the feed
        if user is not None:
            shown = seen.setdefault(int(u), np.zeros(daily_shows.shape[1], dtype=bool))
            weights[shown] = 0.0
            shown[feed] = True
        available = int((weights > 0).sum())
        take = min(n_others, available)
        # Efraimidis-Spirakis: the largest log(u)/w keys are a weighted sample without replacement
        keys = np.where(
            weights > 0, np.log(rng.random(len(weights))) / np.maximum(weights, 1e-300), -np.inf
        )
        others = np.argpartition(-keys, take)[:take] if take else np.zeros(0, dtype=np.int64)
        out.append(np.concatenate([feed, np.sort(others)]))
    return out


def position_features(
    score_position: str, processed_dir: str | Path, feature_names: Sequence[str]
) -> dict[str, float]:
    """The features every candidate is scored with whatever slot it would land in:
    ``"mean"``, the position feature at its training mean (a typical showing); ``"first"``,
    none (the query features' position 0, the session's first slot)."""
    if score_position == "first":
        return {}
    if "ctx_log_position" not in feature_names:
        raise ValueError(f"{processed_dir} has no ctx_log_position feature to fix at its mean")
    train_position = pd.read_parquet(
        Path(processed_dir) / "train.parquet", columns=["ctx_log_position"]
    )["ctx_log_position"].to_numpy(np.float32, copy=True)
    return {"ctx_log_position": float(torch.from_numpy(train_position).mean())}


def cached_candidate_probabilities(
    cache: Path,
    inputs: Sequence[Path],
    settings: Sequence[Any],
    session_ids: np.ndarray,
    items: np.ndarray,
    valid: np.ndarray,
    score: Callable[[], np.ndarray],
) -> tuple[np.ndarray, bool]:
    """The candidates' head probabilities, read from ``cache`` when it was written for the
    same ``inputs`` (files, by content) and ``settings``, else from ``score()`` and written
    there (with the sessions, items and valid slots, which 06 reads). Returns them and whether
    they were read."""
    key = hashlib.sha256()
    for path in inputs:
        key.update(Path(path).read_bytes())
    key.update(json.dumps(list(settings)).encode())
    key = key.hexdigest()
    cached = np.load(cache) if cache.exists() else None
    if cached is not None and str(cached["key"]) == key and cached["items"].shape == items.shape:
        return cached["probs"], True
    probs = score()
    np.savez(cache, key=key, session_id=session_ids, items=items, valid=valid, probs=probs)
    return probs, False


def cached_probabilities_by_seed(
    caches: Mapping[int, Path],
    inputs: Mapping[int, Sequence[Path]],
    settings: Sequence[Any],
    session_ids: np.ndarray,
    items: np.ndarray,
    valid: np.ndarray,
    score: Callable[[list[int]], np.ndarray],
    extra: Mapping[str, np.ndarray] | None = None,
    flat: bool = False,
) -> list[int]:
    """``cached_candidate_probabilities`` for one value model per seed: every seed's cache
    (``caches[seed]``, keyed by ``inputs[seed]`` and ``settings``) that is missing or stale is
    written from one call ``score(seeds)``, which scores the candidates' features once for all
    of those seeds ((M, S, C, 4)), with the arrays of ``extra`` (S, C) beside. ``flat`` keeps
    the valid candidates only, in row order (``items`` and the extra arrays as ``x[valid]``;
    ``score`` then returns (M, n, 4)): a fraction of the padded layout's bytes. Returns the seeds that were read from
    their cache; each seed's probabilities are then in its cache file
    (``np.load(cache)["probs"]``)."""
    keys, stale = {}, []
    for seed, cache in caches.items():
        key = hashlib.sha256()
        for path in inputs[seed]:
            key.update(Path(path).read_bytes())
        key.update(json.dumps(list(settings)).encode())
        keys[seed] = key.hexdigest()
        cached = np.load(cache) if cache.exists() else None
        fresh = cached is not None and str(cached["key"]) == keys[seed]
        if not (fresh and cached["valid"].shape == valid.shape):
            stale.append(seed)
    if stale:
        probs = score(stale)
        keep = (lambda x: x[valid]) if flat else (lambda x: x)
        for seed, p in zip(stale, probs, strict=True):
            Path(caches[seed]).parent.mkdir(parents=True, exist_ok=True)
            np.savez(
                caches[seed],
                key=keys[seed],
                session_id=session_ids,
                items=keep(items),
                valid=valid,
                probs=p,
                **{name: keep(values) for name, values in (extra or {}).items()},
            )
        del probs
    return [s for s in caches if s not in stale]


def logged_pool_table(
    sessions: pd.DataFrame, item_ids: np.ndarray, pool: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each session's logged pool (01's ``candidate_pool.parquet``) as a candidate table like
    ``candidate_table``'s: the observed feed in the first ``k`` slots, in order, then the other
    videos the platform ranked and could show (not shown in the session, never shown to the user
    before) that the model knows, by descending score. Returns the rows of ``item_ids`` (S, C),
    the valid mask and the platform's logged score of every candidate (NaN on padding)."""
    n = len(sessions)
    index = pd.Index(sessions["session_id"].to_numpy())
    at = index.get_indexer(pool["session_id"].to_numpy())
    known = np.isin(pool["video_id"].to_numpy(), item_ids)
    pool = pool[(at >= 0) & known].assign(row=at[(at >= 0) & known])
    k = sessions["k"].to_numpy()
    feed_row = np.repeat(np.arange(n), k)
    feed_video = np.concatenate(sessions["feed"].to_numpy()) if n else np.zeros(0, np.int64)
    shown = pool[pool["shown"].to_numpy()]
    shown_score = pd.Series(
        shown["score"].to_numpy(),
        index=pd.MultiIndex.from_arrays([shown["row"], shown["video_id"]]),
    )
    found = shown_score.index.get_indexer(pd.MultiIndex.from_arrays([feed_row, feed_video]))
    if (found < 0).any():
        s = sessions["session_id"].iloc[feed_row[np.flatnonzero(found < 0)[0]]]
        raise ValueError(f"session {s}: a video of its feed is not in its logged pool")
    others = pool[~pool["shown"].to_numpy() & ~pool["seen"].to_numpy()]
    slot_other = k[others["row"].to_numpy()] + others.groupby("row").cumcount().to_numpy()
    width = int(max(k.max(initial=0), slot_other.max(initial=0) + 1))
    items = np.zeros((n, width), dtype=np.int64)
    valid = np.zeros((n, width), dtype=bool)
    score = np.full((n, width), np.nan, dtype=np.float32)
    slots = [np.arange(len(feed_row)) - np.repeat(np.cumsum(k) - k, k), slot_other]
    for rows, slot, video, value in (
        (feed_row, slots[0], feed_video, shown_score.to_numpy()[found]),
        (
            others["row"].to_numpy(),
            slots[1],
            others["video_id"].to_numpy(),
            others["score"].to_numpy(),
        ),
    ):
        items[rows, slot] = np.searchsorted(item_ids, video)
        valid[rows, slot] = True
        score[rows, slot] = value
    return items, valid, score


def pool_probabilities(
    sampled: Mapping[str, np.ndarray],
    sampled_probs: Sequence[np.ndarray],
    pool_items: np.ndarray,
    pool_valid: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """The value model's probabilities of the logged pool's valid candidates, (M, n, 4) in row
    order: those a session's sampled candidates hold too (``sampled``'s ``items`` and
    ``valid``, one seed's probabilities (S, C', 4) each in ``sampled_probs``) are copied, the
    same question asked once; ``score(items, valid)`` scores the rest, packed to the left of a
    narrower table ((M, S, W, 4))."""
    n_items = int(max(pool_items.max(initial=0), sampled["items"].max(initial=0))) + 1
    s_rows, s_slots = np.nonzero(sampled["valid"])
    known = pd.Index(s_rows * n_items + sampled["items"][s_rows, s_slots])
    rows, slots = np.nonzero(pool_valid)
    videos = pool_items[rows, slots]
    found = known.get_indexer(rows * n_items + videos)
    todo = found < 0
    t_rows = rows[todo]
    t_slots = pd.Series(t_rows).groupby(t_rows).cumcount().to_numpy()
    width = int(t_slots.max(initial=-1)) + 1
    items = np.zeros((len(pool_valid), width), dtype=np.int64)
    valid = np.zeros((len(pool_valid), width), dtype=bool)
    items[t_rows, t_slots], valid[t_rows, t_slots] = videos[todo], True
    scored = score(items, valid)
    out = np.empty((len(sampled_probs), len(rows), 4), dtype=np.float32)
    out[:, todo] = scored[:, t_rows, t_slots]
    hit = found[~todo]
    for m, probs in enumerate(sampled_probs):
        out[m, ~todo] = probs[s_rows[hit], s_slots[hit]]
    return out


def cached_pool_probabilities(
    caches: Mapping[int, Path],
    sampled_caches: Mapping[int, Path],
    inputs: Mapping[int, Sequence[Path]],
    settings: Sequence[Any],
    sessions: pd.DataFrame,
    item_ids: np.ndarray,
    pool: pd.DataFrame,
    score: Callable[[list[int], np.ndarray, np.ndarray], np.ndarray],
) -> int:
    """05's logged pools (01's ``candidate_pool.parquet`` as ``pool``): their candidate table
    (``logged_pool_table``) and each seed's value-model probabilities, cached flat in
    ``caches[seed]`` with the logged scores (``cached_probabilities_by_seed``): a candidate
    the seed's sampled set holds (``sampled_caches[seed]``, 05's ``candidates.npz``) keeps its
    probabilities, ``score(seeds, items, valid)`` scores the rest for those seeds
    (``pool_probabilities``). Returns the number of logged candidates."""
    items, valid, logged = logged_pool_table(sessions, item_ids, pool)
    layout = np.load(next(iter(sampled_caches.values())))
    sampled = {"items": layout["items"], "valid": layout["valid"]}
    cached_probabilities_by_seed(
        caches,
        inputs,
        settings,
        sessions["session_id"].to_numpy(),
        items,
        valid,
        lambda todo: pool_probabilities(
            sampled,
            [np.load(sampled_caches[s])["probs"] for s in todo],
            items,
            valid,
            lambda some, mask: score(todo, some, mask),
        ),
        extra={"score": logged},
        flat=True,
    )
    return int(valid.sum())
