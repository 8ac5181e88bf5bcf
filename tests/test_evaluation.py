"""Evaluation helpers that read the simulator's ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kuairec_utils.evaluation import true_candidate_probabilities
from kuairec_utils.heads import HEADS


def test_true_candidate_probabilities_match_the_truth_where_habit_is_zero(tiny_sim: Path) -> None:
    truth = pd.read_parquet(tiny_sim / "ground_truth" / "big_matrix_truth.parquet")
    truth = truth[~truth["is_duplicate"]]
    first_session = truth.groupby("user_id")["session_id"].transform("min")
    rows = truth[(truth["session_id"] == first_session) & (truth["position"] == 0)]
    assert len(rows) > 20
    got = true_candidate_probabilities(
        tiny_sim, rows["user_id"].to_numpy(), rows["video_id"].to_numpy(), rows.index.to_numpy()
    )
    # a user's first video: no habit yet, no fatigue at position 0
    expected = rows[[f"p_{h}" for h in HEADS]].to_numpy()
    assert np.allclose(got, expected, atol=1e-6)
    later = truth[(truth["session_id"] != first_session) & (truth["position"] == 0)].head(200)
    other = true_candidate_probabilities(
        tiny_sim, later["user_id"].to_numpy(), later["video_id"].to_numpy(), later.index.to_numpy()
    )
    assert not np.allclose(other, later[[f"p_{h}" for h in HEADS]].to_numpy(), atol=1e-6)
