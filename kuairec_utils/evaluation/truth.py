"""Evaluation against the simulator's ground truth (simulated data only).

Only evaluation code reads ``data/raw/ground_truth/``: estimators never do. The oracle of a head
is its true probability; its AUC on a split is the ceiling any model can reach there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kuairec_utils.config import GROUND_TRUTH_SUBDIR, kuairec_data_dir
from kuairec_utils.data.kuairec import read_table
from kuairec_utils.heads import HEADS
from kuairec_utils.models.training import auc_by_head

if TYPE_CHECKING:
    from kuairec_utils.simulate import SimConfig, World


def has_ground_truth(raw_dir: str | Path) -> bool:
    return (Path(raw_dir) / GROUND_TRUTH_SUBDIR / "truth.json").exists()


def truth_meta(raw_dir: str | Path) -> dict[str, Any]:
    """The simulator's truth.json: w_true, effect_true, its constants and seed."""
    return json.loads((Path(raw_dir) / GROUND_TRUTH_SUBDIR / "truth.json").read_text())


def load_truth(raw_dir: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The per-row truth table (one row per big_matrix.csv row) and truth.json."""
    folder = Path(raw_dir) / GROUND_TRUTH_SUBDIR
    table = pd.read_parquet(folder / "big_matrix_truth.parquet")
    return table, json.loads((folder / "truth.json").read_text())


def true_probabilities(truth: pd.DataFrame, raw_row: np.ndarray) -> np.ndarray:
    """The heads' true probabilities, (n, 4), of the big-matrix rows ``raw_row``."""
    return truth[[f"p_{h}" for h in HEADS]].to_numpy()[raw_row]


def oracle_auc(truth: pd.DataFrame, raw_row: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """AUC of the true probabilities against the realised labels: the ceiling."""
    return auc_by_head(y, true_probabilities(truth, raw_row))


def simulator_config(meta: dict[str, Any]) -> SimConfig:
    """The simulator's ``SimConfig`` from ``truth.json`` (its ``constants``)."""
    from kuairec_utils.heads import LabelThresholds
    from kuairec_utils.simulate import SimConfig

    constants = dict(meta["constants"])
    labels = LabelThresholds(**constants.pop("labels"))
    return SimConfig(**constants, labels=labels)


def shock_free_oracles(
    truth: pd.DataFrame,
    meta: dict[str, Any],
    rows: pd.DataFrame,
    n_nodes: int = 24,
) -> dict[str, np.ndarray]:
    """Two oracles that know everything about a showing except the session's selectivity shock.

    The oracle (the true probabilities) knows the session's selectivity ``c_s``, which no model
    can see before the session's first video. These two know the user's utility for the video
    (taste, quality, habit, fatigue), the video's duration and every constant of the simulator,
    but not ``c_s``; their AUCs show how much of the gap between a model and the oracle is the
    session's shock, which no model can close:

    - ``user mean c``: ``c_s`` replaced by the user's mean over their sessions;
    - ``c learnt in the session``: the posterior mean of the heads' probabilities over ``c_s``,
      given the ``negative`` labels of the session's earlier rows (the prior: normal around the
      user's mean with the pooled within-user sd of ``c_s``; Gauss-Hermite nodes) - what a
      perfect model that updates on the session's behaviour so far would predict.

    rows: the study's interactions (``raw_row``, ``user_id``, ``session_id``, ``position``,
    ``video_duration_ms``, ``negative``); returns (n, 4) probabilities in the order of ``rows``.
    """
    from kuairec_utils.simulate import head_probabilities

    cfg = simulator_config(meta)
    raw_row = rows["raw_row"].to_numpy()
    utility = truth["utility"].to_numpy()[raw_row]
    c_s = truth["selectivity"].to_numpy()[raw_row]
    duration = rows["video_duration_ms"].to_numpy().astype(float)
    # the user's mean c over sessions (each session once) and the pooled within-user sd
    per_session = pd.DataFrame(
        {"user": rows["user_id"].to_numpy(), "session": rows["session_id"].to_numpy(), "c": c_s}
    ).drop_duplicates("session")
    user_mean = per_session.groupby("user")["c"].mean()
    within = per_session["c"] - per_session["user"].map(user_mean)
    sd = float(np.sqrt((within**2).sum() / max(len(per_session) - len(user_mean), 1)))
    c_user = rows["user_id"].map(user_mean).to_numpy()
    out = {"user mean c": head_probabilities(cfg, utility, c_user, duration)[0]}

    # the posterior over c_s: the session's earlier rows, in (session, position) order, one
    # pass over the Gauss-Hermite nodes with a running log-sum-exp of the posterior weights
    order = np.lexsort((rows["position"].to_numpy(), rows["session_id"].to_numpy()))
    session = rows["session_id"].to_numpy()[order]
    group = np.cumsum(np.r_[True, session[1:] != session[:-1]])
    y = rows["negative"].to_numpy().astype(float)[order]
    utility, c_user, duration = utility[order], c_user[order], duration[order]
    nodes, node_weights = np.polynomial.hermite_e.hermegauss(n_nodes)  # for N(0, 1)
    top = np.full(len(rows), -np.inf)  # the largest log weight so far
    total = np.zeros(len(rows))  # sum of the weights, relative to exp(top)
    learnt = np.zeros((len(rows), len(HEADS)))  # weighted sum of the probabilities, likewise
    for z, node_weight in zip(nodes, node_weights, strict=True):
        p = head_probabilities(cfg, utility, c_user + sd * z, duration)[0]
        p_neg = np.clip(p[:, HEADS.index("negative")], 1e-12, 1 - 1e-12)
        loglik = y * np.log(p_neg) + (1 - y) * np.log1p(-p_neg)
        # the sum over the session's earlier rows (a grouped cumulative sum: exact per session)
        before = pd.Series(loglik).groupby(group).cumsum().to_numpy() - loglik
        log_weight = np.log(node_weight) + before
        new_top = np.maximum(top, log_weight)
        scale, weight = np.exp(top - new_top), np.exp(log_weight - new_top)
        total = total * scale + weight
        learnt = learnt * scale[:, None] + weight[:, None] * p
        top = new_top
    out["c learnt in the session"] = np.empty_like(learnt)
    out["c learnt in the session"][order] = learnt / total[:, None]
    return out


def simulated_world(raw_dir: str | Path) -> tuple[SimConfig, World]:
    """The simulator's config and world, rebuilt from ``truth.json`` (its constants and seed)
    exactly as ``simulate()`` drew them. Evaluation only."""
    from kuairec_utils.simulate import build_world

    meta = json.loads((Path(raw_dir) / GROUND_TRUTH_SUBDIR / "truth.json").read_text())
    cfg = simulator_config(meta)
    streams = np.random.SeedSequence(meta["seed"]).spawn(7)  # as simulate() draws them
    return cfg, build_world(cfg, np.random.default_rng(streams[0]))


def world_rows(
    world: World, user_id: np.ndarray, video_id: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of users and videos in the world's arrays (error if one is not there)."""
    u = np.searchsorted(world.user_id, user_id)
    v = np.searchsorted(world.video_id, video_id)
    u_ok = (u < len(world.user_id)) & (
        world.user_id[np.minimum(u, len(world.user_id) - 1)] == user_id
    )
    v_ok = (v < len(world.video_id)) & (
        world.video_id[np.minimum(v, len(world.video_id) - 1)] == video_id
    )
    if not (u_ok.all() and v_ok.all()):
        raise ValueError("users or videos that the simulated world does not hold")
    return u, v


TRUE_PROBABILITY_CHUNK = 1 << 21  # candidates per chunk of true_candidate_probabilities
HABIT_COLUMNS = ["user_id", "video_id", "session_id", "position", "utility", "selectivity"]


def habit_records(
    cfg: SimConfig, world: World, truth: pd.DataFrame, play_ms: np.ndarray
) -> pd.DataFrame:
    """The simulator's habit state, read back from its truth: one row per (user, category,
    session) in which the user was shown a video of that category, with ``habit`` at the
    session's start and ``habit_after`` it. Evaluation only.

    The platform scores a candidate with ``habit_weight * habit[user, category]`` in its utility,
    a state it keeps but does not write out. A shown row's true utility holds it (utility =
    the static part + habit_weight * habit - fatigue * log1p(position)); after each session the
    simulator moves it by ``habit_rate`` towards the session's completion rate of that category
    minus the population's baseline rate, which the consecutive records give back exactly.

    ``truth``: the rows of ``big_matrix_truth.parquet`` without duplicates (``HABIT_COLUMNS``);
    ``play_ms``: the same rows' ``play_duration`` in the release.
    """
    from kuairec_utils.simulate import static_utility

    u, v = world_rows(world, truth["user_id"].to_numpy(), truth["video_id"].to_numpy())
    static = static_utility(cfg, world, u, v)
    fatigue = cfg.fatigue_per_log_position * np.log1p(truth["position"].to_numpy())
    rows = pd.DataFrame(
        {
            "user": u,
            "category": world.video_category[v],
            "session": truth["session_id"].to_numpy(),
            "habit": (truth["utility"].to_numpy() + fatigue - static) / cfg.habit_weight,
            "complete": np.asarray(play_ms) / world.video_duration_ms[v]
            > cfg.labels.complete_ratio,
        }
    )
    records = (
        rows.groupby(["user", "category", "session"], sort=True)
        .agg(habit=("habit", "first"), rate=("complete", "mean"))
        .reset_index()
    )
    rate = cfg.habit_rate
    following = records.groupby(["user", "category"])["habit"].shift(-1)
    pairs = following.notna().to_numpy()
    if not pairs.any():
        raise ValueError("the truth holds no user shown one category in two sessions")
    # habit_next = (1 - rate) habit + rate (completion rate - baseline), solved for the baseline
    baseline = np.median(
        records["rate"].to_numpy()[pairs]
        - (following.to_numpy()[pairs] - (1 - rate) * records["habit"].to_numpy()[pairs]) / rate
    )
    records["habit_after"] = (1 - rate) * records["habit"] + rate * (records["rate"] - baseline)
    return records.drop(columns="rate")


def habit_at(
    records: pd.DataFrame,
    user: np.ndarray,
    category: np.ndarray,
    session: np.ndarray,
    later: bool = True,
) -> np.ndarray:
    """The habit of world ``user`` for ``category`` at the start of truth ``session`` (arrays of
    one length), from ``habit_records``: the habit at the first record from that session on
    (the state does not move between two showings of the category), else the habit after the
    last earlier record, else 0 (never shown). ``later=False`` uses the earlier records only."""
    return _habit_lookup(records, np.max(category, initial=0), np.max(session, initial=0))(
        user, category, session, later
    )


def _habit_lookup(
    records: pd.DataFrame, max_category: int, max_session: int
) -> Callable[..., np.ndarray]:
    """``habit_at`` in two steps: sort ``records`` once, then look up any number of batches of
    (user, category, session) with categories and sessions up to the given maxima."""
    n_cat = int(max(records["category"].max(), max_category)) + 1
    n_session = int(max(records["session"].max(), max_session)) + 1
    key = records["user"].to_numpy(np.int64) * n_cat + records["category"].to_numpy(np.int64)
    stamp = key * n_session + records["session"].to_numpy(np.int64)
    order = np.argsort(stamp, kind="stable")
    key, stamp = key[order], stamp[order]
    habit, after = records["habit"].to_numpy()[order], records["habit_after"].to_numpy()[order]

    def lookup(
        user: np.ndarray, category: np.ndarray, session: np.ndarray, later: bool = True
    ) -> np.ndarray:
        query = np.asarray(user, np.int64) * n_cat + np.asarray(category, np.int64)
        pos = np.searchsorted(stamp, query * n_session + np.asarray(session, np.int64), "left")
        out = np.zeros(len(query))
        at_or_after = np.zeros(len(query), dtype=bool)
        if later:
            at_or_after = (pos < len(key)) & (key[np.minimum(pos, len(key) - 1)] == query)
            out[at_or_after] = habit[pos[at_or_after]]
        before = ~at_or_after & (pos > 0) & (key[np.maximum(pos - 1, 0)] == query)
        out[before] = after[pos[before] - 1]
        return out

    return lookup


def true_candidate_probabilities(
    raw_dir: str | Path,
    user_id: np.ndarray,
    video_id: np.ndarray,
    first_raw_row: np.ndarray,
    truth: pd.DataFrame | None = None,
    utility_shift: float = 0.0,
    selectivity: str = "session",
) -> np.ndarray:
    """The heads' true position-free probabilities of showing ``video_id`` to ``user_id`` at the
    start of a session whose first big-matrix row is ``first_raw_row`` (all (n,) arrays), (n, 4):
    the platform's own ranking probabilities (``w_true`` times them is its ranking score).

    Evaluation only: it rebuilds the simulator's world from ``truth.json`` (its constants and
    seed), takes the session's selectivity from the truth table and the user's habit for the
    video's category at the session's start from ``habit_records``. ``truth``: the truth table
    (at least ``HABIT_COLUMNS`` and ``is_duplicate``) when the caller has read it already.

    Diagnoses ask what a value model that cannot know everything the platform knew would see:
    ``utility_shift`` is added to every utility (e.g. minus the fatigue at a typical position),
    and ``selectivity="user"`` puts the user's mean threshold in place of the session's own
    (whose shock no model can foresee).
    """
    if selectivity not in ("session", "user"):
        raise ValueError(f"selectivity must be 'session' or 'user', got {selectivity!r}")
    from kuairec_utils.simulate import head_probabilities, static_utility

    cfg, world = simulated_world(raw_dir)
    folder = Path(raw_dir) / GROUND_TRUTH_SUBDIR
    if truth is None:
        truth = pd.read_parquet(
            folder / "big_matrix_truth.parquet", columns=[*HABIT_COLUMNS, "is_duplicate"]
        )
    play_ms = read_table(kuairec_data_dir(Path(raw_dir)), "big_matrix")["play_duration"].to_numpy()
    if len(play_ms) != len(truth):
        raise ValueError(f"{folder}: the truth's rows do not match big_matrix.csv's")
    keep = ~truth["is_duplicate"].to_numpy()
    records = habit_records(cfg, world, truth[keep], play_ms[keep])
    first = np.asarray(first_raw_row)
    u, v = world_rows(world, np.asarray(user_id), np.asarray(video_id))
    session = truth["session_id"].to_numpy()
    habit = _habit_lookup(records, world.n_categories - 1, session.max(initial=0))
    selectivities = truth["selectivity"].to_numpy()
    out = np.empty((len(u), len(HEADS)))
    # in chunks: the taste match gathers (n, dim) rows of both sides, 13 GB for the 48M
    # candidates of the full-size platform at once (every value is computed row by row)
    for lo in range(0, len(u), TRUE_PROBABILITY_CHUNK):
        part = slice(lo, lo + TRUE_PROBABILITY_CHUNK)
        uu, vv = u[part], v[part]
        utility = (
            static_utility(cfg, world, uu, vv)
            + cfg.habit_weight * habit(uu, world.video_category[vv], session[first[part]])
            + utility_shift
        )
        if selectivity == "session":
            threshold = selectivities[first[part]]
        else:
            threshold = world.user_selectivity[uu]
        out[part] = head_probabilities(cfg, utility, threshold, world.video_duration_ms[vv])[0]
    return out


def latent_preference(raw_dir: str | Path, user_id: np.ndarray, video_id: np.ndarray) -> np.ndarray:
    """The simulator's latent preference of each (user, video): the utility without the
    position's fatigue and the habit state (intercept, user bias, video quality, taste match).
    Evaluation only."""
    from kuairec_utils.simulate import static_utility

    cfg, world = simulated_world(raw_dir)
    u, v = world_rows(world, np.asarray(user_id), np.asarray(video_id))
    return static_utility(cfg, world, u, v)
