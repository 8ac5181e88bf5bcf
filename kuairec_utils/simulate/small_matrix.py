"""The fully observed small matrix of the simulated KuaiRec (docs/design.md section 8).

KuaiRec's small matrix is a block of the platform's own users and videos in which (almost) every
user saw every video: the missing pairs were shown to the users in their feeds over the same two
months. The simulated one is collected the same way, from the same world and the same outcome
model as the big matrix: each pair is shown once, inserted at a random slot of one of the user's
own sessions, so its outcome carries that session's selectivity, the user's habit for the
video's category when the session started and the fatigue of its slot. What it lacks is the
platform's choice: a video is shown whether or not the platform would have ranked it.
"""

from __future__ import annotations

import numpy as np

from kuairec_utils.simulate.config import SimConfig
from kuairec_utils.simulate.platform import (
    Schedule,
    SessionLog,
    draw_outcomes,
    head_probabilities,
    static_utility,
)
from kuairec_utils.simulate.world import World


def small_matrix_users(
    cfg: SimConfig, world: World, schedule: Schedule, rng: np.random.Generator
) -> np.ndarray:
    """The small matrix's users (world positions, sorted): drawn at random among the users with
    planned sessions, ``small_users`` at full scale."""
    candidates = np.unique(schedule.user)
    n = min(len(candidates), max(2, round(cfg.small_users * cfg.scale)))
    return np.sort(rng.choice(candidates, size=n, replace=False))


def _small_matrix_videos(cfg: SimConfig, world: World, rng: np.random.Generator) -> np.ndarray:
    """The small matrix's videos (world positions, sorted): ``small_videos`` at full scale,
    available during the whole window (the earliest uploads first if too few are)."""
    n = min(
        len(world.video_id), max(5, round(cfg.small_videos * cfg.scale**cfg.video_scale_exponent))
    )
    by_upload = np.argsort(world.video_upload_day + rng.random(len(world.video_id)), kind="stable")
    return np.sort(by_upload[:n])


def simulate_small_matrix(
    cfg: SimConfig,
    world: World,
    users: np.ndarray,
    log: SessionLog,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Every small-matrix user shown every small-matrix video once, inside one of the user's own
    sessions (``log``, from ``run_platform`` tracking ``users``) drawn at random, at a random
    slot of its feed. A user whose every session fell outside the window is left out."""
    videos = _small_matrix_videos(cfg, world, rng)
    by_user = np.argsort(log.user, kind="stable")
    first = np.searchsorted(log.user[by_user], users)
    count = np.searchsorted(log.user[by_user], users, side="right") - first
    users, first, count = users[count > 0], first[count > 0], count[count > 0]
    n_u, n_v = len(users), len(videos)
    uu, vv = np.repeat(users, n_v), np.tile(videos, n_u)
    n = len(uu)
    pick = np.repeat(first, n_v) + np.floor(rng.random(n) * np.repeat(count, n_v)).astype(int)
    session = by_user[pick]
    length = log.length[session]
    position = np.floor(rng.random(n) * (length + 1)).astype(np.int64)  # one of K_s + 1 slots
    share = (position + rng.random(n)) / (length + 1)
    local_s = log.start[session] + (log.end[session] - log.start[session]) * share
    habit = log.habit[session, world.video_category[vv]]
    utility = (
        static_utility(cfg, world, uu, vv)
        + cfg.habit_weight * habit
        - cfg.fatigue_per_log_position * np.log1p(position)
    )
    selectivity = log.selectivity[session]
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
