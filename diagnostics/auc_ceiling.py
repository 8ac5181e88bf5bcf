"""How close to the oracle can a model trained on the training days get? (simulated data only)

The oracle's AUC uses every row's true probabilities, including what no model trained on the
training days can know: the own taste of videos first shown after them ("cold" videos, about
half of the test rows on the default data set; the part of a video's taste its category tags
do not carry) and the session's selectivity shock. This script prints the mean test AUC, on all,
warm and cold test rows, of:

- information ceilings (``ceilings.information_ceiling``, no model trained): the simulator's own
  probabilities with a cold video's own taste integrated out, with the session's true c_s or
  with the user's mean c_s (the shock taken out too). They know everything else exactly (habit,
  fatigue, every warm video's taste and quality, a cold video's quality), so no model trained
  on the training days can be expected to beat them;
- the learnable ceiling: the edge MLP of 03_baselines (same settings from params.yaml, same
  early stopping on the validation mean AUC) given, as three extra features, the static parts
  of the true utility a perfect learner could take from the data (``ceilings.learnable_latents``:
  user bias, user-video taste, video quality; for a cold video the taste its tags carry, and
  its quality where the platform's daily statistics of an earlier day exist);
- the architecture ceiling: the same MLP given the exact latents on every row (cold videos too);
- the structural learner (``ceilings.structural_learner``): knows the simulator's outcome model
  and everything the first information ceiling does except the videos' own latents, which it
  fits to the training rows' labels (MAP, Laplace posterior): what learning a warm video's taste
  and quality from its training rows costs;

beside the edge MLP of 03_baselines and the oracle. Evaluation only: it reads the ground truth,
nothing of the pipeline reads what it prints. Run after ``make repro`` (about 2 minutes on 2
cores; ``make diagnostics`` runs it as the supplementary stage ``auc_ceiling``)::

    .venv/bin/python diagnostics/auc_ceiling.py [--out FILE]

``--out FILE`` also writes the table, the test rows and the settings as a metrics file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kuairec_utils.config import load_params, resolve
from kuairec_utils.evaluation.ceilings import (
    LATENTS,
    information_ceiling,
    learnable_latents,
    structural_learner,
    user_mean_selectivity,
)
from kuairec_utils.evaluation.truth import has_ground_truth, load_truth, true_probabilities
from kuairec_utils.heads import HEADS
from kuairec_utils.metrics import write_metrics
from kuairec_utils.models.dataset import Dataset, EdgeSet, load_processed
from kuairec_utils.models.networks import EdgeMLP
from kuairec_utils.models.training import TrainConfig, auc_by_head, fit, predict
from kuairec_utils.records import run_settings


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
        schedule=params["schedule"],
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
    train_videos = np.unique(ids["train"][:, 1])
    # a cold video's quality counts as learnable where the platform's daily statistics of an
    # earlier day exist (the model's item_prev_day_* features; they reveal it up to noise)
    prev = data.feature_names.index("item_prev_day_missing")
    known = np.concatenate([e.x[:, prev].numpy() == 0 for e in data.splits.values()])
    learnable, warm_all = learnable_latents(raw, users, videos, train_videos, known)
    every, _ = learnable_latents(raw, users, videos, np.unique(videos))
    latents = dict(zip(ids, np.split(learnable, bounds), strict=True))
    exact = dict(zip(ids, np.split(every, bounds), strict=True))
    warm = dict(zip(ids, np.split(warm_all, bounds), strict=True))
    test = data.splits["test"]
    y, cold = test.y.numpy(), ~warm["test"]
    first = sorted((models / "edge_mlp").glob("seed_*"))[0]  # a trained edge MLP
    mlp = pd.read_parquet(first / "predictions_test.parquet")
    if not np.array_equal(mlp["raw_row"].to_numpy(), test.raw_row):
        raise ValueError(f"{first}/predictions_test.parquet does not match the test split")
    p_mlp = mlp[[f"p_{h}" for h in HEADS]].to_numpy()

    print("training the edge MLP with the learnable latents ...", flush=True)
    learnable_data = with_columns(data, latents)
    p_learnable = predict(
        train_mlp(learnable_data, seed, baselines, epochs), learnable_data.splits["test"]
    )

    print("training the edge MLP with the exact latents ...", flush=True)
    exact_data = with_columns(data, exact)
    p_exact = predict(train_mlp(exact_data, seed, baselines, epochs), exact_data.splits["test"])

    print("the information ceilings ...", flush=True)
    all_rows = np.concatenate([e.raw_row for e in data.splits.values()])
    c_mean = np.split(user_mean_selectivity(truth, all_rows), bounds)[-1]
    p_info = information_ceiling(raw, truth, test.raw_row, train_videos)
    p_info_mean_c = information_ceiling(raw, truth, test.raw_row, train_videos, c_mean)
    print("the structural learner ...", flush=True)
    train = data.splits["train"]
    p_structural = structural_learner(
        raw, truth, train.raw_row, train.y.numpy(), test.raw_row, c_mean
    )

    rows = {
        "edge MLP (03_baselines)": p_mlp,
        "learnable ceiling (edge MLP)": p_learnable,
        "architecture ceiling (edge MLP, exact latents)": p_exact,
        "structural learner, shock out (videos' taste and quality learnt)": p_structural,
        "information ceiling, shock and cold videos' own taste unknown": p_info_mean_c,
        "information ceiling, cold videos' own taste unknown": p_info,
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


def ceiling_record(table: pd.DataFrame, cold_share: float, n_test: int) -> dict[str, Any]:
    """The printed figures as a metrics record: the test rows, the cold share of them and the
    table (``mean test AUC``: {model: {column: AUC}})."""
    return {
        "test rows": int(n_test),
        "cold share of the test rows": float(cold_share),
        "mean test AUC": {
            str(name): {str(column): float(value) for column, value in row.items()}
            for name, row in table.iterrows()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processed", type=Path, default=resolve("data/processed"))
    parser.add_argument("--raw", type=Path, default=resolve("data/raw"))
    parser.add_argument("--models", type=Path, default=resolve("models"))
    parser.add_argument("--epochs", type=int, default=None, help="default: baselines.epochs")
    parser.add_argument("--out", type=Path, help="also write the figures to this metrics file")
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
    if args.out is not None:
        write_metrics(
            args.out, {"settings": run_settings(args), **ceiling_record(table, cold_share, n_test)}
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
