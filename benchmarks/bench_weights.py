"""Speed of head-weight estimation on the default data set (after ``make repro``).

Reads the cached candidates of the ``head_weights`` stage (``models/head_weights/<model>/seed_<seed>/candidates.npz``)
and the GNN's item embeddings, and prints: the size of the problem, the time of one evaluation
of the hard top-K objective (median of 10; target: well under a second), the time of one
rank-logit fit and of its one-step bootstrap (100 replicates)::

    .venv/bin/python benchmarks/bench_weights.py [--models models] [--model gnn_h64]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kuairec_utils.config import MODELS_DIR
from kuairec_utils.head_weights.moments import FeedProblem, feed_mean_embeddings, objective
from kuairec_utils.head_weights.rank_logit import bootstrap_rank_logit, rank_logit_weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--model", default="gnn_h64")
    parser.add_argument("--seed", type=int, default=20200705, help="the value-model seed")
    args = parser.parse_args(argv)
    run = f"seed_{args.seed}"
    cache = args.models / "head_weights" / args.model / run / "candidates.npz"
    if not cache.exists():
        print(f"{cache} is missing: run `make repro` first")
        return 1
    data = np.load(cache)
    items, valid, probs = data["items"], data["valid"], data["probs"]
    emb = np.load(args.models / args.model / run / "embeddings.npz")["item"]
    feeds = pd.read_parquet(args.models / "head_weights" / args.model / run / "feeds.parquet")
    shown_per_session = feeds.groupby("session_id")["observed"].sum()
    k = shown_per_session.loc[data["session_id"]].to_numpy()
    shown = (np.arange(items.shape[1])[None, :] < k[:, None]) & valid
    tic = time.perf_counter()
    problem = FeedProblem.from_items(
        probs, items, emb, valid, k, feed_mean_embeddings(items, shown, emb)
    )
    build = time.perf_counter() - tic
    print(
        f"{len(problem):,} sessions, {int(valid.sum()):,} candidates "
        f"(padded width {items.shape[1]}, {len(problem.blocks)} blocks); built in {build:.2f} s"
    )
    w = np.array([0.22, 0.10, -0.02, -0.66])
    objective(problem, w)  # warm-up
    times = []
    for _ in range(10):
        tic = time.perf_counter()
        objective(problem, w)
        times.append(time.perf_counter() - tic)
    print(f"one evaluation of the hard top-K objective: median {np.median(times):.3f} s")
    tic = time.perf_counter()
    fit = rank_logit_weights(problem)
    print(f"rank-logit fit: {time.perf_counter() - tic:.1f} s")
    tic = time.perf_counter()
    bootstrap_rank_logit(problem, np.arange(len(problem)) % 500, fit.beta, n_boot=100)
    print(f"rank-logit one-step bootstrap, 100 replicates: {time.perf_counter() - tic:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
