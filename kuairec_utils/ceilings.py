"""How much of the oracle's AUC can a model trained on the training days reach? (simulated data)

Evaluation only, like ``evaluation``: it reads the simulator's ground truth, and no stage of the
pipeline imports it (``diagnostics/auc_ceiling.py`` does). Two kinds of ceiling:

- ``information_ceiling``: the true probability of each row *given less information* than the
  oracle has, computed from the simulator's own outcome model (no model trained, so no learning
  error). It knows every part of the row's true utility (user bias, taste, quality, habit,
  fatigue) and the session's selectivity, except a cold video's own taste, the part of its
  taste vector that its category tags do not carry, which no row of the training days reveals.
  That part is integrated out (it is normal given the user's taste vector). Ranking by it is the
  best any model with that information can do, so its AUC bounds what a model trained on the
  training days can reach. It is generous: it knows every warm video's taste and quality
  exactly, which its training rows reveal only up to noise, and a cold video's quality, which
  the platform's daily statistics of earlier days reveal only up to noise.
- ``learnable_latents``: the static parts of the true utility a perfect learner could have taken
  from the data, as features for a model to be trained on (the MLP ceilings of the script).

A *cold* video is one with no row in the training days (not in the GNN's message-passing graph).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kuairec_utils.evaluation import _world_rows, simulated_world

if TYPE_CHECKING:
    from kuairec_utils.simulate import World

LATENTS = ("user_bias", "taste", "video_quality")  # the columns of ``learnable_latents``


def tag_taste(world: World) -> tuple[np.ndarray, np.ndarray]:
    """Each video's taste vector as its category tags carry it, (n_videos, dim), and the
    covariance of the rest, (dim, dim): the least-squares projection of the world's video tastes
    on the tags' mean encoding (the simulator draws 80% of a taste's variance from the tags)."""
    from kuairec_utils.kuairec import read_table
    from kuairec_utils.simulate import KUAIREC_SIDE_DIR

    cats = read_table(KUAIREC_SIDE_DIR, "item_categories").set_index("video_id")
    tags = cats.loc[world.video_id, "feat"]  # lists, parsed by the validated reader
    design = np.zeros((len(tags), world.n_categories + 1))
    for row, t in enumerate(tags):
        design[row, t] = 1.0 / len(t)
    design[:, -1] = 1.0  # intercept
    taste = world.video_taste.astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, taste, rcond=None)
    projected = design @ coef
    return projected, np.atleast_2d(np.cov((taste - projected).T))


def learnable_latents(
    raw_dir: str | Path,
    user_id: np.ndarray,
    video_id: np.ndarray,
    warm_video_ids: np.ndarray,
    quality_known: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The static parts of each row's true utility that a model trained on the training days
    could at best have learnt, (n, 3) in ``LATENTS`` order, and a (n,) mask of the rows whose
    video is warm (in ``warm_video_ids``, i.e. in the training graph).

    Every user is in the training days, so the user's bias and taste vector count as learnable.
    A warm video's taste vector and quality (author effect included) are learnable exactly. A
    cold video's taste is what its category tags carry (``tag_taste``); its quality is exact on
    the rows of ``quality_known`` ((n,) bool: e.g. where the platform's daily statistics of an
    earlier day exist, which reveal it up to noise) and unknown (0) on the others.
    Habit, fatigue and the session's selectivity are left out: they are not static.
    """
    _, world = simulated_world(raw_dir)
    u, v = _world_rows(world, np.asarray(user_id), np.asarray(video_id))
    warm = np.isin(world.video_id[v], np.asarray(warm_video_ids))
    projected, _ = tag_taste(world)
    video_taste = np.where(warm[:, None], world.video_taste[v], projected[v])
    taste = np.einsum("ij,ij->i", world.user_taste[u], video_taste)
    known = warm if quality_known is None else warm | np.asarray(quality_known, dtype=bool)
    quality = np.where(known, world.video_quality[v], 0.0)
    return np.column_stack([world.user_bias[u], taste, quality]), warm


def user_mean_selectivity(truth: pd.DataFrame, raw_row: np.ndarray) -> np.ndarray:
    """Each row's user's mean selectivity c_s over the user's sessions among ``raw_row`` (each
    session counted once), (n,): the session's shock taken out."""
    rows = truth[["user_id", "session_id", "selectivity"]].iloc[np.asarray(raw_row)]
    mean = rows.drop_duplicates("session_id").groupby("user_id")["selectivity"].mean()
    return rows["user_id"].map(mean).to_numpy()


def information_ceiling(
    raw_dir: str | Path,
    truth: pd.DataFrame,
    raw_row: np.ndarray,
    warm_video_ids: np.ndarray,
    selectivity: np.ndarray | None = None,
    n_nodes: int = 24,
) -> np.ndarray:
    """The heads' probabilities, (n, 4), of the big-matrix rows ``raw_row`` for a predictor that
    knows everything the oracle does except a cold video's own taste (see the module's text).

    For a row of a cold video (not in ``warm_video_ids``) the utility's taste term u . v is
    replaced by u . v_tags (the taste the video's tags carry) plus u . e, with e the rest of the
    video's taste vector, normal with the covariance ``tag_taste`` measures; the probabilities
    are their expectation over e (Gauss-Hermite, ``n_nodes`` nodes). Warm rows keep the true
    probabilities. ``selectivity``: the c_s to use, (n,) (default: the truth's, shock included;
    ``user_mean_selectivity`` takes the shock out).
    """
    from kuairec_utils.simulate import head_probabilities

    cfg, world = simulated_world(raw_dir)
    raw_row = np.asarray(raw_row)
    u, v = _world_rows(
        world, truth["user_id"].to_numpy()[raw_row], truth["video_id"].to_numpy()[raw_row]
    )
    cold = ~np.isin(world.video_id[v], np.asarray(warm_video_ids))
    projected, cov = tag_taste(world)
    user_taste = world.user_taste[u].astype(np.float64)
    drop = np.einsum("ij,ij->i", user_taste, world.video_taste[v] - projected[v])
    utility = truth["utility"].to_numpy()[raw_row] - np.where(cold, drop, 0.0)
    sd = np.where(cold, np.sqrt(np.einsum("ij,jk,ik->i", user_taste, cov, user_taste)), 0.0)
    c = truth["selectivity"].to_numpy()[raw_row] if selectivity is None else selectivity
    duration = world.video_duration_ms[v].astype(np.float64)
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)  # for N(0, 1)
    weights = weights / weights.sum()
    out = np.zeros((len(raw_row), 4))
    for z, weight in zip(nodes, weights, strict=True):
        out += weight * head_probabilities(cfg, utility + sd * z, c, duration)[0]
    return out
