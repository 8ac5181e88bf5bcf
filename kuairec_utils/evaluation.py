"""Evaluation against the simulator's ground truth (simulated data only).

Only evaluation code reads ``data/raw/ground_truth/``: estimators never do. The oracle of a head
is its true probability; its AUC on a split is the ceiling any model can reach there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kuairec_utils.config import GROUND_TRUTH_SUBDIR
from kuairec_utils.heads import HEADS
from kuairec_utils.models import auc_by_head

if TYPE_CHECKING:
    from kuairec_utils.simulate import SimConfig, World

STUDY_AUC: dict[str, dict[str, float]] = {  # the study's test AUCs on real KuaiRec (DESIGN.md 1)
    "logreg": {"complete": 0.8297, "long": 0.7718, "rewatch": 0.8315, "negative": 0.8617, "mean": 0.8237},
    "edge_mlp": {"complete": 0.8485, "long": 0.8198, "rewatch": 0.8537, "negative": 0.8658, "mean": 0.8470},
    "gnn_h64": {"complete": 0.8492, "long": 0.8213, "rewatch": 0.8566, "negative": 0.8657, "mean": 0.8482},
    "gnn_h128": {"complete": 0.8446, "long": 0.8194, "rewatch": 0.8541, "negative": 0.8649, "mean": 0.8458},
}  # fmt: skip


def has_ground_truth(raw_dir: str | Path) -> bool:
    return (Path(raw_dir) / GROUND_TRUTH_SUBDIR / "truth.json").exists()


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


def _world_rows(
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


def true_candidate_probabilities(
    raw_dir: str | Path,
    user_id: np.ndarray,
    video_id: np.ndarray,
    first_raw_row: np.ndarray,
    truth: pd.DataFrame | None = None,
) -> np.ndarray:
    """The heads' true position-free probabilities of showing ``video_id`` to ``user_id`` at the
    start of a session whose first big-matrix row is ``first_raw_row`` (all (n,) arrays), (n, 4).

    Evaluation only: it rebuilds the simulator's world from ``truth.json`` (its constants and
    seed) and takes the session's selectivity from the truth table. The user's habit (a
    per-category state the simulator does not write out) is left out, so these are the
    platform's ranking probabilities up to that term (a score error of sd ~0.07 at the default
    scale, against the truth's ranking scores of the shown videos).
    """
    from kuairec_utils.simulate import head_probabilities

    cfg, world = simulated_world(raw_dir)
    if truth is None:
        folder = Path(raw_dir) / GROUND_TRUTH_SUBDIR
        truth = pd.read_parquet(folder / "big_matrix_truth.parquet", columns=["selectivity"])
    selectivity = truth["selectivity"].to_numpy()[np.asarray(first_raw_row)]
    u, v = _world_rows(world, np.asarray(user_id), np.asarray(video_id))
    utility = (
        cfg.utility_intercept
        + world.user_bias[u]
        + world.video_quality[v]
        + np.einsum("ij,ij->i", world.user_taste[u], world.video_taste[v])
    )
    return head_probabilities(cfg, utility, selectivity, world.video_duration_ms[v])[0]
