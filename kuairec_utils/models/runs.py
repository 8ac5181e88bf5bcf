"""What 03's and 04's notebooks do with trained value models (docs/design.md section 5): save
each the way 05 and 06 read it, describe its representations, score it on warm and cold test rows,
and pool its figures over the value-model seeds (docs/design.md section 10).

Each value model is trained once per value-model seed (``value_model.seeds``) into
``models/<name>/seed_<seed>/`` (``seed_folder``); its metrics hold the mean over the seeds and
the spread across them (``pooled_auc_record``).

A test row is *warm* when its video has at least one training interaction (an edge in the
training graph) and *cold* otherwise: about half the test rows, since the test days come after
the training days.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kuairec_utils.heads import HEADS
from kuairec_utils.metrics import write_metrics
from kuairec_utils.models import build_value_model, save_value_model, training_adjacency
from kuairec_utils.models.dataset import Dataset
from kuairec_utils.models.gcn import representation_summary, training_degree
from kuairec_utils.models.networks import ValueModel
from kuairec_utils.models.training import (
    TrainConfig,
    TrainResult,
    auc_by_head,
    fit,
    predict,
    save_predictions,
)
from kuairec_utils.plots import training_curves, write_plot_data


def seed_folder(models_dir: str | Path, name: str, seed: int) -> Path:
    """Where value model ``name`` trained with ``seed`` lives: ``models/<name>/seed_<seed>/``."""
    return Path(models_dir) / name / f"seed_{seed}"


def trained_seeds(models_dir: str | Path, name: str, seeds: Sequence[int]) -> list[Path]:
    """The folders of ``name`` trained with each of ``seeds``, in order; a missing one is an
    error naming what to run."""
    folders = [seed_folder(models_dir, name, s) for s in seeds]
    missing = [f for f in folders if not (f / "model.pt").exists()]
    if missing:
        raise FileNotFoundError(f"{missing[0]} is missing: train {name} with its seeds first (04)")
    return folders


def check_seeds(seeds: Any) -> list[int]:
    """``value_model.seeds``: a non-empty list of distinct non-negative integers."""
    if (
        not isinstance(seeds, list | tuple)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise ValueError(f"seeds must be a non-empty list of distinct integers >= 0, got {seeds!r}")
    return list(seeds)


def pooled_auc_record(name: str, runs: Mapping[int, Mapping[str, Any]], **extra: Any) -> dict:
    """``metrics/auc_<name>.json`` over the seeds: ``test_auc`` and ``val_auc`` (each head and
    the mean) as their means over ``runs`` ({seed: {"test_auc", "val_auc", "best_epoch"}}),
    ``test_auc_sd`` and ``val_auc_sd`` their spread across seeds (sd, null with one seed), the
    seeds and each one's best epoch."""
    keys = [*HEADS, "mean"]
    out: dict[str, Any] = {"model": name, "seeds": [int(s) for s in runs]}
    for split in ("test_auc", "val_auc"):
        values = np.array([[float(r[split][k]) for k in keys] for r in runs.values()])
        out[split] = dict(zip(keys, values.mean(axis=0).tolist(), strict=True))
        sd = values.std(axis=0, ddof=1).tolist() if len(values) > 1 else [None] * len(keys)
        out[f"{split}_sd"] = dict(zip(keys, sd, strict=True))
    out["best_epoch"] = [int(r["best_epoch"]) for r in runs.values()]
    return out | extra


def write_auc_metrics(
    metrics_dir: str | Path,
    name: str,
    runs: Mapping[int, SeedRun],
    per_seed: Mapping[int, Mapping[str, Any]] | None = None,
    details: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """``metrics/auc_<name>.json`` (``pooled_auc_record`` of the runs, plus ``extra``),
    ``metrics/details/<name>.json`` (``runs``: every seed's AUCs and best epoch, with what
    ``per_seed`` adds to it, then ``details``) and the training curves of every seed
    (``metrics/plots/training/<name>.csv``, a DVC plot). Returns the headline record."""
    records = {seed: run.record() for seed, run in runs.items()}
    record = pooled_auc_record(name, records, **extra)
    every = {str(s): r | dict((per_seed or {}).get(s, {})) for s, r in records.items()}
    write_metrics(Path(metrics_dir) / f"auc_{name}.json", record)
    write_metrics(
        Path(metrics_dir) / "details" / f"{name}.json", {"runs": every, **(details or {})}
    )
    curves = training_curves({seed: run.result.history for seed, run in runs.items()})
    write_plot_data(Path(metrics_dir) / "plots" / "training" / f"{name}.csv", curves)
    return record


def mean_over_seeds(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The mean over seeds of every number in nested records of the same shape (e.g. each
    seed's representation summary); a value that is not a number is the first record's."""
    first = records[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, Mapping):
            out[key] = mean_over_seeds([r[key] for r in records])
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values = [r[key] for r in records if r.get(key) is not None]
            out[key] = float(np.mean(values)) if values else None
        else:
            out[key] = value
    return out


def training_degrees(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Each user's and each video's number of neighbours in the training graph."""
    degree = training_degree(training_adjacency(data))
    return degree[: data.n_users], degree[data.n_users :]


def save_run(
    folder: str | Path,
    model: ValueModel,
    arch: str,
    data: Dataset,
    settings: Mapping[str, Any],
    history: pd.DataFrame,
) -> np.ndarray:
    """Weights and config, the training history (without wall seconds, so a rerun writes the
    same bytes), a graph model's final node representations (``embeddings.npz``, for 05 and 06)
    and the val and test predictions in ``folder``; returns the test predictions."""
    folder = Path(folder)
    save_value_model(folder, model, arch, data, **settings)
    history.drop(columns="seconds").to_csv(folder / "history.csv", index=False)
    try:
        user_emb, item_emb = model.node_embeddings()
    except TypeError:  # a model of the edge features alone has no node representations
        user_emb = item_emb = None
    if item_emb is not None:
        np.savez(
            folder / "embeddings.npz",
            user_id=data.user_ids,
            user=user_emb,
            video_id=data.item_ids,
            item=item_emb,
        )
    for split in ("val", "test"):
        p = predict(model, data.splits[split])
        save_predictions(folder / f"predictions_{split}.parquet", data.splits[split], p, split)
    return p


@dataclass
class SeedRun:
    """One value model trained with one seed: the training result (the kept model is on the
    CPU), its test predictions and AUCs, its best validation AUCs and epoch."""

    result: TrainResult
    p_test: np.ndarray
    test_auc: dict[str, float]

    def record(self) -> dict[str, Any]:
        """What the metrics keep of the run (no wall seconds: the same seed, the same bytes)."""
        return {
            "test_auc": self.test_auc,
            "val_auc": self.result.val_auc,
            "best_epoch": self.result.best_epoch,
            "epochs_run": len(self.result.history),
        }


def train_over_seeds(
    arch: str,
    data: Dataset,
    settings: Mapping[str, Any],
    cfg: TrainConfig,
    seeds: Sequence[int],
    models_dir: str | Path,
    name: str,
    progress: bool = True,
) -> dict[int, SeedRun]:
    """Train value model ``arch`` with ``settings`` once per seed (torch's initialisation and the
    batch order both seeded by it) and save each run in ``seed_folder(models_dir, name, seed)``;
    the test AUC is computed once per run, on the kept model."""
    runs = {}
    for seed in check_seeds(list(seeds)):
        torch.manual_seed(seed)
        model = build_value_model(arch, data, **settings)
        result = fit(model, data, replace(cfg, seed=seed), progress=progress)
        result.model = result.model.cpu()
        history = pd.DataFrame(result.history)
        folder = seed_folder(models_dir, name, seed)
        p = save_run(folder, result.model, arch, data, settings, history)
        runs[seed] = SeedRun(result, p, auc_by_head(data.splits["test"].y.numpy(), p))
        if progress:
            print(
                f"{name}, seed {seed}: best epoch {result.best_epoch}, validation mean AUC "
                f"{result.val_auc['mean']:.4f}, test {runs[seed].test_auc['mean']:.4f}"
            )
            # the time on stderr: the executed copies keep stdout only, the same on every rerun
            print(f"{name}, seed {seed}: trained in {result.seconds:.0f} s", file=sys.stderr)
    return runs


def representation_record(model: ValueModel, data: Dataset) -> dict[str, dict[str, float]]:
    """``representation_summary`` of the final representations of the users in the training
    graph, the warm videos (with their log degree) and the cold videos."""
    user_emb, item_emb = model.node_embeddings()
    user_degree, item_degree = training_degrees(data)
    warm, in_graph = item_degree > 0, user_degree > 0
    return {
        "users": representation_summary(user_emb[in_graph], user_degree[in_graph]),
        "warm_items": representation_summary(item_emb[warm], item_degree[warm]),
        "cold_items": representation_summary(item_emb[~warm]),
    }


def warm_cold_auc(data: Dataset, p: np.ndarray) -> dict[str, dict[str, float]]:
    """The test AUC per head and mean on the rows of warm and of cold videos."""
    test = data.splits["test"]
    warm = (training_degrees(data)[1] > 0)[test.item.numpy()]
    y = test.y.numpy()
    return {"warm": auc_by_head(y[warm], p[warm]), "cold": auc_by_head(y[~warm], p[~warm])}


def short_run(model: ValueModel, data: Dataset, cfg: TrainConfig) -> dict[str, float]:
    """Train ``model`` (seed torch first) and return its mean AUCs: validation (the best
    epoch's), test, test on warm and on cold rows; the best epoch and the epochs run."""
    result = fit(model, data, cfg, progress=False)
    with torch.no_grad():
        p = predict(result.model, data.splits["test"])
    test = auc_by_head(data.splits["test"].y.numpy(), p)
    split = warm_cold_auc(data, p)
    return {
        "val": result.val_auc["mean"],
        "test": test["mean"],
        "test_warm": split["warm"]["mean"],
        "test_cold": split["cold"]["mean"],
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
    }


# 04's ablation: each variant changes the taste model's settings (params.yaml taste) so; None is
# the edge MLP trained the same way (the reference every part is measured against)
ABLATION: dict[str, dict[str, Any] | None] = {
    "taste model": {},
    "no node features (free embeddings)": {
        "user_features": False,
        "item_features": False,
        "free_item_embedding": True,
    },
    "no free user embedding": {"free_user_embedding": False},
    "free video embedding added": {"free_item_embedding": True},
    "no propagation (K = 0)": {"n_layers": 0},
    "no taste term (concat into the MLP)": {"interaction": False},
    "tags pooled as in 02": {"tag_encoding": "pooled"},
    "edge MLP, same training": None,
}
ABLATION_SCORES = ("val", "test", "test_warm", "test_cold")


def ablation_runs(
    data: Dataset,
    nodes: Mapping[str, Any],
    settings: Mapping[str, Any],
    cfg: TrainConfig,
    seeds: list[int],
    variants: Mapping[str, Mapping[str, Any] | None] = ABLATION,
) -> pd.DataFrame:
    """One ``short_run`` per variant and seed (torch and the batch order seeded by it): the
    taste model with ``settings`` changed by the variant, or the edge MLP. ``nodes`` maps each
    tag encoding to its ``(NodeInputs, node settings)``; ``settings`` holds the taste section's
    model values and ``tag_encoding``."""
    rows = []
    for name, change in variants.items():
        for seed in seeds:
            torch.manual_seed(seed)
            if change is None:
                mlp = {"hidden": settings["mlp_hidden"], "dropout": settings["dropout"]}
                model = build_value_model("edge_mlp", data, **mlp)
            else:
                chosen = dict(settings) | dict(change)
                data.nodes, sizes = nodes[chosen.pop("tag_encoding")]
                model = build_value_model("taste", data, **sizes, **chosen)
            rows.append(
                {"variant": name, "seed": seed} | short_run(model, data, replace(cfg, seed=seed))
            )
    return pd.DataFrame(rows)


def trained_ablation_rows(
    runs: Mapping[str, Mapping[str, Any]], seeds: Sequence[int], variant: str = "taste model"
) -> pd.DataFrame:
    """The ablation's rows of a model the pipeline already trained with these seeds (the
    ``runs`` of its ``metrics/details/<name>.json``): its mean AUCs as ``short_run`` gives them,
    so the ablation does not train it again."""
    missing = [s for s in seeds if str(s) not in runs]
    if missing:
        raise ValueError(f"the trained model has no run with seed(s) {missing}: train it first")
    rows = []
    for seed in seeds:
        run = runs[str(seed)]
        rows.append(
            {
                "variant": variant,
                "seed": int(seed),
                "val": run["val_auc"]["mean"],
                "test": run["test_auc"]["mean"],
                "test_warm": run["test_auc_warm"]["mean"],
                "test_cold": run["test_auc_cold"]["mean"],
                "best_epoch": run["best_epoch"],
                "epochs_run": run["epochs_run"],
            }
        )
    return pd.DataFrame(rows)


def ablation_summary(runs: pd.DataFrame, reference: str = "edge MLP, same training") -> dict:
    """Per variant: the mean and sd over seeds of each score, and the mean and sd of its
    difference from the reference variant on the same seed."""
    ref = runs[runs["variant"] == reference].set_index("seed")
    out = {}
    for name, rows in runs.groupby("variant", sort=False):
        rows = rows.set_index("seed")
        record = {"n_seeds": len(rows)}
        for score in ABLATION_SCORES:
            diff = rows[score] - ref[score].reindex(rows.index)
            record[score] = {"mean": rows[score].mean(), "sd": _sd(rows[score])}
            record[f"{score}_vs_edge_mlp"] = {"mean": diff.mean(), "sd": _sd(diff)}
        out[name] = record
    return out


def _sd(values: pd.Series) -> float | None:
    return float(values.std(ddof=1)) if len(values) > 1 else None
