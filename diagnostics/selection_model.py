"""How well does a case-control selection model of the feed recover the head weights? (simulated
data for the truth; the GNN's figures on any data)

05_head_weights reports the study's plain estimator and the rank logit, which miss w_true on
the simulated platform even on its exact ranking probabilities, and ``kuairec_utils.head_weights.selection``
on the feeds of at least ``selection_min_feed`` videos. That model reads the feed as the
platform built it (the top K_s of a pool by a noisy score) and the other candidates as a sample
of that pool. This script runs it on any subset of 05's cached candidates, with the
GNN's probabilities and, on simulated data, the platform's exact ranking probabilities (rebuilt
from the truth: diagnosis only). It prints w, its standard errors (clustered by user), the noise
sd and the max error beside 05's plain and rank-logit estimates.

``--resimulate`` (simulated data) asks whether the model can work on this platform at all:
for every chosen session it draws the feed again, from the exact probabilities of every video
of the day, by the platform's own rule (a popularity-weighted pool of max(pool_min,
pool_factor K) draws, the videos the user was shown before ranked last, the top K by the true
score plus normal noise of the true sd), and by the model's own form (the pool's videos whose
noisy score passes a fixed threshold, the pool's K-th largest true score), each with 100
others drawn like 05's (by that day's ``show_cnt``, without the feed and the user's earlier
videos). The logs play no part there, so what the model misses is the model's.

``--references`` (simulated data) asks what error a perfect value model would leave: the exact
probabilities again, but at the fatigue of the position 05 scores the candidates at (the
training mean of log(1 + position)), with the user's mean selectivity in place of the session's
own (its shock no model can foresee), and both. ``--jackknife`` fits with 05's bias correction.

Evaluation only: nothing of the pipeline reads what it prints. Run after ``make repro``; every
``--every``-th session (8 by default: about 3 minutes on 2 cores; ``--resimulate`` 20 by
default, about 3 minutes). Sessions whose feed shows a video the user was shown in an earlier
session are left out (``selection.sessions_with_repeats``) unless ``--keep-repeats``. ``--model``
is the value model 05 ran on, by default the first of ``value_model.downstream``; ``--out FILE``
also writes the fits, 05's estimates and the settings as a metrics file (``make diagnostics``
runs the defaults as the supplementary stage ``selection_model``)::

    .venv/bin/python diagnostics/selection_model.py [--every 8] [--k-range 1 33] [--keep-repeats]
        [--jackknife] [--references] [--model M] [--out FILE]
    .venv/bin/python diagnostics/selection_model.py --resimulate [--every 20]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kuairec_utils.config import (
    GROUND_TRUTH_SUBDIR,
    kuairec_data_dir,
    load_params,
    resolve,
)
from kuairec_utils.data.kuairec import read_table
from kuairec_utils.evaluation.truth import (
    HABIT_COLUMNS,
    has_ground_truth,
    simulated_world,
    true_candidate_probabilities,
)
from kuairec_utils.head_weights.feeds import daily_show_matrix, sample_candidates, session_feeds
from kuairec_utils.head_weights.selection import (
    SelectionEstimate,
    jackknife_selection_weights,
    selection_weights,
    sessions_with_repeats,
)
from kuairec_utils.heads import HEADS
from kuairec_utils.metrics import write_metrics
from kuairec_utils.records import run_settings
from kuairec_utils.simulate import ranking_score


def by_head(values: np.ndarray) -> dict[str, float]:
    return {h: float(v) for h, v in zip(HEADS, values, strict=True)}


def fit_figures(est: SelectionEstimate, w_true: np.ndarray | None) -> dict[str, Any]:
    """A fit's figures for the metrics record: the printed row's, unrounded."""
    figures = {"w": by_head(est.w), "se": by_head(est.w_se), "noise sd": float(est.noise_sd)}
    if w_true is not None:
        figures["max error"] = float(np.abs(est.w - w_true).max())
        if est.uncorrected is not None:
            figures["uncorrected max error"] = float(np.abs(est.uncorrected.w - w_true).max())
    figures |= {"sessions": int(est.n_sessions), "converged": bool(est.converged)}
    return figures  # (the time is printed, not recorded: a rerun writes the same bytes)


def fit_row(
    name: str,
    probs: np.ndarray,
    session: np.ndarray,
    in_feed: np.ndarray,
    users: np.ndarray,
    w_true: np.ndarray | None,
    jackknife: bool = False,
) -> tuple[dict, dict]:
    """One printed row: the selection model's w, standard errors, noise sd and error (with
    ``jackknife``: the bias-corrected fit, and the uncorrected one's error); and the same
    figures, unrounded, for the metrics record (``fit_figures``)."""
    tic = time.perf_counter()
    if jackknife:
        est = jackknife_selection_weights(probs, session, in_feed, cluster=users)
    else:
        est = selection_weights(probs, session, in_feed, cluster=users)
    seconds = round(time.perf_counter() - tic)
    row = {"feeds / probabilities": name, **dict(zip(HEADS, np.round(est.w, 3), strict=True))}
    row["se"] = " ".join(f"{v:.3f}" for v in est.w_se)
    row["noise sd"] = round(est.noise_sd, 4)
    if w_true is not None:
        row["max error"] = round(float(np.abs(est.w - w_true).max()), 3)
        if est.uncorrected is not None:
            row["uncorrected"] = round(float(np.abs(est.uncorrected.w - w_true).max()), 3)
    row |= {"sessions": est.n_sessions, "converged": est.converged}
    row["seconds"] = seconds
    print(pd.DataFrame([row]).to_string(index=False), flush=True)
    return row, fit_figures(est, w_true)


def resimulate(
    raw: Path, sessions: pd.DataFrame, pick: np.ndarray, first_row: np.ndarray, seed: int
) -> dict:
    """Feeds drawn again for the sessions ``pick`` (see the module's doc): {name: (probs,
    session, in_feed, user)} for the platform's top-K rule and the fixed-threshold form."""
    cfg, world = simulated_world(raw)
    start = date.fromisoformat(cfg.start_date)
    day = np.array(
        [
            (date(d // 10000, d // 100 % 100, d % 100) - start).days
            for d in sessions["date"].to_numpy()[pick]
        ]
    )
    users = sessions["user_id"].to_numpy()
    position = pd.Series(np.arange(len(world.video_id)), index=world.video_id)
    # the videos each chosen session's user was shown before it (sessions in time order)
    chosen = np.zeros(len(sessions), dtype=bool)
    chosen[pick] = True
    shown: dict[int, set] = {}
    seen_before = []
    for s, (u, feed) in enumerate(zip(users, sessions["feed"], strict=True)):
        before = shown.setdefault(int(u), set())
        if chosen[s]:
            seen_before.append(position.loc[sorted(before)].to_numpy())
        before.update(feed.tolist())
    avail = [np.flatnonzero(world.video_upload_day <= d) for d in day]
    of = np.repeat(np.arange(len(pick)), [len(a) for a in avail])
    videos = np.concatenate(avail)
    truth = pd.read_parquet(
        raw / GROUND_TRUTH_SUBDIR / "big_matrix_truth.parquet",
        columns=[*HABIT_COLUMNS, "is_duplicate"],
    )
    probs = true_candidate_probabilities(
        raw, users[pick][of], world.video_id[videos], first_row[pick][of], truth=truth
    )
    score = ranking_score(probs, cfg.w_vector)  # as the platform scores
    bounds = np.r_[0, np.cumsum([len(a) for a in avail])]
    dates = np.unique(sessions["date"].to_numpy())
    shows = daily_show_matrix(
        read_table(kuairec_data_dir(raw), "item_daily_features"), world.video_id, dates
    )
    day_row = np.searchsorted(dates, sessions["date"].to_numpy()[pick])
    popularity = np.exp(world.video_log_popularity)
    rng = np.random.default_rng(seed)
    out = {"top K of a pool (the platform's rule)": [], "fixed threshold (the model's form)": []}
    for i, (a, k) in enumerate(zip(avail, sessions["k"].to_numpy()[pick], strict=True)):
        p, sc = probs[bounds[i] : bounds[i + 1]], score[bounds[i] : bounds[i + 1]]
        seen = np.isin(a, seen_before[i])
        size = max(cfg.pool_min, int(np.ceil(cfg.pool_factor * k)))
        shows_today = np.where(seen, 0.0, shows[day_row[i], a])  # 05's others skip the seen
        for name, rows in out.items():
            pool = np.unique(rng.choice(len(a), size=size, p=popularity[a] / popularity[a].sum()))
            pool = pool[~seen[pool]]
            if len(pool) <= k:
                continue  # the platform would have shown a repeat
            noisy = sc[pool] + cfg.rank_noise_sd * rng.normal(size=len(pool))
            if name.startswith("top K"):
                feed = pool[np.argsort(-noisy)[:k]]
            else:
                feed = pool[noisy >= np.sort(sc[pool])[::-1][k - 1]]
                if len(feed) == 0:
                    continue
            (candidates,) = sample_candidates(
                [0], [feed], shows_today[None, :], 100, seed=int(rng.integers(2**32))
            )
            rows.append((p[candidates], len(feed), users[pick[i]]))
    built = {}
    for name, rows in out.items():
        n = [len(r[0]) for r in rows]
        session = np.repeat(np.arange(len(rows)), n)
        in_feed = np.concatenate([np.arange(m) < r[1] for m, r in zip(n, rows, strict=True)])
        user = np.repeat([r[2] for r in rows], n)
        built[name] = (np.concatenate([r[0] for r in rows]), session, in_feed, user)
    return built


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=None, help="use every n-th session (1: all)")
    parser.add_argument(
        "--k-range",
        type=int,
        nargs=2,
        default=(1, 10**9),
        metavar=("LO", "HI"),
        help="only sessions whose feed has LO..HI videos (the simulated platform draws a pool "
        "of 100, as many as the others, for feeds of up to 33)",
    )
    parser.add_argument(
        "--keep-repeats",
        action="store_true",
        help="keep the sessions whose feed shows a video the user was shown in an earlier one",
    )
    parser.add_argument(
        "--resimulate",
        action="store_true",
        help="draw the chosen sessions' feeds again from the exact probabilities (simulated data)",
    )
    parser.add_argument("--seed", type=int, default=0, help="of --resimulate's draws")
    parser.add_argument(
        "--jackknife",
        action="store_true",
        help="with the split-panel jackknife's bias correction (05's default; feeds of 10+)",
    )
    parser.add_argument(
        "--references",
        action="store_true",
        help="also the exact probabilities a value model could learn at best (simulated data): "
        "at the fatigue of the mean position, with the user's mean selectivity, and both",
    )
    parser.add_argument("--interim", default="data/interim")
    parser.add_argument("--raw", default="data/raw")
    parser.add_argument("--models", default="models")
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument(
        "--model",
        default=None,
        help="the value model 05 ran on (default: the first of value_model.downstream)",
    )
    parser.add_argument("--out", type=Path, help="also write the figures to this metrics file")
    return parser


def chosen_sessions(
    args: argparse.Namespace, every: int, interactions: pd.DataFrame, sessions: pd.DataFrame
) -> np.ndarray:
    """Every ``every``-th of the sessions whose feed length lies in ``--k-range`` (without a
    repeated video unless ``--keep-repeats``)."""
    lo, hi = args.k_range
    all_k = sessions["k"].to_numpy()
    eligible = (all_k >= lo) & (all_k <= hi)
    if not args.keep_repeats:  # the platform filled these feeds when its new candidates ran out
        eligible &= ~sessions_with_repeats(interactions).loc[sessions["session_id"]].to_numpy()
    return np.flatnonzero(eligible)[::every]


def reference_candidates(
    raw: Path, interactions: pd.DataFrame, truth: pd.DataFrame, query: tuple
) -> dict[str, np.ndarray]:
    """``--references``: the exact probabilities a value model could learn at best."""
    # what the value model can learn at best: 05 scores the candidates at the training mean of
    # log(1 + position), whose fatigue the platform's position-free probabilities do not carry;
    # and no model foresees the session's own selectivity shock
    cfg, _ = simulated_world(raw)
    train = interactions["split"] == "train"
    fatigue = cfg.fatigue_per_log_position * float(
        np.log1p(interactions.loc[train, "position"]).mean()
    )
    candidates = {}
    for label, shift, threshold in [
        ("fatigue at the mean position", -fatigue, "session"),
        ("the user's mean selectivity", 0.0, "user"),
        ("both", -fatigue, "user"),
    ]:
        candidates[f"logged, exact, {label}"] = true_candidate_probabilities(
            raw, *query, truth=truth, utility_shift=shift, selectivity=threshold
        )
    return candidates


def logged_candidates(
    raw: Path,
    interactions: pd.DataFrame,
    sessions: pd.DataFrame,
    cache: Any,
    item_ids: np.ndarray,
    pick: np.ndarray,
    first_row: np.ndarray,
    references: bool,
) -> dict[str, tuple]:
    """05's cached candidates of the sessions ``pick``: {name: (probs, session, in_feed, user)}
    with the GNN's probabilities and, on simulated data, the exact ones (and the references)."""
    items, valid = cache["items"][pick], cache["valid"][pick]
    rows, slots = np.nonzero(valid)
    in_feed = slots < sessions["k"].to_numpy()[pick][rows]
    users = sessions["user_id"].to_numpy()[pick][rows]
    candidates = {"logged, GNN": cache["probs"][pick][rows, slots]}
    if has_ground_truth(raw):
        truth = pd.read_parquet(
            raw / GROUND_TRUTH_SUBDIR / "big_matrix_truth.parquet",
            columns=[*HABIT_COLUMNS, "is_duplicate"],
        )
        query = (users, item_ids[items[rows, slots]], first_row[pick][rows])
        candidates["logged, exact (from the truth)"] = true_candidate_probabilities(
            raw, *query, truth=truth
        )
        if references:
            candidates |= reference_candidates(raw, interactions, truth, query)
    return {name: (probs, rows, in_feed, users) for name, probs in candidates.items()}


def estimates_05(record: dict, w_true: np.ndarray | None, model: str) -> dict[str, Any]:
    """Prints 05's estimates on all sessions (w and max error) and returns them as a record."""
    print(f"\n05 on all sessions (metrics/weights_{model}.json):")
    figures: dict[str, Any] = {}
    for name, estimate in record["estimators"].items():
        if "w" in estimate:
            w = [estimate["w"][h] for h in HEADS]
            print(f"  {name} {np.round(w, 4)}", end="")
            error = estimate.get("max_abs_error")
            if isinstance(error, dict):  # pooled over the value-model seeds
                error = error["mean"]
            print(f", max error {error:.4f}" if error is not None else "")
            figures[name] = {"w": by_head(w), "max error": error}
    if w_true is not None:
        print(f"  w_true {np.round(w_true, 4)}")
        figures["w_true"] = by_head(w_true)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser()
    args = parser.parse_args(argv)
    args.every = args.every if args.every is not None else (20 if args.resimulate else 8)
    if args.every < 1:
        parser.error(f"--every must be at least 1, got {args.every}")
    interim, raw = resolve(args.interim), resolve(args.raw)
    models, metrics = resolve(args.models), resolve(args.metrics)
    for flag in ("resimulate", "references"):
        if getattr(args, flag) and not has_ground_truth(raw):
            parser.error(f"--{flag} needs the simulator's ground truth under {raw}")
    args.model = args.model or load_params()["value_model"]["downstream"][0]

    interactions = pd.read_parquet(interim / "interactions.parquet")
    sessions = session_feeds(interactions)
    record = json.loads((metrics / f"weights_{args.model}.json").read_text())
    run = f"seed_{record['seeds'][0]}"  # the first value-model seed's candidates
    cache = np.load(models / "head_weights" / args.model / run / "candidates.npz")
    if not np.array_equal(cache["session_id"], sessions["session_id"]):
        raise ValueError(
            f"models/head_weights/{args.model}/{run}/candidates.npz is not of these interactions"
        )
    item_ids = np.load(models / record["model"] / run / "embeddings.npz")["video_id"]
    w_true = record.get("w_true")
    w_true = None if w_true is None else np.array([w_true[h] for h in HEADS])
    pick = chosen_sessions(args, args.every, interactions, sessions)
    if len(pick) == 0:
        parser.error(f"no session has a feed of {args.k_range[0]}..{args.k_range[1]} videos")
    first_row = (
        interactions.sort_values(["session_id", "position"])
        .groupby("session_id")["raw_row"]
        .first()
        .loc[sessions["session_id"]]
        .to_numpy()
    )
    if args.resimulate:
        fits = resimulate(raw, sessions, pick, first_row, args.seed)
    else:
        fits = logged_candidates(
            raw, interactions, sessions, cache, item_ids, pick, first_row, args.references
        )
    lines, figures = [], {}
    for name, fields in fits.items():
        row, figures[name] = fit_row(name, *fields, w_true, args.jackknife)
        lines.append(row)
    which = "all sessions" if args.keep_repeats else "the sessions without a repeated video"
    lo, hi = args.k_range
    lengths = "" if args.k_range == (1, 10**9) else f" with {lo}..{hi} videos"
    print(f"\nthe selection model on every {args.every}-th of {which}{lengths}:")
    print(pd.DataFrame(lines).to_string(index=False))
    estimates = estimates_05(record, w_true, args.model)
    if args.out is not None:
        write_metrics(
            args.out,
            {
                "settings": run_settings(args),
                "the selection model": figures,
                "05 on all sessions": estimates,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
