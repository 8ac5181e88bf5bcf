"""How well does a case-control selection model of the feed recover the head weights? (simulated
data for the truth; the GNN's figures on any data)

05_head_weights reports the study's plain estimator and the rank logit. Both miss w_true on the
simulated platform, even on its exact ranking probabilities. ``kuairec_utils.selection`` reads
the feed as the platform built it (the top K_s of a pool by a noisy score) and the other
candidates as a sample of that pool. This script runs it on 05's cached candidates, with the
GNN's probabilities and, on simulated data, the platform's exact ranking probabilities (rebuilt
from the truth: diagnosis only). It prints w, the noise sd and the max error beside 05's plain
and rank-logit estimates.

Evaluation only: nothing of the pipeline reads what it prints. Run after ``make repro``; every
``--every``-th session (8 by default: about 4 minutes on 2 cores; 1 takes about eight times as
long), optionally only those whose feed length is in ``--k-range``. Sessions whose feed shows a
video the user was shown in an earlier session are left out unless ``--keep-repeats``: the
simulated platform ranks the videos a user has seen below all others, so a repeat means it ran
out of new candidates and filled the feed regardless of score (53% of the feeds of more than 33
videos hold one, 4.5% of the shorter ones), which the model does not describe::

    .venv/bin/python diagnostics/selection_model.py [--every 8] [--k-range 1 33] [--keep-repeats]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from kuairec_utils.config import GROUND_TRUTH_SUBDIR, resolve
from kuairec_utils.evaluation import HABIT_COLUMNS, has_ground_truth, true_candidate_probabilities
from kuairec_utils.feeds import session_feeds
from kuairec_utils.heads import HEADS
from kuairec_utils.selection import selection_weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=8, help="use every n-th session (1: all)")
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
    parser.add_argument("--interim", default="data/interim")
    parser.add_argument("--raw", default="data/raw")
    parser.add_argument("--models", default="models")
    parser.add_argument("--metrics", default="metrics")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error(f"--every must be at least 1, got {args.every}")
    interim, raw = resolve(args.interim), resolve(args.raw)
    models, metrics = resolve(args.models), resolve(args.metrics)

    interactions = pd.read_parquet(interim / "interactions.parquet")
    sessions = session_feeds(interactions)
    cache = np.load(models / "head_weights" / "candidates.npz")
    if not np.array_equal(cache["session_id"], sessions["session_id"]):
        raise ValueError(
            "models/head_weights/candidates.npz is not of these interactions: rerun 05"
        )
    record = json.loads((metrics / "weights.json").read_text())
    item_ids = np.load(models / record["model"] / "embeddings.npz")["video_id"]
    lo, hi = args.k_range
    all_k = sessions["k"].to_numpy()
    eligible = (all_k >= lo) & (all_k <= hi)
    if not args.keep_repeats:  # the platform filled these feeds when its new candidates ran out
        by_time = interactions.sort_values(["user_id", "timestamp"], kind="stable")
        first = by_time.groupby(["user_id", "video_id"])["session_id"].transform("first")
        repeats = (by_time["session_id"] != first).groupby(by_time["session_id"]).any()
        eligible &= ~repeats.loc[sessions["session_id"]].to_numpy()
    pick = np.flatnonzero(eligible)[:: args.every]
    if len(pick) == 0:
        parser.error(f"no session has a feed of {lo}..{hi} videos")
    items, valid = cache["items"][pick], cache["valid"][pick]
    k = sessions["k"].to_numpy()[pick]
    rows, slots = np.nonzero(valid)
    in_feed = slots < k[rows]
    candidates = {"GNN": cache["probs"][pick][rows, slots]}
    w_true = record.get("w_true")
    if has_ground_truth(raw):
        first_row = (
            interactions.sort_values(["session_id", "position"])
            .groupby("session_id")["raw_row"]
            .first()
        )
        truth = pd.read_parquet(
            raw / GROUND_TRUTH_SUBDIR / "big_matrix_truth.parquet",
            columns=[*HABIT_COLUMNS, "is_duplicate"],
        )
        part = sessions.iloc[pick]
        candidates["exact (from the truth)"] = true_candidate_probabilities(
            raw,
            part["user_id"].to_numpy()[rows],
            item_ids[items[rows, slots]],
            first_row.loc[part["session_id"].to_numpy()].to_numpy()[rows],
            truth=truth,
        )
    lines = []
    for name, probs in candidates.items():
        tic = time.perf_counter()
        est = selection_weights(probs, rows, in_feed)
        row = {"probabilities": name, **dict(zip(HEADS, np.round(est.w, 4), strict=True))}
        row["noise sd"] = round(est.noise_sd, 4)
        if w_true is not None:
            row["max error"] = round(float(np.abs(est.w - [w_true[h] for h in HEADS]).max()), 4)
        row |= {"sessions": est.n_sessions, "seconds": round(time.perf_counter() - tic)}
        lines.append(row)
        print(pd.DataFrame([row]).to_string(index=False), flush=True)
    which = "all sessions" if args.keep_repeats else "the sessions without a repeated video"
    lengths = "" if args.k_range == (1, 10**9) else f" with {lo}..{hi} videos"
    print(f"\nthe selection model on every {args.every}-th of {which}{lengths}:")
    print(pd.DataFrame(lines).to_string(index=False))
    print("\n05 on all sessions (metrics/weights.json):")
    print(f"  plain w* {np.round([record['w'][h] for h in HEADS], 4)}", end="")
    print(f", max error {record['max_abs_error']:.4f}" if "max_abs_error" in record else "")
    logit = record["rank_logit"]
    print(f"  rank logit {np.round([logit['w'][h] for h in HEADS], 4)}", end="")
    print(f", max error {logit['max_abs_error']:.4f}" if "max_abs_error" in logit else "")
    if w_true is not None:
        print(f"  w_true {np.round([w_true[h] for h in HEADS], 4)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
