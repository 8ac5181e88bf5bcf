"""The exact target of a debiased quick-skip rate (simulated data; evaluation only).

The simulator knows each shown video's skip probability at any selectivity: the ``negative``
head of ``head_probabilities(cfg, m, c, d)``, with ``m`` the full utility of that showing and
``d`` the video's duration. A debiased rate claims to be the rate the same user (or session)
would have had at a common selectivity. Its exact target is therefore the mean, over the unit's
shown videos, of ``p_negative(c_ref_true, m_i, d_i)``, with ``c_ref_true`` the mean true ``c_s``
over all shown videos. It moves with the utilities of what was shown and not with the sessions'
selectivities. The corrections never read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kuairec_utils.heads import HEADS

if TYPE_CHECKING:
    from kuairec_utils.simulate import SimConfig

SKIP = HEADS.index("negative")


@dataclass
class SkipTruth:
    """What the truth says of every shown video (rows in the order given)."""

    target: np.ndarray  # (n,) P(quick skip) at the common true selectivity: the exact target
    c_true: np.ndarray  # (n,) the true c_s of the video's session
    preference: np.ndarray  # (n,) the latent preference (utility without fatigue and habit)
    reference: float  # c_ref_true, the mean true c_s over the shown videos


def skip_target(
    cfg: SimConfig, utility: np.ndarray, c_true: np.ndarray, duration_ms: np.ndarray
) -> tuple[np.ndarray, float]:
    """Every shown video's skip probability at the common reference ``c_ref_true`` (the mean of
    ``c_true`` over the rows, one row per shown video), and that reference. The simulator's own
    ``head_probabilities`` gives the probability; nothing here re-derives it."""
    from kuairec_utils.simulate import head_probabilities

    utility = np.asarray(utility, dtype=np.float64)
    c_true = np.asarray(c_true, dtype=np.float64)
    if not (len(utility) == len(c_true) == len(duration_ms)) or not len(utility):
        raise ValueError("utility, c_true and duration_ms need one entry per shown video")
    if not (np.isfinite(utility).all() and np.isfinite(c_true).all()):
        raise ValueError("the utilities and the true selectivities must be finite")
    reference = float(c_true.mean())
    common = np.full(len(utility), reference)
    probs = head_probabilities(cfg, utility, common, np.asarray(duration_ms, np.float64))[0]
    return probs[:, SKIP], reference


def skip_truth(raw_dir: str | Path, rows: pd.DataFrame) -> SkipTruth:
    """The truth of the shown videos ``rows`` (``raw_row``, ``user_id``, ``video_id``,
    ``video_duration_ms``): the exact target, the true ``c_s`` and the latent preference.
    Reads ``data/raw/ground_truth``: evaluation only."""
    from kuairec_utils.evaluation.truth import latent_preference, load_truth, simulator_config

    truth, meta = load_truth(raw_dir)
    raw_row = rows["raw_row"].to_numpy()
    c_true = truth["selectivity"].to_numpy(np.float64)[raw_row]
    target, reference = skip_target(
        simulator_config(meta),
        truth["utility"].to_numpy(np.float64)[raw_row],
        c_true,
        rows["video_duration_ms"].to_numpy(np.float64),
    )
    preference = latent_preference(raw_dir, rows["user_id"].to_numpy(), rows["video_id"].to_numpy())
    return SkipTruth(target, c_true, preference, reference)
