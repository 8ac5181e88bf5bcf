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
