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

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from kuairec_utils.evaluation.truth import simulated_world, world_rows
from kuairec_utils.simulate import REF_DURATION_S

if TYPE_CHECKING:
    from kuairec_utils.simulate import SimConfig, World

LATENTS = ("user_bias", "taste", "video_quality")  # the columns of ``learnable_latents``


def tag_taste(world: World) -> tuple[np.ndarray, np.ndarray]:
    """Each video's taste vector as its category tags carry it, (n_videos, dim), and the
    covariance of the rest, (dim, dim): the least-squares projection of the world's video tastes
    on the tags' mean encoding (the simulator draws 80% of a taste's variance from the tags)."""
    from kuairec_utils.data.kuairec import read_table
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
    u, v = world_rows(world, np.asarray(user_id), np.asarray(video_id))
    warm = np.isin(world.video_id[v], np.asarray(warm_video_ids))
    projected, _ = tag_taste(world)
    video_taste = np.where(warm[:, None], world.video_taste[v], projected[v])
    taste = np.einsum("ij,ij->i", world.user_taste[u], video_taste)
    known = warm if quality_known is None else warm | np.asarray(quality_known, dtype=bool)
    quality = np.where(known, world.video_quality[v], 0.0)
    return np.column_stack([world.user_bias[u], taste, quality]), warm


def _truth_rows(
    world: World, truth: pd.DataFrame, raw_row: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in the world's arrays of the users and videos of the big-matrix rows ``raw_row``."""
    return world_rows(
        world, truth["user_id"].to_numpy()[raw_row], truth["video_id"].to_numpy()[raw_row]
    )


def _expected_heads(
    cfg: SimConfig,
    utility: np.ndarray,
    sd: np.ndarray,
    selectivity: np.ndarray,
    duration_ms: np.ndarray,
    n_nodes: int,
) -> np.ndarray:
    """The heads' probabilities, (n, 4), averaged over a normal utility of mean ``utility`` and
    sd ``sd`` (Gauss-Hermite, ``n_nodes`` nodes)."""
    from kuairec_utils.simulate import head_probabilities

    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)  # for N(0, 1)
    weights = weights / weights.sum()
    out = np.zeros((len(utility), 4))
    for z, weight in zip(nodes, weights, strict=True):
        out += weight * head_probabilities(cfg, utility + sd * z, selectivity, duration_ms)[0]
    return out


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
    cfg, world = simulated_world(raw_dir)
    raw_row = np.asarray(raw_row)
    u, v = _truth_rows(world, truth, raw_row)
    cold = ~np.isin(world.video_id[v], np.asarray(warm_video_ids))
    projected, cov = tag_taste(world)
    user_taste = world.user_taste[u].astype(np.float64)
    drop = np.einsum("ij,ij->i", user_taste, world.video_taste[v] - projected[v])
    utility = truth["utility"].to_numpy()[raw_row] - np.where(cold, drop, 0.0)
    sd = np.where(cold, np.sqrt(np.einsum("ij,jk,ik->i", user_taste, cov, user_taste)), 0.0)
    c = truth["selectivity"].to_numpy()[raw_row] if selectivity is None else selectivity
    duration = world.video_duration_ms[v].astype(np.float64)
    return _expected_heads(cfg, utility, sd, c, duration, n_nodes)


def label_loglik(
    cfg: SimConfig,
    utility: torch.Tensor,
    selectivity: torch.Tensor,
    duration_s: torch.Tensor,
    labels: torch.Tensor,
) -> torch.Tensor:
    """log P(a row's four labels | its utility) under the simulator's outcome model, (n,).

    A quick skip (probability sigmoid(c - m)) gives the labels (0, 0, 0, 1); otherwise the
    labels say in which interval the log watch_ratio fell (each head is a threshold on it: the
    thresholds of ``heads.LabelThresholds``, the play-time ones through the duration), and the
    log watch_ratio is normal around a line in m (``simulate.head_probabilities``).
    """
    t = cfg.labels
    one = labels > 0.5
    log_dur = torch.log(duration_s)
    thresholds = [  # (head, log threshold, label 1 means above it)
        (0, torch.full_like(utility, math.log(t.complete_ratio)), True),
        (1, torch.clamp(math.log(t.long_play_s) - log_dur, max=math.log(t.long_ratio)), True),
        (2, torch.full_like(utility, math.log(t.rewatch_ratio)), True),
        (3, math.log(t.negative_play_s) - log_dur, False),
    ]
    lower = torch.full_like(utility, -torch.inf)
    upper = torch.full_like(utility, torch.inf)
    for head, threshold, above in thresholds:
        is_lower = one[:, head] if above else ~one[:, head]
        lower = torch.where(is_lower, torch.maximum(lower, threshold), lower)
        upper = torch.where(is_lower, upper, torch.minimum(upper, threshold))
    mu = (
        cfg.log_ratio_intercept
        + cfg.log_ratio_slope * utility
        + cfg.log_ratio_duration * (log_dur - math.log(REF_DURATION_S))
    )
    normal = torch.distributions.Normal(0.0, 1.0)
    inside = normal.cdf((upper - mu) / cfg.log_ratio_sd) - normal.cdf(
        (lower - mu) / cfg.log_ratio_sd
    )
    p_skip = torch.sigmoid(selectivity - utility)
    skip_pattern = (one == torch.tensor([False, False, False, True])).all(dim=1)
    likelihood = (1 - p_skip) * inside + torch.where(skip_pattern, p_skip, 0.0)
    return torch.log(likelihood.clamp_min(1e-300))


def _rows_apart_from_videos(
    world: World, truth: pd.DataFrame, own: np.ndarray, raw_row: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For the big-matrix rows ``raw_row``: the world positions of their videos, their users'
    taste vectors, their utility without the video's own taste (``own``: the part of each
    video's taste its tags do not carry) and quality, and the videos' durations (s)."""
    u, v = _truth_rows(world, truth, raw_row)
    user_taste = world.user_taste[u].astype(np.float64)
    rest = (
        truth["utility"].to_numpy()[raw_row]
        - np.einsum("ij,ij->i", user_taste, own[v])
        - world.video_quality[v]
    )
    return v, user_taste, rest, world.video_duration_ms[v] / 1000.0


def _map_video_latents(
    cfg: SimConfig,
    train: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    selectivity: np.ndarray,
    labels: np.ndarray,
    cov: np.ndarray,
    quality_var: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each video's own taste and quality at the maximum of their posterior given the labels
    of the training rows (``train``: ``_rows_apart_from_videos`` of them; normal priors, the
    own taste's covariance ``cov`` and the quality's variance ``quality_var``; L-BFGS on
    ``label_loglik``). Returns the videos (world positions), each row's video among them, the
    fitted own tastes (n_videos, dim) and qualities (n_videos,), and each row's curvature of
    its log-likelihood in the utility m there (central differences, clipped at 0)."""
    v, user_taste, rest, duration = train
    videos, position = np.unique(v, return_inverse=True)
    tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    taste_t, rest_t, duration_t = tensor(user_taste), tensor(rest), tensor(duration)
    c_t = tensor(selectivity)
    labels_t, position_t = tensor(labels), torch.as_tensor(position)
    cov_inv = tensor(np.linalg.inv(cov))
    dim = user_taste.shape[1]
    taste_hat = torch.zeros((len(videos), dim), dtype=torch.float64, requires_grad=True)
    quality_hat = torch.zeros(len(videos), dtype=torch.float64, requires_grad=True)

    def utility(taste: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        return rest_t + (taste_t * taste[position_t]).sum(dim=1) + quality[position_t]

    optimizer = torch.optim.LBFGS(
        [taste_hat, quality_hat], max_iter=500, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        prior = 0.5 * ((taste_hat @ cov_inv) * taste_hat).sum()
        prior = prior + 0.5 * (quality_hat**2).sum() / quality_var
        loss = (
            prior
            - label_loglik(cfg, utility(taste_hat, quality_hat), c_t, duration_t, labels_t).sum()
        )
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        m, h = utility(taste_hat, quality_hat), 1e-3
        ll = [label_loglik(cfg, m + d, c_t, duration_t, labels_t) for d in (-h, 0.0, h)]
        curvature = np.clip(np.nan_to_num((-(ll[0] - 2 * ll[1] + ll[2]) / h**2).numpy()), 0, None)
    taste_np, quality_np = taste_hat.detach().numpy(), quality_hat.detach().numpy()
    return videos, position, taste_np, quality_np, curvature


def _laplace_posterior(
    user_taste: np.ndarray,
    position: np.ndarray,
    curvature: np.ndarray,
    n_videos: int,
    cov: np.ndarray,
    quality_var: float,
) -> np.ndarray:
    """Each video's posterior covariance of (own taste, quality), (n_videos, dim + 1, dim + 1),
    by Laplace: the prior's precision plus its rows' ``curvature`` in m times the outer
    product of d m / d (own taste, quality) = (the user's taste, 1)."""
    design = np.column_stack([user_taste, np.ones(len(user_taste))])
    dim = design.shape[1]
    precision = np.zeros((n_videos, dim, dim))
    np.add.at(
        precision, position, curvature[:, None, None] * design[:, :, None] * design[:, None, :]
    )
    prior_precision = np.zeros((dim, dim))
    prior_precision[:-1, :-1] = np.linalg.inv(cov)
    prior_precision[-1, -1] = 1.0 / quality_var
    return np.linalg.inv(precision + prior_precision)


def structural_learner(
    raw_dir: str | Path,
    truth: pd.DataFrame,
    train_rows: np.ndarray,
    train_labels: np.ndarray,
    test_rows: np.ndarray,
    test_selectivity: np.ndarray,
    n_nodes: int = 24,
) -> np.ndarray:
    """The heads' probabilities, (n_test, 4), of a learner that knows the simulator's outcome
    model and every part of the utility but the videos' own: each video's own taste (the part
    its tags do not carry) and quality. It fits them to the labels of the training rows
    (maximum a posteriori with the simulator's priors: normal, the own taste's covariance from
    ``tag_taste``, the quality's variance across the world's videos; L-BFGS on
    ``label_loglik``) and predicts a test row integrating over their Laplace posterior (a video
    with training rows) or, for a cold video, over the own taste's prior with the quality known
    (as ``information_ceiling``). The training rows keep their true c_s; the test rows use
    ``test_selectivity``. Still generous (the users' latents, habit and fatigue are known
    exactly), it shows what learning the videos' latents from the training rows costs.
    """
    cfg, world = simulated_world(raw_dir)
    projected, cov = tag_taste(world)
    own = world.video_taste.astype(np.float64) - projected
    quality_var = float(np.var(world.video_quality))
    train_rows = np.asarray(train_rows)
    train = _rows_apart_from_videos(world, truth, own, train_rows)
    c = truth["selectivity"].to_numpy()[train_rows]
    videos, position, taste_np, quality_np, curvature = _map_video_latents(
        cfg, train, c, train_labels, cov, quality_var
    )
    posterior = _laplace_posterior(train[1], position, curvature, len(videos), cov, quality_var)

    v, user_taste, rest, duration = _rows_apart_from_videos(
        world, truth, own, np.asarray(test_rows)
    )
    at = np.searchsorted(videos, v).clip(0, len(videos) - 1)
    warm = videos[at] == v
    fitted = np.einsum("ij,ij->i", user_taste, taste_np[at]) + quality_np[at]
    mean = rest + np.where(warm, fitted, world.video_quality[v])
    design = np.column_stack([user_taste, np.ones(len(v))])
    var = np.where(
        warm,
        np.einsum("ij,ijk,ik->i", design, posterior[at], design),
        np.einsum("ij,jk,ik->i", user_taste, cov, user_taste),
    )
    sd = np.sqrt(np.clip(var, 0.0, None))
    return _expected_heads(cfg, mean, sd, test_selectivity, duration * 1000.0, n_nodes)
