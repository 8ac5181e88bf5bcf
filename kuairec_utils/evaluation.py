"""Evaluation against the simulator's ground truth (simulated data only).

Only evaluation code reads ``data/raw/ground_truth/``: estimators never do. The oracle of a head
is its true probability; its AUC on a split is the ceiling any model can reach there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kuairec_utils.config import GROUND_TRUTH_SUBDIR
from kuairec_utils.heads import HEADS
from kuairec_utils.models import auc_by_head

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
    from kuairec_utils.heads import LabelThresholds
    from kuairec_utils.simulate import SimConfig, build_world, head_probabilities

    folder = Path(raw_dir) / GROUND_TRUTH_SUBDIR
    meta = json.loads((folder / "truth.json").read_text())
    constants = dict(meta["constants"])
    labels = LabelThresholds(**constants.pop("labels"))
    cfg = SimConfig(**constants, labels=labels)
    streams = np.random.SeedSequence(meta["seed"]).spawn(7)  # as simulate() draws them
    world = build_world(cfg, np.random.default_rng(streams[0]))
    if truth is None:
        truth = pd.read_parquet(folder / "big_matrix_truth.parquet", columns=["selectivity"])
    selectivity = truth["selectivity"].to_numpy()[np.asarray(first_raw_row)]
    u = np.searchsorted(world.user_id, user_id)
    v = np.searchsorted(world.video_id, video_id)
    if (world.user_id[u] != user_id).any() or (world.video_id[v] != video_id).any():
        raise ValueError("users or videos that the simulated world does not hold")
    utility = (
        cfg.utility_intercept
        + world.user_bias[u]
        + world.video_quality[v]
        + np.einsum("ij,ij->i", world.user_taste[u], world.video_taste[v])
    )
    return head_probabilities(cfg, utility, selectivity, world.video_duration_ms[v])[0]
