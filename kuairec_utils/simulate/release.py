"""The simulated release: the side tables drawn from the world (item daily features, the social
network), the KuaiRec 2.0 files in their real formats, and ``simulate()``, which runs the whole
platform and writes the release with its ground truth.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kuairec_utils.config import GROUND_TRUTH_SUBDIR, KUAIREC_DATA_SUBDIR, KUAIREC_SIDE_DIR
from kuairec_utils.data.kuairec import COLUMNS
from kuairec_utils.heads import HEADS
from kuairec_utils.simulate.config import (
    BEIJING_UTC_OFFSET_S,
    COLLECT_FIRST_DATE,
    DAY_S,
    SimConfig,
    SimulationError,
)
from kuairec_utils.simulate.platform import (
    PoolLog,
    head_probabilities,
    run_platform,
    schedule_sessions,
)
from kuairec_utils.simulate.small_matrix import simulate_small_matrix, small_matrix_users
from kuairec_utils.simulate.world import World, build_world

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
    vi, day = _video_days(cfg, world)
    counts = _daily_counts(cfg, world, rng, vi, day)
    static = _static_video_attributes(cfg, world, rng, side_dir)
    return _daily_frame(cfg, world, vi, day, static, counts)


def _video_days(cfg: SimConfig, world: World) -> tuple[np.ndarray, np.ndarray]:
    """One row per video per day from its upload (or the first day): the video's position and
    the day index."""
    first_day = np.maximum(world.video_upload_day, 0)
    n_rows = cfg.n_days - first_day
    vi = np.repeat(np.arange(len(world.video_id)), n_rows)
    day = np.arange(len(vi)) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows) + first_day[vi]
    return vi, day


def _daily_counts(
    cfg: SimConfig, world: World, rng: np.random.Generator, vi: np.ndarray, day: np.ndarray
) -> dict[str, np.ndarray]:
    """The count columns of each video-day: shows follow the video's popularity (a little more
    at weekends), plays and completions the population's head rates, the rest small rates."""
    n_videos, first = len(world.video_id), date.fromisoformat(cfg.start_date)
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
    viewing = _viewing_counts(world, rng, p[vi], vi, show, play)
    return viewing | _engagement_counts(rng, play, like, comment, follow, collect)


def _viewing_counts(
    world: World,
    rng: np.random.Generator,
    p: np.ndarray,
    vi: np.ndarray,
    show: np.ndarray,
    play: np.ndarray,
) -> dict[str, np.ndarray]:
    """Shows, plays, their durations and how far they went (complete, long, short)."""
    b = rng.binomial
    return {
        "show_cnt": show,
        "show_user_num": b(show, 0.78),
        "play_cnt": play,
        "play_user_num": b(play, 0.74),
        "play_duration": np.round(
            play * world.video_duration_ms[vi] * 0.8 * np.exp(0.1 * rng.normal(size=len(vi)))
        ).astype(np.int64),
        "complete_play_cnt": (complete := b(play, p[:, 0])),
        "complete_play_user_num": b(complete, 0.85),
        "valid_play_cnt": (valid := b(play, p[:, 1])),
        "valid_play_user_num": (valid_users := b(valid, 0.87)),
        "long_time_play_cnt": valid,
        "long_time_play_user_num": valid_users,
        "short_time_play_cnt": (short := b(play, p[:, 3])),
        "short_time_play_user_num": b(short, 0.76),
        # six decimals: the progress goes through numpy's log, whose last bit differs between
        # CPUs (AVX-512 or not); the file must not
        "play_progress": np.round(
            np.clip(p[:, 0] + 0.45 + 0.03 * rng.normal(size=len(vi)), 0, 1), 6
        ),
        "comment_stay_duration": np.round(play * 650 * rng.lognormal(0, 0.5, len(vi))).astype(
            np.int64
        ),
    }


def _engagement_counts(
    rng: np.random.Generator,
    play: np.ndarray,
    like: np.ndarray,
    comment: np.ndarray,
    follow: np.ndarray,
    collect: np.ndarray,
) -> dict[str, np.ndarray]:
    """Likes, comments, follows, shares, downloads, reports and collections, with the users
    behind them and their cancellations."""
    b = rng.binomial
    return {
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


def _static_video_attributes(
    cfg: SimConfig, world: World, rng: np.random.Generator, side_dir: Path
) -> dict[str, np.ndarray]:
    """Attributes of each video that do not change by day: its real category as the tag, its
    author, music, duration and upload day from the world, the rest drawn."""
    n_videos, first = len(world.video_id), date.fromisoformat(cfg.start_date)
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
    return {
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


def _daily_frame(
    cfg: SimConfig,
    world: World,
    vi: np.ndarray,
    day: np.ndarray,
    static: Mapping[str, np.ndarray],
    counts: Mapping[str, np.ndarray],
) -> pd.DataFrame:
    """The item_daily_features table in the real column order; the collect_* columns are empty
    before the day the real platform started counting them."""
    first = date.fromisoformat(cfg.start_date)
    dates = np.array(
        [int((first + timedelta(days=d)).strftime("%Y%m%d")) for d in range(cfg.n_days)]
    )
    frame = pd.DataFrame(
        {"video_id": world.video_id[vi], "date": dates[day]}
        | {k: v[vi] for k, v in static.items()}
        | dict(counts)
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

POOL_FILE = "candidate_pool.parquet"  # the platform's log beside the KuaiRec files (not in KuaiRec)


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


def _epoch_local_ms(cfg: SimConfig) -> int:
    """Milliseconds from 1970-01-01 00:00 to the window's first day, both in local time."""
    return (date.fromisoformat(cfg.start_date) - date(1970, 1, 1)).days * DAY_S * 1000


def _unix_seconds(cfg: SimConfig, local_ms: np.ndarray) -> np.ndarray:
    """The big matrix's ``timestamp`` (unix seconds) of local times (ms since the first day)."""
    return (local_ms + _epoch_local_ms(cfg) - BEIJING_UTC_OFFSET_S * 1000) / 1000.0


def _time_columns(cfg: SimConfig, local_ms: np.ndarray) -> dict[str, pa.Array]:
    """time (Beijing, ms), date (YYYYMMDD) and timestamp (unix seconds) from local times."""
    local = pa.array(local_ms + _epoch_local_ms(cfg), type=pa.timestamp("ms"))
    unix_s = _unix_seconds(cfg, local_ms)
    return {
        "time": pc.strftime(local, format="%Y-%m-%d %H:%M:%S"),
        "date": pc.cast(pc.strftime(local, format="%Y%m%d"), pa.int64()),
        "timestamp": unix_s,
    }


def _matrix_columns(cfg: SimConfig, world: World, rows: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The columns of big_matrix.csv or small_matrix.csv, from simulated rows."""
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


def _small_matrix_columns(
    cfg: SimConfig, world: World, small: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """The small matrix's columns, with time, date and timestamp empty on the rows whose time
    the real release lost."""
    cols = _matrix_columns(cfg, world, small)
    gone = small["missing_time"]
    cols["time"] = pc.if_else(pa.array(gone), pa.scalar(None, pa.string()), cols["time"])
    cols["date"] = _float_text(np.where(gone, np.nan, cols["date"].to_numpy()))
    cols["timestamp"] = pc.if_else(pa.array(gone), pa.scalar(None, pa.string()), cols["timestamp"])
    return cols


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


@dataclass
class _Simulated:
    """Everything the simulator draws, before it is written."""

    world: World
    n_sessions: int
    big: dict[str, np.ndarray]  # release order, duplicates included
    is_copy: np.ndarray  # the big matrix's rows that duplicate the row before
    small: dict[str, np.ndarray]
    daily: pd.DataFrame
    social: pd.DataFrame
    pool: PoolLog | None = None  # the platform's log of its candidate pools (cfg.candidate_pool)

    def counts(self) -> dict[str, int]:
        """Rows of each table, users, videos and sessions."""
        return {
            "big_matrix_rows": int(len(self.is_copy)),
            "duplicate_rows": int(self.is_copy.sum()),
            "small_matrix_rows": int(len(self.small["user"])),
            "item_daily_features_rows": int(len(self.daily)),
            "users": int(len(self.world.user_id)),
            "videos": int(len(self.world.video_id)),
            "sessions": self.n_sessions,
        } | ({"candidate_pool_rows": int(len(self.pool.video))} if self.pool is not None else {})


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
    sim = _simulate_tables(cfg, seed, side_dir, progress)
    summary: dict[str, Any] = sim.counts()

    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    data_dir, truth_dir = tmp / KUAIREC_DATA_SUBDIR, tmp / GROUND_TRUTH_SUBDIR
    data_dir.mkdir(parents=True)
    truth_dir.mkdir(parents=True)
    try:
        big_cols, small_cols = _write_release(data_dir, cfg, sim, side_dir)
        _write_ground_truth(truth_dir, cfg, sim, big_cols, small_cols)
        truth = _truth_record(cfg, seed, summary)
        (truth_dir / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    summary["seconds"] = round(time.perf_counter() - tic, 2)
    return summary


def _simulate_tables(
    cfg: SimConfig, seed: int, side_dir: Path, progress: bool, log_pools: bool | None = None
) -> _Simulated:
    """Draw the world, the schedule, the platform's sessions and every table, each part from
    its own random stream of the seed; the candidate pools' log with ``log_pools`` (by default
    ``cfg.candidate_pool``), which draws nothing."""
    log_pools = cfg.candidate_pool if log_pools is None else log_pools
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)]
    world = build_world(cfg, streams[0], side_dir)
    schedule = schedule_sessions(cfg, world, streams[1])
    small_users = small_matrix_users(cfg, world, schedule, streams[4])
    track = np.zeros(len(world.user_id), dtype=bool)
    track[small_users] = True
    rows, log, pool = run_platform(
        cfg, world, schedule, streams[2], progress=progress, track=track, log_pools=log_pools
    )
    order = np.lexsort((rows["local_ms"], world.user_id[rows["user"]]))
    dup_order, is_copy = _add_duplicates(len(order), cfg.duplicate_share, streams[3])
    return _Simulated(
        world=world,
        n_sessions=int(rows["session"].max() + 1),
        big={k: v[order][dup_order] for k, v in rows.items()},
        is_copy=is_copy,
        small=simulate_small_matrix(cfg, world, small_users, log, streams[4]),
        daily=simulate_item_daily_features(cfg, world, streams[5], side_dir),
        social=simulate_social_network(cfg, world, streams[6]),
        pool=pool,
    )


def _write_release(
    data_dir: Path, cfg: SimConfig, sim: _Simulated, side_dir: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the seven KuaiRec 2.0 files; return the big and small matrices' columns."""
    big_cols = _matrix_columns(cfg, sim.world, sim.big)
    _write_csv(data_dir / "big_matrix.csv", big_cols)
    small_cols = _small_matrix_columns(cfg, sim.world, sim.small)
    _write_csv(data_dir / "small_matrix.csv", small_cols)
    sim.daily.to_csv(data_dir / "item_daily_features.csv", index=False, lineterminator="\n")
    sim.social.to_csv(data_dir / "social_network.csv", index=False, lineterminator="\n")
    _copy_rows_by_id(
        side_dir / "user_features.csv", data_dir / "user_features.csv", sim.world.user_id
    )
    for name in ("item_categories.csv", "kuairec_caption_category.csv"):
        _copy_rows_by_id(side_dir / name, data_dir / name, sim.world.video_id)
    if sim.pool is not None:
        pq.write_table(_pool_table(cfg, sim), data_dir / POOL_FILE, compression="zstd")
    return big_cols, small_cols


def _pool_table(cfg: SimConfig, sim: _Simulated) -> pa.Table:
    """The platform's log of its candidate pools (docs/design.md section 8), one row per video
    it ranked: ``session`` (numbered by user, then start), ``user_id``, ``video_id``, ``score``
    (its ranking score ``w_true . p`` at the session's start, rounded to six decimals: the last
    bits of numpy's log differ between CPUs and the file must not) and ``timestamp`` (as
    big_matrix.csv's for a video shown, empty for one not shown); each session's videos by
    descending score."""
    pool, world, big = sim.pool, sim.world, sim.big
    original = ~sim.is_copy
    n_videos, n_sessions = len(world.video_id), sim.n_sessions
    shown_key = big["session"][original] * n_videos + big["video"][original]
    order = np.argsort(shown_key, kind="stable")
    shown_key, local_ms = shown_key[order], big["local_ms"][original][order]
    key = pool.session.astype(np.int64) * n_videos + pool.video
    at = np.minimum(np.searchsorted(shown_key, key), len(shown_key) - 1)
    shown = shown_key[at] == key
    if shown.sum() != len(shown_key):
        raise SimulationError("a shown video is missing from its session's logged pool")
    start = np.full(n_sessions, np.inf)
    np.minimum.at(start, pool.session[shown], local_ms[at[shown]])
    user = np.zeros(n_sessions, dtype=np.int64)
    user[pool.session] = world.user_id[pool.user]
    number = np.empty(n_sessions, dtype=np.int64)
    number[np.lexsort((start, user))] = np.arange(n_sessions)
    session = number[pool.session]
    rows = np.lexsort((-pool.score, session))
    timestamp = np.where(shown, _unix_seconds(cfg, local_ms[at]), np.nan)[rows]
    return pa.table(
        {
            "session": pa.array(session[rows], pa.int32()),
            "user_id": pa.array(world.user_id[pool.user[rows]], pa.int32()),
            "video_id": pa.array(world.video_id[pool.video[rows]], pa.int32()),
            "score": pa.array(np.round(pool.score[rows], 6).astype(np.float32)),
            "timestamp": pa.array(timestamp, pa.float64(), from_pandas=True),
        }
    )


def _write_ground_truth(
    truth_dir: Path,
    cfg: SimConfig,
    sim: _Simulated,
    big_cols: Mapping[str, Any],
    small_cols: Mapping[str, Any],
) -> None:
    """One truth row per row of each matrix, in the same order: the heads' true probabilities,
    the utility and selectivity, and for the big matrix the session, its residuals and the
    platform's score."""
    big, small = sim.big, sim.small
    big_truth = {
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
        "is_duplicate": sim.is_copy,
    }
    pq.write_table(pa.table(big_truth), truth_dir / "big_matrix_truth.parquet")
    small_truth = {
        "user_id": small_cols["user_id"],
        "video_id": small_cols["video_id"],
        **{f"p_{h}": small["p"][:, j] for j, h in enumerate(HEADS)},
        "utility": small["utility"],
        "selectivity": small["selectivity"],
    }
    pq.write_table(pa.table(small_truth), truth_dir / "small_matrix_truth.parquet")


def _truth_record(cfg: SimConfig, seed: int, counts: Mapping[str, int]) -> dict[str, Any]:
    """truth.json: the true head weights and session effect, the seed, every constant and the
    counts of the release."""
    return {
        "w_true": dict(cfg.w_true),
        "effect_true": cfg.effect_true,
        "heads": list(HEADS),
        "seed": seed,
        "constants": {k: v for k, v in asdict(cfg).items()},
        "counts": dict(counts),
        "files": {
            "big_matrix_truth.parquet": "one row per big_matrix.csv row, same order",
            "small_matrix_truth.parquet": "one row per small_matrix.csv row, same order",
        },
    }
