"""The platform of the simulated KuaiRec: who is active when, what the platform shows, and what
the users do with it.

- the schedule: active days in and between the bursts, interactions per active day, and the
  sessions that hold them;
- the outcomes: the four heads' true probabilities in closed form and the play durations drawn
  from them;
- the platform itself: sessions run in rounds, each drawing a popularity-weighted pool, ranking
  it by ``w_true . p`` plus noise and showing the top K_s, while the users' habits, the videos
  they have seen and the previous session's residual carry from round to round;
- a log of the sessions of tracked users, with the state each started in (the small matrix's
  showings are inserted into them: ``small_matrix``);
- the platform's own log of every session's candidate pool: the videos it ranked and its scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy.special import expit, ndtr
from tqdm.auto import tqdm

from kuairec_utils.simulate.config import DAY_S, MAX_WATCH_RATIO, REF_DURATION_S, SimConfig
from kuairec_utils.simulate.world import World

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
    """Hour of day of n session starts: an evening peak for a share, the rest spread evenly over
    the waking hours."""
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

    def above(log_threshold: np.ndarray | float) -> np.ndarray:
        """P(log watch_ratio > threshold | play)."""
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
    """Mean of the values within each of n segments (0 for an empty one)."""
    return np.bincount(segment, weights=values, minlength=n) / np.maximum(
        np.bincount(segment, minlength=n), 1
    )


@dataclass
class _DailyPools:
    """Popularity of each video on each day (zero before upload), flattened with day offsets so
    one searchsorted draws every session's pool from its own day."""

    cum: np.ndarray  # running total over (day, video)
    day_lo: np.ndarray  # running total before each day's first video
    day_total: np.ndarray  # the day's total popularity
    n_videos: int


def _daily_pools(world: World, n_days: int) -> _DailyPools:
    """The popularity of the videos available on each day, ready for drawing pools."""
    n_videos = len(world.video_id)
    available = world.video_upload_day[None, :] <= np.arange(n_days)[:, None]
    pop = np.where(available, np.exp(world.video_log_popularity)[None, :], 0.0)
    cum = np.cumsum(pop.ravel())
    return _DailyPools(
        cum=cum,
        day_lo=np.r_[0.0, cum[n_videos - 1 :: n_videos][:-1]],
        day_total=pop.sum(axis=1),
        n_videos=n_videos,
    )


@dataclass
class _Memory:
    """What carries over, per user, from one round of sessions to the next."""

    seen: np.ndarray  # (U, V): the video was shown to the user before
    habit: np.ndarray  # (U, n_categories): completion rate above the baseline
    last_end: np.ndarray  # end of the user's last session (s)
    r_prev: np.ndarray  # residual of the user's last session
    baseline: float | None = None  # population completion rate, fixed after the first round

    @classmethod
    def empty(cls, world: World) -> _Memory:
        """Before the first session: nothing seen, no habit, no residual."""
        n_users = len(world.user_id)
        return cls(
            seen=np.zeros((n_users, len(world.video_id)), dtype=bool),
            habit=np.zeros((n_users, world.n_categories)),
            last_end=np.full(n_users, -np.inf),
            r_prev=np.zeros(n_users),
        )


@dataclass
class _Round:
    """The sessions of one round that start inside the window (at most one per user)."""

    user: np.ndarray  # user position
    length: np.ndarray  # K_s: videos in the feed
    day: np.ndarray  # day index of the pool
    start: np.ndarray  # seconds since start_date 00:00 Beijing time
    selectivity: np.ndarray  # c_s


@dataclass
class _Pool:
    """The candidate videos of a round's sessions, one row per draw, and how the platform ranks
    them."""

    session: np.ndarray  # the session's index in the round
    video: np.ndarray
    repeat: np.ndarray  # a video already drawn for the same session
    utility: np.ndarray  # m_ui at session start (no fatigue)
    duration_ms: np.ndarray
    score: np.ndarray  # w_true . p at session start
    rank: np.ndarray  # rank by the noisy score (0 = first)
    in_feed: np.ndarray  # shown: among the top K_s of the noisy ranking
    in_det: np.ndarray  # among the top K_s of the deterministic ranking


@dataclass
class _Feed:
    """The shown videos of a round's sessions, in session then position order."""

    rows: np.ndarray  # rows of the pool
    session: np.ndarray
    video: np.ndarray
    position: np.ndarray
    utility: np.ndarray  # m_ui with fatigue
    p: np.ndarray  # the heads' true probabilities, (n, 4)
    play_ms: np.ndarray
    local_s: np.ndarray  # seconds since start_date 00:00 Beijing time


@dataclass
class SessionLog:
    """The sessions of the tracked users, in simulation order, with the state each started in."""

    user: np.ndarray  # user position
    start: np.ndarray  # seconds since start_date 00:00 Beijing time
    end: np.ndarray  # when its last video ended
    length: np.ndarray  # K_s
    selectivity: np.ndarray  # c_s
    habit: np.ndarray  # (n, n_categories): the user's habit when the session started


@dataclass
class PoolLog:
    """The platform's log of every session's candidate pool: one row per video it ranked (a
    video drawn twice for one session once), in simulation order."""

    session: np.ndarray  # the session's number, as the interactions' ``session``
    user: np.ndarray  # user position
    video: np.ndarray  # video position
    score: np.ndarray  # the platform's score ``w_true . p`` at the session's start


def run_platform(
    cfg: SimConfig,
    world: World,
    schedule: Schedule,
    rng: np.random.Generator,
    progress: bool = True,
    track: np.ndarray | None = None,
    log_pools: bool = False,
) -> tuple[dict[str, np.ndarray], SessionLog | None, PoolLog | None]:
    """Simulate every session's pool, feed and outcomes; return one array per column, one row
    per interaction, in simulation order, (with ``track``, a mask over the users) the log of
    the tracked users' sessions and (with ``log_pools``) the log of every session's candidate
    pool. Tracking and logging draw no random number: the rows are the same."""
    pools = _daily_pools(world, cfg.n_days)
    memory = _Memory.empty(world)
    out: dict[str, list[np.ndarray]] = {}
    logged: dict[str, list[np.ndarray]] = {}
    ranked: dict[str, list[np.ndarray]] = {}
    n_rounds = int(schedule.rank.max()) + 1 if len(schedule.rank) else 0
    session_counter = 0
    for k in tqdm(range(n_rounds), desc="simulating sessions", disable=not progress):
        sessions = _start_round(cfg, world, schedule, memory, rng, k)
        if sessions is None:
            continue
        tracked = np.flatnonzero(track[sessions.user]) if track is not None else np.zeros(0, int)
        habit = memory.habit[sessions.user[tracked]]  # before the session changes it
        cols, pool = _run_round(cfg, world, pools, memory, sessions, session_counter, rng)
        if log_pools:
            kept = ~pool.repeat
            for name, value in (
                ("session", (session_counter + pool.session[kept]).astype(np.int32)),
                ("user", sessions.user[pool.session[kept]].astype(np.int32)),
                ("video", pool.video[kept].astype(np.int32)),
                ("score", pool.score[kept]),
            ):
                ranked.setdefault(name, []).append(value)
        session_counter += len(sessions.user)
        for name, value in cols.items():
            out.setdefault(name, []).append(value)
        users = sessions.user[tracked]
        for name, value in (
            ("user", users),
            ("start", sessions.start[tracked]),
            ("end", memory.last_end[users]),
            ("length", sessions.length[tracked]),
            ("selectivity", sessions.selectivity[tracked]),
            ("habit", habit),
        ):
            logged.setdefault(name, []).append(value)
    rows = {name: np.concatenate(parts) for name, parts in out.items()}
    log = (
        SessionLog(**{n: np.concatenate(v) for n, v in logged.items()})
        if track is not None
        else None
    )
    pool_log = PoolLog(**{n: np.concatenate(v) for n, v in ranked.items()}) if log_pools else None
    return rows, log, pool_log


def _start_round(
    cfg: SimConfig,
    world: World,
    schedule: Schedule,
    memory: _Memory,
    rng: np.random.Generator,
    k: int,
) -> _Round | None:
    """Every user's k-th session: it starts at its planned time, or after a pause once the
    user's previous session has ended; those that would start in the window's last ten minutes
    are dropped (None when none is left). Its selectivity is
    ``c_s = c_u + effect_true * r_(s-1) + noise``."""
    n_days = cfg.n_days
    idx = np.flatnonzero(schedule.rank == k)
    u = schedule.user[idx]
    K = schedule.length[idx]
    day_idx = schedule.day[idx]
    gap_min_s = cfg.session_gap_min_minutes * 60.0
    start = np.maximum(
        schedule.planned_start_s[idx],
        memory.last_end[u] + gap_min_s + rng.exponential(cfg.session_gap_extra_mean_s, len(u)),
    )
    keep = start < n_days * DAY_S - 600
    u, K, day_idx, start = u[keep], K[keep], day_idx[keep], start[keep]
    day_idx = np.minimum(day_idx, n_days - 1)
    day_idx = np.maximum(day_idx, (start // DAY_S).astype(int).clip(0, n_days - 1))
    if len(u) == 0:
        return None
    c_s = (
        world.user_selectivity[u]
        + cfg.effect_true * memory.r_prev[u]
        + cfg.selectivity_session_sd * rng.normal(size=len(u))
    )
    return _Round(user=u, length=K, day=day_idx, start=start, selectivity=c_s)


def _run_round(
    cfg: SimConfig,
    world: World,
    pools: _DailyPools,
    memory: _Memory,
    sessions: _Round,
    first_session_id: int,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], _Pool]:
    """Run a round's sessions (pool, ranking, feed, outcomes), update what the users carry to
    the next round, and return the round's interactions, one array per column, and its pool."""
    pool = _draw_and_rank_pool(cfg, world, pools, memory, sessions, rng)
    residual = _residual(pool, len(sessions.user))
    feed = _show_feed(cfg, memory, sessions, pool, rng)
    user = sessions.user[feed.session]
    _learn_habits(cfg, world, memory, user, feed.video, feed.play_ms / pool.duration_ms[feed.rows])
    session_id = first_session_id + np.arange(len(sessions.user))
    cols = {
        "user": user,
        "video": feed.video,
        "local_ms": np.round(feed.local_s * 1000).astype(np.int64),
        "play_duration": feed.play_ms,
        "p": feed.p,
        "session": session_id[feed.session],
        "position": feed.position,
        "selectivity": sessions.selectivity[feed.session],
        "residual": residual[feed.session],
        "residual_prev": memory.r_prev[sessions.user][feed.session],
        "score": pool.score[feed.rows],
        "utility": feed.utility,
        "in_deterministic_top_k": pool.in_det[feed.rows],
    }
    memory.r_prev[sessions.user] = residual
    return cols, pool


def _draw_and_rank_pool(
    cfg: SimConfig,
    world: World,
    pools: _DailyPools,
    memory: _Memory,
    sessions: _Round,
    rng: np.random.Generator,
) -> _Pool:
    """Draw each session's pool (popularity-weighted among the videos available that day,
    pool_factor times the feed, at least pool_min) and rank it: the platform's score is
    ``w_true . p`` at session start (position-free) plus ranking noise; repeats in the pool are
    left out and videos the user has seen go to the back."""
    seg, vid, dup = _draw_pool(cfg, pools, sessions, rng)
    uu = sessions.user[seg]
    penalty = np.where(dup, np.inf, np.where(memory.seen[uu, vid], 10.0, 0.0))
    cat = world.video_category[vid]
    m0 = static_utility(cfg, world, uu, vid) + cfg.habit_weight * memory.habit[uu, cat]
    dur = world.video_duration_ms[vid]
    p0, _, _ = head_probabilities(cfg, m0, sessions.selectivity[seg], dur)
    score = ranking_score(p0, cfg.w_vector)
    noisy = score + cfg.rank_noise_sd * rng.normal(size=len(seg))
    rank = _segment_ranks(seg, noisy - penalty)
    det_rank = _segment_ranks(seg, score - penalty)
    K = sessions.length
    return _Pool(
        session=seg,
        video=vid,
        repeat=dup,
        utility=m0,
        duration_ms=dur,
        score=score,
        rank=rank,
        in_feed=(rank < K[seg]) & ~dup,
        in_det=(det_rank < K[seg]) & ~dup,
    )


def _draw_pool(
    cfg: SimConfig, pools: _DailyPools, sessions: _Round, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Popularity-weighted draws for each session among the videos available on its day: the
    session of each draw, the video, and whether the session drew that video already."""
    pool_size = np.maximum(cfg.pool_min, np.ceil(cfg.pool_factor * sessions.length)).astype(
        np.int64
    )
    seg = np.repeat(np.arange(len(sessions.user)), pool_size)
    day = sessions.day[seg]
    draw = pools.day_lo[day] + rng.random(len(seg)) * pools.day_total[day]
    vid = np.minimum(np.searchsorted(pools.cum, draw, side="right"), pools.cum.size - 1)
    vid = vid % pools.n_videos
    order = np.lexsort((vid, seg))
    dup = np.zeros(len(seg), dtype=bool)
    dup[order[1:]] = (seg[order[1:]] == seg[order[:-1]]) & (vid[order[1:]] == vid[order[:-1]])
    return seg, vid, dup


def _residual(pool: _Pool, n_sessions: int) -> np.ndarray:
    """Each session's residual: the feed's mean true score minus that of the deterministic
    top K."""
    seg, score = pool.session, pool.score
    return _segment_mean(seg[pool.in_feed], score[pool.in_feed], n_sessions) - _segment_mean(
        seg[pool.in_det], score[pool.in_det], n_sessions
    )


def _show_feed(
    cfg: SimConfig, memory: _Memory, sessions: _Round, pool: _Pool, rng: np.random.Generator
) -> _Feed:
    """Show each session's feed in score order: the heads' true probabilities with fatigue by
    position, the outcomes drawn from them, and the time of each showing. Time moves on by the
    play (capped, so a session never holds a 30-minute gap) plus a pause; the user's session
    ends after the last one."""
    f = np.flatnonzero(pool.in_feed)
    f = f[np.lexsort((pool.rank[f], pool.session[f]))]
    fseg, fpos, dur = pool.session[f], pool.rank[f], pool.duration_ms[f]
    m = pool.utility[f] - cfg.fatigue_per_log_position * np.log1p(fpos)
    p, p_skip, mu = head_probabilities(cfg, m, sessions.selectivity[fseg], dur)
    play_ms = draw_outcomes(cfg, rng, p_skip, mu, dur)
    advance_s = np.minimum(play_ms / 1000.0, 1500.0) + rng.exponential(cfg.item_gap_mean_s, len(f))
    cum_adv = np.cumsum(advance_s)
    seg_first = np.r_[0, np.flatnonzero(np.diff(fseg)) + 1]
    offset = np.repeat(cum_adv[seg_first] - advance_s[seg_first], np.diff(np.r_[seg_first, len(f)]))
    local_s = sessions.start[fseg] + (cum_adv - advance_s - offset)
    memory.last_end[sessions.user] = sessions.start + np.bincount(
        fseg, weights=advance_s, minlength=len(sessions.user)
    )
    return _Feed(
        rows=f,
        session=fseg,
        video=pool.video[f],
        position=fpos,
        utility=m,
        p=p,
        play_ms=play_ms,
        local_s=local_s,
    )


def _learn_habits(
    cfg: SimConfig,
    world: World,
    memory: _Memory,
    user: np.ndarray,
    video: np.ndarray,
    watch_ratio: np.ndarray,
) -> None:
    """After the feed: the EMA of each user's completion rate per category (above the
    population's rate in the first round) moves towards this session's, and the shown videos
    count as seen."""
    complete = watch_ratio > cfg.labels.complete_ratio
    if memory.baseline is None:
        memory.baseline = complete.mean()
    key = user * world.n_categories + world.video_category[video]
    keys, inv = np.unique(key, return_inverse=True)
    rate = np.bincount(inv, weights=complete) / np.bincount(inv)
    hu, hc = keys // world.n_categories, keys % world.n_categories
    memory.habit[hu, hc] = (1 - cfg.habit_rate) * memory.habit[hu, hc] + cfg.habit_rate * (
        rate - memory.baseline
    )
    memory.seen[user, video] = True
