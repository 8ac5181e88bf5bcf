"""The decomposition's true ingredients (docs/design.md section 7), read from the simulator's
truth: the candidates' true probabilities, the sessions' true selectivity and residual, and the
regressions on the simulator's own residual. Evaluation only: the cells that use them are named
as such, and no estimate reads any of this.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kuairec_utils.causal.decomposition import CandidateSet
from kuairec_utils.causal.regressions import CONTROLS, fe_effect, session_lag
from kuairec_utils.config import GROUND_TRUTH_SUBDIR
from kuairec_utils.evaluation.truth import HABIT_COLUMNS, true_candidate_probabilities


def first_rows(interactions: pd.DataFrame, session_ids: np.ndarray) -> np.ndarray:
    """The big-matrix row of each session's first shown video, in ``session_ids``' order."""
    first = (
        interactions[["session_id", "position", "raw_row"]]
        .sort_values(["session_id", "position"])
        .groupby("session_id")["raw_row"]
        .first()
    )
    return first.loc[session_ids].to_numpy()


def add_truth(
    raw_dir: str | Path,
    interactions: pd.DataFrame,
    sessions: pd.DataFrame,
    candidate_sets: Mapping[str, CandidateSet],
    item_ids: np.ndarray,
) -> dict[str, np.ndarray]:
    """Puts every candidate set's true probabilities at its session's start under
    ``probs["true"]`` (one pass over every set's candidates, float64) and returns each session's true
    selectivity ``true_c`` and residual ``true_residual`` (``sessions`` in 06's order)."""
    first = first_rows(interactions, sessions["session_id"].to_numpy())
    truth = pd.read_parquet(
        Path(raw_dir) / GROUND_TRUTH_SUBDIR / "big_matrix_truth.parquet",
        columns=[*HABIT_COLUMNS, "is_duplicate", "residual"],
    )
    users = sessions["user_id"].to_numpy()
    rows = np.concatenate([c.rows for c in candidate_sets.values()])
    videos = item_ids[np.concatenate([c.items for c in candidate_sets.values()])]
    probs = true_candidate_probabilities(
        raw_dir, users[rows], videos, first[rows], truth=truth.drop(columns="residual")
    )
    at = 0
    for cands in candidate_sets.values():
        cands.probs["true"] = probs[at : at + len(cands.rows)]
        at += len(cands.rows)
    return {
        "true_c": truth["selectivity"].to_numpy()[first],
        "true_residual": truth["residual"].to_numpy()[first],
    }


def simulator_residual_effects(
    sessions: pd.DataFrame, true_residual: np.ndarray
) -> dict[str, dict[str, float]]:
    """The regressions on the simulator's own residual (the truth's, the same for every
    candidate set): with the true c_s, the regression's own bias; with 06's estimated c_s, what
    the selectivity step costs. The naive effect and the placebo, clustered se."""
    frame = sessions.assign(true_residual=true_residual)
    frame["true_residual_prev"] = session_lag(frame, "true_residual", 1)
    frame["true_residual_next"] = session_lag(frame, "true_residual", -1)
    out: dict[str, Any] = {}
    for name, (outcome, weights) in {
        "true": ("true_c", None),
        "estimated": ("c", "precision"),
    }.items():
        prev = fe_effect(frame, outcome, "true_residual_prev", CONTROLS, weights=weights)
        nxt = fe_effect(frame, outcome, "true_residual_next", CONTROLS, weights=weights)
        out[name] = {"effect": prev["effect"], "effect_se": prev["se"]}
        out[name] |= {"placebo": nxt["effect"], "placebo_se": nxt["se"]}
    return out
