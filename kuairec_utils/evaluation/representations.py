"""What a value model's node representations know of the simulated world (evaluation only,
docs/design.md section 5): a linear probe of the simulator's true user and video taste.

The probe regresses the true taste vectors (16 numbers per user or video, from the world the
simulator rebuilds from ``truth.json``) on the representations by least squares with a small
ridge, fitted on half the nodes and scored on the other half: the held-out R^2, pooled over the
taste's dimensions (one minus the residual over the total sum of squares).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kuairec_utils.evaluation.truth import simulated_world, world_rows


def probe_r2(h: np.ndarray, target: np.ndarray, seed: int = 0, ridge: float = 1e-3) -> float:
    """Held-out R^2 of a linear map (with intercept) from ``h`` (n, H) to ``target`` (n, D):
    fitted on a random half of the rows, scored on the other half; nan with under 4 rows."""
    h, target = np.asarray(h, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if len(h) < 4:
        return float("nan")
    order = np.random.default_rng(seed).permutation(len(h))
    fit_rows, score_rows = order[: len(h) // 2], order[len(h) // 2 :]
    x = np.hstack([h, np.ones((len(h), 1))])
    a = x[fit_rows]
    penalty = ridge * len(fit_rows) * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0  # no penalty on the intercept
    coef = np.linalg.solve(a.T @ a + penalty, a.T @ target[fit_rows])
    residual = target[score_rows] - x[score_rows] @ coef
    centred = target[score_rows] - target[fit_rows].mean(axis=0)
    return float(1.0 - (residual**2).sum() / (centred**2).sum())


def taste_probes(
    raw_dir: str | Path,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    user_h: np.ndarray,
    item_h: np.ndarray,
    warm_items: np.ndarray,
    seed: int = 0,
) -> dict[str, float]:
    """The probe's R^2 for the users' true taste, the warm videos' (shown on the training days)
    and the cold videos', from the final user and video representations."""
    _, world = simulated_world(raw_dir)
    u, _ = world_rows(world, np.asarray(user_ids), np.full(len(user_ids), world.video_id[0]))
    _, v = world_rows(world, np.full(len(item_ids), world.user_id[0]), np.asarray(item_ids))
    warm = np.asarray(warm_items, dtype=bool)
    return {
        "users": probe_r2(user_h, world.user_taste[u], seed),
        "warm_items": probe_r2(item_h[warm], world.video_taste[v][warm], seed),
        "cold_items": probe_r2(item_h[~warm], world.video_taste[v][~warm], seed),
    }
