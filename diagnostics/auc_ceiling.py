"""How close to the oracle can a model trained on the training days get? (simulated data only)

The oracle's AUC uses every row's true probabilities, including what no model trained on the
training days can know: the taste and quality of videos first shown after them ("cold" videos,
about half of the test rows on the default data set), the session's selectivity shock and the
user's habit. This script measures two ceilings with the edge MLP of 03_baselines (same
settings from params.yaml, same early stopping on the validation mean AUC):

- learnable ceiling: the edge MLP given, as three extra features, the static parts of the true
  utility a perfect learner could have taken from the training days
  (``evaluation.learnable_latents``: user bias, user-video taste, video quality; for a cold
  video only the taste its category tags carry). Trained on the training rows, where every
  video is warm, it is scored on the warm test rows; the cold test rows keep the edge MLP's own
  predictions (a model that knows nothing a cold video's tags do not already tell the MLP);
- architecture ceiling: the same MLP given the exact latents on every row (cold videos too).

It prints the mean test AUC on all, warm and cold test rows for the edge MLP of 03, the two
ceilings and the oracle. Evaluation only: it reads the ground truth, nothing of the pipeline
reads what it prints. Run after ``make repro`` (about 2 minutes on 2 cores)::

    .venv/bin/python diagnostics/auc_ceiling.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kuairec_utils.config import load_params, resolve
from kuairec_utils.evaluation import (
    LATENTS,
    has_ground_truth,
    learnable_latents,
    load_truth,
    true_probabilities,
)
from kuairec_utils.heads import HEADS
from kuairec_utils.models import (
    Dataset,
    EdgeMLP,
    EdgeSet,
    TrainConfig,
    auc_by_head,
    fit,
    load_processed,
    predict,
)


def with_columns(data: Dataset, extra: dict[str, np.ndarray]) -> Dataset:
    """A copy of ``data`` whose splits carry the extra (standardised on train) feature columns."""
    mean, sd = extra["train"].mean(axis=0), extra["train"].std(axis=0) + 1e-12
    splits = {}
    for split, e in data.splits.items():
        z = torch.from_numpy(((extra[split] - mean) / sd).astype(np.float32))
        splits[split] = EdgeSet(torch.cat([e.x, z], dim=1), e.y, e.user, e.item, e.raw_row)
    names = [*data.feature_names, *(f"true_{name}" for name in LATENTS)]
    return Dataset(splits, names, data.user_ids, data.item_ids)


def train_mlp(data: Dataset, seed: int, params: dict, epochs: int | None = None) -> EdgeMLP:
    """The edge MLP of 03_baselines (``params``: the baselines section), trained on ``data``."""
    cfg = TrainConfig(
        epochs=epochs or params["epochs"],
        batch_size=params["batch_size"],
        lr=params["lr"],
        weight_decay=params["weight_decay"],
        patience=params["patience"],
        seed=seed,
        device=load_params()["device"],
    )
    torch.manual_seed(seed)
    model = EdgeMLP(len(data.feature_names), hidden=params["mlp_hidden"], dropout=params["dropout"])
    return fit(model, data, cfg, progress=False).model


def ceilings(
    processed: Path, raw: Path, models: Path, epochs: int | None = None
) -> tuple[pd.DataFrame, float, int]:
    """The table of mean test AUCs (rows: models; columns: all, warm and cold test rows, gap
    to the oracle), the share of cold test rows and the number of test rows."""
    params = load_params()
    seed, baselines = params["seed"], params["baselines"]
    data = load_processed(processed)
    truth, _ = load_truth(raw)
    ids = {s: truth[["user_id", "video_id"]].to_numpy()[e.raw_row] for s, e in data.splits.items()}
    users, videos = np.concatenate(list(ids.values())).T
    # every split at once (each call rebuilds the simulated world), then back into the splits
    bounds = np.cumsum([len(uv) for uv in ids.values()])[:-1]
    learnable, warm_all = learnable_latents(raw, users, videos, np.unique(ids["train"][:, 1]))
    every, _ = learnable_latents(raw, users, videos, np.unique(videos))
    latents = dict(zip(ids, np.split(learnable, bounds), strict=True))
    exact = dict(zip(ids, np.split(every, bounds), strict=True))
    warm = dict(zip(ids, np.split(warm_all, bounds), strict=True))
    test = data.splits["test"]
    y, cold = test.y.numpy(), ~warm["test"]
    mlp = pd.read_parquet(models / "edge_mlp" / "predictions_test.parquet")
    if not np.array_equal(mlp["raw_row"].to_numpy(), test.raw_row):
        raise ValueError(
            f"{models}/edge_mlp/predictions_test.parquet does not match the test split"
        )
    p_mlp = mlp[[f"p_{h}" for h in HEADS]].to_numpy()

    print("training the edge MLP with the learnable latents ...", flush=True)
    learnable_data = with_columns(data, latents)
    learnt = train_mlp(learnable_data, seed, baselines, epochs)
    p_learnable = p_mlp.copy()
    p_learnable[~cold] = predict(learnt, learnable_data.splits["test"])[~cold]

    print("training the edge MLP with the exact latents ...", flush=True)
    exact_data = with_columns(data, exact)
    p_exact = predict(train_mlp(exact_data, seed, baselines, epochs), exact_data.splits["test"])

    rows = {
        "edge MLP (03_baselines)": p_mlp,
        "learnable ceiling": p_learnable,
        "architecture ceiling (exact latents)": p_exact,
        "oracle": true_probabilities(truth, test.raw_row),
    }
    table = pd.DataFrame(
        {
            name: {
                "all": auc_by_head(y, p)["mean"],
                "warm videos": auc_by_head(y[~cold], p[~cold])["mean"],
                "cold videos": auc_by_head(y[cold], p[cold])["mean"],
            }
            for name, p in rows.items()
        }
    ).T
    table["gap to oracle (all)"] = table["all"] - table.loc["oracle", "all"]
    return table, float(cold.mean()), len(y)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processed", type=Path, default=resolve("data/processed"))
    parser.add_argument("--raw", type=Path, default=resolve("data/raw"))
    parser.add_argument("--models", type=Path, default=resolve("models"))
    parser.add_argument("--epochs", type=int, default=None, help="default: baselines.epochs")
    args = parser.parse_args(argv)
    if not has_ground_truth(args.raw):
        print(f"{args.raw} holds no ground truth: the ceilings exist on simulated data only")
        return 1
    table, cold_share, n_test = ceilings(args.processed, args.raw, args.models, args.epochs)
    print(
        f"\nmean test AUC; {cold_share:.1%} of the {n_test:,} test rows show a video the "
        "training days never showed (cold)"
    )
    print(table.round(4).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
